"""The bench report and its writers: JSON, CSV, Markdown, latency and trade-off plots, environment block, CLI summary."""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.bench.measure import Latency, Placement
from edgefn.core.environment import describe_cpu, machine_environment
from edgefn.core.errors import EdgefnError

CSV_COLUMNS = (
    "variant",
    "provider",
    "scheme",
    "precision",
    "peer",
    "status",
    "reason",
    "input_mode",
    "batch_size",
    "seq_len",
    "mean_seq_len",
    "size_mb",
    "params",
    "accuracy",
    "accuracy_delta",
    "f1_weighted",
    "f1_weighted_delta",
    "balanced_accuracy",
    "f1_macro",
    "roc_auc",
    "ece",
    "agreement",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_mean_ms",
    "latency_stdev_ms",
    "batch_latency_p50_ms",
    "throughput_samples_per_s",
    "iterations",
    "speedup_vs_reference",
    "session_ms",
    "first_inference_ms",
    "peak_rss_mb",
    "flops_per_sample",
    "achieved_gflops",
    "peak_fraction",
    "threads",
    "cuda_fallback_nodes",
    "round_spread",
    "other_cores",
    "flags",
)


# --- the report object -------------------------------------------------------------------------------------


@dataclass
class Accuracy:
    """Test-split metrics of one target, its agreement with the reference, and deltas against it."""

    samples: int
    accuracy: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    per_class: dict[str, dict[str, float]]
    agreement: float | None = None  # fraction of test rows where the prediction equals the reference's
    delta: dict[str, float] = field(default_factory=dict)  # metric - reference metric
    balanced_accuracy: float | None = None  # None in reports written before it was measured
    f1_macro: float | None = None
    roc_auc: float | None = None  # of the probability of fake
    ece: float | None = None  # expected calibration error of the probability of fake

    @classmethod
    def from_metrics(cls, m: dict[str, Any]) -> Accuracy:
        """From `metrics.classification_metrics`' dict."""
        return cls(
            m["n"],
            m["accuracy"],
            m["precision_weighted"],
            m["recall_weighted"],
            m["f1_weighted"],
            {k: dict(v) for k, v in m["per_class"].items()},
            balanced_accuracy=m.get("balanced_accuracy"),
            f1_macro=m.get("f1_macro"),
            roc_auc=m.get("roc_auc"),
            ece=m.get("ece"),
        )


@dataclass
class Measurement:
    """Latency of one batch size and input mode, with the FLOPs it implies."""

    mode: str  # "fixed" (seq_len, model call only) or "real" (test texts, tokenisation included)
    batch_size: int
    latency: Latency
    seq_lens: list[int]  # padded length of every timed call
    mean_seq_len: float
    flops_per_sample: float | None = None
    achieved_gflops: float | None = None
    peak_gflops: float | None = None
    peak_fraction: float | None = None
    speedup_vs_reference: float | None = None  # reference per-sample p50 / this per-sample p50
    round_p50_ms: list[float] = field(default_factory=list)  # per-sample p50 of each interleaved round
    spread: float | None = None  # max / min - 1 of round_p50_ms
    flags: list[str] = field(default_factory=list)  # why this timing is not to be trusted (empty: it is)


@dataclass
class TargetResult:
    """Everything measured for one variant on one provider."""

    variant: str
    provider: str
    scheme: str
    status: str
    reason: str | None = None
    size_mb: float | None = None
    params: int | None = None
    session_ms: float | None = None
    first_inference_ms: float | None = None
    rss_before_load_mb: float | None = None
    peak_rss_mb: float | None = None
    active_providers: list[str] = field(default_factory=list)
    accuracy: Accuracy | None = None
    measurements: list[Measurement] = field(default_factory=list)
    placement: Placement | None = None
    predictions: list[int] = field(default_factory=list)
    prob_fake: list[float] = field(default_factory=list)
    precision: str | None = None  # what OpenVINO computed in (fp32 / bf16); None for other runtimes
    peer: bool = False  # a peer (what users would pick instead), not one of edgefn's variants
    description: str | None = None  # a peer's recipe
    other_cores: float | None = None  # most cores other processes used while a round of it was timed
    model_fingerprint: str | None = None  # runs.model_fingerprint of its model files (None for PyTorch rows)


