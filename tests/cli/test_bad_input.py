"""One table of bad input across the stage commands: one-line message, exit code 2, nothing left behind."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.runs import RunFolder, sha256_file


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256_file(p) if p.is_file() else "dir" for p in sorted(root.rglob("*"))
    }


def _csv(tmp: Path, body: str) -> str:
    path = tmp / "news.csv"
    path.write_text(body, encoding="utf-8")
    return str(path)


def _latin1(tmp: Path) -> str:
    path = tmp / "texts.txt"
    path.write_bytes("fine\nalso fine\ncaf\xe9 au lait\n".encode("latin-1"))
    return str(path)


def _corrupt(run: Path) -> None:
    with open(RunFolder(run).variant_dir("int8-dynamic") / runs.ONNX_FILE, "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")


def _user_folder(tmp: Path) -> str:
    """A folder of the user's that is no run folder."""
    folder = tmp / "v"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work", encoding="utf-8")
    return str(folder)


def _user_file(tmp: Path, name: str = "notes.txt") -> str:
    path = tmp / name
    path.write_text("first text\nsecond text\n", encoding="utf-8")
    return str(path)


def _previous_report(run: Path) -> None:
    """A bench report from an earlier run, which a bench where nothing ran must leave in place."""
    runs.write_json(RunFolder(run).bench_file("json"), {"results": [], "note": "the previous report"})


def _flip_labels(run: Path) -> None:
    """Swap id2label in the fp32 variant's config.json: every label would silently invert."""
    path = RunFolder(run).variant_dir("fp32") / runs.MODEL_CONFIG
    config = runs.read_json(path)
    config["id2label"] = {"0": "fake", "1": "real"}
    runs.write_json(path, config)


def _forget_hashes(run: Path) -> None:
    """Remove every recorded hash from the fp32 variant's manifest."""
    path = RunFolder(run).variant_dir("fp32") / runs.EXPORT_MANIFEST
    manifest = runs.read_json(path)
    del manifest["files_sha256"], manifest["model_sha256"]
    runs.write_json(path, manifest)


def _drop_weights(run: Path) -> None:
    (RunFolder(run).checkpoint / "model.safetensors").unlink()


def _unfinished(run: Path) -> None:
    """A fine-tune killed after writing its checkpoint, before its metrics: the manifest still says training."""
    runs.write_run_manifest(run, runs.RUN_TRAINING)
    RunFolder(run).metrics.unlink(missing_ok=True)


def _truncate(path: Path, keep: int = 300) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _truncated_split(run: Path) -> None:
    _truncate(RunFolder(run).split_file("validation"))


def _truncated_tokenizer(run: Path) -> None:
    _truncate(RunFolder(run).checkpoint / runs.TOKENIZER_FILE)


