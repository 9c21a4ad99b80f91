"""package(cfg) -> PackageResult: a run's variants for a browser (Transformers.js layout + a static onnxruntime-web
page, RUN/package/web/) or a phone (ORT-format files + operator configs for a minimal build, RUN/package/mobile/)."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.environment import check_threads, library_versions
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.package import ortformat, webbuild
from edgefn.package.ortformat import compare_logits
from edgefn.runs import RunFolder
from edgefn.runtime.classifier import Classifier
from edgefn.runtime.inference import CPU

TARGETS = ("web", "mobile")
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
Step = Callable[[str], None]


@dataclass
class PackageConfig:
    """What to package: the run, the target (web or mobile), which variants, and how many texts to check."""

    target: str
    run_dir: Path | None = None
    variants: tuple[str, ...] | None = (
        None  # default: web fp32 + the first int8 that runs in WASM + fp16; mobile CPU ones
    )
    check_samples: int = 100  # validation texts each packaged model is checked on
    browser_check: bool = False  # web: also run the page in headless Chromium on the check texts
    threads: int | None = None  # ONNX Runtime threads of the Python side of the checks
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError("target", f"unknown {self.target!r}; choose one of {', '.join(TARGETS)}")
        if self.browser_check and self.target != "web":
            raise ConfigError("browser_check", "applies to target web only", ("target",))
        if self.check_samples < 1:
            raise ConfigError("check_samples", f"must be a positive integer, got {self.check_samples}")
        check_threads(self.threads)
        if self.variants is not None:
            self.variants = tuple(dict.fromkeys(v.strip() for v in self.variants if v.strip())) or None
        if self.run_dir is not None:
            self.run_dir = Path(self.run_dir)


@dataclass
class PackageResult:
    """The package folder and its manifest (edgefn_package.json)."""

    target: str
    folder: Path
    run_dir: Path
    picked_automatically: bool
    manifest: runs.PackageManifest
    notes: list[str] = field(default_factory=list)


@dataclass
class _Job:
    cfg: PackageConfig
    run: RunFolder
    step: Step
    manifests: dict[str, runs.VariantManifest]  # variant -> export.json (hash-checked)
    texts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def classifier(self, variant: str, batch_size: int = 1) -> Classifier:
        return Classifier.from_verified_folder(
            self.run.variant_dir(variant),
            self.manifests[variant],
            threads=self.cfg.threads,
            batch_size=batch_size,
        )


def package(cfg: PackageConfig, step: Step | None = None) -> PackageResult:
    """Write RUN/package/<target>/ from the run's exported variants, after checking every packaged model
    against Python ONNX Runtime; nothing is left behind when a check or a tool fails.

    Args:
        cfg: the target, the run (None: the most recent under artifacts/), the variants, the check size.
        step: called with a one-line description of each step (the CLI prints them).

    Returns:
        The folder and its manifest. Raises EdgefnError for a run without variants, an unknown variant, a
        missing Node.js / npm / Chromium, or a model that fails its check.
    """
    run, picked = RunFolder.resolve(cfg.run_dir)
    run.require_complete()
    for name in sorted(set(cfg.variants or ()) & set(run.incomplete_variants())):  # no export.json
        run.verify_variant(name)  # refused with the re-export command
    names = run.variant_names()
    if not names:
        raise EdgefnError(
            f"{run.path} has no exported variants (nothing complete in {run.onnx_dir}); "
            f"run `edgefn export --run-dir {run.path}` first"
        )
    unknown = [v for v in cfg.variants or () if v not in names]
    if unknown:
        raise EdgefnError(
            f"unknown variant {', '.join(unknown)} for {run.path}; its variants: {', '.join(names)}"
        )
    final = run.package_dir(cfg.target)
    outputs.check_output_dir(final, overwrite=cfg.overwrite, owned=_is_package, kind="package folder")
    if cfg.target == "web":
        webbuild.require_node()
        if cfg.browser_check:
            webbuild.chromium_path()
    manifests = {n: run.verify_variant(n) for n in (cfg.variants or names)}
    job = _Job(cfg, run, step or (lambda _msg: None), manifests)
    job.texts = run.read_split("validation").texts[: cfg.check_samples]
    if not job.texts:
        raise EdgefnError(f"{run.split_file('validation')} is empty: nothing to check the package on")
    writer = _write_web if cfg.target == "web" else _write_mobile
    with (
        run.lock("package"),
        _clean_parent(final),
        runs.atomic_dir(final, overwrite=cfg.overwrite, owned=_is_package, kind="package folder") as tmp,
    ):
        manifest = writer(job, tmp)
        hashes = runs.hash_files(tmp)
        files = {k: v for k, v in hashes.items() if k != runs.PACKAGE_MANIFEST}
        manifest = dataclasses.replace(manifest, files_sha256=files)
        runs.write_json(tmp / runs.PACKAGE_MANIFEST, manifest)
    return PackageResult(cfg.target, final, run.path, picked, manifest, job.notes)


def _is_package(folder: Path) -> bool:
    return runs.is_manifested_dir(folder, runs.PACKAGE_MANIFEST)


@contextlib.contextmanager
def _clean_parent(final: Path) -> Iterator[None]:
    """Remove RUN/package/ again when the first package written into it fails."""
    existed = final.parent.exists()
    try:
        yield
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                final.parent.rmdir()
        raise


# --- checks -------------------------------------------------------------------------------------------------


def _wasm_checks(job: _Job, build: webbuild.WebBuild, candidates: list[str]) -> dict[str, dict[str, Any]]:
    """Each candidate in onnxruntime-web (Node, one text per call) against Python ONNX Runtime."""
    job.step(
        f"web: checking {', '.join(candidates)} in onnxruntime-web WASM on {len(job.texts)} validation texts"
    )
    reference, checks, encoder = {}, {}, None
    for name in candidates:
        try:
            clf = job.classifier(name)
            reference[name], encoder = clf.predict_logits(job.texts), clf.encoder
        except EdgefnError as e:  # e.g. fp16, made for CUDA, without CPU kernels
            checks[name] = {"runs": False, "error": f"Python ONNX Runtime cannot run it: {e}"}
    if encoder is None:
        return checks
    inputs = [{"ids": list(e.ids), "types": list(e.type_ids)} for e in encoder.encode(job.texts)]
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
    job: _Job, build: webbuild.WebBuild, candidates: list[str]
) -> dict[str, dict[str, Any]]:
    """Checks of fp32 / fp16 and of the int8 variants in order until one runs (the rest are not needed)."""
    int8 = [n for n in candidates if _dtype(job, n) == "q8"]
    checks = _wasm_checks(job, build, [n for n in candidates if n not in int8[1:]])
    for name in int8[1:]:
        if any(checks.get(n, {}).get("runs") for n in int8):
            break
        checks.update(_wasm_checks(job, build, [name]))
    return checks


def _dtype(job: _Job, name: str) -> str:
    return SCHEME_DTYPE[job.manifests[name].scheme or name]


def _reason(check: dict[str, Any]) -> str:
    if "error" in check:
        return check["error"]
    return f"agreement with Python ONNX Runtime {check['agreement']:.1%} < {MIN_WASM_AGREEMENT:.0%}"


def _choose_web_models(job: _Job, candidates: list[str], checks: dict[str, dict[str, Any]]) -> list[str]:
    """fp32 / fp16 that run, and the first int8 that runs; an explicitly requested variant must run."""
    chosen: list[str] = []
    for name in candidates:
        check, dtype = checks.get(name), _dtype(job, name)
        filled = next((c for c in chosen if _dtype(job, c) == dtype), None)
        if filled is not None:
            job.notes.append(f"{name} left out: {filled} already fills onnx/model{DTYPE_SUFFIX[dtype]}.onnx")
        elif check is None or not check["runs"]:
            check = check or {"error": "not checked"}
            if job.cfg.variants:
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


def _web_candidates(job: _Job) -> list[str]:
    """The variants to check, fp32 first and int8 in preference order; schemes the web cannot load refused."""
    names = list(job.cfg.variants or job.manifests)
    schemes = {n: job.manifests[n].scheme or n for n in names}
    bad = [n for n in names if schemes[n] not in SCHEME_DTYPE]
    if bad and job.cfg.variants:
        raise EdgefnError(
            f"variant {', '.join(bad)} has no Transformers.js file name; web packages take {', '.join(SCHEME_DTYPE)}"
        )
    names = [n for n in names if n not in bad]
    if job.cfg.variants:
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


def _run_record(run: RunFolder) -> dict[str, Any]:
    ft = run.read_finetune_config(required=False)
    test = run.read_metrics().get("test") or {}
    return {
        "run": run.name,
        "preset": ft.preset,
        "init": ft.init,
        "data": ft.data,
        "test_accuracy": test.get("accuracy"),
        "test_rows": test.get("n"),
        "parameters": run.read_metrics().get("parameters"),
    }


def out_of_domain(run: RunFolder) -> list[dict[str, Any]]:
    """Accuracy on other datasets recorded by `edgefn eval` (RUN/eval/*/), [] when none was measured."""
    if not run.eval_root.is_dir():
        return []
    trained_on = run.read_finetune_config(required=False).data
    out = []
    for folder in sorted(p for p in run.eval_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        path = RunFolder.eval_file(folder, "metrics")
        record = runs.EvalManifest.read(path) if os.path.lexists(path) else runs.EvalManifest()
        data, metrics = record.data or {}, record.metrics or {}
        name = data.get("name") or folder.name
        if metrics.get("accuracy") is None or name == trained_on:
            continue
        rows = data.get("rows_scored", metrics.get("n"))
        out.append({"data": name, "model": record.model, "accuracy": metrics["accuracy"], "rows": rows})
    return out


def _model_record(job: _Job, name: str, file: str, folder: Path, check: dict[str, Any]) -> dict[str, Any]:
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


def _copy_layout(job: _Job, tmp: Path, chosen: list[str], max_length: int) -> list[str]:
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


def _write_web(job: _Job, tmp: Path) -> runs.PackageManifest:
    build = webbuild.ensure_build(step=job.step)
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
        model=_run_record(job.run),
        max_length=max_length,
        default_dtype=default,
        wasm=WASM_GZ,
        models=models,
        out_of_domain=out_of_domain(job.run),
        notes=job.notes,
        build={"command": "npm ci --omit=dev && npm run build", "source_key": webbuild.source_key()},
        versions={
            **library_versions(),
            "onnxruntime-web": build.version("onnxruntime-web"),
            "@huggingface/tokenizers": build.version("@huggingface/tokenizers"),
        },
    )
    runs.write_json(tmp / runs.PACKAGE_MANIFEST, manifest)  # the page reads it; rewritten with hashes
    return dataclasses.replace(
        manifest,
        download_mb={m["dtype"]: page_download_mb(tmp, m["file"]) for m in models},
        browser_check=_browser_check(job, build, tmp, models) if job.cfg.browser_check else None,
    )


def _browser_check(
    job: _Job, build: webbuild.WebBuild, folder: Path, models: list[dict[str, Any]]
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


# --- mobile -------------------------------------------------------------------------------------------------


def _write_mobile(job: _Job, tmp: Path) -> runs.PackageManifest:
    names = list(job.cfg.variants or job.manifests)
    if not job.cfg.variants:
        for n in [n for n in names if CPU not in (job.manifests[n].execution_providers or [CPU])]:
            job.notes.append(
                f"{n} left out: it is meant for {', '.join(job.manifests[n].execution_providers or [])}"
            )
            names.remove(n)
    if not names:
        raise EdgefnError(f"no CPU variant in {job.run.onnx_dir} to convert for a phone")
    src = job.run.variant_dir(names[0])
    for file in (runs.MODEL_CONFIG, runs.TOKENIZER_FILE, runs.TOKENIZER_CONFIG):
        if (src / file).is_file():
            shutil.copy2(src / file, tmp / file)
    models = []
    for name in names:
        job.step(f"mobile: {name}: converting to ORT format ({ortformat.ORT_FORMAT})")
        model, onnx_clf = job.run.variant_dir(name) / runs.ONNX_FILE, job.classifier(name, batch_size=32)
        record = ortformat.convert_and_check(model, onnx_clf, tmp / name, job.texts, job.cfg.threads)
        job.step(
            f"mobile: {name}: .ort agrees {record['check_against_onnx']['agreement']:.1%} with the .onnx"
        )
        record["file"] = f"{name}/{record['file']}"  # paths inside the package folder
        record["ops_config"] = f"{name}/{record['ops_config']}"
        record["validation_accuracy"] = job.manifests[name].validation_accuracy
        models.append({"variant": name, **record})
    return runs.PackageManifest(
        edgefn_package=1,
        target="mobile",
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        model=_run_record(job.run),
        ort_format={**ortformat.ORT_FORMAT, "why": ortformat.ORT_FORMAT_WHY},
        models=models,
        out_of_domain=out_of_domain(job.run),
        notes=job.notes,
        versions=library_versions(),
    )


def format_summary(result: PackageResult) -> str:
    """A few lines: the folder, each packaged model with its size and check, and the notes."""
    m = result.manifest
    lines = [f"{result.target} package: {result.folder}"]
    for model in m.models or []:
        check = model.get("wasm_check") or model.get("check_against_onnx") or {}
        where = "WASM (Node)" if result.target == "web" else ".onnx"
        lines.append(
            f"  {model['file']}: {model['variant']}, {model['size_mb']:.1f} MB, agreement with {where} "
            f"{check.get('agreement', float('nan')):.1%} on {check.get('samples', 0)} validation texts"
        )
    for dtype, mb in (m.download_mb or {}).items():
        lines.append(f"  page download with {dtype}: {mb:.1f} MB")
    for dtype, check in (m.browser_check or {}).items():
        if isinstance(check, dict):
            lines.append(
                f"  in Chromium, {dtype}: agreement {check['agreement']:.1%} on {check['samples']} texts, "
                f"{check['ms_per_text_p50']:.1f} ms per text (p50)"
            )
    if result.target == "web":
        lines.append(f"  serve it: python -m http.server -d {result.folder} -b 127.0.0.1 8000")
    else:
        lines.append(
            "  minimal ONNX Runtime build: --include_ops_by_config <variant>/model.required_operators.config"
        )
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
