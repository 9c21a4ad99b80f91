"""No unverified model is ever served: manifests, checkpoint hashes, ood.json, odd JSON and unloadable weights."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.bench.report import BenchReport
from edgefn.cli.commands import main
from edgefn.core.errors import EdgefnError
from edgefn.runs import RunFolder
from edgefn.runtime.classifier import Classifier
from tests.cli.test_bad_input import _error_lines, _snapshot

DEEP = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError on this
DEEP_OBJECT = '{"a": ' * 100_000 + "1" + "}" * 100_000
FLIPPED = {"0": "fake", "1": "real"}


@pytest.fixture(scope="module")
def exported(exported_tiny_run: Path) -> Path:
    """The session's tiny run with fp32 and int8-dynamic variants (copied per case)."""
    return exported_tiny_run


def _fp32(run: Path) -> Path:
    return RunFolder(run).variant_dir("fp32")


def _flip(config: Path) -> None:
    """Swap id2label in a config.json: every label would silently invert."""
    record = json.loads(config.read_text(encoding="utf-8"))
    record["id2label"] = FLIPPED
    config.write_text(json.dumps(record), encoding="utf-8")


def _edit_json(path: Path, **fields) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    record.update(fields)
    path.write_text(json.dumps(record), encoding="utf-8")


# --- damage: variants -----------------------------------------------------------------------------------------


def _no_manifest_flipped(run: Path) -> None:
    """export.json deleted, then id2label flipped: nothing could tell the labels changed."""
    (_fp32(run) / runs.EXPORT_MANIFEST).unlink()
    _flip(_fp32(run) / runs.MODEL_CONFIG)


def _manifest_folder(run: Path) -> None:
    (_fp32(run) / runs.EXPORT_MANIFEST).unlink()
    (_fp32(run) / runs.EXPORT_MANIFEST).mkdir()
    _flip(_fp32(run) / runs.MODEL_CONFIG)


def _manifest_symlink(run: Path) -> None:
    """export.json a link to another variant's (valid) manifest."""
    (_fp32(run) / runs.EXPORT_MANIFEST).unlink()
    (_fp32(run) / runs.EXPORT_MANIFEST).symlink_to(RunFolder(run).variant_dir("int8-dynamic") / "export.json")


def _manifest_fifo(run: Path) -> None:
    (_fp32(run) / runs.EXPORT_MANIFEST).unlink()
    os.mkfifo(_fp32(run) / runs.EXPORT_MANIFEST)
    _flip(_fp32(run) / runs.MODEL_CONFIG)


def _added_tokens(run: Path) -> None:
    """A tokenizer file added after the export (the loader would read it; no hash covers it)."""
    (_fp32(run) / "added_tokens.json").write_text('{"fake news": 7}', encoding="utf-8")


def _truncated_onnx_rehashed(run: Path) -> None:
    """model.onnx cut short and export.json's hashes rewritten to match: the hashes pass, the load fails."""
    model = _fp32(run) / runs.ONNX_FILE
    model.write_bytes(model.read_bytes()[:5000])
    _edit_json(_fp32(run) / runs.EXPORT_MANIFEST, **runs.model_record(_fp32(run)))


def _manifest_text(text: str) -> Callable[[Path], None]:
    return lambda run: (_fp32(run) / runs.EXPORT_MANIFEST).write_text(text, encoding="utf-8")


def _manifest_field(**fields) -> Callable[[Path], None]:
    return lambda run: _edit_json(_fp32(run) / runs.EXPORT_MANIFEST, **fields)


# --- damage: checkpoint -------------------------------------------------------------------------------------


def _flip_checkpoint(run: Path) -> None:
    _flip(RunFolder(run).checkpoint / runs.MODEL_CONFIG)


def _forget_checkpoint_hashes(run: Path) -> None:
    """A run made by an edgefn that recorded no checkpoint hashes."""
    record = json.loads(RunFolder(run).manifest.read_text(encoding="utf-8"))
    del record[runs.CHECKPOINT_HASHES]
    RunFolder(run).manifest.write_text(json.dumps(record), encoding="utf-8")