Case = tuple[str, Callable[[Path, Path], list[str]], str, Callable[[Path], None] | None]
CASES: list[Case] = [
    (
        "finetune unknown preset",
        lambda t, r: ["finetune", "bert-huge", "--data", "sample", "--run-dir", str(t / "new")],
        "known presets:",
        None,
    ),
    (
        "finetune missing path",
        lambda t, r: [
            "finetune",
            "test-tiny-bert",
            "--data",
            str(t / "nope.csv"),
            "--run-dir",
            str(t / "new"),
        ],
        "does not exist",
        None,
    ),
    (
        "finetune missing column",
        lambda t, r: [
            "finetune",
            "test-tiny-bert",
            "--data",
            _csv(t, "title,y\na,1\n"),
            "--text-col",
            "body",
            "--label-col",
            "y",
            "--run-dir",
            str(t / "new"),
        ],
        "title",
        None,
    ),
    (
        "finetune unmapped labels",
        lambda t, r: [
            "finetune",
            "test-tiny-bert",
            "--data",
            _csv(t, "text,y\na,fake\nb,real\nc,satire\n"),
            "--label-col",
            "y",
            "--run-dir",
            str(t / "new"),
        ],
        "satire",
        None,
    ),
    (
        "finetune empty after cleaning",
        lambda t, r: [
            "finetune",
            "test-tiny-bert",
            "--data",
            _csv(t, 'text,label\n" ",1\n"",0\n'),
            "--run-dir",
            str(t / "new"),
        ],
        "empty",
        None,
    ),
    (
        "finetune max length",
        lambda t, r: [
            "finetune",
            "test-tiny-bert",
            "--data",
            "sample",
            "--max-length",
            "1024",
            "--run-dir",
            str(t / "new"),
        ],
        "positions",
        None,
    ),
    (
        "finetune existing run",
        lambda t, r: ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(r)],
        "--overwrite",
        None,
    ),
    ("export missing run", lambda t, r: ["export", "--run-dir", str(t / "absent")], "not found", None),
    (
        "export unknown scheme",
        lambda t, r: ["export", "--run-dir", str(r), "--quantize", "int4"],
        "int8-dynamic",
        None,
    ),
    (
        "export incomplete checkpoint",
        lambda t, r: ["export", "--run-dir", str(r), "--overwrite"],
        "model.safetensors",
        _drop_weights,
    ),
    (
        "export existing variant",
        lambda t, r: ["export", "--run-dir", str(r), "--quantize", "int8"],
        "--overwrite",
        None,
    ),
    (
        "bench bad batch sizes",
        lambda t, r: ["bench", "--run-dir", str(r), "--batch-sizes", "1,x"],
        "--batch-sizes",
        None,
    ),
    ("bench zero batch", lambda t, r: ["bench", "--run-dir", str(r), "--batch-sizes", "0"], "positive", None),
    (
        "bench corrupted variant",
        lambda t, r: ["bench", "--run-dir", str(r), "--min-time", "0.01"],
        "hash",
        _corrupt,
    ),
    (
        "run bad batch sizes",
        lambda t, r: [
            "run",
            "test-tiny-bert",
            "--data",
            "sample",
            "--batch-sizes",
            "8,-1",
            "--run-dir",
            str(t / "new"),
        ],
        "--batch-sizes",
        None,
    ),
    (
        "predict missing model",
        lambda t, r: ["predict", "--model", str(t / "absent"), "hello"],
        "absent",
        None,
    ),
    (
        "predict non-utf8 input",
        lambda t, r: [
            "predict",
            "--model",
            str(RunFolder(r).variant_dir("fp32")),
            "--input",
            _latin1(t),
            "--output",
            str(t / "out.jsonl"),
        ],
        "line 3",
        None,
    ),
    (
        "predict csv missing column",
        lambda t, r: [
            "predict",
            "--model",
            str(RunFolder(r).variant_dir("fp32")),
            "--input",
            _csv(t, "title\nhello\n"),
            "--column",
            "text",
            "--output",
            str(t / "out.jsonl"),
        ],
        "title",
        None,
    ),
    (
        "predict corrupted variant",
        lambda t, r: ["predict", "--model", str(RunFolder(r).variant_dir("int8-dynamic")), "hello"],
        "hash",
        _corrupt,
    ),
    ("data inspect unknown", lambda t, r: ["data", "inspect", "fakenewsnet"], "welfake", None),
    (
        "predict flipped id2label",
        lambda t, r: ["predict", "--model", str(RunFolder(r).variant_dir("fp32")), "hello"],
        "config.json does not match the hash",
        _flip_labels,
    ),
    (
        "predict manifest without hashes",
        lambda t, r: ["predict", "--model", str(RunFolder(r).variant_dir("fp32")), "hello"],
        "records no hash of model.onnx, config.json, tokenizer.json",
        _forget_hashes,
    ),
    (
        "finetune --overwrite on a folder that is no run",
        lambda t, r: [
            "finetune",
            "test-tiny-bert",
            "--data",
            "sample",
            "--run-dir",
            _user_folder(t),
            "--overwrite",
        ],
        "is not an edgefn run folder",
        None,
    ),
    (
        "finetune --run-dir is a file",
        lambda t, r: ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", _user_file(t)],
        "is a file",
        None,
    ),
    (
        "finetune negative seed",
        lambda t, r: [
            "finetune",
            "test-tiny-bert",
            "--data",
            "sample",
            "--seed",
            "-1",
            "--run-dir",
            str(t / "new"),
        ],
        "--seed: must be a non-negative integer",
        None,
    ),
    (
        "bench cuda on a CPU-only machine keeps the previous report",
        lambda t, r: ["bench", "--run-dir", str(r), "--providers", "cuda", "--variants", "fp32"],
        "nothing to measure",
        _previous_report,
    ),
    (
        "bench more threads than cores",
        lambda t, r: ["bench", "--run-dir", str(r), "--threads", "999"],
        "logical cores",
        None,
    ),
    (
        "bench infinite min-time",
        lambda t, r: ["bench", "--run-dir", str(r), "--min-time", "inf"],
        "--min-time: must be between 0 and",
        None,
    ),
    (
        "predict more threads than cores",
        lambda t, r: ["predict", "--model", str(RunFolder(r).variant_dir("fp32")), "--threads", "999", "hi"],
        "logical cores",
        None,
    ),
    (
        "predict --output is the --input",
        lambda t, r: [
            "predict",
            "--model",
            str(RunFolder(r).variant_dir("fp32")),
            "--input",
            _user_file(t, "in.txt"),
            "--output",
            str(t / "in.txt"),
        ],
        "is the input file",
        None,
    ),
    (
        "predict --output is a folder",
        lambda t, r: [
            "predict",
            "--model",
            str(RunFolder(r).variant_dir("fp32")),
            "hello",
            "--output",
            str(t),
        ],
        "is a folder",
        None,
    ),
]


