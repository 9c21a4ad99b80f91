"""The bench report written out: report.json, report.csv, report.md and the two plots, with the environment block."""

# The report object lives in `bench.results`, its text forms in `bench.writers`, its plots in `bench.plots`;
# this module writes the bench folder and re-exports them, so `from edgefn.bench.report import X` reaches each.

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.bench.plots import latency_figure, plot_latency, plot_tradeoff, tradeoff_figure
from edgefn.bench.results import Accuracy, BenchReport, Measurement, TargetResult
from edgefn.bench.writers import (
    CSV_COLUMNS,
    format_markdown,
    format_summary,
    format_verdict,
    markdown_table,
    report_rows,
)
from edgefn.core.environment import machine_environment

__all__ = [
    "CSV_COLUMNS",
    "Accuracy",
    "BenchReport",
    "Measurement",
    "TargetResult",
    "collect_environment",
    "format_markdown",
    "format_summary",
    "format_verdict",
    "latency_figure",
    "markdown_table",
    "plot_latency",
    "plot_tradeoff",
    "report_rows",
    "tradeoff_figure",
    "write_report",
]


def collect_environment(threads: int, providers: list[str], gpu: bool) -> dict[str, Any]:
    """The machine, ONNX Runtime providers and GPU."""
    env: dict[str, Any] = {**machine_environment(threads), "onnxruntime_providers": providers, "gpu": None}
    if gpu:
        import torch

        env["gpu"] = {"name": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    return env


def write_report(report: BenchReport, out_dir: Path) -> dict[str, str]:
    """Write report.json, report.csv, report.md, latency.png and tradeoff.png into `out_dir` (replaced whole)."""
    out_dir, names = Path(out_dir), runs.BENCH_FILES
    report.outputs = {k: str(out_dir / v) for k, v in names.items()}
    with runs.atomic_dir(out_dir, overwrite=True, owned=runs.is_bench_dir, kind="bench folder") as tmp:
        runs.write_json(tmp / names["json"], report)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(report_rows(report))
        (tmp / names["csv"]).write_text(buf.getvalue(), encoding="utf-8")
        (tmp / names["markdown"]).write_text(format_markdown(report), encoding="utf-8")
        plot_latency(report, tmp / names["latency_plot"])
        plot_tradeoff(report, tmp / names["tradeoff_plot"])
    return report.outputs