def _truncated_weights(rehash: bool) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        weights = RunFolder(run).checkpoint / runs.SAFETENSORS_WEIGHTS
        weights.write_bytes(weights.read_bytes()[:4096])
        if rehash:  # hashes that match the damaged file: the load itself must refuse it
            RunFolder(run).mark_complete()

    return damage


def _foreign_pickle(payload: bytes, rehash: bool = True) -> Callable[[Path], None]:
    """model.safetensors replaced by a pytorch_model.bin that is no PyTorch state dict."""

    def damage(run: Path) -> None:
        checkpoint = RunFolder(run).checkpoint
        (checkpoint / runs.SAFETENSORS_WEIGHTS).unlink()
        (checkpoint / runs.PICKLE_WEIGHTS).write_bytes(payload)
        if rehash:
            RunFolder(run).mark_complete()

    return damage


def _pickle_beside(run: Path) -> None:
    """A pytorch_model.bin added beside model.safetensors after the fine-tune."""
    (RunFolder(run).checkpoint / runs.PICKLE_WEIGHTS).write_bytes(NUMPY_PICKLE)


NUMPY_PICKLE = pickle.dumps({"bert.embeddings.word_embeddings.weight": np.zeros((4, 4), np.float32)})


# --- damage: other manifests ----------------------------------------------------------------------------------


def _write(name: Callable[[RunFolder], Path], text: str) -> Callable[[Path], None]:
    return lambda run: name(RunFolder(run)).write_text(text, encoding="utf-8")


def _ft_config(run: RunFolder) -> Path:
    return run.finetune_config


def _run_json(run: RunFolder) -> Path:
    return run.manifest


def _ood(run: RunFolder) -> Path:
    return run.ood_file


def _predict(run: Path, t: Path) -> list[str]:
    return ["predict", "--model", str(_fp32(run)), "hello world"]


def _eval_variant(run: Path, t: Path) -> list[str]:
    return ["eval", "--model", str(_fp32(run)), "--data", "sample", "--max-samples", "20"]


def _eval_run(run: Path, t: Path) -> list[str]:
    return ["eval", "--model", str(run), "--data", "sample", "--max-samples", "20"]


def _bench(variants: str, peers: str = "none") -> Callable[[Path, Path], list[str]]:
    return lambda run, t: [
        "bench",
        "--run-dir",
        str(run),
        "--variants",
        variants,
        "--peers",
        peers,
        "--min-time",
        "0.01",
        "--batch-sizes",
        "1",
    ]


def _export(run: Path, t: Path) -> list[str]:
    return ["export", "--run-dir", str(run), "--overwrite", "--quantize", "none"]


def _export_keep(run: Path, t: Path) -> list[str]:
    return ["export", "--run-dir", str(run)]


def _package(run: Path, t: Path) -> list[str]:
    return ["package", "--target", "mobile", "--run-dir", str(run), "--variants", "fp32"]


NO_MANIFEST = "fp32 has no export.json, so its files cannot be checked"
REEXPORT = "edgefn export --run-dir"
CHECKPOINT_FLIPPED = "checkpoint/config.json does not match the hash in"

