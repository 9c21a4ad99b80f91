"""Tests for `edgefn package`: the web layout and its checks, the int8 fallback, .ort files, bad input, and the
page in headless Chromium / the folder in Transformers.js (marked `browser`)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.core.cleaning import clean_texts
from edgefn.core.errors import EdgefnError
from edgefn.package import webbuild
from edgefn.package.ortformat import MIN_ORT_AGREEMENT
from edgefn.package.packager import PackageConfig, package
from edgefn.runs import RunFolder
from edgefn.runtime.classifier import Classifier
from tests.helpers import record_training_cleaning

FAKE_WASM = b"\0asm fake runtime " * 1000


@pytest.fixture(scope="module")
def exported_run(tiny_run_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT run with fp32 (O2-fused), int8-dynamic and int8-static variants, whose training recorded
    CONSTRAINT's cleaning (URLs and @handles deleted)."""
    from edgefn.export.exporter import ExportConfig, export

    run = tmp_path_factory.mktemp("package") / "run"
    shutil.copytree(tiny_run_factory("test-tiny-bert"), run)
    record_training_cleaning(run)
    export(
        ExportConfig(
            run_dir=run,
            schemes=("int8-dynamic", "int8-static"),
            parity_samples=16,
            eval_samples=64,
            calibration_samples=64,
            saturation_check=False,
            threads=1,
        )
    )
    return run


@pytest.fixture
def run_copy(exported_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of the exported run, for tests that write its package folder."""
    shutil.copytree(exported_run, tmp_path / "run")
    return tmp_path / "run"


def _python_wasm(flip: set[str] = frozenset()):
    """A stand-in for onnxruntime-web: Python ONNX Runtime on the same ids, logits negated for `flip`."""

    def fake(build, models, inputs, threads=1):
        out = {}
        for name, path in models.items():
            clf = Classifier.from_folder(Path(path).parent, batch_size=1)
            logits = []
            for x in inputs:
                ids = np.array([x["ids"]], dtype=np.int64)
                feed = {
                    "input_ids": ids,
                    "attention_mask": np.ones_like(ids),
                    "token_type_ids": np.array([x["types"]]),
                }
                row = clf.run(feed)[0].tolist()
                logits.append([-v for v in row] if name in flip else row)
            out[name] = {"logits": logits, "ms": [1.0] * len(inputs)}
        return out

    return fake


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No Node.js: a build folder with stand-in page files, and Python ONNX Runtime standing in for WASM."""
    root = tmp_path / "build"
    dist = root / webbuild.ORT_DIST
    dist.mkdir(parents=True)
    for rel in webbuild.PAGE_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"// {rel}\n")
    for name in webbuild.ORT_SCRIPTS:
        (dist / name).write_text(f"// {name}\n")
    (dist / webbuild.ORT_WASM).write_bytes(FAKE_WASM)
    (dist.parent / "package.json").write_text('{"version": "0.0.0-test"}')
    monkeypatch.setattr(webbuild, "require_node", lambda: ("node", "npm"))
    monkeypatch.setattr(
        webbuild, "ensure_build", lambda dev=False, progress=None: webbuild.WebBuild(root, dev)
    )
    monkeypatch.setattr(webbuild, "wasm_logits", _python_wasm())
    return root


def _write_eval(run: Path, data: str, accuracy: float, rows: int) -> None:
    folder = RunFolder(run).eval_dir(data)
    runs.write_json(
        RunFolder.eval_file(folder, "metrics"),
        {"model": "pytorch", "data": {"name": data, "rows_scored": rows}, "metrics": {"accuracy": accuracy}},
    )