_NEW = ["--data", "sample", "--run-dir"]  # finetune / run arguments before a new run folder
CASES += [
    (
        "finetune --run-dir under a file",
        lambda t, r: ["finetune", "test-tiny-bert", *_NEW, str(Path(_user_file(t)) / "run")],
        "which is a file",
        None,
    ),
    (
        "finetune seed -5",
        lambda t, r: ["finetune", "test-tiny-bert", "--seed", "-5", *_NEW, str(t / "new")],
        "--seed: must be a non-negative integer",
        None,
    ),
    ("data inspect seed -5", lambda t, r: ["data", "inspect", "sample", "--seed", "-5"], "--seed", None),
    (
        "finetune max-length 1",
        lambda t, r: ["finetune", "test-tiny-bert", "--max-length", "1", *_NEW, str(t / "new")],
        "leaves no room for text",
        None,
    ),
    (
        "export opset 999",
        lambda t, r: ["export", "--run-dir", str(r), "--opset", "999"],
        "--opset: must be",
        None,
    ),
    (
        "export truncated data/validation.jsonl",
        lambda t, r: ["export", "--run-dir", str(r), "--overwrite"],
        "validation.jsonl line",
        _truncated_split,
    ),
    (
        "export truncated tokenizer.json",
        lambda t, r: ["export", "--run-dir", str(r), "--overwrite"],
        "checkpoint/tokenizer.json does not match the hash in",
        _truncated_tokenizer,
    ),
    (
        "export a fine-tune killed after its checkpoint",
        lambda t, r: ["export", "--run-dir", str(r), "--overwrite"],
        "did not finish",
        _unfinished,
    ),
    (
        "bench a fine-tune killed after its checkpoint",
        lambda t, r: ["bench", "--run-dir", str(r)],
        "did not finish",
        _unfinished,
    ),
    (
        "data inspect --tokenizer /nope",
        lambda t, r: ["data", "inspect", "sample", "--tokenizer", "/nope"],
        "cannot load the tokenizer /nope",
        None,
    ),
    ("click usage error", lambda t, r: ["bench", "--no-such-option"], "No such option", None),
    ("click missing argument", lambda t, r: ["finetune"], "Missing argument", None),
    (
        "run --max-length over the model's positions, before training",
        lambda t, r: ["run", "test-tiny-bert", "--max-length", "600", *_NEW, str(t / "new")],
        "--max-length: 600 is over the model's 512 positions",
        None,
    ),
    (
        "run batch sizes beyond memory, before training",
        lambda t, r: ["run", "test-tiny-bert", "--batch-sizes", "1,2000000", *_NEW, str(t / "new")],
        "GB of activations",
        None,
    ),
    (
        "bench batch sizes beyond memory",
        lambda t, r: ["bench", "--run-dir", str(r), "--batch-sizes", "2000000"],
        "GB of activations",
        None,
    ),
    (
        "run on an unfinished run does not suggest --resume (run has none)",
        lambda t, r: ["run", "test-tiny-bert", *_NEW, str(r)],
        "an unfinished run with different settings; use --overwrite",
        _unfinished,
    ),
    (
        "demo --run-dir on a folder that is no run",
        lambda t, r: ["demo", "--run-dir", _user_folder(t)],
        "is not an edgefn run folder",
        None,
    ),
    (
        "finetune on an unfinished run suggests --resume",
        lambda t, r: ["finetune", "test-tiny-bert", *_NEW, str(r)],
        "use --resume to continue it",
        _unfinished,
    ),
]


@pytest.fixture(scope="module")
def exported_run(exported_tiny_run: Path) -> Path:
    """The session's tiny run with fp32 and int8-dynamic variants (copied per case)."""
    return exported_tiny_run


