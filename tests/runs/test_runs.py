"""The run-folder contract without a trained model: the typed manifests read the JSON edgefn has always
written, write the same keys back, and refuse a wrong shape in one line naming the file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edgefn import runs
from edgefn.core.errors import EdgefnError
from edgefn.runs import RunFolder

MANIFESTS = [
    runs.VariantManifest,
    runs.RunManifest,
    runs.FinetuneManifest,
    runs.EvalManifest,
    runs.PackageManifest,
]
HASH = "a" * 64
# export.json as export wrote it before the manifests were typed (an int8 variant of a run), and a peer's
INT8_EXPORT = {
    "variant": "int8-dynamic",
    "scheme": "int8-dynamic",
    "preset": "test-tiny-bert",
    "init": "random init",
    "model_sha256": HASH,
    "files_sha256": {"model.onnx": HASH, "config.json": HASH, "tokenizer.json": HASH},
    "source_checkpoint_sha256": HASH,
    "request": {"scheme": "int8-dynamic", "target": "avx2", "max_length": 128},
    "size_mb": 0.25,
    "size_ratio_to_fp32": 0.3,
    "opset": 17,
    "target": "avx2",
    "execution_providers": ["CPUExecutionProvider"],
    "max_length": 128,
    "parity": {"reference": "fp32 onnx", "samples": 64, "agreement": 1.0},
    "validation_accuracy": 0.8,
    "validation_samples": 64,
    "accuracy_delta_vs_fp32": -0.01,
    "nodes_kept_float": [],
    "op_counts": {"MatMulInteger": 12},
    "created": "2026-12-01T10:00:00+0000",
    "versions": {"onnxruntime": "1.20.0"},
    "settings": {"recipe": "edgefn-tuned", "per_channel": True},
    "runtime": "onnxruntime",
    "precision": "fp32",
    "graph_passes": [{"name": "symbolic-shape-inference"}],
    "notes": ["a note"],
    "measured_on": ["CPUExecutionProvider"],
}
PEER_EXPORT = {
    "variant": "ort-default",
    "scheme": "int8-dynamic",
    "peer": "ort-default",
    "description": "ONNX Runtime's quantize_dynamic with its defaults",
    "recipe": "onnxruntime.quantization.quantize_dynamic(model, out) with default arguments",
    "runtime": "onnxruntime",
    "precision": "fp32",
    "execution_providers": ["CPUExecutionProvider"],
    "source_checkpoint_sha256": HASH,
    "recipe_version": 1,
    "model_sha256": HASH,
    "files_sha256": {"model.onnx": HASH},
    "size_mb": 0.25,
}


@pytest.mark.parametrize("cls", MANIFESTS, ids=lambda c: c.__name__)
def test_every_field_has_a_json_type(cls):
    """Each manifest declares the JSON type of exactly its fields (a new field cannot go unchecked)."""
    assert set(cls.JSON_TYPES) == {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("record", [INT8_EXPORT, PEER_EXPORT], ids=["variant", "peer"])
def test_export_json_of_before_round_trips_with_the_same_keys(record):
    """export.json as written before the manifests were typed loads, and writes back key for key."""
    manifest = runs.VariantManifest.from_dict(record, "export.json")
    assert manifest.to_dict() == record
    assert manifest.variant == record["variant"] and manifest.files_sha256 == record["files_sha256"]


def test_older_export_json_still_loads():
    """An export of an older edgefn (optimize written as the requested level, opset null) still loads."""
    manifest = runs.VariantManifest.from_dict({**INT8_EXPORT, "optimize": "O2", "opset": None}, "export.json")
    assert manifest.optimize == "O2" and manifest.opset is None and "opset" not in manifest.to_dict()


def test_unknown_keys_are_ignored():
    """A key this edgefn does not know (written by a newer one) does not stop the load."""
    manifest = runs.VariantManifest.from_dict({**PEER_EXPORT, "future_field": [1]}, "export.json")
    assert manifest.peer == "ort-default" and "future_field" not in manifest.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_length": "128"}, "'max_length' is a string, not an integer"),
        ({"max_length": 1}, "'max_length' holds an invalid value"),
        ({"execution_providers": [5]}, "'execution_providers' holds an invalid value"),
        ({"parity": []}, "'parity' is a list, not an object"),
        ({"size_mb": True}, "'size_mb' is true or false, not a number"),
    ],
)
def test_a_wrong_field_is_one_line_naming_file_and_field(change, message):
    """A field of the wrong type or value is refused in one line naming the file, the field and the fix."""
    with pytest.raises(EdgefnError) as e:
        runs.VariantManifest.from_dict({**INT8_EXPORT, **change}, "run/onnx/int8/export.json", "re-export it")
    text = str(e.value)
    assert text.startswith("run/onnx/int8/export.json: ") and message in text
    assert text.endswith("; re-export it") and "\n" not in text


def test_write_json_writes_the_manifest_keys(tmp_path: Path):
    """`runs.write_json` of a manifest writes `to_dict()`: set fields only, and `ALWAYS` ones as null."""
    runs.write_json(tmp_path / "export.json", runs.VariantManifest(variant="fp32", size_mb=1.5))
    assert json.loads((tmp_path / "export.json").read_text()) == {"variant": "fp32", "size_mb": 1.5}
    runs.write_json(
        tmp_path / "metrics.json", runs.EvalManifest(edgefn_eval=1, model="fp32", metrics={"n": 3})
    )
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == {
        "edgefn_eval": 1,
        "model": "fp32",
        "run_dir": None,
        "trained_on": None,
        "metrics": {"n": 3},
    }
    assert runs.is_eval_dir(tmp_path) is False  # other files beside it: not an eval folder to replace


def test_run_manifest_marks_training_then_complete(tmp_path: Path):
    """run.json: training with its preset and data, then complete with the checkpoint's hashes."""
    run = RunFolder(tmp_path / "run")
    (run.checkpoint).mkdir(parents=True)
    (run.checkpoint / "weights.bin").write_bytes(b"weights")
    runs.write_run_manifest(run.path, runs.RUN_TRAINING, preset="minilm", data="constraint")
    training = runs.run_manifest(run.path)
    assert training is not None and training.status == runs.RUN_TRAINING and run.status() == "unfinished"
    assert training.completed is None and "completed" not in training.to_dict()
    run.mark_complete()
    done = run.read_manifest()
    assert done.status == runs.RUN_COMPLETE and done.preset == "minilm" and done.started == training.started
    assert done.checkpoint_sha256 == {"weights.bin": runs.sha256_file(run.checkpoint / "weights.bin")}
    assert run.verify_checkpoint() == done.checkpoint_sha256