def test_web_layout_is_what_transformers_js_reads(run_copy: Path, fake_build: Path) -> None:
    """config / tokenizer / onnx/model{,_quantized}.onnx copied byte for byte, labels and token limit set,
    the WASM gzipped, out-of-domain figures and accuracies carried into the manifest the page reads."""
    _write_eval(run_copy, "isot", 0.61, 50)
    result = package(PackageConfig(target="web", run_dir=run_copy, check_samples=24))
    run, web = RunFolder(run_copy), RunFolder(run_copy).package_dir("web")
    assert result.folder == web
    config = json.loads((web / "config.json").read_text())
    assert config["id2label"] == {"0": "real", "1": "fake"} and config["label2id"] == {"real": 0, "fake": 1}
    assert config["transformers.js_config"] == {"dtype": "q8"}
    assert json.loads((web / "tokenizer_config.json").read_text())["model_max_length"] == 128
    for file, variant in (("onnx/model.onnx", "fp32"), ("onnx/model_quantized.onnx", "int8-dynamic")):
        assert (web / file).read_bytes() == (run.variant_dir(variant) / runs.ONNX_FILE).read_bytes()
    assert (web / "tokenizer.json").read_bytes() == (run.variant_dir("fp32") / "tokenizer.json").read_bytes()
    assert gzip.decompress((web / "ort-wasm-simd-threaded.wasm.gz").read_bytes()) == FAKE_WASM
    assert not (web / "ort-wasm-simd-threaded.wasm").exists()
    m = json.loads((web / runs.PACKAGE_MANIFEST).read_text())
    assert [(x["dtype"], x["variant"]) for x in m["models"]] == [("fp32", "fp32"), ("q8", "int8-dynamic")]
    assert m["default_dtype"] == "q8" and m["max_length"] == 128
    assert m["cleaning"] == ["drop-urls", "drop-handles"]  # the page applies the training cleaning
    assert all(x["wasm_check"]["agreement"] == 1.0 and x["wasm_check"]["samples"] == 24 for x in m["models"])
    int8 = run.verify_variant("int8-dynamic")
    assert m["models"][1]["validation_accuracy"] == int8.validation_accuracy
    assert m["out_of_domain"] == [{"data": "isot", "model": "pytorch", "accuracy": 0.61, "rows": 50}]
    assert m["notes"] == ["int8-static left out: int8-dynamic already fills onnx/model_quantized.onnx"]
    assert m["files_sha256"]["onnx/model_quantized.onnx"] == (int8.files_sha256 or {})[runs.ONNX_FILE]
    expected_q8 = (
        sum(p.stat().st_size for p in web.iterdir() if p.is_file())
        + (web / "onnx/model_quantized.onnx").stat().st_size
    )
    assert m["download_mb"]["q8"] == pytest.approx(expected_q8 / 1e6, abs=0.01)


