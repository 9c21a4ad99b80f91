"""One table of bad input across the stage commands: one-line message, exit code 2, nothing left behind."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli import main
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
        "--seed must be a non-negative integer",
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
        "--min-time must be between 0 and",
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
        "is the --input file",
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


@pytest.fixture(scope="module")
def exported_run(tiny_run_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run with fp32 and int8-dynamic variants (built once; copied per case)."""
    from edgefn.export import ExportConfig, export

    run = tmp_path_factory.mktemp("bad-input") / "run"
    shutil.copytree(tiny_run_factory("test-tiny-bert"), run)
    export(ExportConfig(run_dir=run, schemes=("int8-dynamic",), eval_samples=32, parity_samples=16))
    return run


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
    cmd = [sys.executable, "-m", "edgefn.cli", "bench", "--run-dir", str(run), "--variants", "fp32"]
    cmd += ["--min-time", "300", "--threads", "1", "--samples", "8", "--batch-sizes", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and not workers:  # wait for the fp32 worker (after the peak probe)
        workers = [
            c
            for c in parent.children(recursive=True)
            if "bench_worker" in " ".join(c.cmdline()) and c.is_running()
        ]
        time.sleep(0.5)
        if workers:
            time.sleep(3)  # let it load the model and start measuring
            workers = [w for w in workers if w.is_running()]
    assert workers, "no measuring worker started"
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == [], "a measuring worker outlived its parent"
    assert _snapshot(tmp_path) == before
