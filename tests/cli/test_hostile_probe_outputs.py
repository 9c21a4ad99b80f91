"""Faults a hostile-input probe found in the output policy: outputs written into the model a command reads,
into the input folder it reads, and runs replaced with the user's files inside them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edgefn import runs
from tests.cli.test_bad_input import _error_lines, _invoke, _snapshot

VARIANT = "onnx/int8-dynamic"
EVAL = ["--data", "sample", "--max-samples", "20", "--batch-size", "16"]


def _refused(argv: list[str], root: Path, message: str) -> None:
    """The command exits 2 with one Error: line holding `message`, no traceback, and nothing under `root`
    changed."""
    before = _snapshot(root)
    code, out = _invoke(argv)
    lines = _error_lines(out)
    assert code == 2 and len(lines) == 1 and message in lines[0], out
    assert "Traceback" not in out
    assert _snapshot(root) == before


@pytest.mark.parametrize(
    "output",
    [
        f"{VARIANT}/model.onnx",
        f"{VARIANT}/export.json",
        f"{VARIANT}/config.json",
        f"{VARIANT}/tokenizer.json",
        "link/model.onnx",
        "run.json",
        "ood.json",
        "onnx/fp32/model.onnx",
        "checkpoint/new.jsonl",
    ],
)
def test_predict_never_writes_into_the_model_or_its_run(output: str, run: Path, tmp_path: Path) -> None:
    """predict --output naming a file of the variant it reads (also through a symlinked folder) or of its
    run is refused before any work, and nothing changes."""
    os.symlink(run / VARIANT, run / "link")
    (tmp_path / "in.txt").write_text("one text\n", encoding="utf-8")
    argv = ["predict", "--model", str(run / VARIANT), "--input", str(tmp_path / "in.txt")]
    _refused([*argv, "--output", str(run / output)], tmp_path, "is inside")


def test_predict_of_a_lone_variant_never_writes_into_it(run: Path, tmp_path: Path) -> None:
    """A variant copied out of its run: --output inside its folder is refused."""
    shutil.copytree(run / VARIANT, tmp_path / "loose")
    argv = ["predict", "--model", str(tmp_path / "loose"), "one text"]
    _refused([*argv, "--output", str(tmp_path / "loose" / "preds.jsonl")], tmp_path, "the model's folder")


@pytest.mark.parametrize(
    "model, output",
    [
        (VARIANT, f"{VARIANT}/results"),
        (".", "checkpoint/results"),
        (".", "onnx/results"),
        (".", "data/results"),
        (VARIANT, "results"),
    ],
)
def test_eval_output_stays_out_of_the_model_and_the_run(
    model: str, output: str, run: Path, tmp_path: Path
) -> None:
    """eval --output naming a new folder inside the variant, the checkpoint or anywhere in the run but
    RUN/eval/ is refused before scoring (it would fail the next hash check)."""
    argv = ["eval", "--model", str(run / model), *EVAL, "--output", str(run / output)]
    _refused(argv, tmp_path, "is inside")


def test_eval_output_inside_a_lone_variant_is_refused(run: Path, tmp_path: Path) -> None:
    """A variant copied out of its run: eval --output inside it is refused."""
    shutil.copytree(run / VARIANT, tmp_path / "loose")
    argv = ["eval", "--model", str(tmp_path / "loose"), *EVAL, "--output", str(tmp_path / "loose" / "r")]
    _refused(argv, tmp_path, "the model's folder")


def test_outputs_never_go_into_another_run(run: Path, tmp_path: Path) -> None:
    """predict and data audit --output naming a file in some other run (its variant's model, its run.json),
    and eval --output naming RUN/eval itself or a folder in another run's variant, are refused."""
    other = tmp_path / "other"
    shutil.copytree(run, other)
    (tmp_path / "news.csv").write_text(
        "text,label\n" + "".join(f"text number {k} about news,{k % 2}\n" for k in range(20)), encoding="utf-8"
    )
    predict = ["predict", "--model", str(run / VARIANT), "one text", "--output"]
    audit = ["data", "audit", str(tmp_path / "news.csv"), "--no-duplicates", "--output"]
    evaluate = ["eval", "--model", str(run / VARIANT), *EVAL, "--output"]
    for argv in (
        [*predict, str(other / VARIANT / "model.onnx")],
        [*predict, str(other / runs.RUN_MANIFEST)],
        [*audit, str(other / VARIANT / "audit.json")],
        [*audit, str(run / "audit.json")],
        [*evaluate, str(other / VARIANT / "results")],
        [*evaluate, str(run / runs.EVAL_DIR)],
    ):
        _refused(argv, tmp_path, "is inside the edgefn run")


def test_audit_output_inside_its_input_folder_is_refused(tmp_path: Path) -> None:
    """data audit FOLDER --output FOLDER/file.csv (a file it reads) is refused; the file is kept."""
    folder = tmp_path / "news"
    folder.mkdir()
    body = "text,label\n" + "".join(f"text number {k} about news,{k % 2}\n" for k in range(20))
    (folder / "a.csv").write_text(body, encoding="utf-8")
    argv = ["data", "audit", str(folder), "--no-duplicates", "--output", str(folder / "a.csv")]
    _refused(argv, tmp_path, "the input folder")


@pytest.mark.parametrize(
    "where",
    ["notes.txt", "onnx/fp32/notes.txt", "onnx/mine/notes.txt", "data/notes.txt", "checkpoint/notes.txt"],
)
def test_finetune_overwrite_keeps_a_run_holding_user_files(where: str, run: Path, tmp_path: Path) -> None:
    """finetune --overwrite of an edgefn run that holds a file of the user's is refused before training;
    the run and the file stay."""
    (run / where).parent.mkdir(parents=True, exist_ok=True)
    (run / where).write_text("the user's", encoding="utf-8")
    argv = ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(run), "--overwrite"]
    _refused(argv, tmp_path, "edgefn did not write")


