"""The bench report as text: console tables within 120 columns, accuracy deltas in points, the verdict table."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgefn import runs
from edgefn.bench.measure import Latency
from edgefn.bench.report import (
    CSV_COLUMNS,
    Accuracy,
    BenchReport,
    Measurement,
    TargetResult,
    format_markdown,
    format_summary,
    report_rows,
)
from edgefn.bench.verdict import compute_verdict
from edgefn.bench.writers import CONSOLE_WIDTH, ship_lines, text_table, verdict_table

CPU = "CPUExecutionProvider"
OPENVINO = "openvino-cpu"
BATCHES = (1, 8, 32)
# (variant, provider, precision, peer, MB, accuracy, p50 ms at batch 1 fixed, model file)
TARGETS = (
    ("pytorch", "torch-cpu", None, False, 90.9, 0.9525, 18.8, None),
    ("fp32", CPU, None, False, 90.9, 0.9525, 10.9, "a"),
    ("int8-dynamic", CPU, None, False, 23.0, 0.9525, 5.9, "b"),
    ("int8-static", CPU, None, False, 23.0, 0.9425, 6.7, "c"),
    ("ov-bf16", OPENVINO, "bf16", False, 91.1, 0.9550, 3.2, "d"),
    ("ov-int8", OPENVINO, "bf16", False, 23.6, 0.9550, 3.0, "e"),
    ("pytorch-int8", "torch-cpu", None, True, 64.1, 0.9500, 9.9, None),
    ("ort-default", CPU, None, True, 23.0, 0.9525, 6.0, "b"),
    ("optimum-recipe", CPU, None, True, 23.0, 0.9500, 7.3, "f"),
    ("openvino-fp32", OPENVINO, "fp32", True, 91.1, 0.9525, 4.7, "g"),
    ("openvino-bf16", OPENVINO, "bf16", True, 91.1, 0.9550, 3.2, "d"),
    ("openvino-int8", OPENVINO, "bf16", True, 23.6, 0.9550, 3.0, "e"),
)


def realistic_report(run_dir: str = "artifacts/minilm-constraint") -> BenchReport:
    """A bench report of the shape a default bench on an OpenVINO machine writes: edgefn's variants, the
    PyTorch reference, six peers, OpenVINO rows with a precision, three batch sizes in both input modes, three
    interleaved rounds (one row flagged busy) and the verdict computed from it."""
    results = []
    for variant, provider, precision, peer, mb, acc, ms, fingerprint in TARGETS:
        r = TargetResult(
            variant,
            provider,
            variant,
            "ok",
            size_mb=mb,
            params=22_713_986,
            precision=precision,
            peer=peer,
            model_fingerprint=fingerprint,
        )
        r.accuracy = Accuracy(400, acc, acc, acc, acc, {}, 0.99, {"accuracy": acc - 0.9525})
        for batch in BATCHES:
            for mode, scale in (("fixed", 1.0), ("real", 0.4)):
                p50 = ms * scale / (1 + batch / 16)
                if variant in ("ov-bf16", "openvino-bf16") and (mode, batch) == ("real", 32):
                    p50 *= 0.8  # bf16 wins one case
                rounds = [p50 * 1.01, p50, p50 * 0.99]
                flags = ["other processes used 0.4 cores"] if variant == "ov-int8" and batch == 8 else []
                latency = Latency([p50 * batch] * 5, [batch] * 5)
                m = Measurement(mode, batch, latency, [128] * 5, 128.0, round_p50_ms=rounds, flags=flags)
                r.measurements.append(m)
        results.append(r)
    results.append(TargetResult("fp16", "CUDAExecutionProvider", "fp16", "unavailable", reason="no GPU here"))
    report = BenchReport(
        run_dir,
        {
            "batch_sizes": list(BATCHES),
            "fixed_shape": True,
            "real_lengths": True,
            "seq_len": 128,
            "threads": 2,
            "rounds": 3,
            "samples_used": 400,
        },
        "pytorch on torch-cpu",
        128,
        {
            "cpu": {"model": "Intel Xeon", "flags": ["avx512f", "amx_int8"]},
            "cores_physical": 2,
            "cores_logical": 2,
            "onnxruntime_providers": [CPU],
            "gpu": None,
        },
        {"fp32_gflops": 480.0, "int8_gops": 1870.0, "size": 1024},
        results,
        notes=["latency figures are per sample"],
        machine={
            "before": {"loadavg": [1.74, 1.76, 1.87], "cpu_mhz": 2596.1},
            "after": {"loadavg": [1.82, 1.78, 1.87], "cpu_mhz": 2596.1},
            "assessment": {
                "unreliable": True,
                "reasons": ["ov-int8 fixed b8: other processes used 0.4 cores"],
            },
        },
    )
    report.verdict = compute_verdict(report, max_drop=0.5)
    return report


def write_bench_files(report: BenchReport, bench_dir: Path) -> None:
    """report.json, report.csv and report.md as `write_report` writes them, without the plots."""
    bench_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json(bench_dir / runs.BENCH_FILES["json"], report)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    writer.writerows(report_rows(report))
    (bench_dir / runs.BENCH_FILES["csv"]).write_text(buf.getvalue(), encoding="utf-8")
    (bench_dir / runs.BENCH_FILES["markdown"]).write_text(format_markdown(report), encoding="utf-8")


def test_console_summary_fits_120_columns_with_every_row():
    """The terminal summary of a report with peers and OpenVINO rows: no line over 120 characters, every
    target and every batch size present (wrapped into a second block rather than cut), no Python repr."""
    report = realistic_report()
    text = format_summary(report)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= CONSOLE_WIDTH, max(lines, key=len)
    for variant, *_ in TARGETS:
        assert any(line.split()[:1] in ([variant], [f"{variant}*"]) for line in lines), variant
    headers = " ".join(line for line in lines if line.startswith("variant"))
    for mode in ("fixed", "real"):
        for batch in BATCHES:
            assert f"{mode} b{batch}" in headers
    assert "openvino cpu bf16" in text and "fp16 on CUDAExecutionProvider: unavailable: no GPU here" in text
    assert "load average 1.74 1.76 1.87 before" in text
    assert not any(c in text for c in "[]{}"), "a Python list or dict repr in the console"


def test_accuracy_deltas_are_points_everywhere():
    """int8-static is 1 point below the reference: the console table, the verdict and report.md all say
    -1.00 (points), never -0.010 (a fraction); the CSV keeps the fraction under its documented name."""
    report = realistic_report()
    summary = format_summary(report)
    row = next(line for line in summary.splitlines() if line.startswith("int8-static "))
    assert "-1.00" in row.split() and "Δacc pts" in summary
    assert "int8-static (-1.00 pts)" in summary  # left out of the verdict, in points
    markdown = format_markdown(report)
    md_row = next(line for line in markdown.splitlines() if line.startswith("| int8-static |"))
    assert "| -1.00 |" in md_row and "Δacc (pts)" in markdown and "-0.010" not in md_row
    csv_row = next(r for r in report_rows(report) if r["variant"] == "int8-static")
    assert abs(csv_row["accuracy_delta"] - (-0.01)) < 1e-9


def test_verdict_table_and_ship_lines():
    """The verdict as a compact table (ship, runtime, ms, MB, points, runner-up, notes) within 120 columns,
    the same-file and busy marks explained, and the ship lines naming each winner and its cases."""
    report = realistic_report()
    header, rows, notes = verdict_table(report.verdict)
    assert len(rows) == 6 and header[:3] == ["case", "ship", "runtime"]
    table = text_table(header, rows)
    assert max(len(line) for line in table) <= CONSOLE_WIDTH
    by_case = {row[0]: row for row in rows}
    assert by_case["fixed b1"][1:3] == ["ov-int8", "openvino cpu bf16"]
    assert by_case["fixed b1"][-1] == "= peer openvino-int8"
    assert by_case["real b32"][1] == "ov-bf16"
    assert "busy!" in by_case["fixed b8"][-1]
    assert any("int8-static (-1.00 pts)" in n for n in notes)
    assert any("the same model file ran as peer X" in n for n in notes)
    assert ship_lines(report.verdict) == [
        "ship: ov-int8 (openvino cpu bf16) at fixed b1, b8, b32; real b1, b8",
        "      ov-bf16 (openvino cpu bf16) at real b32",
    ]


def test_ship_line_for_one_winner_names_its_batch_sizes():
    """One winner in every case: one line naming the batch sizes and both input modes."""
    report = realistic_report()
    report.results = [r for r in report.results if r.provider != OPENVINO]
    report.verdict = compute_verdict(report, max_drop=0.5)
    assert ship_lines(report.verdict) == [
        "ship: int8-dynamic (onnxruntime cpu) at batch 1, 8, 32, fixed and real lengths"
    ]


def test_text_table_wraps_columns_and_cuts_long_cells():
    """A table wider than the limit continues in a second block that repeats the name column; a cell longer
    than 30 characters is cut with "..."."""
    header = ["name"] + [f"column {i}" for i in range(20)]
    rows = [["x" * 50] + [i * 1.5 for i in range(20)]]
    lines = text_table(header, rows, width=80)
    assert max(len(line) for line in lines) <= 80
    blocks = [line for line in lines if line.startswith("name")]
    assert len(blocks) > 1 and "column 19" in blocks[-1]
    assert lines[2].startswith("x" * 27 + "...")


def test_paired_report_prints_the_interval_beside_every_lead():
    """A report of the paired protocol: the verdict table has the 99% CI column filled for every case with a
    runner-up and stays within 120 columns; report.md spells each lead with its interval, the rule, the
    seconds and each engine's threading; the machine lines name steal time and the rows' round-to-round
    movement."""
    report = realistic_report()
    for r in report.results:
        for m in r.measurements:
            m.round_p50_ms = [m.latency.p50_ms * f for f in (1.01, 1.0, 0.99, 1.02, 0.98, 1.0)]
    report.config.update(rounds=6, processes=2)
    report.protocol = {
        "name": "paired",
        "rounds": 6,
        "processes": 2,
        "slice_s": 0.04,
        "threads": 2,
        "rule": "a lead is a tie exactly when its interval holds 1",
        "wall_s": 90.0,
        "setup_s": 60.0,
        "rounds_s": 30.0,
        "engines": {CPU: {"session.intra_op.allow_spinning": "1"}},
    }
    report.machine["assessment"] = {
        "unreliable": False,
        "reasons": [],
        "measured": {"steal_fraction": 0.001, "other_cores_mean": 0.02, "row_noise_median": 0.012},
        "limits": {"row_noise": 0.10},
    }
    report.verdict = compute_verdict(report, max_drop=0.5)
    header, rows, _ = verdict_table(report.verdict)
    assert "99% CI" in header
    ci = header.index("99% CI")
    assert all(row[ci] and "-" in row[ci] for row in rows)
    assert max(len(line) for line in text_table(header, rows)) <= CONSOLE_WIDTH
    summary = format_summary(report)
    assert max(len(line) for line in summary.splitlines()) <= CONSOLE_WIDTH
    assert (
        "steal 0.1% of the CPU time" in summary and "2 processes per target x 6 interleaved rounds" in summary
    )
    markdown = format_markdown(report)
    assert markdown.count("99% interval") == len(report.verdict)
    assert "verdict rule: a lead is a tie" in markdown and "measuring took 90 s" in markdown
    assert f"{CPU} threading: session.intra_op.allow_spinning 1" in markdown
