"""`edgefn show`: the stages, what to ship, every bench row, the evals and the packages, within 120 columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.cli.show import describe_run, format_run
from edgefn.runs import RunFolder
from tests.bench.test_writers import TARGETS, realistic_report, write_bench_files


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


def _write_variant(folder: Path, manifest: dict, tamper: bool = False) -> None:
    """A variant folder with a fake model, config and tokenizer whose hashes are recorded (the model then
    changed when tamper)."""
    folder.mkdir(parents=True)
    (folder / runs.ONNX_FILE).write_bytes(b"onnx bytes " + folder.name.encode())
    (folder / runs.MODEL_CONFIG).write_text("{}", encoding="utf-8")
    (folder / runs.TOKENIZER_FILE).write_text("{}", encoding="utf-8")
    runs.write_json(folder / runs.EXPORT_MANIFEST, {**runs.model_record(folder), **manifest})
    if tamper:
        (folder / runs.ONNX_FILE).write_bytes(b"changed")


WARMUP_WARNING = "warm-up 100 steps >= training 94 steps (1500 rows / batch 16 x 1 epoch): lower --warmup-steps or train longer"


def _finetuned(run: Path) -> None:
    (run / runs.CHECKPOINT).mkdir(parents=True)
    runs.write_run_manifest(run, runs.RUN_COMPLETE)
    runs.write_json(
        run / runs.FINETUNE_CONFIG,
        {"preset": "minilm", "init": "pretrained", "max_length": 256, "data": "constraint"},
    )
    runs.write_json(
        run / runs.METRICS,
        {
            "test": {"accuracy": 0.93142, "f1_weighted": 0.93011, "n": 2140},
            "data": {"name": "constraint", "fingerprint": "abc123"},
            "warnings": [WARMUP_WARNING],
        },
    )


def _variants(run: Path) -> None:
    onnx = run / runs.ONNX_DIR
    _write_variant(
        onnx / "fp32",
        {
            "variant": "fp32",
            "scheme": "none",
            "size_mb": 90.87,
            "validation_accuracy": 0.9355,
            "accuracy_delta_vs_fp32": 0.0,
        },
    )
    _write_variant(
        onnx / "int8-dynamic",
        {
            "variant": "int8-dynamic",
            "scheme": "int8-dynamic",
            "size_mb": 23.1,
            "validation_accuracy": 0.9284,
            "accuracy_delta_vs_fp32": -0.0071,
        },
        tamper=True,
    )
    (onnx / "fp16").mkdir()


def _eval(run: Path, folder: str, data: str, model: str, accuracy: float) -> None:
    out = RunFolder(run).eval_root / folder
    out.mkdir(parents=True)
    runs.write_json(
        RunFolder.eval_file(out, "metrics"),
        {
            "edgefn_eval": 1,
            "model": model,
            "model_path": str(run),
            "run_dir": str(run),
            "trained_on": "constraint",
            "data": {"name": data, "split": "test", "rows_scored": 1200},
            "metrics": {"accuracy": accuracy, "f1_macro": accuracy - 0.01, "roc_auc": 0.7, "n": 1200},
            "in_domain": {"accuracy": 0.9314},
            "ood": {"score": "energy", "auroc": 0.812},
        },
    )


def _package(run: Path, target: str, models: list[dict], **extra) -> None:
    folder = run / runs.PACKAGE_DIR / target
    folder.mkdir(parents=True)
    runs.write_json(
        folder / runs.PACKAGE_MANIFEST, {"edgefn_package": 1, "target": target, "models": models, **extra}
    )


@pytest.fixture()
def full_run(tmp_path: Path) -> Path:
    """A run folder with every stage's output: finetune, export, a bench with peers and OpenVINO rows,
    an in-domain and an out-of-domain eval, a web and a mobile package (small fake files, no model)."""
    run = tmp_path / "minilm-constraint"
    _finetuned(run)
    _variants(run)
    write_bench_files(realistic_report(str(run)), RunFolder(run).bench_dir)
    _eval(run, "constraint", "constraint", "pytorch", 0.9314)
    _eval(run, "liar-int8-dynamic", "liar", "int8-dynamic", 0.5512)
    check = {"agreement": 0.99, "samples": 100}
    _package(
        run,
        "web",
        [
            {
                "file": "onnx/model.onnx",
                "variant": "fp32",
                "dtype": "fp32",
                "size_mb": 90.9,
                "wasm_check": check,
            },
            {"file": "onnx/model_quantized.onnx", "variant": "int8-dynamic", "dtype": "q8", "size_mb": 23.1},
        ],
        download_mb={"fp32": 91.4, "q8": 23.6},
    )
    _package(
        run,
        "mobile",
        [
            {
                "file": "int8-dynamic/model.ort",
                "variant": "int8-dynamic",
                "size_mb": 23.2,
                "check_against_onnx": check,
            }
        ],
    )
    return run


def test_show_answers_what_to_ship(full_run):
    """show names what to ship first and last, lists every stage, every bench target (peers and OpenVINO
    rows included, none capped), the evals in and out of domain and the packaged models; deltas in points;
    no line over 120 characters but the run's path; no Python repr."""
    result = run_cli("show", "--run-dir", str(full_run))
    assert result.exit_code == 0, result.output
    text = result.stdout
    lines = text.splitlines()
    assert lines[0] == f"run {full_run}"
    assert max(len(line) for line in lines[1:]) <= 120, max(lines[1:], key=len)
    warned = " ".join(line.strip() for line in text.split("warning: ", 1)[1].splitlines()[:2])
    assert warned.startswith(WARMUP_WARNING)  # the run's finetune warnings, folded at 120 columns
    assert (
        lines[1]
        == "stages: finetune done; export 2 variants; bench 78 rows; eval 2 results; package mobile, web"
    )
    ship = [
        "ship: ov-int8 (openvino cpu bf16) at fixed b1, b8, b32; real b1, b8",
        "      ov-bf16 (openvino cpu bf16) at real b32",
    ]
    assert lines[2:4] == ship and lines[-2:] == ship
    assert not any(c in text for c in "{}[]") and "throughput_samples_per_s" not in text

    # export: points, labelled (-0.0071 is -0.71 points)
    section = text[text.index("\nexport") : text.index("\nbench")].splitlines()
    export = {line.split()[0]: line.split() for line in section if line.startswith("  ")}
    assert "Δacc pts" in text
    assert export["fp32"][1:] == ["90.87", "none", "0.9355", "+0.00", "OK"]
    assert export["int8-dynamic"][1:] == ["23.10", "int8-dynamic", "0.9284", "-0.71", "MISMATCH"]
    assert "incomplete" in " ".join(export["fp16"])

    # bench: all 13 targets, all six cases; the report.md is named for the full detail
    bench = text[text.index("\nbench: ") : text.index("\neval")]
    for variant, *_ in TARGETS:
        assert any(line.split()[:1] in ([variant], [f"{variant}*"]) for line in bench.splitlines()), variant
    assert "fp16 on CUDAExecutionProvider: unavailable: no GPU here" in bench
    for case in ("fixed b1", "real b1", "fixed b8", "real b8", "fixed b32", "real b32"):
        assert case in bench
    static = next(line for line in bench.splitlines() if line.split()[:1] == ["int8-static"])
    assert "-1.00" in static.split()
    assert str(full_run / "bench" / "report.md") in bench

    # evals: one row per eval folder, in- and out-of-domain
    evals = text[text.index("\neval") : text.index("\npackage")].splitlines()
    liar = next(line for line in evals if line.split()[:1] == ["liar"]).split()
    assert liar[:5] == ["liar", "out-of-domain", "int8-dynamic", "test", "1200"]
    assert liar[5] == "0.5512" and liar[-1] == "0.812"
    own = next(line for line in evals if line.split()[:1] == ["constraint"]).split()
    assert own[:3] == ["constraint", "in-domain", "pytorch"]

    # packages: each packaged model, its check, the page's download
    packages = text[text.index("\npackage") : text.index("\nwhat to ship")]
    assert [line.split()[:3] for line in packages.splitlines() if line.startswith(("  web", "  mobile"))][
        :3
    ] == [
        ["mobile", "int8-dynamic/model.ort", "int8-dynamic"],
        ["web", "onnx/model.onnx", "fp32"],
        ["web", "onnx/model_quantized.onnx", "int8-dynamic"],
    ]
    assert "99.0%" in packages and "web page download: fp32 91.4 MB, q8 23.6 MB" in packages

    # the verdict table: every case, the same-file mark, int8-static left out in points
    verdict = text[text.index("\nwhat to ship") :]
    assert "= peer openvino-int8" in verdict and "int8-static (-1.00 pts)" in verdict

    d = json.loads(run_cli("show", "--run-dir", str(full_run), "--json").stdout)
    assert d["stages"]["bench"] == "78 rows" and d["ship"] == ship
    assert d["finetune"]["test_accuracy"] == 0.93142 and d["finetune"]["data_fingerprint"] == "abc123"
    assert [(v["variant"], v["hash"]) for v in d["variants"]] == [
        ("fp32", "OK"),
        ("int8-dynamic", "MISMATCH"),
    ]
    assert d["incomplete_variants"] == ["fp16"]
    assert len(d["bench"]["targets"]) == 13 and d["bench"]["verdict"][0]["winner"]["variant"] == "ov-int8"
    static = next(t for t in d["bench"]["targets"] if t["variant"] == "int8-static")
    assert static["accuracy_delta_pts"] == pytest.approx(-1.0)
    assert [(e["data"], e["domain"]) for e in d["evals"]] == [
        ("constraint", "in-domain"),
        ("liar", "out-of-domain"),
    ]
    assert [p["target"] for p in d["packages"]] == ["mobile", "web"]