def test_a_run_of_edgefn_files_only_has_no_foreign_entry(run: Path) -> None:
    """An exported run, with edgefn's temporary folders, holds nothing foreign; a user's file is named."""
    assert runs.foreign_entry(run) is None
    (run / runs.ONNX_DIR / ".fp32.tmp-abcd1234").mkdir()
    assert runs.foreign_entry(run) is None
    (run / "notes.txt").write_text("x", encoding="utf-8")
    assert runs.foreign_entry(run) == run / "notes.txt"


@pytest.mark.parametrize("name", [".backup", ".git", ".fp32", ".plain-x"])
def test_export_keeps_hidden_folders_of_the_user_in_onnx(name: str, run: Path, tmp_path: Path) -> None:
    """export removes only its own temporary folders from RUN/onnx/, never a hidden folder of the user's
    (here export is refused right after that clean-up, by a changed checkpoint)."""
    (run / runs.ONNX_DIR / name).mkdir()
    (run / runs.ONNX_DIR / name / "keep.txt").write_text("the user's", encoding="utf-8")
    leftover = run / runs.ONNX_DIR / ".int8-dynamic.tmp-abcd1234"
    leftover.mkdir()
    (run / runs.CHECKPOINT / "config.json").write_text("{}", encoding="utf-8")
    code, out = _invoke(["export", "--run-dir", str(run), "--quantize", "int8-dynamic"])
    assert code == 2 and len(_error_lines(out)) == 1, out
    assert (run / runs.ONNX_DIR / name / "keep.txt").read_text(encoding="utf-8") == "the user's"
    assert not leftover.exists()


@pytest.mark.parametrize("inside", ["notes.txt", "mine/notes.txt"])
def test_export_overwrite_refuses_before_replacing_any_variant(
    inside: str, run: Path, tmp_path: Path
) -> None:
    """export --overwrite where one variant folder holds a user's file is refused before any variant (fp32
    first) is replaced: nothing changes."""
    path = run / VARIANT / inside
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("the user's", encoding="utf-8")
    argv = ["export", "--run-dir", str(run), "--quantize", "int8-dynamic", "--overwrite"]
    _refused(argv, tmp_path, "is not an edgefn variant folder")