def test_a_foreign_run_json_is_no_run(tmp_path: Path):
    """A run.json of another schema, or with a field of the wrong type, does not make a folder edgefn's."""
    for record in ({"status": "complete"}, {"edgefn_run": 1, "status": "complete", "started": 5}):
        (tmp_path / runs.RUN_MANIFEST).write_text(json.dumps(record), encoding="utf-8")
        assert runs.run_manifest(tmp_path) is None and not runs.is_run(tmp_path)


def test_finetune_config_reads_typed_and_optional(tmp_path: Path):
    """finetune_config.json gives its preset, limit and settings; absent, it is refused unless optional."""
    run = RunFolder(tmp_path)
    with pytest.raises(EdgefnError, match="missing file"):
        run.read_finetune_config()
    assert run.read_finetune_config(required=False) == runs.FinetuneManifest()
    assert run.max_length(64) == 64
    saved = {
        "preset": "minilm",
        "init": "pretrained",
        "max_length": 256,
        "data": "constraint",
        "settings": {},
    }
    runs.write_json(run.finetune_config, saved)
    config = run.read_finetune_config()
    assert (config.preset, config.max_length, config.settings) == ("minilm", 256, {})
    assert run.max_length(64) == 256 and config.to_dict() == saved
    runs.write_json(run.finetune_config, {**saved, "max_length": 1})
    with pytest.raises(EdgefnError, match="'max_length' must be at least 2"):
        run.read_finetune_config()


def test_the_facade_exports_every_name():
    """`from edgefn import runs; runs.X` reaches each name of `runs.__all__`, and nothing is listed twice."""
    assert len(runs.__all__) == len(set(runs.__all__))
    assert all(hasattr(runs, name) for name in runs.__all__)