def test_show_before_bench_says_what_to_run(tmp_path):
    """A run with a checkpoint and variants but no bench: not run stages, and the bench command to run."""
    run = tmp_path / "run"
    _finetuned(run)
    _variants(run)
    text = run_cli("show", "--run-dir", str(run)).stdout
    lines = text.splitlines()
    assert (
        lines[1] == "stages: finetune done; export 2 variants; bench not run; eval not run; package not run"
    )
    assert lines[2] == f"ship: not decided yet: run `edgefn bench --run-dir {run}`"
    assert "bench: not run" in text and "eval: not run" in text and "package: not run" in text


def test_show_on_an_empty_folder_or_a_folder_of_runs_says_so(tmp_path):
    """An empty folder and a folder that is no run exit 2 with one line that says what it is; a folder
    holding runs names them and the command for one."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("show", "--run-dir", str(empty))
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"Error: {empty} is empty: make a run with `edgefn finetune` (or `edgefn demo`)"
    )
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    _finetuned(tmp_path / "runs" / "a")
    result = run_cli("show", "--run-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {tmp_path / 'runs'} is not a run folder but holds runs: a; "
        f"e.g. `edgefn show --run-dir {tmp_path / 'runs' / 'a'}`"
    )
    result = run_cli("show", "--run-dir", str(tmp_path))
    assert result.exit_code == 2 and "is not an edgefn run (no run.json)" in result.stderr


def test_show_on_missing_run_is_one_line_error(tmp_path):
    """`edgefn show` on a folder that does not exist exits 2 with one line."""
    result = run_cli("show", "--run-dir", str(tmp_path / "nope"))
    assert (
        result.exit_code == 2 and result.stderr.strip() == f"Error: run folder not found: {tmp_path / 'nope'}"
    )


def test_show_reads_old_or_partial_bench_reports(tmp_path):
    """report.csv alone (blank cells as missing), or a report.json of another shape without a verdict: show
    prints what they hold and says the verdict is missing, never fails."""
    bench = tmp_path / "run" / runs.BENCH_DIR
    bench.mkdir(parents=True)
    (bench / runs.BENCH_FILES["csv"]).write_text(
        "variant,provider,input_mode,batch_size,latency_p50_ms,accuracy\n"
        "fp32,CPUExecutionProvider,fixed,1,7.5,\nfp32,CPUExecutionProvider,fixed,32,3.1,0.91\n",
        encoding="utf-8",
    )
    d = describe_run(tmp_path / "run")
    assert d["finetune"] is None and d["variants"] == []
    assert d["bench"]["rows_total"] == 2 and d["bench"]["cases"] == ["fixed b1", "fixed b32"]
    (target,) = d["bench"]["targets"]
    assert target["p50_ms"] == {"fixed b1": 7.5, "fixed b32": 3.1} and target["accuracy"] == 0.91
    text = format_run(d)
    assert "finetune: not run" in text and "7.500" in text and "3.100" in text
    assert "ship: not decided: no verdict in bench/report.json" in text

    (bench / runs.BENCH_FILES["csv"]).unlink()
    runs.write_json(
        bench / runs.BENCH_FILES["json"],
        {"results": [{"variant": "x", "measurements": [7]}], "verdict": [{"winner": 1}]},
    )
    d = describe_run(tmp_path / "run")
    assert [t["variant"] for t in d["bench"]["targets"]] == ["x"]
    text = format_run(d)
    assert "verdict has an unexpected shape" in text


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"data": 3, "metrics": [1], "in_domain": "x", "ood": 5}',
        '{"data": {"name": {"a": 1}}}',
    ],
)
def test_show_survives_odd_eval_and_package_files(content: str, tmp_path: Path) -> None:
    """An eval metrics.json or a package manifest of another shape shows as what it holds (or as unreadable),
    never a traceback, and the rest of the run still shows."""
    run = tmp_path / "run"
    _finetuned(run)
    (RunFolder(run).eval_root / "odd").mkdir(parents=True)
    (RunFolder(run).eval_root / "odd" / runs.METRICS).write_text(content, encoding="utf-8")
    for target in ("web", "mobile"):
        (run / runs.PACKAGE_DIR / target).mkdir(parents=True)
    (run / runs.PACKAGE_DIR / "web" / runs.PACKAGE_MANIFEST).write_text(content, encoding="utf-8")
    (run / runs.PACKAGE_DIR / "mobile" / runs.PACKAGE_MANIFEST).write_text(
        '{"models": 7, "download_mb": {"q8": "big"}}', encoding="utf-8"
    )
    for extra in ([], ["--json"]):
        result = run_cli("show", "--run-dir", str(run), *extra)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        assert "0.9314" in result.stdout  # the fine-tune still shows
