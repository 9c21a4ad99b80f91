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
    """Per-sample p50 latency vs batch size, one line per variant / peer and provider, one panel per mode; the
    run in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

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
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"{_run_name(report)}: per-sample latency against batch size", fontsize=11)
    _legend_outside(fig, list(axes[0]))
    return fig


def _run_name(report: BenchReport) -> str:
    return Path(report.run_dir).name or str(report.run_dir)


def _short_label(r: TargetResult, ambiguous: set[str]) -> str:
    """The row's variant (peers marked), with its runtime where that variant also runs on another."""
    name = f"{r.variant} (peer)" if r.peer else r.variant
    if r.variant in ambiguous:
        name += f", {r.provider.removesuffix('ExecutionProvider')}" + (
            f" {r.precision}" if r.precision else ""
        )
    return name


def _shipped(report: BenchReport, mode: str, batch_size: int) -> dict[tuple[str, str, bool], str]:
    """The verdict's winner of each device at this input mode and batch size: (variant, provider, peer) ->
    the device."""
    return {
        (c["winner"]["variant"], c["winner"]["provider"], bool(c["winner"]["peer"])): c["device"]
        for c in report.verdict
        if c["mode"] == mode and c["batch_size"] == batch_size
    }


def _budget(report: BenchReport, rows: list[TargetResult]) -> tuple[float, float] | None:
    """(reference accuracy, the verdict's `--max-drop` in points), or None without both."""
    drop = report.verdict[0]["max_drop_pts"] if report.verdict else report.config.get("max_drop")
    accs = [r.accuracy for r in rows if r.accuracy and "accuracy" in r.accuracy.delta]
    if drop is None or not accs:
        return None
    return accs[0].accuracy - accs[0].delta["accuracy"], float(drop)


def place_labels(
    ax: Any, points: list[tuple[float, float]], texts: list[str], bold: set[int], rings: set[int]
) -> list[Any]:
    """Annotate each data point with its text, joined by a leader line, at the nearest offset (growing
    rings of 8 directions) where the label stays inside the panel and overlaps neither a placed label nor
    a marker (`rings`: indices of points circled, a wider marker); coincident points fan their labels out.
    Returns the annotations, in the order given."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    half = [14 if i in rings else 7 for i in range(len(points))]
    markers = [
        Bbox.from_extents(x - h, y - h, x + h, y + h)
        for (x, y), h in zip(ax.transData.transform(points), half)
    ]
    placed: list[Any] = []
    offsets = [(r * dx, r * dy * 0.7) for r in (9, 18, 28, 40, 52, 66, 80) for dx, dy in DIRECTIONS]
    for i, (point, text) in enumerate(zip(points, texts)):
        ann = ax.annotate(
            text,
            point,
            xytext=(0, 0),
            textcoords="offset points",
            fontsize=7,
            fontweight="bold" if i in bold else "normal",
            arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.45", "shrinkA": 1, "shrinkB": 4},
            zorder=5,
        )
        costs = []
        for offset in offsets:
            box = _move(ann, offset, renderer)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            costs.append(sum(box.overlaps(b) for b in placed + markers) + 10 * (not inside))
            if costs[-1] == 0:
                break
        placed.append(_move(ann, offsets[costs.index(min(costs))], renderer))
    return ax.texts[-len(points) :] if points else []


def _move(ann: Any, offset: tuple[float, float], renderer: Any) -> Any:
    """Put an annotation's text at `offset` points from its point, aligned away from it; its text's box."""
    ann.xyann = offset
    ann.set_ha("left" if offset[0] > 0 else "right" if offset[0] < 0 else "center")
    ann.set_va("bottom" if offset[1] > 0 else "top" if offset[1] < 0 else "center")
    return text_box(ann, renderer)


def text_box(ann: Any, renderer: Any) -> Any:
    """The display box of an annotation's text alone (its own extent includes the leader line), padded."""
    from matplotlib.text import Text

    ann.update_positions(renderer)
    return Text.get_window_extent(ann, renderer).padded(1.5)


DIRECTIONS = ((1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1), (0, 1), (0, -1))


