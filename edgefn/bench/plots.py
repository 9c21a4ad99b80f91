"""The bench report's plots: latency against batch size, and accuracy against size and latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefn.bench.results import BenchReport, TargetResult


def _ok(report: BenchReport) -> list[TargetResult]:
    return [r for r in report.results if r.status == "ok" and r.measurements]


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")


def _style(i: int, r: TargetResult) -> dict[str, Any]:
    """A distinct marker and colour per row; peers dashed with hollow markers."""
    import matplotlib.pyplot as plt

    colour = plt.get_cmap("tab20")(i % 20)
    style: dict[str, Any] = {"marker": MARKERS[i % len(MARKERS)], "color": colour}
    if r.peer:
        style.update(linestyle="--", markerfacecolor="none")
    return style


def _label(r: TargetResult) -> str:
    name = f"{r.variant} (peer)" if r.peer else r.variant
    return f"{name}, {r.provider}" + (f" {r.precision}" if r.precision else "")


def _legend_outside(fig: Any, axes: list[Any]) -> None:
    """One legend for the figure, to the right of every panel: labels never cover the data or each other."""
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 0.74, 1))
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.75, 0.5), fontsize=7, frameon=False)


def latency_figure(report: BenchReport) -> Any:
    """Per-sample p50 latency vs batch size, one line per variant / peer and provider, one panel per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    modes = sorted({m.mode for r in _ok(report) for m in r.measurements}, key=("fixed", "real").index)
    n = max(len(modes), 1)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n + 3.5, 4.5), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for i, r in enumerate(_ok(report)):
            pts = sorted((m.batch_size, m.latency.p50_ms) for m in r.measurements if m.mode == mode)
            if pts:
                ax.plot(*zip(*pts), label=_label(r), **_style(i, r))
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="batch size",
            ylabel="per-sample latency p50 (ms)",
            title=f"{mode} inputs" + (f" (seq {report.config['seq_len']})" if mode == "fixed" else ""),
        )
        ax.set_xticks(report.config["batch_sizes"], [str(b) for b in report.config["batch_sizes"]])
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.grid(True, which="both", alpha=0.3)
    _legend_outside(fig, list(axes[0]))
    return fig


def tradeoff_figure(report: BenchReport) -> Any:
    """Accuracy vs size (MB) and accuracy vs per-sample latency at the smallest batch, two panels, one legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14.5, 4.5))
    first = None
    for i, r in enumerate(_ok(report)):
        if r.accuracy is None:
            continue
        m = min(r.measurements, key=lambda m: (m.batch_size, m.mode != "fixed"))
        first = first or m
        style = {k: v for k, v in _style(i, r).items() if k != "linestyle"}
        left.plot([r.size_mb or 0], [r.accuracy.accuracy], linestyle="none", label=_label(r), **style)
        right.plot([m.latency.p50_ms], [r.accuracy.accuracy], linestyle="none", **style)
    left.set(xlabel="size on disk (MB)", ylabel="test accuracy", title="accuracy vs size")
    where = f" ({first.mode} inputs, batch {first.batch_size})" if first else ""
    right.set(
        xscale="log",
        xlabel="per-sample latency p50 (ms)",
        ylabel="test accuracy",
        title="accuracy vs latency" + where,
    )
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    _legend_outside(fig, [left])
    return fig


def plot_latency(report: BenchReport, path: Path) -> None:
    """latency.png (see `latency_figure`)."""
    _save(latency_figure(report), path)


def plot_tradeoff(report: BenchReport, path: Path) -> None:
    """tradeoff.png (see `tradeoff_figure`)."""
    _save(tradeoff_figure(report), path)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120)
    plt.close(fig)
