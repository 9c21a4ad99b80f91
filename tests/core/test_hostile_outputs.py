"""The output policy under hostile paths: nothing of the user's deleted or replaced, special files written
through, symlinks refused inside runs, only edgefn's own folders replaced, unfinished or busy runs refused."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.errors import EdgefnError
from edgefn.runs import RunFolder
from tests.cli.test_bad_input import _error_lines, _invoke, _snapshot

EVAL = ["--data", "sample", "--max-samples", "40", "--batch-size", "16"]


def _refused(argv: list[str], root: Path, message: str) -> None:
    """The command exits 2 with one Error: line holding `message`, and nothing under `root` changed."""
    before = _snapshot(root)
    code, out = _invoke(argv)
    lines = _error_lines(out)
    assert code == 2 and len(lines) == 1 and message in lines[0], out
    assert _snapshot(root) == before


def _user_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "keep.txt").write_text("the user's", encoding="utf-8")
    return path


# --- eval's output folder ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["user folder", "the run", "the current folder", "a file", "under a file"],
)
def test_eval_never_replaces_what_it_did_not_write(
    where: str, run: Path, tmp_path: Path, monkeypatch
) -> None:
    """eval --output naming a user's folder, the run, '.', a file or a path under a file is refused before
    scoring, and nothing changes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    target = {
        "user folder": str(_user_folder(tmp_path / "results")),
        "the run": str(run),
        "the current folder": ".",
        "a file": "file.txt",
        "under a file": "file.txt/eval",
    }[where]
    _refused(["eval", "--model", str(run), *EVAL, "--output", target], tmp_path, "--output")


def test_eval_replaces_its_own_folder_and_only_writes_its_outputs(run: Path, tmp_path: Path) -> None:
    """A second eval replaces the first one's folder; nothing but RUN/eval/ and RUN/ood.json changes."""
    before = {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith(("run/eval", "run/ood.json"))}
    for _ in range(2):
        code, out = _invoke(["eval", "--model", str(run), *EVAL])
        assert code == 0, out
    after = {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith(("run/eval", "run/ood.json"))}
    assert after == before
    assert sorted(p.name for p in (run / runs.EVAL_DIR).iterdir()) == ["sample"]
    assert not [p for p in (run / runs.EVAL_DIR).rglob(".*")]  # no temporary folder left


@pytest.mark.parametrize("name", ["...csv", "..csv"])
def test_eval_folder_names_from_data_files_stay_inside_eval(name: str, run: Path, tmp_path: Path) -> None:
    """A data file whose name would make the default folder '..' or '.' lands in a sanitised RUN/eval/<name>."""
    data_csv = tmp_path / name
    data_csv.write_text(
        "text,label\n" + "".join(f"text number {i},{i % 2}\n" for i in range(30)), encoding="utf-8"
    )
    before = _snapshot(run)
    code, out = _invoke(["eval", "--model", str(run), "--data", str(data_csv), "--batch-size", "16"])
    assert code == 0, out
    after = _snapshot(run)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed and all(
        k.startswith((f"{runs.EVAL_DIR}/", runs.OOD_FILE)) or k == runs.EVAL_DIR for k in changed
    )
    folders = [p.name for p in (run / runs.EVAL_DIR).iterdir()]
    assert len(folders) == 1 and not folders[0].startswith("."), folders


def test_eval_refuses_a_symlinked_eval_folder(run: Path, tmp_path: Path) -> None:
    """RUN/eval as a symlink to a folder outside the run is refused; the folder it points to is untouched."""
    outside = _user_folder(tmp_path / "outside")
    (run / runs.EVAL_DIR).symlink_to(outside)
    _refused(["eval", "--model", str(run), *EVAL], tmp_path, "symlink")


def test_eval_refuses_an_unfinished_or_busy_run(run: Path, tmp_path: Path) -> None:
    """eval of a run another command holds, or whose fine-tune did not finish, is refused before scoring."""
    with RunFolder(run).lock("export"):
        _refused(["eval", "--model", str(run), *EVAL], tmp_path / "run" / "data", "is in use")
    runs.write_run_manifest(run, runs.RUN_TRAINING)
    for argv in (
        ["eval", "--model", str(run), *EVAL],
        ["eval", "--model", str(run / "onnx" / "fp32"), *EVAL],
        ["predict", "--model", str(run / "onnx" / "fp32"), "a text"],
        ["package", "--run-dir", str(run), "--target", "mobile"],
    ):
        _refused(argv, tmp_path, "did not finish")