def _tradeoff_rows(report: BenchReport) -> list[dict[str, Any]]:
    """Per row with an accuracy: its style, size, latency at the plot's batch, accuracy (%), short label and
    the device whose verdict ships it (None if none); the latency's mode and batch are under "where"."""
    rows = [(i, r) for i, r in enumerate(_ok(report)) if r.accuracy is not None]
    first = min((m for _, r in rows for m in r.measurements), key=lambda m: (m.batch_size, m.mode != "fixed"))
    shipped = _shipped(report, first.mode, first.batch_size)
    variants = [r.variant for _, r in rows]
    ambiguous = {v for v in variants if variants.count(v) > 1}
    out = []
    for i, r in rows:
        assert r.accuracy is not None
        at = [m for m in r.measurements if (m.mode, m.batch_size) == (first.mode, first.batch_size)]
        m = at[0] if at else min(r.measurements, key=lambda m: (m.batch_size, m.mode != "fixed"))
        out.append(
            {
                "row": r,
                "style": {k: v for k, v in _style(i, r).items() if k != "linestyle"},
                "size_mb": r.size_mb or 0.0,
                "p50_ms": m.latency.p50_ms,
                "accuracy_pct": 100 * r.accuracy.accuracy,
                "text": _short_label(r, ambiguous),
                "shipped": shipped.get((r.variant, r.provider, r.peer)),
                "where": (first.mode, first.batch_size),
            }
        )
    return out


def _mark_budget(
    axes: list[Any], report: BenchReport, budget: tuple[float, float], accs: list[float]
) -> None:
    """Shade accuracies within `--max-drop` points of the reference, draw the reference, and give the last
    panel a second axis in points against the reference."""
    ref, drop = 100 * budget[0], budget[1]
    low, high = min([*accs, ref - drop]), max([*accs, ref])
    pad = max(0.4, 0.12 * (high - low))
    for ax in axes:
        ax.set_ylim(low - pad, high + pad)
        ax.axhspan(
            ref - drop,
            high + pad,
            color="tab:green",
            alpha=0.1,
            lw=0,
            zorder=0,
            label=f"budget: reference - {drop:g} pts (--max-drop)",
        )
        ax.axhline(ref - drop, color="tab:green", linestyle="--", lw=1, label="_budget")
        ax.axhline(
            ref, color="0.35", linestyle=":", lw=1, label=f"reference: {report.reference} ({ref:.1f}%)"
        )
    delta = axes[-1].secondary_yaxis("right", functions=(lambda y: y - ref, lambda d: d + ref))
    delta.set_ylabel("accuracy vs reference (points)")


def tradeoff_figure(report: BenchReport) -> Any:
    """Test accuracy (%) against size (MB) and against per-sample latency at the smallest batch, two panels:
    every row labelled beside its marker (leader lines, no two labels overlapping), the verdict's shipped
    row circled, the `--max-drop` budget shaded, a points axis against the reference, the run in the
    title, one legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.2), dpi=120)
    rows = _tradeoff_rows(report) if any(r.accuracy for r in _ok(report)) else []
    pts: dict[Any, list[tuple[float, float]]] = {
        left: [(d["size_mb"], d["accuracy_pct"]) for d in rows],
        right: [(d["p50_ms"], d["accuracy_pct"]) for d in rows],
    }
    for d, size, latency in zip(rows, pts[left], pts[right]):
        left.plot(*size, linestyle="none", label=_label(d["row"]), alpha=0.85, markersize=7, **d["style"])
        right.plot(*latency, linestyle="none", alpha=0.85, markersize=7, **d["style"])
    shipped = {i for i, d in enumerate(rows) if d["shipped"]}
    for i in sorted(shipped):
        for ax in (left, right):
            ax.plot(
                *pts[ax][i],
                linestyle="none",
                marker="o",
                markersize=14,
                markerfacecolor="none",
                markeredgecolor="black",
                markeredgewidth=1.6,
                zorder=4,
                label=f"shipped (verdict): {_label(rows[i]['row'])}" if ax is left else "_shipped",
            )
    budget = _budget(report, [d["row"] for d in rows])
    if budget:
        _mark_budget([left, right], report, budget, [d["accuracy_pct"] for d in rows])
    left.set(xlabel="size on disk (MB)", ylabel="test accuracy (%)", title="accuracy vs size")
    left.set_xlim(0, max([x for x, _ in pts[left]] + [1]) * 1.12)
    where = f" ({rows[0]['where'][0]} inputs, batch {rows[0]['where'][1]})" if rows else ""
    right.set(
        xscale="log",
        xlabel="per-sample latency p50 (ms, log scale)",
        ylabel="test accuracy (%)",
        title="accuracy vs latency" + where,
    )
    right.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
    right.xaxis.set_major_formatter(ScalarFormatter())
    right.xaxis.set_minor_formatter(NullFormatter())
    right.margins(x=0.25)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    n = max((d["row"].accuracy.samples for d in rows), default=0)
    fig.suptitle(f"{_run_name(report)}: test accuracy ({n} texts) against size and latency", fontsize=11)
    _legend_outside(fig, [left])
    fig.canvas.draw()
    texts = [f"{d['text']}: shipped ({d['shipped']})" if d["shipped"] else d["text"] for d in rows]
    for ax in (left, right):
        place_labels(ax, pts[ax], texts, shipped, shipped)
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