@dataclass
class BenchReport:
    """The whole benchmark: config, environment, MatMul peak, one result per variant and provider."""

    run_dir: str
    config: dict[str, Any]
    reference: str | None  # "variant on provider" whose predictions and latency the deltas use
    max_length: int
    environment: dict[str, Any]
    peak: dict[str, Any]
    results: list[TargetResult]
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)  # state before / after, and whether to trust it
    verdict: list[dict[str, Any]] = field(default_factory=list)  # what to ship (edgefn.bench.verdict)

    def result(self, variant: str, provider: str) -> TargetResult:
        """The result of one variant on one provider."""
        for r in self.results:
            if r.variant == variant and r.provider == provider:
                return r
        raise KeyError(f"{variant} on {provider}")

    @classmethod
    def from_json(cls, path: Path) -> BenchReport:
        """Read a report.json written by `write_report` back into the report object."""
        d = runs.read_json_object(path, {"results": list}, required=("results",))
        try:
            return cls(
                **{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d and f.name != "results"},
                results=[_target_from_dict(r) for r in d["results"]],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise EdgefnError(f"{path} is not an edgefn bench report ({type(e).__name__}: {e})") from None


def _target_from_dict(d: dict[str, Any]) -> TargetResult:
    plain = {k: v for k, v in d.items() if k not in ("accuracy", "measurements", "placement")}
    r = TargetResult(**plain)
    if d.get("accuracy"):
        r.accuracy = Accuracy(**d["accuracy"])
    if d.get("placement"):
        r.placement = Placement(**d["placement"])
    for m in d.get("measurements") or []:
        lat = Latency(m["latency"]["call_ms"], m["latency"]["items"])
        rest = {k: v for k, v in m.items() if k != "latency"}
        r.measurements.append(Measurement(latency=lat, **rest))
    return r


# --- environment --------------------------------------------------------------------------------------------


def collect_environment(threads: int, providers: list[str], gpu: bool) -> dict[str, Any]:
    """The machine, ONNX Runtime providers and GPU."""
    env: dict[str, Any] = {**machine_environment(threads), "onnxruntime_providers": providers, "gpu": None}
    if gpu:
        import torch

        env["gpu"] = {"name": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    return env


# --- flat rows ----------------------------------------------------------------------------------------------


def _grid(report: BenchReport) -> list[tuple[str, int]]:
    modes = [
        m for m in ("fixed", "real") if report.config.get({"fixed": "fixed_shape", "real": "real_lengths"}[m])
    ]
    return [(mode, b) for b in report.config["batch_sizes"] for mode in modes]


def _row(
    report: BenchReport, r: TargetResult, mode: str, batch: int, m: Measurement | None
) -> dict[str, Any]:
    acc = r.accuracy
    row: dict[str, Any] = {
        "variant": r.variant,
        "provider": r.provider,
        "scheme": r.scheme,
        "precision": r.precision,
        "peer": r.peer,
        "status": r.status,
        "reason": r.reason,
        "other_cores": r.other_cores,
        "input_mode": mode,
        "batch_size": batch,
        "seq_len": report.config["seq_len"] if mode == "fixed" else None,
        "size_mb": r.size_mb,
        "params": r.params,
        "session_ms": r.session_ms,
        "first_inference_ms": r.first_inference_ms,
        "peak_rss_mb": r.peak_rss_mb,
        "threads": report.config["threads"],
        "cuda_fallback_nodes": sum(r.placement.fallback_ops.values()) if r.placement else None,
    }
    if acc is not None:
        row.update(
            accuracy=acc.accuracy,
            accuracy_delta=acc.delta.get("accuracy"),
            f1_weighted=acc.f1_weighted,
            f1_weighted_delta=acc.delta.get("f1_weighted"),
            balanced_accuracy=acc.balanced_accuracy,
            f1_macro=acc.f1_macro,
            roc_auc=acc.roc_auc,
            ece=acc.ece,
            agreement=acc.agreement,
        )
    if m is not None:
        lat = m.latency
        row.update(
            mean_seq_len=m.mean_seq_len,
            latency_p50_ms=lat.p50_ms,
            latency_p90_ms=lat.p90_ms,
            latency_p99_ms=lat.p99_ms,
            latency_mean_ms=lat.mean_ms,
            latency_stdev_ms=lat.stdev_ms,
            batch_latency_p50_ms=lat.batch_p50_ms,
            throughput_samples_per_s=lat.throughput_samples_per_s,
            iterations=lat.count,
            speedup_vs_reference=m.speedup_vs_reference,
            flops_per_sample=m.flops_per_sample,
            achieved_gflops=m.achieved_gflops,
            peak_fraction=m.peak_fraction,
            round_spread=m.spread,
            flags="; ".join(m.flags) or None,
        )
    return {c: row.get(c) for c in CSV_COLUMNS}


def report_rows(report: BenchReport) -> list[dict[str, Any]]:
    """One flat row per variant x provider x batch size x input mode (blank figures where it did not run)."""
    rows = []
    for r in report.results:
        found = {(m.mode, m.batch_size): m for m in r.measurements}
        rows += [_row(report, r, mode, batch, found.get((mode, batch))) for mode, batch in _grid(report)]
    return rows


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:.0f}"
        return f"{value:.{digits}g}" if 0 < abs(value) < 0.001 else f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; cells that are not strings are formatted like the bench report's."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _summary_rows(report: BenchReport) -> tuple[list[str], list[list[Any]]]:
    grid = _grid(report)
    header = ["variant", "provider", "status", "MB", "params", "acc", "Δacc", "agree"]
    header += [f"{mode} b{b} ms" for mode, b in grid]
    rows = []
    for r in report.results:
        acc = r.accuracy
        found = {(m.mode, m.batch_size): _flagged(m) for m in r.measurements}
        rows.append(
            [
                f"{r.variant} (peer)" if r.peer else r.variant,
                f"{r.provider} {r.precision}" if r.precision else r.provider,
                r.status,
                r.size_mb,
                r.params,
                acc.accuracy if acc else None,
                acc.delta.get("accuracy") if acc else None,
                acc.agreement if acc else None,
                *(found.get(key) for key in grid),
            ]
        )
    return header, rows


def _flagged(m: Measurement) -> Any:
    """A p50 for the summary tables; a flagged timing carries a "!" (see the machine section)."""
    return f"{_fmt(m.latency.p50_ms)}!" if m.flags else m.latency.p50_ms


def _trust_lines(report: BenchReport) -> list[str]:
    machine = report.machine
    if not machine:
        return []
    before, after, verdict = (
        machine.get("before", {}),
        machine.get("after", {}),
        machine.get("assessment", {}),
    )
    lines = [
        f"machine: load average {before.get('loadavg')} before, {after.get('loadavg')} after; core clock "
        f"{_fmt(before.get('cpu_mhz'), 0)} -> {_fmt(after.get('cpu_mhz'), 0)} MHz; "
        f"{report.config.get('rounds', 1)} interleaved rounds"
    ]
    if verdict.get("unreliable"):
        lines.append(
            "UNRELIABLE TIMINGS (the machine was busy): "
            + "; ".join(verdict.get("reasons", []))
            + ". Rows marked ! are flagged."
        )
    return lines


def _verdict_lines(report: BenchReport) -> list[str]:
    if not report.verdict:
        return []
    drop = report.verdict[0]["max_drop_pts"]
    return [
        f"what to ship (fastest within {drop} accuracy points of the reference):",
        *format_verdict(report.verdict),
    ]


def format_verdict(verdict: list[dict[str, Any]]) -> list[str]:
    """One line per cell: what to ship, its MB and accuracy, the runner-up, whether a peer won, and where a
    lead did not hold in every interleaved round, that it is a tie."""
    lines = []
    for v in verdict:
        w, r = v["winner"], v["runner_up"]
        line = (
            f"{v['device']} {v['mode']} batch {v['batch_size']}: ship {_name(w)} "
            f"({w['p50_ms']:.3f} ms/sample, {_mb(w)}, accuracy {_pts(w)})"
        )
        if r is not None:
            line += f"; runner-up {_name(r)} {r['p50_ms']:.3f} ms ({r['p50_ms'] / w['p50_ms']:.2f}x slower"
            line += f"{_tie(v['rounds_faster_than_runner_up']) if v.get('tie_with_runner_up') else ''})"
        if v["peer_wins"] and v.get("peer_wins_every_round") is False:
            line += (
                f" -- a peer is fastest by p50, not in every round{_tie(v['rounds_peer_faster_than_edgefn'])}"
            )
            own = v.get("fastest_own")
            if own is None or own == r:
                line += " against edgefn's fastest own row" + (" (the runner-up)" if own else "")
            else:
                line += f" against edgefn's fastest own row, {_name(own)} {own['p50_ms']:.3f} ms"
        elif v["peer_wins"]:
            line += " -- a peer wins: edgefn's own variants are slower here"
        if w["unreliable"] or (r is not None and r["unreliable"]):
            line += " [timing flagged: machine busy]"
        lines.append(line)
    return lines


def _tie(rounds: list[int]) -> str:
    """ ", a tie: faster in k of n rounds", for a lead the verdict found did not hold in every round."""
    return f", a tie: faster in {rounds[0]} of {rounds[1]} interleaved rounds"


def _name(c: dict[str, Any]) -> str:
    kind = "peer " if c["peer"] else ""
    precision = f", {c['precision']}" if c.get("precision") else ""
    same = c.get("same_model")
    if same:  # several rows ran this very model: their mean is the time
        rows = ", ".join(f"{name} {ms:.3f}" for name, ms in same.items())
        precision += f"; the same model file as {rows} ms, timed as their mean"
    return f"{kind}{c['variant']} ({c['provider']}{precision})"


def _mb(c: dict[str, Any]) -> str:
    return "-" if c["size_mb"] is None else f"{c['size_mb']:.1f} MB"


def _pts(c: dict[str, Any]) -> str:
    if c["accuracy"] is None:
        return "-"
    return f"{c['accuracy']:.4f}, {c['accuracy_delta_pts']:+.2f} pts"


def format_markdown(report: BenchReport) -> str:
    """report.md: setup, a summary table, every measured row, and the notes."""
    env = report.environment
    lines = [
        f"# edgefn bench: {Path(report.run_dir).name}",
        "",
        f"- CPU: {describe_cpu(env['cpu'])}; {env['cores_physical']} physical / "
        f"{env['cores_logical']} logical cores; {report.config['threads']} threads",
        f"- GPU: {env['gpu']['name'] if env.get('gpu') else 'none'}; providers: "
        f"{', '.join(env['onnxruntime_providers'])}",
        f"- reference: {report.reference}; test rows: {report.config['samples_used']}",
        f"- MatMul peak: fp32 {_fmt(report.peak.get('fp32_gflops'))} GFLOP/s, int8 "
        f"{_fmt(report.peak.get('int8_gops'))} GOP/s ({report.peak.get('size')}^3, same threads)",
        "",
        *[f"- {line}" for line in _trust_lines(report)],
        "",
        "## What to ship",
        "",
        *[f"- {line}" for line in _verdict_lines(report)[1:]],
        "",
        "## Summary (per-sample p50 latency in ms)",
        "",
        markdown_table(*_summary_rows(report)),
        "",
        *[
            f"- {r.variant} on {r.provider}: {r.status}: {r.reason}"
            for r in report.results
            if r.status != "ok"
        ],
        "",
        "## Every row",
        "",
    ]
    cols = [
        "variant",
        "provider",
        "input_mode",
        "batch_size",
        "latency_p50_ms",
        "latency_p99_ms",
        "throughput_samples_per_s",
        "speedup_vs_reference",
        "achieved_gflops",
        "peak_fraction",
    ]
    rows = [r for r in report_rows(report) if r["status"] == "ok"]
    lines += [markdown_table(cols, [[r[c] for c in cols] for r in rows]), "", "## Notes", ""]
    lines += [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def format_summary(report: BenchReport) -> str:
    """A plain-text summary table for the terminal."""
    header, rows = _summary_rows(report)
    cells = [header] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    extra = [
        f"reference: {report.reference}; per-sample p50 latency in ms; {report.config['threads']} threads"
    ]
    extra += [
        f"{r.variant} on {r.provider}: {r.status}: {r.reason}" for r in report.results if r.status != "ok"
    ]
    extra += [f"note: {n}" for n in report.notes if "did not run on" in n]
    extra += _trust_lines(report) + _verdict_lines(report)
    return "\n".join(lines + extra)


# --- plots --------------------------------------------------------------------------------------------------


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


# --- writing ------------------------------------------------------------------------------------------------


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