def test_eval_output_in_another_run_takes_that_runs_lock(run: Path, tmp_path: Path) -> None:
    """eval --output under another run's RUN/eval/ is refused while that run is busy, and written when free."""
    other = tmp_path / "other"
    shutil.copytree(run, other)
    target = other / runs.EVAL_DIR / "from-first"
    with RunFolder(other).lock("export"):
        _refused(["eval", "--model", str(run), *EVAL, "--output", str(target)], tmp_path, "is in use")
    code, out = _invoke(["eval", "--model", str(run), *EVAL, "--output", str(target)])
    assert code == 0, out
    assert json.loads((target / "metrics.json").read_text(encoding="utf-8"))["run_dir"] == str(run)


# --- output files ------------------------------------------------------------------------------------------

AUDIT = ["data", "audit", "sample", "--ngrams", "0", "--no-duplicates"]


def test_output_to_a_device_is_written_through(tmp_path: Path) -> None:
    """--output /dev/null stays the character device it was (never replaced by a regular file)."""
    code, out = _invoke([*AUDIT, "--output", "/dev/null"])
    assert code == 0, out
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_to_a_fifo(tmp_path: Path) -> None:
    """A FIFO nobody reads is refused at once (no hang); one with a reader receives the output, and stays a FIFO."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _refused([*AUDIT, "--output", str(fifo)], tmp_path, "no process is reading")
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as f:  # counts as a reader while it waits for the writer
            received.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.5)
    code, out = _invoke([*AUDIT, "--output", str(fifo)])
    reader.join(30)
    assert code == 0, out
    assert json.loads(received[0])["name"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_output_through_a_symlink_and_with_the_umask(tmp_path: Path) -> None:
    """A symlinked --output is written through to its target (the link stays); new files follow the umask."""
    target = tmp_path / "real.json"
    target.write_text("{}", encoding="utf-8")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    code, out = _invoke([*AUDIT, "--output", str(link)])
    assert code == 0, out
    assert link.is_symlink() and json.loads(target.read_text(encoding="utf-8"))["name"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # an existing file keeps its mode
    old = os.umask(0o027)
    try:
        code, out = _invoke([*AUDIT, "--output", str(tmp_path / "new.json")])
    finally:
        os.umask(old)
    assert code == 0, out
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640


def test_output_is_never_an_input(tmp_path: Path, monkeypatch) -> None:
    """However the output path spells the input file (itself, through '..' of a missing folder, a hard
    link), the command is refused and the input unchanged."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "news.csv"
    data.write_text("text,label\n" + "".join(f"text {i},{i % 2}\n" for i in range(20)), encoding="utf-8")
    os.link(data, tmp_path / "hard.csv")
    for spelled in ("news.csv", "nosuchdir/../news.csv", "hard.csv", str(data)):
        _refused(["data", "audit", "news.csv", "--ngrams", "0", "--output", spelled], tmp_path, "input file")


def test_predict_output_is_never_its_input(exported_tiny_run: Path, tmp_path: Path, monkeypatch) -> None:
    """predict --output nosuchdir/../in.txt is the input file: refused, input unchanged."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("a text\nanother\n", encoding="utf-8")
    model = str(exported_tiny_run / "onnx" / "fp32")
    for spelled in ("in.txt", "nosuchdir/../in.txt"):
        _refused(["predict", "--model", model, "--input", "in.txt", "--output", spelled], tmp_path, "input")


# --- the run folder: lock, symlinks, what counts as a run --------------------------------------------------


def test_a_symlinked_lock_file_is_refused(run: Path, tmp_path: Path) -> None:
    """RUN/.edgefn.lock as a symlink to a user's file: export refuses and the file is not truncated."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (run / runs.LOCK_FILE).symlink_to(victim)
    _refused(["export", "--run-dir", str(run), "--quantize", "none"], tmp_path, "symlink")
    assert victim.read_text(encoding="utf-8") == "precious"


@pytest.mark.parametrize("inside", ["bench", "onnx/fp32/tokenizer.json", "data"])
def test_symlinks_inside_a_run_are_refused_before_work(inside: str, run: Path, tmp_path: Path) -> None:
    """A symlink anywhere inside the run (its bench folder, a variant file, data/) is refused by the writing
    commands in one line, before any measuring; what it points to is untouched."""
    path = run / inside
    outside = tmp_path / "outside"
    if path.exists():
        shutil.move(str(path), str(outside))
    else:
        _user_folder(outside)
    path.symlink_to(outside)
    for argv in (
        ["bench", "--run-dir", str(run), "--min-time", "0.01", "--batch-sizes", "1", "--peers", "none"],
        ["export", "--run-dir", str(run), "--quantize", "int8-dynamic", "--overwrite"],
    ):
        _refused(argv, tmp_path, "symlink")