def test_int8_falls_back_when_the_fused_graph_fails_in_wasm(
    run_copy: Path, fake_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """int8-dynamic disagreeing in WASM is left out with the reason; int8-static becomes model_quantized."""
    monkeypatch.setattr(webbuild, "wasm_logits", _python_wasm(flip={"int8-dynamic"}))
    result = package(PackageConfig(target="web", run_dir=run_copy, check_samples=24))
    assert [(x["dtype"], x["variant"]) for x in result.manifest.models or []] == [
        ("fp32", "fp32"),
        ("q8", "int8-static"),
    ]
    dynamic = [n for n in result.notes if n.startswith("int8-dynamic")]
    assert len(dynamic) == 1 and "< 99%" in dynamic[0]
    static = RunFolder(run_copy).variant_dir("int8-static") / runs.ONNX_FILE
    assert (result.folder / "onnx/model_quantized.onnx").read_bytes() == static.read_bytes()


def _package_cli(run: Path, *extra: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(
        main, ["package", "--run-dir", str(run), "--check-samples", "8", *extra], env=env
    )


def _assert_one_line_error(result, message: str, run: Path) -> None:
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not (run / runs.PACKAGE_DIR).exists(), "a package folder was left behind"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "watch"], "'watch' is not one of 'web', 'mobile'"),
        (["--target", "web", "--variants", "int9"], "unknown variant int9"),
        (
            ["--target", "web", "--variants", "int8-dynamic,int8-static"],
            "would all be onnx/model_quantized.onnx",
        ),
        (["--target", "web", "--variants", "int8-dynamic"], "does not run correctly in onnxruntime-web"),
        (["--target", "web", "--browser-check"], "EDGEFN_CHROMIUM=/no/chromium does not exist"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(
    run_copy: Path, fake_build: Path, monkeypatch: pytest.MonkeyPatch, args, message
) -> None:
    """Unknown target / variant, two int8 for one file, a requested variant failing in WASM, no Chromium."""
    monkeypatch.setattr(webbuild, "wasm_logits", _python_wasm(flip={"int8-dynamic"}))
    _assert_one_line_error(
        _package_cli(run_copy, *args, env={"EDGEFN_CHROMIUM": "/no/chromium"}), message, run_copy
    )


def test_missing_node_and_missing_variants(run_copy: Path, tiny_run_factory, tmp_path: Path) -> None:
    """No node on PATH, a Node.js too old, and a run never exported: one line each, exit 2, no package folder."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = _package_cli(run_copy, "--target", "web", env={"PATH": str(empty)})
    _assert_one_line_error(result, "node not found on PATH", run_copy)
    old = tmp_path / "old-bin"
    old.mkdir()
    for tool in ("node", "npm"):
        (old / tool).write_text("#!/bin/sh\necho v16.20.2\n")
        (old / tool).chmod(0o755)
    result = _package_cli(run_copy, "--target", "web", env={"PATH": str(old)})
    _assert_one_line_error(result, "Node.js v16.20.2 is too old: install Node.js 20+", run_copy)
    bare = tmp_path / "bare"
    shutil.copytree(tiny_run_factory("test-tiny-bert"), bare)
    _assert_one_line_error(_package_cli(bare, "--target", "mobile"), "has no exported variants", bare)


def test_a_failing_check_removes_everything(
    run_copy: Path, fake_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tool failing after files were copied leaves neither package/web nor package/, and no temp folder."""

    def broken(*args, **kwargs):
        raise EdgefnError("wasm_check.mjs failed: RuntimeError: unreachable")

    monkeypatch.setattr(webbuild, "wasm_logits", broken)
    before = sorted(str(p.relative_to(run_copy)) for p in run_copy.rglob("*"))
    _assert_one_line_error(_package_cli(run_copy, "--target", "web"), "unreachable", run_copy)
    assert sorted(str(p.relative_to(run_copy)) for p in run_copy.rglob("*")) == before


def test_existing_package_needs_overwrite(run_copy: Path, fake_build: Path) -> None:
    """A second package without --overwrite is refused and leaves the first intact; with it, replaced."""
    first = package(PackageConfig(target="web", run_dir=run_copy, check_samples=8))
    before = (first.folder / runs.PACKAGE_MANIFEST).read_bytes()
    result = _package_cli(run_copy, "--target", "web")
    assert result.exit_code == 2 and "already exists (use --overwrite" in result.output
    assert (first.folder / runs.PACKAGE_MANIFEST).read_bytes() == before
    again = _package_cli(run_copy, "--target", "web", "--overwrite")
    assert again.exit_code == 0, again.output
    assert "page download with q8" in again.output


def test_mobile_ort_files_load_and_agree(run_copy: Path) -> None:
    """Each CPU variant becomes an .ort with its operator config; the .ort loads in ONNX Runtime here and
    agrees with its .onnx on the test split (not the validation texts the package checked)."""
    result = package(PackageConfig(target="mobile", run_dir=run_copy, check_samples=32))
    m, run = result.manifest, RunFolder(run_copy)
    ort_format, models = m.ort_format or {}, m.models or []
    assert ort_format["target_platform"] == "arm" and ort_format["optimization_style"] == "Fixed"
    assert [x["variant"] for x in models] == ["fp32", "int8-dynamic", "int8-static"]
    assert m.cleaning == ["drop-urls", "drop-handles"]  # for the app to apply
    test = run.read_split("test").texts[:100]
    for model in models:
        onnx_clf = Classifier.from_folder(run.variant_dir(model["variant"]))
        ort_clf = Classifier.for_model_file(
            result.folder / model["file"], onnx_clf.encoder, onnx_clf.id2label
        )
        a, b = ort_clf.predict_logits(onnx_clf.clean(test)), onnx_clf.predict_logits(test)
        assert (a.argmax(1) == b.argmax(1)).mean() >= MIN_ORT_AGREEMENT
        config = (result.folder / model["ops_config"]).read_text()
        assert str(result.folder) not in config and ".tmp-" not in config
        assert model["operators"] and all(line in config for line in model["operators"])
    int8_ops = " ".join(models[1]["operators"])
    assert "MatMulInteger" in int8_ops or "DynamicQuantizeMatMul" in int8_ops  # its products stay int8
    recipe = runs.read_json(run.variant_dir("int8-dynamic") / runs.EXPORT_MANIFEST)["settings"]["recipe"]
    assert ("QAttention" in int8_ops) == (recipe == "edgefn-tuned")  # the tuned recipe's fused graph is kept
    assert (result.folder / "tokenizer.json").is_file() and (result.folder / "config.json").is_file()


# --- Node.js and Chromium -------------------------------------------------------------------------------------


def _build(dev: bool = False) -> webbuild.WebBuild:
    """The real npm build; skipped where Node.js / npm or the registry is missing, except under CI."""
    try:
        return webbuild.ensure_build(dev=dev)
    except EdgefnError as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{e}: required under CI (.ci/run installs Node.js, npm and Chromium)")
        pytest.skip(f"web build unavailable: {e}")


def _chromium() -> str:
    try:
        return webbuild.chromium_path()
    except EdgefnError as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{e}: required under CI")
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def web_package(exported_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run packaged for the web with the real npm build and the real onnxruntime-web check."""
    _build(dev=True)
    run = tmp_path_factory.mktemp("web") / "run"
    shutil.copytree(exported_run, run)
    package(PackageConfig(target="web", run_dir=run, check_samples=48))
    return run


def _predict(variant: Path, texts: list[str], tmp_path: Path) -> list[dict]:
    """`edgefn predict --batch-size 1` (one text per call, as the page runs) on a JSONL file of the texts."""
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    result = CliRunner().invoke(
        main, ["predict", "--model", str(variant), "--input", str(src), "--batch-size", "1"]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.mark.browser
def test_wasm_check_ran_in_onnxruntime_web(web_package: Path) -> None:
    """The package-time check ran the real onnxruntime-web: fp32 matches Python to float error, int8 closely."""
    m = json.loads((RunFolder(web_package).package_dir("web") / runs.PACKAGE_MANIFEST).read_text())
    checks = {x["dtype"]: x["wasm_check"] for x in m["models"]}
    assert checks["fp32"]["max_abs_logit_diff"] < 1e-4 and checks["fp32"]["agreement"] == 1.0
    assert checks["q8"]["agreement"] >= 0.99 and checks["q8"]["max_abs_logit_diff"] < 0.5
    assert (
        m["versions"]["onnxruntime-web"]
        == json.loads((webbuild.WEB_SOURCES / "package.json").read_text())["dependencies"]["onnxruntime-web"]
    )


@pytest.mark.browser
def test_page_in_chromium_agrees_with_predict(web_package: Path, tmp_path: Path) -> None:
    """200 raw CONSTRAINT test texts pasted into the page in headless Chromium: >= 99.5% agreement with `edgefn
    predict` on the same variant (int8 and fp32), truncated long texts too, and no request leaves 127.0.0.1.
    Both delete URLs and @handles first, as the run's training did: a text with them gets the page's answer
    for the text without."""
    _chromium()
    run = RunFolder(web_package)
    test = run.read_split("test").texts[:200]
    assert sum("http" in t for t in test) > 20  # the page's cleaning is exercised
    long = [" ".join(test[i : i + 12]) for i in range(0, 36, 12)]  # > 128 tokens: the page must truncate
    pair = ["Masks work, @WHO says https://t.co/x1 www.who.int", "Masks work, says"]
    texts = test + long + pair
    got = webbuild.browser_runs(
        _build(),
        run.package_dir("web"),
        texts,
        [{"model": "q8", "threads": 1}, {"model": "fp32", "threads": 1}],
    )
    for page, variant in zip(got["runs"], ("int8-dynamic", "fp32")):
        assert page["external_requests"] == [] and page["errors"] == [], page["status"]
        assert all(r["status"] == 200 for r in page["requests"])
        assert len(page["results"]) == len(texts)
        expected = _predict(run.variant_dir(variant), texts, tmp_path)
        assert sum(e["truncated"] for e in expected[200:203]) == 3
        labels = [r["label"] == e["label"] for r, e in zip(page["results"], expected)]
        assert np.mean(labels[:200]) >= 0.995 and all(labels[200:203])
        assert page["results"][-2]["logits"] == page["results"][-1]["logits"]
        diff = max(abs(r["prob_fake"] - e["prob_fake"]) for r, e in zip(page["results"], expected))
        assert diff < (1e-4 if variant == "fp32" else 0.05)
        assert all(r["ms"] > 0 for r in page["results"])


@pytest.mark.browser
def test_transformers_js_loads_the_folder_offline(web_package: Path) -> None:
    """@huggingface/transformers in Node (allowRemoteModels = false) reads the layout: q8 and fp32 labels
    agree >= 99.5% with the runtime on 200 test texts, P(fake) within float error. Transformers.js does not
    clean: its texts go in cleaned by the rules edgefn_package.json records, as a user of the folder does."""
    run = RunFolder(web_package)
    texts = run.read_split("test").texts[:200]
    for dtype, variant in (("q8", "int8-dynamic"), ("fp32", "fp32")):
        clf = Classifier.from_folder(run.variant_dir(variant), batch_size=1)
        cleaned = clean_texts(
            texts, runs.read_json(run.package_dir("web") / runs.PACKAGE_MANIFEST)["cleaning"]
        )
        got = webbuild.transformers_js_predictions(_build(dev=True), run.package_dir("web"), dtype, cleaned)
        expected = clf.predict(texts)
        agree = np.mean([g["label"] == e.label for g, e in zip(got["results"], expected)])
        assert agree >= 0.995
        assert max(abs(g["prob_fake"] - e.prob_fake) for g, e in zip(got["results"], expected)) < 1e-3


@pytest.mark.browser
def test_a_request_outside_localhost_is_caught(web_package: Path, tmp_path: Path) -> None:
    """The driver sees every request the page makes: an image from another host shows up, and is not served."""
    _chromium()
    folder = tmp_path / "web"
    shutil.copytree(RunFolder(web_package).package_dir("web"), folder)
    page = folder / "index.html"
    page.write_text(page.read_text().replace("</body>", '<img src="https://cdn.example.com/x.png"></body>'))
    got = webbuild.browser_runs(
        _build(), folder, ["Vaccines contain microchips."], [{"model": "q8", "threads": 1}]
    )
    assert got["runs"][0]["external_requests"] == ["https://cdn.example.com/x.png"]
    assert len(got["runs"][0]["results"]) == 1
