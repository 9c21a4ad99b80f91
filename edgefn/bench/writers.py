"""The bench report as text: flat CSV rows, the Markdown report, the terminal summary and the verdict lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefn.bench.results import BenchReport, Measurement, TargetResult
from edgefn.core.environment import describe_cpu

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