@pytest.mark.parametrize(("name", "args", "message", "damage"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_table(name: str, args, message: str, damage, exported_run: Path, tmp_path: Path) -> None:
    """Each case: exit code 2, one line naming the problem, and the folders exactly as they were."""
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    if damage is not None:
        damage(run)
    argv = args(tmp_path, run)
    before = _snapshot(tmp_path)
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, f"{name}: {result.output}"
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and message in lines[0], f"{name}: {result.output}"
    assert _snapshot(tmp_path) == before, f"{name} left files behind"


def test_non_run_folder_refusal_suggests_no_overwrite(tmp_path: Path) -> None:
    """Refusing a folder that is no run never suggests --overwrite (which would delete the user's files)."""
    for extra in ([], ["--overwrite"]):
        folder = tmp_path / f"v{len(extra)}"
        folder.mkdir()
        (folder / "thesis.txt").write_text("years of work", encoding="utf-8")
        argv = ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(folder), *extra]
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 2 and "--overwrite" not in result.output, result.output
        assert (folder / "thesis.txt").read_text(encoding="utf-8") == "years of work"


def _invoke(argv: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, argv)
    return result.exit_code, result.output


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def test_usage_errors_are_one_line() -> None:
    """A click usage error prints one line naming the help to read, no usage block."""
    result = CliRunner().invoke(main, ["bench", "--batch-size", "8"], prog_name="edgefn")
    out = result.output
    assert result.exit_code == 2 and "Usage:" not in out and len(out.strip().splitlines()) == 1, out
    assert (
        "No such option '--batch-size'. Did you mean '--batch-sizes'?" in out and "edgefn bench --help" in out
    )


def test_closed_stdin_is_one_line(exported_run: Path) -> None:
    """`edgefn predict` with its standard input closed says so in one line (exit 2)."""
    import os
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "edgefn.cli.commands",
        "predict",
        "--model",
        str(RunFolder(exported_run).variant_dir("fp32")),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=lambda: os.close(0), timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert _error_lines(proc.stderr) == [
        "Error: no texts: give them as arguments, --input FILE, or on standard input (it is closed)"
    ]


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("metrics", "[1, 2]"),
        ("metrics", '{"test": 5, "data": [], "parameters": "x"}'),
        ("finetune_config", '"a string"'),
        ("manifest", '{"status": 5}'),
        ("bench", '{"results": 3}'),
        ("bench", '{"results": [{"measurements": 7, "accuracy": {"delta": 1}}]}'),
        ("variant", "[]"),
        ("metrics", "{not json"),
    ],
)
def test_show_survives_odd_json(file: str, content: str, exported_run: Path, tmp_path: Path) -> None:
    """`edgefn show` reads a run whose files have unexpected shapes without a traceback (exit 0)."""
    run = RunFolder(tmp_path / "run")
    shutil.copytree(exported_run, run.path)
    path = {
        "metrics": run.metrics,
        "finetune_config": run.finetune_config,
        "manifest": run.manifest,
        "bench": run.bench_file("json"),
        "variant": run.variant_dir("fp32") / runs.EXPORT_MANIFEST,
    }[file]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    for extra in ([], ["--json"]):
        code, out = _invoke(["show", "--run-dir", str(run.path), *extra])
        assert code == 0, out
        assert "fp32" in out  # the rest of the run still shows


def test_resume_of_a_finished_run_says_so(tmp_path: Path) -> None:
    """--resume on a finished run trains nothing: it says the run is finished and leaves it as it was."""
    argv = [
        "finetune",
        "test-tiny-bert",
        "--data",
        "sample",
        "--epochs",
        "1",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    assert _invoke(argv)[0] == 0
    before = _snapshot(tmp_path)
    code, out = _invoke([*argv, "--resume"])
    assert code == 0 and "is a finished run: nothing to resume" in out, out
    assert "test accuracy" in out  # the finished run's numbers
    assert _snapshot(tmp_path) == before


def test_a_second_writer_is_refused_by_the_lock(exported_run: Path, tmp_path: Path) -> None:
    """While one command holds a run's lock, export, bench and finetune --overwrite on it are refused."""
    run = RunFolder(tmp_path / "run")
    shutil.copytree(exported_run, run.path)
    before = _snapshot(tmp_path)
    with run.lock("finetune"):
        for argv in (
            ["export", "--run-dir", str(run.path), "--overwrite"],
            ["bench", "--run-dir", str(run.path)],
            ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(run.path), "--overwrite"],
        ):
            code, out = _invoke(argv)
            assert code == 2 and "is in use (pid" in out and "edgefn finetune" in out, (argv, out)
    assert not (run.path / runs.LOCK_FILE).exists()  # released and removed
    assert _snapshot(tmp_path) == before


@contextlib.contextmanager
def _read_only(folder: Path):
    """Make `folder` unwritable, also for root (chattr +i), and writable again afterwards."""
    import subprocess

    immutable = False
    folder.chmod(0o555)
    try:
        probe = folder / ".probe"
        try:
            probe.touch()
            probe.unlink()
            writable = True
        except OSError:
            writable = False
        if writable:  # root ignores modes
            if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
                pytest.skip("cannot make a folder read-only here (root without chattr)")
            immutable = True
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


