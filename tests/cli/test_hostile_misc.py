"""Hostile input, part misc: a full disk and other OS faults (one line, exit 1), labels outside 0/1 refused
before any long work, --fake-label on a TRUE/FALSE column, and web packages from a relative run folder."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from edgefn import runs
from edgefn.bench import benchmark as bench
from edgefn.cli.commands import main
from edgefn.core.errors import EdgefnError, disk_faults
from edgefn.package import webbuild
from edgefn.runs import RunFolder, read_split_jsonl
from edgefn.train.trainer import TRAINER_STATE, drop_incomplete_checkpoints
from tests.cli.test_bad_input import _snapshot

UNDER_CI = os.environ.get("CI", "").lower() == "true"
PAGE = 4096


@pytest.fixture(scope="module")
def exported_run(exported_tiny_run: Path) -> Path:
    """The session's tiny run with fp32 and int8-dynamic variants (copied per case)."""
    return exported_tiny_run


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount a tmpfs of a given size (bytes) under tmp_path: a real full disk, unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            msg = f"cannot mount a tmpfs ({proc.stderr.strip() or proc.returncode})"
            if UNDER_CI:
                pytest.fail(f"{msg}: CI runs as root and must test a real full disk")
            pytest.skip(msg)
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _disk_bytes(folder: Path) -> int:
    """Bytes a folder takes on a tmpfs: each file rounded up to whole pages, plus a little slack."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(-(-p.stat().st_size // PAGE) * PAGE for p in files) + 16 * PAGE


def _weights(run: Path) -> int:
    return (RunFolder(run).checkpoint / "model.safetensors").stat().st_size


def _invoke(argv: list[str]) -> Result:
    result = CliRunner().invoke(main, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def _assert_one_error(result: Result, code: int, *words: str) -> str:
    """Exit `code`, exactly one Error: line holding every word, no traceback; returns the line."""
    lines = _error_lines(result.output)
    assert result.exit_code == code and len(lines) == 1, result.output
    assert all(w in lines[0] for w in words) and "Traceback" not in result.output, result.output
    return lines[0]


# --- environment faults: a full disk --------------------------------------------------------------------------


def test_export_on_a_full_disk_before_fp32_is_written(
    exported_run: Path, tiny_run_factory, small_disk
) -> None:
    """A disk too small for fp32: one line naming the folder and ENOSPC, exit 1, the run as it was."""
    source = tiny_run_factory("test-tiny-bert")
    disk = small_disk(_disk_bytes(source) + _weights(source) // 2)
    run = disk / "run"
    shutil.copytree(source, run)
    before = _snapshot(disk)
    result = _invoke(["export", "--run-dir", str(run), "--max-val-samples", "16", "--parity-samples", "8"])
    _assert_one_error(result, 1, f"writing {run}", "No space left on device (errno 28 ENOSPC)")
    assert _snapshot(disk) == before


@pytest.mark.parametrize("room", [0.75, 1.25, 1.6])
def test_export_on_a_full_disk_while_quantizing(exported_run: Path, small_disk, room: float) -> None:
    """fp32 kept, int8 cut short (ONNX Runtime reads back a truncated file: a protobuf DecodeError inside):
    one line naming int8-dynamic and ENOSPC, exit 1, nothing new in the run, no temporary folder left."""
    disk = small_disk(_disk_bytes(exported_run) + int(room * _weights(exported_run)))
    run = disk / "run"
    shutil.copytree(exported_run, run)
    shutil.rmtree(RunFolder(run).variant_dir("int8-dynamic"))
    before = _snapshot(disk)
    result = _invoke(["export", "--run-dir", str(run), "--max-val-samples", "32", "--parity-samples", "16"])
    _assert_one_error(result, 1, "int8-dynamic", "No space left on device")
    assert _snapshot(disk) == before


@pytest.mark.parametrize("megabytes", [1, 6])
def test_finetune_on_a_full_disk_leaves_nothing(megabytes: int, small_disk) -> None:
    """A run folder finetune created on a full disk (safetensors or torch's zip writer cut short) is removed
    again: one line, exit 1, the disk empty."""
    disk = small_disk(megabytes << 20)
    argv = ["finetune", "test-tiny-bert", "--data", "sample", "--init", "scratch", "--epochs", "1"]
    argv += ["--max-train-samples", "32", "--max-val-samples", "16", "--max-test-samples", "16"]
    result = _invoke([*argv, "--run-dir", str(disk / "new")])
    _assert_one_error(result, 1, f"writing {disk / 'new'}", "No space left on device (errno 28 ENOSPC)")
    assert _snapshot(disk) == {}


def test_checkpoints_cut_short_are_dropped(tmp_path: Path) -> None:
    """A Trainer checkpoint without a readable trainer_state.json (its last file) is never resumed from."""
    trainer = tmp_path / "trainer"
    for step, state in ((4, "{}"), (8, None), (12, '{"global_st')):
        folder = trainer / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"partial")
        if state is not None:
            (folder / TRAINER_STATE).write_text(state)
    drop_incomplete_checkpoints(trainer)
    assert sorted(p.name for p in trainer.iterdir()) == ["checkpoint-4"]


def test_library_errors_on_a_full_disk_become_enospc(small_disk) -> None:
    """An error that is no OSError, raised while the disk is full, is reported as ENOSPC naming the folder;
    the same error on a disk with room stays what it was."""
    disk = small_disk(4 << 20)
    with pytest.raises(ValueError, match="Wire format"), disk_faults(disk):
        raise ValueError("Wire format was corrupt")
    with pytest.raises(OSError) as caught, disk_faults(disk / "out"):
        with open(disk / "filler", "wb") as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * PAGE)
                f.flush()
        raise ValueError("Error parsing message with type 'onnx.ModelProto': Wire format was corrupt")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == f"writing {disk / 'out'}"


def test_output_policy_on_a_full_disk_names_the_file(small_disk) -> None:
    """A file written by the output policy onto a full disk: ENOSPC naming it, no temporary file left, the
    previous file kept."""
    from edgefn.core.outputs import write_text

    disk = small_disk(64 * PAGE)
    (disk / "report.md").write_text("the previous report")
    before = _snapshot(disk)
    with pytest.raises(OSError) as caught:
        write_text(disk / "report.md", "x" * (1 << 20))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == f"writing {disk / 'report.md'}"
    assert _snapshot(disk) == before


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "No space left on device (errno 28 ENOSPC)"),
        (errno.EDQUOT, "(errno 122 EDQUOT)"),
        (errno.EROFS, "Read-only file system (errno 30 EROFS)"),
        (errno.EIO, "Input/output error (errno 5 EIO)"),
        (errno.EPIPE, "Broken pipe (errno 32 EPIPE)"),
    ],
)
def test_os_faults_are_one_line_exit_1(code: int, words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any OSError reaching the CLI prints what failed and why, with the errno, on one line; exit 1."""
    import edgefn.data.catalog

    def fail() -> list[str]:
        raise OSError(code, os.strerror(code), "/mnt/data/file.csv")

    monkeypatch.setattr(edgefn.data.catalog, "list_datasets", fail)
    _assert_one_error(_invoke(["data", "list"]), 1, "Error: /mnt/data/file.csv: ", words)


def _cli(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "edgefn.cli.commands", *argv]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd, stderr=subprocess.PIPE, text=True, env=env, timeout=300, check=False, **kwargs)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("command", ["data list", "predict"])
def test_stdout_on_a_full_device(command: str, exported_run: Path) -> None:
    """`> /dev/full`: one line saying standard output failed (ENOSPC), exit 1, nothing at interpreter exit."""
    argv = command.split()
    if command == "predict":
        argv += ["--model", str(RunFolder(exported_run).variant_dir("fp32")), "a text", "another text"]
    with open("/dev/full", "w") as full:
        proc = _cli(argv, stdout=full)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and _error_lines(proc.stderr) == lines[-1:], proc.stderr
    assert "No space left on device (errno 28 ENOSPC)" in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


