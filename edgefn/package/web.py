"""The web target: a Transformers.js layout and a static onnxruntime-web page, each model checked in WASM."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.core.errors import EdgefnError
from edgefn.package import webbuild
from edgefn.package.ortformat import compare_logits
from edgefn.package.targets import PackageJob, PackageTarget, out_of_domain, register_target, run_record
from edgefn.runtime import engines

# Transformers.js file name per dtype (onnx/model<suffix>.onnx) and the dtype each export scheme becomes.
DTYPE_SUFFIX = {"fp32": "", "fp16": "_fp16", "q8": "_quantized"}
SCHEME_DTYPE = {"fp32": "fp32", "fp16": "fp16", "int8-dynamic": "q8", "int8-static": "q8"}
INT8_ORDER = ("int8-dynamic", "int8-static")  # the first that runs in WASM becomes model_quantized.onnx
# A variant runs in WASM when its argmax agrees this often with Python ONNX Runtime on the check texts (one
# text per call: int8-dynamic quantizes activations per batch). 0.99 tolerates one near-tie flip in 100; the
# browser test holds the page to 99.5% on 200 test texts.
MIN_WASM_AGREEMENT = 0.99
MIN_PAGE_AGREEMENT = 0.995  # --browser-check: the page in Chromium against Python ONNX Runtime
WASM_GZ = webbuild.ORT_WASM + ".gz"  # inflated by the page: 14 MB on disk would be 3.7 MB on the wire


def _wasm_checks(
    job: PackageJob, build: webbuild.WebBuild, candidates: list[str]
) -> dict[str, dict[str, Any]]:
    """Each candidate in onnxruntime-web (Node, one text per call) against Python ONNX Runtime."""
    job.step(
        f"web: checking {', '.join(candidates)} in onnxruntime-web WASM on {len(job.texts)} validation texts"
    )
    reference, checks, clf = {}, {}, None
    for name in candidates:
        try:
            one = job.classifier(name)
            reference[name], clf = one.predict_logits(job.texts), one
        except EdgefnError as e:  # e.g. fp16, made for CUDA, without CPU kernels
            checks[name] = {"runs": False, "error": f"Python ONNX Runtime cannot run it: {e}"}
    if clf is None:
        return checks
    tokens = clf.encoder.encode(clf.clean(job.texts))  # what the page feeds the model
    inputs = [{"ids": list(e.ids), "types": list(e.type_ids)} for e in tokens]
    models = {n: job.run.variant_dir(n) / runs.ONNX_FILE for n in reference}
    got = webbuild.wasm_logits(build, models, inputs)
    for name in reference:
        out = got.get(name) or {"error": "no result"}
        if "error" in out:
            checks[name] = {"runs": False, "error": out["error"]}
            continue
        logits = np.array(out["logits"], dtype=np.float64)
        if logits.shape != reference[name].shape or not np.isfinite(logits).all():
            checks[name] = {"runs": False, "error": f"unexpected logits (shape {logits.shape} or non-finite)"}
            continue
        check = compare_logits(logits, reference[name])
        check["runs"] = check["agreement"] >= MIN_WASM_AGREEMENT
        check["ms_per_text_node_p50"] = float(np.median(out["ms"]))
        checks[name] = check
    return checks


def _check_candidates(
    job: PackageJob, build: webbuild.WebBuild, candidates: list[str]
) -> dict[str, dict[str, Any]]:
    """Checks of fp32 / fp16 and of the int8 variants in order until one runs (the rest are not needed)."""
    int8 = [n for n in candidates if _dtype(job, n) == "q8"]
    checks = _wasm_checks(job, build, [n for n in candidates if n not in int8[1:]])
    for name in int8[1:]:
        if any(checks.get(n, {}).get("runs") for n in int8):
            break
        checks.update(_wasm_checks(job, build, [name]))
    return checks


def _dtype(job: PackageJob, name: str) -> str:
    return SCHEME_DTYPE[job.manifests[name].scheme or name]


def _reason(check: dict[str, Any]) -> str:
    if "error" in check:
        return check["error"]
    return f"agreement with Python ONNX Runtime {check['agreement']:.1%} < {MIN_WASM_AGREEMENT:.0%}"


def _choose_web_models(
    job: PackageJob, candidates: list[str], checks: dict[str, dict[str, Any]]
) -> list[str]:
    """fp32 / fp16 that run, and the first int8 that runs; an explicitly requested variant must run."""
    chosen: list[str] = []
    for name in candidates:
        check, dtype = checks.get(name), _dtype(job, name)
        filled = next((c for c in chosen if _dtype(job, c) == dtype), None)
        if filled is not None:
            job.notes.append(f"{name} left out: {filled} already fills onnx/model{DTYPE_SUFFIX[dtype]}.onnx")
        elif check is None or not check["runs"]:
            check = check or {"error": "not checked"}
            if job.variants:
                raise EdgefnError(
                    f"{name} does not run correctly in onnxruntime-web's WASM backend ({_reason(check)}); "
                    "package another variant, or export the plain graph with `edgefn export --optimize none`"
                )
            job.notes.append(f"{name} left out: it does not run in onnxruntime-web WASM ({_reason(check)})")
        else:
            chosen.append(name)
    if not chosen:
        reasons = "; ".join(f"{n}: {_reason(checks.get(n) or {'error': 'not checked'})}" for n in candidates)
        raise EdgefnError(
            f"no variant of {job.run.path} runs in onnxruntime-web's WASM backend ({reasons or 'none to check'})"
        )
    return chosen


def _web_candidates(job: PackageJob) -> list[str]:
    """The variants to check, fp32 first and int8 in preference order; schemes the web cannot load refused."""
    names = list(job.variants or job.manifests)
    schemes = {n: job.manifests[n].scheme or n for n in names}
    bad = [n for n in names if schemes[n] not in SCHEME_DTYPE]
    if bad and job.variants:
        raise EdgefnError(
            f"variant {', '.join(bad)} has no Transformers.js file name; web packages take {', '.join(SCHEME_DTYPE)}"
        )
    names = [n for n in names if n not in bad]
    if job.variants:
        dtypes = [SCHEME_DTYPE[schemes[n]] for n in names]
        clash = sorted({d for d in dtypes if dtypes.count(d) > 1})
        if clash:
            raise EdgefnError(
                f"{', '.join(n for n in names if SCHEME_DTYPE[schemes[n]] in clash)} would all be "
                f"onnx/model{DTYPE_SUFFIX[clash[0]]}.onnx; pass one of them"
            )
    rank = {s: i for i, s in enumerate(("fp32", *INT8_ORDER, "fp16"))}
    return sorted(names, key=lambda n: (rank.get(schemes[n], len(rank)), n))


# --- web ----------------------------------------------------------------------------------------------------


def _model_record(
    job: PackageJob, name: str, file: str, folder: Path, check: dict[str, Any]
) -> dict[str, Any]:
    m = job.manifests[name]
    return {
        "dtype": SCHEME_DTYPE[m.scheme or name],
        "file": file,
        "variant": name,
        "scheme": m.scheme,
        "int8_target": m.target if (m.scheme or "").startswith("int8") else None,
        "size_mb": runs.file_size_mb(folder / file),
        "validation_accuracy": m.validation_accuracy,
        "validation_rows": m.validation_samples,
        "wasm_check": check,
    }


def _copy_layout(job: PackageJob, tmp: Path, chosen: list[str], max_length: int) -> list[str]:
    """config.json, tokenizer files and onnx/model*.onnx as Transformers.js reads them; the model files."""
    src = job.run.variant_dir(chosen[0])
    dtypes = {n: SCHEME_DTYPE[job.manifests[n].scheme or n] for n in chosen}
    config = runs.read_json_object(src / runs.MODEL_CONFIG)
    config["transformers.js_config"] = {"dtype": "q8" if "q8" in dtypes.values() else dtypes[chosen[0]]}
    runs.write_json(tmp / runs.MODEL_CONFIG, config)
    tok_config = runs.read_optional_json(src / runs.TOKENIZER_CONFIG)
    tok_config["model_max_length"] = max_length  # Transformers.js truncates here, like `edgefn predict`
    runs.write_json(tmp / runs.TOKENIZER_CONFIG, tok_config)
    shutil.copy2(src / runs.TOKENIZER_FILE, tmp / runs.TOKENIZER_FILE)
    (tmp / runs.ONNX_DIR).mkdir()  # Transformers.js's model subfolder has the same name
    files = []
    for name in chosen:
        stem = Path(runs.ONNX_FILE).stem
        file = f"{runs.ONNX_DIR}/{stem}{DTYPE_SUFFIX[dtypes[name]]}.onnx"
        shutil.copy2(job.run.variant_dir(name) / runs.ONNX_FILE, tmp / file)
        files.append(file)
    return files


def _copy_page(build: webbuild.WebBuild, tmp: Path) -> None:
    for path in build.page_files:
        shutil.copy2(path, tmp / path.name)
    (tmp / WASM_GZ).write_bytes(gzip.compress(build.wasm.read_bytes(), compresslevel=9, mtime=0))


def page_download_mb(folder: Path, model_file: str) -> float:
    """MB the page fetches to run one model: the page, script, runtime, WASM, tokenizer, config and model."""
    fixed = [p for p in folder.iterdir() if p.is_file()]
    return (sum(p.stat().st_size for p in fixed) + (folder / model_file).stat().st_size) / 1e6


def write_web(job: PackageJob, tmp: Path) -> runs.PackageManifest:
    build = webbuild.ensure_build(progress=job.step)
    candidates = _web_candidates(job)
    checks = _check_candidates(job, build, candidates)
    chosen = _choose_web_models(job, candidates, checks)
    max_length = job.classifier(chosen[0]).max_length
    files = _copy_layout(job, tmp, chosen, max_length)
    _copy_page(build, tmp)
    models = [_model_record(job, n, f, tmp, checks[n]) for n, f in zip(chosen, files)]
    default = next((m["dtype"] for m in models if m["dtype"] == "q8"), models[0]["dtype"])
    manifest = runs.PackageManifest(
        edgefn_package=1,
        target="web",
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        model=run_record(job.run),
        max_length=max_length,
        cleaning=job.cleaning(chosen),  # the page applies them before tokenizing
        default_dtype=default,
        wasm=WASM_GZ,
        models=models,
        out_of_domain=out_of_domain(job.run),
        notes=job.notes,
        build={"command": "npm ci --omit=dev && npm run build", "source_key": webbuild.source_key()},
        versions={
            **engines.library_versions(),
            "onnxruntime-web": build.version("onnxruntime-web"),
            "@huggingface/tokenizers": build.version("@huggingface/tokenizers"),
        },
    )
    runs.write_json(tmp / runs.PACKAGE_MANIFEST, manifest)  # the page reads it; rewritten with hashes
    return dataclasses.replace(
        manifest,
        download_mb={m["dtype"]: page_download_mb(tmp, m["file"]) for m in models},
        browser_check=_browser_check(job, build, tmp, models) if job.browser_check else None,
    )


def _browser_check(
    job: PackageJob, build: webbuild.WebBuild, folder: Path, models: list[dict[str, Any]]
) -> dict[str, Any]:
    """The page in headless Chromium on the check texts, each model against Python ONNX Runtime."""
    job.step(f"web: running the page in headless Chromium on {len(job.texts)} validation texts")
    specs = [{"model": m["dtype"], "threads": 1, "isolate": False} for m in models]
    got = webbuild.browser_runs(build, folder, job.texts, specs)
    out: dict[str, Any] = {"chromium": got.get("chromium")}
    for model, run in zip(models, got["runs"]):
        if run["external_requests"] or len(run["results"]) != len(job.texts):
            raise EdgefnError(
                f"the page failed in Chromium ({model['dtype']}): {run['status']}; requests outside "
                f"127.0.0.1: {run['external_requests'] or 'none'}"
            )
        reference = job.classifier(model["variant"]).predict_logits(job.texts)
        check = compare_logits(np.array([r["logits"] for r in run["results"]]), reference)
        if check["agreement"] < MIN_PAGE_AGREEMENT:
            raise EdgefnError(
                f"{model['variant']} in Chromium agrees {check['agreement']:.1%} with Python ONNX Runtime "
                f"(< {MIN_PAGE_AGREEMENT:.1%})"
            )
        out[model["dtype"]] = {
            **check,
            "ms_per_text_p50": float(np.median([r["ms"] for r in run["results"]])),
        }
    return out


def _prepare(browser_check: bool) -> None:
    webbuild.require_node()
    if browser_check:
        webbuild.chromium_path()


register_target(
    PackageTarget(
        "web",
        write_web,
        "WASM (Node)",
        lambda folder: f"serve it: python -m http.server -d {folder} -b 127.0.0.1 8000",
        _prepare,
        browser_check=True,
    )
)
