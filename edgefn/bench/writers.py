"""The bench report as text: flat CSV rows, the Markdown report, the terminal summary and the verdict lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgefn.bench.results import BenchReport, Measurement, TargetResult
from edgefn.bench.stats import CONFIDENCE
from edgefn.core.environment import describe_cpu
from edgefn.core.progress import LINE_WIDTH, wrap
from edgefn.runtime import engines

CONSOLE_WIDTH = LINE_WIDTH  # no line edgefn prints is wider; report.md, .csv and .json keep the full detail
MAX_CELL = 30  # a console cell longer than this is cut (with "...")
LEVEL = f"{CONFIDENCE:.0%}"  # of the verdict's intervals

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
    "round_noise",
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
            round_noise=m.noise,
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


def _summary_rows(report: BenchReport, console: bool = False) -> tuple[list[str], list[list[Any]]]:
    """The summary table: one row per target, a p50 column per input mode x batch size. The console form
    names runtimes briefly, marks peers with "*" and leaves out the status (non-ok rows are listed below it),
    the parameter count and the agreement; the Markdown form has them all."""
    grid = _grid(report)
    if console:
        header = ["variant", "runtime", "MB", "acc", "Δacc pts", *(f"{mode} b{b}" for mode, b in grid)]
    else:
        header = ["variant", "provider", "status", "MB", "params", "acc", "Δacc (pts)", "agree"]
        header += [f"{mode} b{b} ms" for mode, b in grid]
    rows = []
    for r in report.results:
        acc = r.accuracy
        found = {(m.mode, m.batch_size): _flagged(m) for m in r.measurements}
        delta = acc.delta.get("accuracy") if acc else None
        pts = None if delta is None else _pts_cell(100 * delta)
        times = [found.get(key) for key in grid]
        accuracy = acc.accuracy if acc else None
        if console:
            name = f"{r.variant}*" if r.peer else r.variant
            mb = None if r.size_mb is None else f"{r.size_mb:.1f}"
            rows.append([name, runtime_label(r.provider, r.precision), mb, accuracy, pts, *times])
            continue
        rows.append(
            [
                f"{r.variant} (peer)" if r.peer else r.variant,
                f"{r.provider} {r.precision}" if r.precision else r.provider,
                r.status,
                r.size_mb,
                r.params,
                accuracy,
                pts,
                acc.agreement if acc else None,
                *times,
            ]
        )
    return header, rows


def _pts_cell(pts: float) -> str:
    """Accuracy points with a sign, two decimals ("-0.00" printed as "+0.00")."""
    return f"{pts + 0.0:+.2f}" if round(pts, 2) != 0 else "+0.00"


def runtime_label(provider: str, precision: str | None = None) -> str:
    """A provider as a reader names it: "onnxruntime cpu", "openvino cpu bf16" (the provider's own name
    when no engine here knows it)."""
    engine = engines.find(provider)
    name = f"{engine.runtime} {engine.device}" if engine and engine.device else provider
    return f"{name} {precision}" if precision else name


def _cut(cell: str, limit: int = MAX_CELL) -> str:
    return cell if len(cell) <= limit else cell[: limit - 3] + "..."


def _is_number(cell: str) -> bool:
    try:
        float(cell.rstrip("!x%"))
    except ValueError:
        return cell == "-"
    return True


def text_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    keep: int = 1,
    width: int = CONSOLE_WIDTH,
    indent: str = "",
) -> list[str]:
    """Aligned text columns, two spaces apart, numbers to the right, under a dashed rule. Cells are cut at
    MAX_CELL characters; a table wider than `width` is wrapped: its later columns go into further blocks
    that repeat the first `keep` columns, so no line is wider than `width`.

    Args:
        header: the column names.
        rows: the cells (formatted like the bench report's; None prints as "-").
        keep: the leading columns every block repeats (the row's name).
        width: the widest line allowed, indent included.
        indent: put before every line.

    Returns:
        The lines, without newlines.
    """
    cells = [[_cut(str(h)) for h in header]] + [[_cut(_fmt(v)) for v in row] for row in rows]
    ncols = len(header)
    widths = [max(len(row[i]) for row in cells) for i in range(ncols)]
    right = [all(_is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(ncols)]
    blocks: list[list[int]] = []
    fixed = sum(widths[:keep]) + 2 * keep + len(indent)
    current: list[int] = []
    used = fixed
    for i in range(keep, ncols):
        if current and used + widths[i] > width:
            blocks.append(current)
            current, used = [], fixed
        current.append(i)
        used += widths[i] + 2
    blocks.append(current)
    lines: list[str] = []
    for n, block in enumerate(blocks):
        cols = list(range(keep)) + block
        if n:
            lines.append("")
        for r, row in enumerate(cells):
            text = "  ".join(row[i].rjust(widths[i]) if right[i] else row[i].ljust(widths[i]) for i in cols)
            lines.append(indent + text.rstrip())
            if r == 0:
                lines.append(indent + "  ".join("-" * widths[i] for i in cols))
    return lines


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
    clock = f"core clock {_fmt(before.get('cpu_mhz'), 0)} -> {_fmt(after.get('cpu_mhz'), 0)} MHz"
    load = f"load average {_loadavg(before)} before, {_loadavg(after)} after"
    measured = verdict.get("measured")
    if measured is None:  # the legacy protocol
        lines = [f"machine: {load}; {clock}; {report.config.get('rounds', 1)} interleaved rounds"]
    else:
        lines = [
            f"machine: steal {_share(measured.get('steal_fraction'))} of the CPU time, other processes "
            f"{_fmt(measured.get('other_cores_mean'), 2)} cores on average; {clock}; {load}",
            f"timings: {protocol_line(report)}; rows move {_share(measured.get('row_noise_median'))} from round "
            f"to round against the rows beside them (median; widest {_share(measured.get('row_noise_max'))}, "
            f"flagged beyond {_share(verdict.get('limits', {}).get('row_noise'))})",
        ]
    if verdict.get("unreliable"):
        lines.append(
            "UNRELIABLE TIMINGS (the machine was busy): "
            + "; ".join(verdict.get("reasons", []))
            + ". Rows marked ! are flagged."
        )
    return lines


def protocol_line(report: BenchReport) -> str:
    """How the timings were taken, in one phrase: processes, rounds, slices and the threading settings."""
    p = report.protocol or {}
    if p.get("name", "legacy") == "legacy":
        return (
            f"{report.config.get('rounds', 1)} interleaved rounds, each target in a fresh process per round"
        )
    slice_ms = 1000 * (p.get("slice_s") or 0.0)
    spin = "spinning" if report.config.get("spin", False) else "no spinning"
    return (
        f"{p.get('processes')} processes per target x {p.get('rounds')} interleaved rounds of "
        f"{slice_ms:.0f} ms slices; {p.get('threads')} threads, {spin}, no thread pinned"
    )


def _protocol_markdown(report: BenchReport) -> list[str]:
    """report.md's protocol lines: the rule that decides a lead, the rounds' cost, each engine's threading."""
    p = report.protocol or {}
    if not p:
        return []
    lines = []
    if p.get("rule"):
        lines.append(f"- verdict rule: {p['rule']}")
    if p.get("wall_s") is not None:
        cost = f"- measuring took {p['wall_s']:.0f} s"
        if p.get("rounds_s") is not None:
            cost += f" ({p.get('setup_s', 0):.0f} s starting, loading and warming processes, {p['rounds_s']:.0f} s of rounds)"
        lines.append(cost)
    for engine, settings in (p.get("engines") or {}).items():
        lines.append(f"- {engine} threading: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    return lines


def _share(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _loadavg(state: dict[str, Any]) -> str:
    """The 1, 5 and 15 minute load averages as "1.74 1.76 1.87"."""
    load = state.get("loadavg")
    if not isinstance(load, (list, tuple)):
        return "-"
    return " ".join(_fmt(v, 2) for v in load)


def _verdict_lines(report: BenchReport) -> list[str]:
    if not report.verdict:
        return []
    drop = report.verdict[0]["max_drop_pts"]
    return [
        f"what to ship (fastest within {drop} accuracy points of the reference):",
        *format_verdict(report.verdict),
    ]


def _paired(v: dict[str, Any]) -> bool:
    """Whether a verdict cell was decided by its interval (the paired protocol) rather than by rounds."""
    return v.get("decided_by") == "interval"


def _peer_tie(v: dict[str, Any]) -> bool:
    """A peer fastest by p50 whose lead over edgefn's fastest own row is a tie."""
    if "peer_tie" in v and v["peer_tie"] is not None:
        return bool(v["peer_tie"])
    return v.get("peer_wins_every_round") is False


def _slower(v: dict[str, Any]) -> float | None:
    """How many times slower the runner-up is: the inverse of the cell's ratio (else of the p50s)."""
    if v.get("ratio"):
        return 1 / float(v["ratio"])
    r = v["runner_up"]
    return r["p50_ms"] / v["winner"]["p50_ms"] if r is not None and v["winner"]["p50_ms"] else None


def _interval(ratio: dict[str, Any] | None) -> str | None:
    """The interval of the other's time over the leader's as "1.04-1.10" (the inverse of leader / other)."""
    if not ratio or not ratio.get("ci_low") or not ratio.get("ci_high"):
        return None
    return f"{1 / ratio['ci_high']:.2f}-{1 / ratio['ci_low']:.2f}"


def format_verdict(verdict: list[dict[str, Any]]) -> list[str]:
    """One line per cell: what to ship, its MB and accuracy, the runner-up, how many times slower with the 99%
    interval, whether the lead is a tie, and whether a peer won."""
    lines = []
    for v in verdict:
        w, r = v["winner"], v["runner_up"]
        line = (
            f"{v['device']} {v['mode']} batch {v['batch_size']}: ship {_name(w)} "
            f"({w['p50_ms']:.3f} ms/sample, {_mb(w)}, accuracy {_pts(w)})"
        )
        if r is not None:
            slower, ci = _slower(v), _interval(v)
            line += f"; runner-up {_name(r)} {r['p50_ms']:.3f} ms ({_fmt(slower, 2)}x slower"
            line += f", {LEVEL} interval {ci}" if ci else ""
            if v.get("tie_with_runner_up"):
                line += ": a tie" if _paired(v) else _tie(v["rounds_faster_than_runner_up"])
            line += ")"
        line += _peer_sentence(v)
        if w["unreliable"] or (r is not None and r["unreliable"]):
            line += " [timing flagged: machine busy]"
        lines.append(line)
    return lines


def _peer_sentence(v: dict[str, Any]) -> str:
    if not v["peer_wins"]:
        return ""
    pv = v.get("peer_vs_edgefn")
    ci = _interval(pv)
    lead = f" ({1 / pv['ratio']:.2f}x, {LEVEL} interval {ci})" if pv and pv.get("ratio") and ci else ""
    if not _peer_tie(v):
        return f" -- a peer wins: edgefn's own variants are slower here{lead}"
    if _paired(v):
        text = f" -- a peer is fastest by p50, but its lead is a tie{lead}"
    else:
        text = f" -- a peer is fastest by p50, not in every round{_tie(v['rounds_peer_faster_than_edgefn'])}"
    own, r = v.get("fastest_own"), v["runner_up"]
    if own is None or own == r:
        return text + " against edgefn's fastest own row" + (" (the runner-up)" if own else "")
    return text + f" against edgefn's fastest own row, {_name(own)} {own['p50_ms']:.3f} ms"


def _short_name(c: dict[str, Any]) -> str:
    return f"{c['variant']}*" if c["peer"] else str(c["variant"])


def _cell(v: dict[str, Any], devices: int = 1) -> str:
    """A verdict cell as "fixed b1" ("cpu fixed b1" when the verdict covers several devices)."""
    name = f"{v['mode']} b{v['batch_size']}"
    return f"{v['device']} {name}" if devices > 1 else name


def _verdict_notes(v: dict[str, Any]) -> list[str]:
    w, r = v["winner"], v["runner_up"]
    notes = []
    if v.get("tie_with_runner_up"):
        rounds = v.get("rounds_faster_than_runner_up")
        notes.append(f"tie {rounds[0]}/{rounds[1]}" if rounds and not _paired(v) else "tie")
    if v["peer_wins"] and _peer_tie(v):
        rounds = v.get("rounds_peer_faster_than_edgefn")
        notes.append(
            f"peer ahead of edgefn {rounds[0]}/{rounds[1]}"
            if rounds and not _paired(v)
            else "peer lead a tie"
        )
    elif v["peer_wins"]:
        notes.append("peer wins")
    same = [name for name in (w.get("same_model") or {}) if name != w["variant"]]
    if same:
        notes.append("= " + ", ".join(same))
    if w["unreliable"] or (r is not None and r["unreliable"]):
        notes.append("busy!")
    return notes


def verdict_table(verdict: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]], list[str]]:
    """What to ship as a compact table (one row per device x input mode x batch size) and the lines that
    explain its marks; the full sentences stay in report.md (`format_verdict`)."""
    devices = len({v["device"] for v in verdict})
    header = ["case", "ship", "runtime", "ms", "MB", "acc", "Δacc pts", "runner-up", f"{LEVEL} CI", "notes"]
    rows: list[list[Any]] = []
    excluded: dict[str, None] = {}
    for v in verdict:
        w, r = v["winner"], v["runner_up"]
        runner = "-" if r is None else f"{_short_name(r)} {_fmt(_slower(v), 2)}x"
        delta = w.get("accuracy_delta_pts")
        rows.append(
            [
                _cell(v, devices),
                _short_name(w),
                runtime_label(w["provider"], w.get("precision")),
                f"{w['p50_ms']:.3f}",
                None if w["size_mb"] is None else f"{w['size_mb']:.1f}",
                None if w["accuracy"] is None else f"{w['accuracy']:.4f}",
                None if delta is None else _pts_cell(delta),
                runner,
                _interval(v) if r is not None else None,
                "; ".join(_verdict_notes(v)) or None,
            ]
        )
        excluded.update(dict.fromkeys(v.get("excluded_for_accuracy") or []))
    if not any(row[-1] for row in rows):  # no notes: no column
        header, rows = header[:-1], [row[:-1] for row in rows]
    drop = verdict[0]["max_drop_pts"] if verdict else None
    notes = [
        f"case: input mode and batch size; ship: the fastest row within {drop} accuracy points of the reference; "
        f"ms: p50 per text; runner-up: how many times slower (the median of the per-round ratios); {LEVEL} CI: its "
        "interval; * a peer",
    ]
    if header[-1] == "notes":
        paired = any(_paired(v) for v in verdict)
        tie = (
            "tie: the interval holds 1, the lead is not shown to be real"
            if paired
            else "tie k/n: the lead held in k of n interleaved rounds only"
        )
        notes.append(
            f"{tie}; = peer X: the same model file ran as peer X, timed as the mean of both; busy!: timing flagged"
        )
    if excluded:
        notes.append(f"left out, more than {drop} points below the reference: {', '.join(excluded)}")
    return header, rows, notes


def _ship_entries(verdict: list[dict[str, Any]]) -> list[str]:
    """Each winning row and the cases it wins: "int8-dynamic (onnxruntime cpu) at batch 1, 8, 32, fixed and
    real lengths", or "ov-bf16 (openvino cpu bf16) at fixed b8; real b8, b32" when several rows win."""
    devices = len({v["device"] for v in verdict})
    wins: dict[str, list[dict[str, Any]]] = {}
    for v in verdict:
        w = v["winner"]
        name = f"{'peer ' if w['peer'] else ''}{w['variant']} ({runtime_label(w['provider'], w.get('precision'))})"
        wins.setdefault(name, []).append(v)
    entries = []
    for name, cells in wins.items():
        if len(wins) == 1 and devices == 1:
            batches = ", ".join(dict.fromkeys(str(v["batch_size"]) for v in cells))
            modes = " and ".join(dict.fromkeys(v["mode"] for v in cells))
            where = f"batch {batches}, {modes} lengths" if "and" in modes else f"batch {batches} ({modes})"
        else:
            groups: dict[str, list[str]] = {}
            for v in cells:
                prefix = f"{v['device']} {v['mode']}" if devices > 1 else v["mode"]
                groups.setdefault(prefix, []).append(f"b{v['batch_size']}")
            where = "; ".join(f"{prefix} {', '.join(batches)}" for prefix, batches in groups.items())
        entries.append(f"{name} at {where}")
    return entries


def ship_lines(verdict: list[dict[str, Any]]) -> list[str]:
    """What to ship in a line or a few, within the console width: "ship: " and each winning row with the
    cases it wins, one per line."""
    lines: list[str] = []
    for entry in _ship_entries(verdict):
        lines += wrap(("ship: " if not lines else "      ") + entry, more="      ")
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


def _markdown_verdict(report: BenchReport) -> list[str]:
    """report.md's verdict: the ship line(s), the compact table, and each cell in full."""
    if not report.verdict:
        return ["No row had both an accuracy and a latency: nothing to rank.", ""]
    header, rows, notes = verdict_table(report.verdict)
    return [
        *[f"- **ship** {entry}" for entry in _ship_entries(report.verdict)],
        "",
        markdown_table(header, rows),
        "",
        *[f"- {n}" for n in notes],
        "",
        "In full:",
        "",
        *[f"- {line}" for line in _verdict_lines(report)[1:]],
        "",
    ]


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
        *_protocol_markdown(report),
        "",
        "## What to ship",
        "",
        *_markdown_verdict(report),
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
    """The terminal summary: the table (wrapped to the console width), rows that did not run, the machine
    line, what to ship as a table and the ship line(s). No line is wider than CONSOLE_WIDTH."""
    lines = text_table(*_summary_rows(report, console=True))
    extra = [
        f"p50 ms per text (fixed: batch x {report.config['seq_len']} tokens; real: the test texts); "
        f"reference {report.reference}; {report.config['threads']} threads; * a peer; ! timing flagged",
    ]
    extra += [
        f"{r.variant} on {r.provider}: {r.status}: {r.reason}" for r in report.results if r.status != "ok"
    ]
    extra += [f"note: {n}" for n in report.notes if "did not run on" in n]
    extra += _trust_lines(report)
    if report.verdict:
        header, rows, notes = verdict_table(report.verdict)
        extra += ["", "what to ship"]
        extra += text_table(header, rows) + notes + ["", *ship_lines(report.verdict)]
    wrapped = [w for line in extra for w in wrap(line)]
    return "\n".join(lines + wrapped)