@pytest.mark.parametrize(
    "argv",
    [
        lambda r: ["export", "--run-dir", str(r), "--overwrite", "--quantize", "none"],
        lambda r: ["bench", "--run-dir", str(r), "--min-time", "0.01", "--batch-sizes", "1"],
        lambda r: ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(r), "--overwrite"],
    ],
    ids=["export", "bench", "finetune --overwrite"],
)
def test_read_only_run_folder_is_refused_before_work(argv, exported_run: Path, tmp_path: Path) -> None:
    """A run folder that cannot be written is refused in one line before any training or measuring."""
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    before = _snapshot(tmp_path)
    with _read_only(run):
        code, out = _invoke(argv(run))
    assert code == 2 and _error_lines(out) and "cannot write to" in _error_lines(out)[0], out
    assert _snapshot(tmp_path) == before


def test_overwrite_builds_beside_and_a_kill_keeps_the_previous_run(
    exported_run: Path, tmp_path: Path
) -> None:
    """finetune --overwrite killed mid-training (SIGTERM) leaves the previous run whole and no new folder;
    uninterrupted, it swaps the new run in at the end."""
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    before = _snapshot(tmp_path)
    cmd = [sys.executable, "-m", "edgefn.cli.commands", "finetune", "test-tiny-bert", "--data", "sample"]
    cmd += ["--run-dir", str(run), "--overwrite", "--epochs", "20"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    staging = tmp_path / ".run.new" / "trainer"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not any(staging.glob("checkpoint-*")) and proc.poll() is None:
        time.sleep(0.5)  # wait for the first epoch's trainer checkpoint: training is well under way
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.terminate()
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert _snapshot(tmp_path) == before  # the previous run, variants and all, and nothing else
    code, out = _invoke(
        ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(run), "--overwrite"]
    )
    assert code == 0, out
    assert RunFolder(run).status() == "complete" and RunFolder(run).variants() == []  # the new run, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_export_rerun_after_a_kill_needs_no_overwrite(tiny_run_factory, tmp_path: Path) -> None:
    """An export killed outright (SIGKILL) after its first variant is finished by the same command re-run:
    finished variants are kept, temporary folders removed, no --overwrite needed."""
    import signal
    import subprocess
    import sys
    import time

    run = RunFolder(tmp_path / "run")
    shutil.copytree(tiny_run_factory("test-tiny-bert"), run.path)
    argv = [
        "export",
        "--run-dir",
        str(run.path),
        "--quantize",
        "int8-dynamic,int8-static",
        "--max-val-samples",
        "32",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgefn.cli.commands", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (run.variant_dir("fp32") / runs.EXPORT_MANIFEST).exists():
        time.sleep(0.2)
    time.sleep(1.0)  # into the int8 schemes
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    fp32 = runs.sha256_file(run.variant_dir("fp32") / runs.ONNX_FILE)
    code, out = _invoke(argv)
    assert code == 0, out
    assert "fp32: kept" in out
    assert run.variant_names() == ["fp32", "int8-dynamic", "int8-static"]
    assert runs.sha256_file(run.variant_dir("fp32") / runs.ONNX_FILE) == fp32
    assert [p.name for p in run.onnx_dir.iterdir() if p.name.startswith(".")] == []
    assert not (run.path / runs.LOCK_FILE).exists()


def _is_bench_worker(proc) -> bool:
    import psutil

    try:
        return "edgefn.bench.worker" in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone, or a zombie, between listing and asking
        return False


def test_sigterm_stops_bench_and_its_worker(exported_run: Path, tmp_path: Path) -> None:
    """SIGTERM acts like Ctrl-C: the measuring worker dies with its parent and no folder is left half-written."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    before = _snapshot(tmp_path)
    cmd = [sys.executable, "-m", "edgefn.cli.commands", "bench", "--run-dir", str(run), "--variants", "fp32"]
    cmd += [
        "--min-time",
        "300",
        "--threads",
        "1",
        "--max-test-samples",
        "8",
        "--batch-sizes",
        "1",
        "--peers",
        "none",
    ]
    cmd += ["--rounds", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and not workers:  # wait for the fp32 worker (after the peak probe)
        workers = [c for c in parent.children(recursive=True) if _is_bench_worker(c)]
        time.sleep(0.5)
        if workers:
            time.sleep(3)  # let it load the model and start measuring
            workers = [w for w in workers if _is_bench_worker(w)]
    assert workers, "no measuring worker started"
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == [], "a measuring worker outlived its parent"
    assert _snapshot(tmp_path) == before