Case = tuple[str, Callable[[Path, Path], list[str]], tuple[str, ...], Callable[[Path], None]]
CASES: list[Case] = [
    # a variant without a verifiable manifest, on every path that loads one
    ("predict, no export.json", _predict, (NO_MANIFEST, REEXPORT), _no_manifest_flipped),
    ("eval variant, no export.json", _eval_variant, (NO_MANIFEST, REEXPORT), _no_manifest_flipped),
    ("bench, no export.json", _bench("fp32"), (NO_MANIFEST, REEXPORT), _no_manifest_flipped),
    ("package, no export.json", _package, (NO_MANIFEST, REEXPORT), _no_manifest_flipped),
    ("predict, export.json a folder", _predict, ("not a regular file",), _manifest_folder),
    ("eval, export.json a folder", _eval_variant, ("not a regular file",), _manifest_folder),
    (
        "predict, export.json a symlink",
        _predict,
        ("export.json is a symlink, not a regular file",),
        _manifest_symlink,
    ),
    (
        "predict, a file added after export",
        _predict,
        ("added_tokens.json is not recorded in",),
        _added_tokens,
    ),
    ("bench, a file added after export", _bench("fp32"), ("is not recorded in",), _added_tokens),
    # the checkpoint's integrity
    ("eval run, flipped checkpoint id2label", _eval_run, (CHECKPOINT_FLIPPED, "run.json"), _flip_checkpoint),
    ("export, flipped checkpoint id2label", _export, (CHECKPOINT_FLIPPED, "finetune"), _flip_checkpoint),
    ("export keeping variants, flipped checkpoint", _export_keep, (CHECKPOINT_FLIPPED,), _flip_checkpoint),
    ("bench pytorch, flipped checkpoint", _bench("pytorch"), (CHECKPOINT_FLIPPED,), _flip_checkpoint),
    (
        "bench peers, flipped checkpoint",
        _bench("fp32", "ort-default"),
        (CHECKPOINT_FLIPPED,),
        _flip_checkpoint,
    ),
    (
        "export, no checkpoint hashes",
        _export,
        ("records no hashes of its checkpoint/",),
        _forget_checkpoint_hashes,
    ),
    (
        "eval, no checkpoint hashes",
        _eval_run,
        ("records no hashes of its checkpoint/",),
        _forget_checkpoint_hashes,
    ),
    (
        "export, truncated weights",
        _export,
        ("model.safetensors does not match the hash",),
        _truncated_weights(False),
    ),
    (
        "export, weights replaced by a pickle",
        _export,
        ("model.safetensors is missing (its hash is recorded in",),
        _foreign_pickle(NUMPY_PICKLE, False),
    ),
    (
        "eval, a pickle added beside the weights",
        _eval_run,
        ("pytorch_model.bin is not recorded in",),
        _pickle_beside,
    ),
    # weights that match their hashes but do not load
    (
        "export, truncated weights rehashed",
        _export,
        ("cannot load", "model.safetensors"),
        _truncated_weights(True),
    ),
    (
        "eval, truncated weights rehashed",
        _eval_run,
        ("cannot load", "model.safetensors"),
        _truncated_weights(True),
    ),
    (
        "export, numpy pickle rehashed",
        _export,
        ("pytorch_model.bin", "no PyTorch"),
        _foreign_pickle(NUMPY_PICKLE),
    ),
    (
        "eval, numpy pickle rehashed",
        _eval_run,
        ("pytorch_model.bin", "no PyTorch"),
        _foreign_pickle(NUMPY_PICKLE),
    ),
    ("eval, random bytes rehashed", _eval_run, ("pytorch_model.bin",), _foreign_pickle(os.urandom(4096))),
    (
        "predict, truncated model.onnx rehashed",
        _predict,
        ("onnxruntime cannot load",),
        _truncated_onnx_rehashed,
    ),
    # export.json of the wrong shape
    (
        "predict, export.json a list",
        _predict,
        ("export.json is a list, not a JSON object",),
        _manifest_text("[]"),
    ),
    ("predict, export.json a string", _predict, ("export.json is a string",), _manifest_text('"fp32"')),
    ("predict, export.json nested deep", _predict, ("export.json is not valid JSON",), _manifest_text(DEEP)),
    (
        "eval, export.json nested deep",
        _eval_variant,
        ("export.json is not valid JSON",),
        _manifest_text(DEEP),
    ),
    ("bench, export.json nested deep", _bench("fp32"), ("export.json",), _manifest_text(DEEP_OBJECT)),
    (
        "predict, files_sha256 a list",
        _predict,
        ("'files_sha256' is a list",),
        _manifest_field(files_sha256=[1]),
    ),
    (
        "predict, hashes naming files outside",
        _predict,
        ("'files_sha256' is not a record",),
        _manifest_field(files_sha256={"../../run.json": "0" * 64}),
    ),
    (
        "predict, max_length a string",
        _predict,
        ("'max_length' is a string",),
        _manifest_field(max_length="128"),
    ),
    (
        "predict, max_length negative",
        _predict,
        ("'max_length' holds an invalid value",),
        _manifest_field(max_length=-3),
    ),
    (
        "bench, execution_providers a number",
        _bench("fp32"),
        ("'execution_providers' is an integer",),
        _manifest_field(execution_providers=5),
    ),
    ("export keeping, parity a list", _export_keep, ("'parity' is a list",), _manifest_field(parity=[])),
    # ood.json, finetune_config.json and run.json of the wrong shape
    ("predict, ood.json a list", _predict, ("ood.json is a list", "delete it"), _write(_ood, "[]")),
    ("predict, ood.json nested deep", _predict, ("ood.json is not valid JSON",), _write(_ood, DEEP)),
    ("eval, ood.json nested deep", _eval_variant, ("ood.json is not valid JSON",), _write(_ood, DEEP_OBJECT)),
    (
        "export, finetune_config.json a list",
        _export,
        ("finetune_config.json is a list",),
        _write(_ft_config, "[]"),
    ),
    (
        "export, finetune_config.json deep",
        _export,
        ("finetune_config.json is not valid",),
        _write(_ft_config, DEEP),
    ),
    (
        "export, finetune_config.json preset a number",
        _export,
        ("'preset' is an integer",),
        _write(_ft_config, '{"preset": 5}'),
    ),
    (
        "eval, finetune_config.json max_length a string",
        _eval_run,
        ("'max_length' is a string",),
        _write(_ft_config, '{"preset": "test-tiny-bert", "max_length": "128"}'),
    ),
    ("export, run.json a list", _export, ("is not an edgefn run manifest",), _write(_run_json, "[]")),
    (
        "export, run.json nested deep",
        _export,
        ("is not an edgefn run manifest",),
        _write(_run_json, DEEP),
    ),
    ("eval, run.json a list", _eval_run, ("run.json is a list",), _write(_run_json, "[]")),
    ("eval, run.json nested deep", _eval_run, ("run.json is not valid JSON",), _write(_run_json, DEEP)),
    (
        "eval, checkpoint hashes a list",
        _eval_run,
        ("'checkpoint_sha256' is a list",),
        _write(_run_json, '{"status": "complete", "checkpoint_sha256": []}'),
    ),
]