@pytest.mark.parametrize(
    "manifest",
    [{"tool": "x"}, {"edgefn_run": 1}, {"edgefn_run": "1", "status": "complete"}, [1, 2], None],
    ids=["foreign run.json", "no status", "string schema", "a list", "finetune_config only"],
)
def test_only_edgefn_runs_are_replaced(manifest, tmp_path: Path) -> None:
    """A folder with a run.json of another schema (or only a finetune_config.json) is the user's:
    finetune --overwrite refuses it and its files stay."""
    folder = _user_folder(tmp_path / "mine")
    if manifest is None:
        (folder / runs.FINETUNE_CONFIG).write_text('{"preset": "x"}', encoding="utf-8")
    else:
        (folder / runs.RUN_MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    argv = ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(folder), "--overwrite"]
    _refused(argv, tmp_path, "not an edgefn run folder")


@pytest.mark.parametrize("leftover", [".run.new", ".run.old"])
def test_user_folders_named_like_a_replacement_are_kept(leftover: str, run: Path, tmp_path: Path) -> None:
    """A user's folder named .RUN.new / .RUN.old is not removed by finetune --overwrite: refused, kept."""
    _user_folder(tmp_path / leftover)
    argv = ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(run), "--overwrite"]
    _refused(argv, tmp_path, "not a leftover of edgefn's")


def test_a_forged_variant_manifest_does_not_make_a_users_file_edgefns(run: Path, tmp_path: Path) -> None:
    """A user's folder under RUN/onnx/ with a hand-written export.json listing its file (any hash) is not a
    variant of edgefn's: export --overwrite and finetune --overwrite refuse, and the file stays."""
    folder = _user_folder(run / runs.ONNX_DIR / "int8-static")
    record = {"files_sha256": {"keep.txt": "0" * 64}}
    (folder / runs.EXPORT_MANIFEST).write_text(json.dumps(record), encoding="utf-8")
    for argv in (
        ["export", "--run-dir", str(run), "--quantize", "int8-static", "--overwrite"],
        ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(run), "--overwrite"],
    ):
        _refused(argv, tmp_path, "int8-static")


def test_bench_out_dir_of_the_user_is_refused(run: Path, tmp_path: Path) -> None:
    """bench --out-dir naming a user's folder (even one holding a report.json) is refused before measuring."""
    folder = _user_folder(tmp_path / "results")
    (folder / "report.json").write_text('{"results": []}', encoding="utf-8")
    from edgefn.bench.benchmark import BenchConfig, bench

    before = _snapshot(tmp_path)
    with pytest.raises(EdgefnError, match="not an edgefn bench folder"):
        bench(BenchConfig(run_dir=run, out_dir=folder, peers=()))
    assert _snapshot(tmp_path) == before


# --- the policy's pieces -----------------------------------------------------------------------------------


def test_safe_name_never_names_a_parent_or_hidden_folder() -> None:
    """Names made from user data are never '', '.', '..', hidden, or holding a separator."""
    for text in ("..", ".", "...", "../../etc", "a/b", ".hidden", "", "x" * 300):
        name = outputs.safe_name(text)
        assert name and not name.startswith(".") and "/" not in name and len(name) <= 80, (text, name)
    assert outputs.safe_name("constraint+isot") == "constraint+isot"


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path) -> None:
    """A write that fails midway leaves the previous file whole and no temporary file."""
    path = tmp_path / "out.txt"
    path.write_text("previous", encoding="utf-8")
    with pytest.raises(RuntimeError), outputs.open_output(path) as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert path.read_text(encoding="utf-8") == "previous" and [p.name for p in tmp_path.iterdir()] == [
        "out.txt"
    ]


def test_output_dir_refuses_a_folder_that_is_not_its_own(tmp_path: Path) -> None:
    """output_dir with overwrite replaces a folder only when `owned` recognises it."""
    folder = _user_folder(tmp_path / "out")
    refused = outputs.output_dir(folder, overwrite=True, owned=lambda p: False, kind="report")
    with pytest.raises(EdgefnError, match="not an edgefn report"), refused:
        pass
    with outputs.output_dir(folder, overwrite=True, owned=lambda p: True) as tmp:
        (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert [p.name for p in folder.iterdir()] == ["new.txt"]


def test_output_to_dev_stdout_through_a_pipe(tmp_path: Path) -> None:
    """--output /dev/stdout (a link to a pipe) is written through to the pipe, no file is created."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "edgefn.cli.commands", *AUDIT, "--json", "--output", "/dev/stdout"]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout[: proc.stdout.index("\n}\n") + 2]
    assert json.loads(first)["name"] and list(tmp_path.iterdir()) == []


def test_eval_output_into_an_empty_folder(run: Path, tmp_path: Path) -> None:
    """An existing empty folder is a valid eval --output (nothing in it to lose)."""
    (tmp_path / "empty").mkdir()
    code, out = _invoke(["eval", "--model", str(run), *EVAL, "--output", str(tmp_path / "empty")])
    assert code == 0, out
    assert RunFolder.is_eval_dir(tmp_path / "empty")