def test_a_closed_pipe_is_no_error() -> None:
    """`| head` closing the pipe early ends the command quietly (exit 1 at most), as Unix tools do."""
    cmd = f"{sys.executable} -m edgefn.cli.commands data list | head -c 1"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        ["bash", "-c", cmd], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


# --- labels outside 0/1 ----------------------------------------------------------------------------------------

BAD_LABELS = [2, 0.5, -1, "x", "1", True, None, float("nan"), [1]]


def _set_label(split: Path, line: int, label: object) -> None:
    rows = split.read_text(encoding="utf-8").splitlines()
    row = json.loads(rows[line - 1])
    row["label"] = label
    rows[line - 1] = json.dumps(row)
    split.write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.mark.parametrize("label", BAD_LABELS, ids=repr)
def test_bench_refuses_a_test_label_before_measuring(
    label: object, exported_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test split label that is not 0/1: one line naming file and line, exit 2, no worker, nothing written."""
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    split = RunFolder(run).split_file("test")
    _set_label(split, 5, label)

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured before the test split was checked")

    monkeypatch.setattr(bench, "in_fresh_process", no_measuring)
    monkeypatch.setattr(bench, "measure_targets", no_measuring)
    before, start = _snapshot(tmp_path), time.perf_counter()
    result = _invoke(["bench", "--run-dir", str(run)])
    _assert_one_error(result, 2, f"{split} line 5: label", "is not 0 or 1")
    assert time.perf_counter() - start < 60 and _snapshot(tmp_path) == before


@pytest.mark.parametrize("split_name", ["validation", "calibration"])
def test_export_refuses_a_bad_label_before_exporting(
    split_name: str, exported_run: Path, tmp_path: Path
) -> None:
    """A bad validation or calibration label stops export before fp32 is exported: exit 2, run unchanged."""
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    shutil.rmtree(RunFolder(run).onnx_dir)
    split = RunFolder(run).split_file(split_name)
    _set_label(split, 3, 0.5)
    before = _snapshot(tmp_path)
    result = _invoke(["export", "--run-dir", str(run)])
    _assert_one_error(result, 2, f"{split} line 3: label 0.5 is not 0 or 1")
    assert _snapshot(tmp_path) == before


def test_float_labels_in_a_split_read_as_integers(tmp_path: Path) -> None:
    """1.0 and 0.0 in a run split are the labels 1 and 0."""
    path = tmp_path / "test.jsonl"
    path.write_text('{"text": "a", "label": 1.0}\n{"text": "b", "label": 0.0}\n{"text": "c", "label": 1}\n')
    split = read_split_jsonl(path)
    assert split.labels == [1, 0, 1] and all(type(v) is int for v in split.labels)


def _labelled_csv(tmp_path: Path, labels: list[str], name: str = "news.csv") -> Path:
    path = tmp_path / name
    rows = [f"headline {i},body of article {i} about topic {i % 7},{v}" for i, v in enumerate(labels)]
    path.write_text("title,body,verdict\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad", "shown"), [("0.5", "'0.5'"), ("2", "'2'"), ("x", "'x'"), ("-1", "'-1'")], ids=str
)
def test_training_labels_outside_0_1_are_refused_with_the_row(bad: str, shown: str, tmp_path: Path) -> None:
    """`data inspect` / `finetune` on a label column holding 0.5, 2 or x: one line naming file and row."""
    labels = ["1", "0"] * 20
    labels[16] = bad
    path = _labelled_csv(tmp_path, labels)
    before = _snapshot(tmp_path)
    base = [str(path), "--text-col", "title", "--text-col", "body", "--label-col", "verdict"]
    for argv in (["data", "inspect", *base], ["finetune", "test-tiny-bert", "--data", *base[:1], *base[1:]]):
        if argv[0] == "finetune":
            argv += ["--init", "scratch", "--run-dir", str(tmp_path / "new")]
        line = _assert_one_error(_invoke(argv), 2, str(path), shown, "data row 17")
        assert "values found" in line
    assert _snapshot(tmp_path) == before


def test_float_training_labels_count_as_0_1(tmp_path: Path) -> None:
    """A label column of 1.0 / 0.0 is read as 1 (fake) / 0 (real)."""
    path = _labelled_csv(tmp_path, ["1.0", "0.0", "1.0", "1.0"] * 10)
    argv = ["data", "inspect", str(path), "--text-col", "title", "--label-col", "verdict", "--json"]
    result = _invoke(argv)
    assert result.exit_code == 0, result.output
    assert _fake_share(result.output) == pytest.approx(0.75, abs=0.05)


def _fake_share(output: str) -> float:
    report = json.loads(output[output.index("{") :])
    counts = {"fake": 0, "total": 0}
    for split in ("train", "validation", "test"):
        balance = report["per_split"][split]
        counts["fake"] += balance["fake"]
        counts["total"] += balance["rows"]
    return counts["fake"] / counts["total"]


# --- --fake-label on a TRUE/FALSE column -----------------------------------------------------------------------


@pytest.mark.parametrize("fake", ["FALSE", "false", "False", "0", "TRUE", "true", "1"])
def test_readme_fake_label_on_a_boolean_column(fake: str, tmp_path: Path) -> None:
    """The README's `data inspect my_news.csv ... --label-col verdict --fake-label FALSE` on a TRUE/FALSE
    column: the value matches in any case (and as 0/1), and picks the rows it names as fake."""
    path = _labelled_csv(tmp_path, ["TRUE", "FALSE", "FALSE", "FALSE"] * 10, "my_news.csv")
    argv = ["data", "inspect", str(path), "--text-col", "title", "--text-col", "body", "--label-col"]
    result = _invoke([*argv, "verdict", "--fake-label", fake, "--json"])
    assert result.exit_code == 0, result.output
    expected = 0.75 if fake.lower() in ("false", "0") else 0.25
    assert _fake_share(result.output) == pytest.approx(expected, abs=0.05)


def test_fake_label_matching_no_row_lists_the_values(tmp_path: Path) -> None:
    """A --fake-label no row holds is refused with the values the column holds, as the file spells them."""
    path = _labelled_csv(tmp_path, ["TRUE", "FALSE"] * 10)
    argv = ["data", "inspect", str(path), "--text-col", "title", "--label-col", "verdict"]
    result = _invoke([*argv, "--fake-label", "fake"])
    _assert_one_error(result, 2, "--fake-label 'fake' is not a label value; values found: 'False', 'True'")


def test_fake_label_matches_a_number_column(tmp_path: Path) -> None:
    """--fake-label 1 matches a column pandas reads as 1.0 / 0.0 (a blank label makes it float)."""
    path = _labelled_csv(tmp_path, ["1", "0", "0", "0"] * 10 + [""])
    argv = ["data", "inspect", str(path), "--text-col", "title", "--label-col", "verdict"]
    result = _invoke([*argv, "--fake-label", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert _fake_share(result.output) == pytest.approx(0.25, abs=0.05)


# --- web packages: relative run folders and the reasons a variant failed ---------------------------------------


def test_node_tools_get_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Node runs in the build folder: model paths, package folders, Chromium and the cache reach it absolute."""
    monkeypatch.chdir(tmp_path)
    jobs: list[dict] = []
    monkeypatch.setattr(webbuild, "run_tool", lambda build, script, job, timeout=0: jobs.append(job) or {})
    build = webbuild.WebBuild(tmp_path / "build", dev=True)
    webbuild.wasm_logits(build, {"fp32": Path("run/onnx/fp32/model.onnx")}, [])
    webbuild.transformers_js_predictions(build, Path("run/package/web"), "q8", [])
    (tmp_path / "chromium").write_text("")
    monkeypatch.setenv("EDGEFN_CHROMIUM", "chromium")
    webbuild.browser_runs(build, Path("run/package/web"), [], [])
    assert jobs[0]["models"]["fp32"] == str(tmp_path / "run/onnx/fp32/model.onnx")
    assert jobs[1]["folder"] == jobs[2]["folder"] == str(tmp_path / "run/package/web")
    assert jobs[2]["chromium"] == str(tmp_path / "chromium")
    monkeypatch.setenv("EDGEFN_WEB_CACHE", "cache")
    assert webbuild.cache_root() == tmp_path / "cache"


def test_no_variant_in_wasm_names_each_reason(
    exported_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When no variant runs in onnxruntime-web, the one-line error gives each variant's own reason."""
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    reasons = {"fp32": "ENOENT: no such file or directory", "int8-dynamic": "Unsupported op MatMulInteger"}
    monkeypatch.setattr(webbuild, "require_node", lambda: ("node", "npm"))
    monkeypatch.setattr(
        webbuild, "ensure_build", lambda dev=False, progress=None: webbuild.WebBuild(tmp_path, dev)
    )
    monkeypatch.setattr(
        webbuild, "wasm_logits", lambda b, models, i: {n: {"error": reasons[n]} for n in models}
    )
    before = _snapshot(tmp_path)
    result = _invoke(["package", "--target", "web", "--run-dir", str(run), "--check-samples", "4"])
    _assert_one_error(
        result, 2, "runs in onnxruntime-web's WASM backend", *(f"{n}: {r}" for n, r in reasons.items())
    )
    assert _snapshot(tmp_path) == before


def _real_build() -> None:
    """The real npm build; skipped where Node.js / npm or the registry is missing, except under CI."""
    try:
        webbuild.ensure_build()
    except EdgefnError as e:
        if UNDER_CI:
            pytest.fail(f"{e}: required under CI")
        pytest.skip(f"web build unavailable: {e}")


@pytest.mark.browser
def test_web_package_from_a_relative_run_folder(
    exported_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`package --target web --run-dir run` from the run's parent, and with the default run lookup (the
    README's way), checks every variant in real onnxruntime-web and writes the package."""
    _real_build()
    shutil.copytree(exported_run, tmp_path / "run")
    shutil.copytree(exported_run, tmp_path / "artifacts" / "run")
    monkeypatch.chdir(tmp_path)
    for extra in (["--run-dir", "run"], []):
        result = _invoke(["package", "--target", "web", "--check-samples", "8", *extra])
        assert result.exit_code == 0 and not _error_lines(result.output), result.output
        web = RunFolder(Path("run" if extra else "artifacts/run")).package_dir("web")
        manifest = json.loads((web / runs.PACKAGE_MANIFEST).read_text(encoding="utf-8"))
        assert [m["variant"] for m in manifest["models"]] == ["fp32", "int8-dynamic"]
        assert all(m["wasm_check"]["agreement"] >= 0.99 for m in manifest["models"])