@pytest.mark.parametrize(("name", "args", "messages", "damage"), CASES, ids=[c[0] for c in CASES])
def test_unverifiable_models_are_refused(
    name: str, args, messages: tuple[str, ...], damage, exported: Path, tmp_path: Path
) -> None:
    """Each case: exit code 2, one Error: line naming the problem (and its fix), no traceback, the folders
    exactly as they were."""
    run = tmp_path / "run"
    shutil.copytree(exported, run, symlinks=True)
    damage(run)
    before = _snapshot(tmp_path)
    result = CliRunner().invoke(main, args(run, tmp_path))
    assert result.exit_code == 2, f"{name}: {result.output}"
    lines = _error_lines(result.output)
    assert len(lines) == 1 and all(m in lines[0] for m in messages), f"{name}: {result.output}"
    assert "Traceback" not in result.output
    assert _snapshot(tmp_path) == before, f"{name} changed files"


FIFO_CASES = [
    ("predict", "export.json", _predict),
    ("eval variant", "export.json", _eval_variant),
    ("bench", "export.json", _bench("fp32")),
    ("package", "export.json", _package),
    ("predict", "ood.json", _predict),
    ("export", "finetune_config.json", _export),
]


@pytest.mark.parametrize(("command", "file", "args"), FIFO_CASES, ids=[f"{c} {f}" for c, f, _ in FIFO_CASES])
def test_a_fifo_in_place_of_a_manifest_never_blocks(
    command: str, file: str, args, exported: Path, tmp_path: Path
) -> None:
    """A FIFO where a manifest belongs is refused in one line at once (a separate process, so a hang fails)."""
    run = tmp_path / "run"
    shutil.copytree(exported, run)
    path = {
        "export.json": _fp32(run) / runs.EXPORT_MANIFEST,
        "ood.json": RunFolder(run).ood_file,
        "finetune_config.json": RunFolder(run).finetune_config,
    }[file]
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    if file == "export.json":
        _flip(_fp32(run) / runs.MODEL_CONFIG)
    before = _snapshot(tmp_path)
    cmd = [sys.executable, "-m", "edgefn.cli.commands", *args(run, tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    lines = _error_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert file in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert _snapshot(tmp_path) == before


def test_classifier_api_refuses_a_variant_without_manifest(exported: Path, tmp_path: Path) -> None:
    """`Classifier.from_folder` serves no folder it cannot verify: no export.json (inside a run or alone),
    a flipped id2label, a manifest that is a FIFO; an intact lone copy still loads."""
    run = tmp_path / "run"
    shutil.copytree(exported, run)
    lone = tmp_path / "lone"
    shutil.copytree(_fp32(run), lone)
    assert Classifier.from_folder(lone).predict(["a text"])[0].label in ("fake", "real")
    assert Classifier.from_folder(lone).ood is None  # outside a run: no run's ood.json is read
    _no_manifest_flipped(run)
    (lone / runs.EXPORT_MANIFEST).unlink()
    for folder in (_fp32(run), lone):
        with pytest.raises(EdgefnError, match="has no export.json.*re-export it with `edgefn export"):
            Classifier.from_folder(folder)
    os.mkfifo(lone / runs.EXPORT_MANIFEST)
    with pytest.raises(EdgefnError, match="not a regular file"):
        Classifier.from_folder(lone)
    assert "verify" not in Classifier.from_folder.__code__.co_varnames  # no switch turns the check off


# --- ood.json -----------------------------------------------------------------------------------------------


def _ood_entry(clf: Classifier, **fields) -> dict:
    entry = {
        "score": "energy",
        "threshold": 1.5,
        "quantile": 0.95,
        "calibrated_on": "run validation",
        "rows": 200,
        "model_sha256": clf.fingerprint,
    }
    return {**entry, **fields}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"model_sha256": "0" * 64}, "calibrated for another model"),
        ({"model_sha256": None}, "'model_sha256' is null"),
        ({"threshold": 1e308}, "not a finite score under 1e6"),
        ({"threshold": float("nan")}, "not a finite score"),
        ({"threshold": float("-inf")}, "not a finite score"),
        ({"threshold": "1.5"}, "'threshold' is a string"),
        ({"threshold": True}, "'threshold' is true or false"),
        ({"quantile": 1.5}, "quantile 1.5 is not in (0, 1)"),
        ({"score": "entropy"}, "unknown score"),
        ({"rows": 0}, "rows 0 is not a count"),
    ],
    ids=[
        "other model",
        "no model hash",
        "1e308",
        "nan",
        "-inf",
        "string",
        "bool",
        "quantile",
        "score",
        "rows",
    ],
)
def test_ood_threshold_of_another_model_or_out_of_range_is_ignored(
    fields: dict, reason: str, exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ood.json's entry serves only the model it was calibrated for, with sane values; otherwise `ood` is
    null and one warning line says why. A valid entry is used (the control)."""
    run = tmp_path / "run"
    shutil.copytree(exported, run)
    clf = Classifier.from_folder(_fp32(run))
    runs.write_json(RunFolder(run).ood_file, {"fp32": _ood_entry(clf)})
    good = Classifier.from_folder(_fp32(run))
    assert good.ood is not None and good.ood.threshold == 1.5 and good.predict(["x"])[0].ood is not None
    capsys.readouterr()
    RunFolder(run).ood_file.write_text(json.dumps({"fp32": _ood_entry(clf, **fields)}), encoding="utf-8")
    bad = Classifier.from_folder(_fp32(run))
    err = capsys.readouterr().err.strip().splitlines()
    assert bad.ood is None and bad.predict(["x"])[0].ood is None
    assert len(err) == 1 and err[0].startswith("warning: ") and reason in err[0], err


def test_predict_with_a_stale_ood_json_serves_null_and_warns(exported: Path, tmp_path: Path) -> None:
    """`edgefn predict` with ood.json calibrated for another model: exit 0, `ood: null`, one warning line."""
    run = tmp_path / "run"
    shutil.copytree(exported, run)
    clf = Classifier.from_folder(_fp32(run))
    runs.write_json(RunFolder(run).ood_file, {"fp32": _ood_entry(clf, model_sha256="f" * 64)})
    result = CliRunner().invoke(main, ["predict", "--model", str(_fp32(run)), "hello"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ood"] is None
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [
        line for line in result.stderr.splitlines() if line.strip()
    ]
    assert "calibrated for another model" in result.stderr


def test_eval_records_the_model_hash_in_ood_json(exported: Path, tmp_path: Path) -> None:
    """`edgefn eval` records the fingerprint of the model it calibrated; predict then uses that threshold,
    and a re-exported (changed) model no longer does."""
    run = tmp_path / "run"
    shutil.copytree(exported, run)
    code = CliRunner().invoke(main, _eval_variant(run, tmp_path)).exit_code
    assert code == 0
    clf = Classifier.from_folder(_fp32(run))
    saved = json.loads(RunFolder(run).ood_file.read_text(encoding="utf-8"))["fp32"]
    assert saved["model_sha256"] == clf.fingerprint and clf.ood is not None
    other = Classifier.from_folder(RunFolder(run).variant_dir("int8-dynamic"))
    assert other.fingerprint != clf.fingerprint and other.ood is None  # no entry of its own


# --- JSON readers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '"report"',
        '{"results": 3}',
        '{"results": [5]}',
        '{"results": [{"variant": []}]}',
        DEEP,
        DEEP_OBJECT,
    ],
)
def test_bench_report_of_another_shape_is_one_line(content: str, tmp_path: Path) -> None:
    """`BenchReport.from_json` on a report.json of another shape raises EdgefnError naming the file."""
    path = tmp_path / "report.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EdgefnError, match="report.json"):
        BenchReport.from_json(path)


@pytest.mark.parametrize("file", ["metrics", "finetune_config", "manifest", "bench", "variant", "ood"])
def test_show_survives_deeply_nested_json(file: str, exported: Path, tmp_path: Path) -> None:
    """`edgefn show` reads a run whose files are nested 10^5 deep without a traceback (exit 0)."""
    run = RunFolder(tmp_path / "run")
    shutil.copytree(exported, run.path)
    path = {
        "metrics": run.metrics,
        "finetune_config": run.finetune_config,
        "manifest": run.manifest,
        "bench": run.bench_file("json"),
        "variant": run.variant_dir("fp32") / runs.EXPORT_MANIFEST,
        "ood": run.ood_file,
    }[file]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEEP, encoding="utf-8")
    result = CliRunner().invoke(main, ["show", "--run-dir", str(run.path)])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text(DEEP, encoding="utf-8"), "nested too deeply"),
        (lambda p: p.write_text("[1, 2]", encoding="utf-8"), "is a list, not a JSON object"),
        (lambda p: p.write_bytes(b'{"a": "\xff"}'), "is not UTF-8"),
        (lambda p: p.mkdir(), "not a regular file"),
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
        (lambda p: p.write_text('{"n": ' + "9" * 5000 + "}", encoding="utf-8"), "is not valid JSON"),
    ],
    ids=["deep", "list", "bytes", "folder", "fifo", "device", "huge int"],
)
def test_read_json_object_refuses_in_one_line(make, message: str, tmp_path: Path) -> None:
    """The one JSON reader every manifest goes through: one EdgefnError line naming the file, never a
    RecursionError, never a block on a FIFO or device."""
    path = tmp_path / "x.json"
    make(path)
    with pytest.raises(EdgefnError, match=message) as info:
        runs.read_json_object(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_finetune_and_the_test_helper_record_checkpoint_hashes(exported: Path, tmp_path: Path) -> None:
    """A finished run records every checkpoint file's hash; verify_checkpoint passes on it and names the
    file that changed (the helper records them with the same function finetune calls)."""
    run = RunFolder(tmp_path / "run")
    shutil.copytree(exported, run.path)
    hashes = run.verify_checkpoint()
    assert set(hashes) == {p.name for p in run.checkpoint.iterdir()} and runs.MODEL_CONFIG in hashes
    _flip(run.checkpoint / runs.MODEL_CONFIG)
    with pytest.raises(EdgefnError, match="config.json does not match the hash in .*run.json"):
        run.verify_checkpoint()
