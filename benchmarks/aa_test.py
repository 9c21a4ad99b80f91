"""A/A test of bench's timing protocols: one model file entered twice under two names, before and after issue 25.

Usage (the committed results; nothing else of the project running):
    HF_HUB_OFFLINE=1 python benchmarks/aa_test.py --run artifacts/minilm-bench
    HF_HUB_OFFLINE=1 python benchmarks/aa_test.py --run RUN --quick --results-dir /tmp/aa   # a smoke test

The run is copied under --work (its checkpoint, data and ONNX variants) and ov-int8 exported there when missing.
int8-dynamic and ov-int8 each enter bench twice (`<variant>/a`, `<variant>/b`: the same folder), interleaved as in a
real bench (a, then the other variant's a, then the b's), at fixed 128 tokens and real lengths, batch 1 / 8 / 32:
once by the legacy protocol (3 rounds, a fresh process per target and round, the round-count tie rule: the
"before") and once by the paired protocol (bench's default: the "after"). Per cell: one name's p50 over the
other's, the verdict's interval of the two and whether it calls the pair a tie. Then where the spread comes from,
measured with the same code: between vs within processes (from the after run), ONNX Runtime / OpenVINO / PyTorch
spinning on, and four long rounds in place of many short ones. Writes benchmarks/results/aa.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import RESULTS, command_line, now

from edgefn import runs
from edgefn.bench.report import markdown_table
from edgefn.runs import RunFolder

VARIANTS = ("int8-dynamic", "ov-int8")
BATCHES = (1, 8, 32)
AGREE = 0.05  # two timings of one file agree when their p50s are within 5%
TARGET_AGREE, TARGET_TIES = 0.90, 0.95  # issue 25's "done when"
MAX_COST = 1.5  # the paired protocol's wall time over the legacy one's


def prepare_run(source: Path, work: Path, threads: int, say: Any) -> tuple[Path, list[str]]:
    """A copy of the run under `work` (never the source) with int8-dynamic and ov-int8; the variants it has."""
    from edgefn.engines.openvino import openvino_available
    from edgefn.export.exporter import ExportConfig, export

    run = work / source.name
    if not run.is_dir():
        shutil.copytree(source, run, ignore=shutil.ignore_patterns("bench", "peers", "package", "eval"))
    have = RunFolder(run).variant_names()
    missing = [v for v in VARIANTS if v not in have and (v != "ov-int8" or openvino_available() is None)]
    if missing:
        say(f"exporting {', '.join(missing)} into {run}")
        export(
            ExportConfig(run_dir=run, schemes=tuple(missing), eval_samples=128, threads=threads), progress=say
        )
    return run, [v for v in VARIANTS if v in RunFolder(run).variant_names()]


def twin_targets(run: Path, variants: list[str]) -> list[Any]:
    """Each variant twice, as bench plans it: all the a's, then all the b's (a real bench puts the peer that is
    the same file as a variant after the variants)."""
    from edgefn.bench.targets import plan_targets, select_variants

    chosen = select_variants(RunFolder(run), tuple(variants), include_pytorch=False)
    twins = {f"{v}/{side}": chosen[v] for side in ("a", "b") for v in variants}
    return plan_targets(twins, ("cpu",))


def measure(run: Path, targets: list[Any], cfg: Any, say: Any) -> dict[str, Any]:
    """Bench's own measuring of the targets by `cfg.protocol`: the rows (flags set as bench sets them), the
    protocol's record, the machine block and the wall seconds."""
    from edgefn.bench import noise
    from edgefn.bench.benchmark import resolve_lengths
    from edgefn.bench.protocol import assess_timings, measure_targets
    from edgefn.bench.rounds import result_of

    folder = RunFolder(run)
    cfg = resolve_lengths(cfg, folder.max_length(0) or None)
    texts = folder.read_split("test").texts[: cfg.samples]
    threads = cfg.threads or 1
    before = noise.machine_state()
    start = time.monotonic()
    measured, protocol = measure_targets(targets, cfg, texts, cfg.max_length or 128, threads, say)
    wall = time.monotonic() - start
    after = noise.machine_state()
    results = [result_of(t, measured[i], None, {}) for i, t in enumerate(targets)]
    machine = assess_timings(results, protocol, before, after)
    return {"results": results, "protocol": protocol, "machine": machine, "wall_s": wall}


def _twins(run_out: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """(variant, its /a measurement, its /b measurement) of every cell both names measured."""
    rows = {r.variant: r for r in run_out["results"] if r.status == "ok"}
    for variant in VARIANTS:
        a, b = rows.get(f"{variant}/a"), rows.get(f"{variant}/b")
        if a is None or b is None:
            continue
        found = {(m.mode, m.batch_size): m for m in b.measurements}
        for m in a.measurements:
            n = found.get((m.mode, m.batch_size))
            if n is not None:
                yield variant, m, n


def aa_cells(run_out: dict[str, Any]) -> list[dict[str, Any]]:
    """One cell per variant, input mode and batch size: name a's p50 over name b's, the verdict's ratio and
    interval of the two (paired by round) and whether its rule calls them a tie."""
    from edgefn.bench.verdict import compare

    protocol = run_out["protocol"]
    legacy = protocol["name"] == "legacy"
    groups = _groups(protocol)
    cells = []
    for variant, m, n in _twins(run_out):
        side = [{"p50_ms": x.latency.p50_ms, "round_p50_ms": x.round_p50_ms} for x in (m, n)]
        c = compare(side[0], side[1], groups, legacy)
        ratio_p50 = m.latency.p50_ms / n.latency.p50_ms
        cells.append(
            {
                "variant": variant,
                "shape": m.mode,
                "batch": m.batch_size,
                "p50_a_ms": m.latency.p50_ms,
                "p50_b_ms": n.latency.p50_ms,
                "ratio_p50": ratio_p50,
                "ratio_rounds": c["ratio"],
                "ci_low": c["ci_low"],
                "ci_high": c["ci_high"],
                "called_tie": bool(c["tie"]),
                "rounds_a_faster": c["rounds_faster"],
                "within_5pct": abs(ratio_p50 - 1) <= AGREE,
                "flagged": bool(m.flags or n.flags),
                "noise_a": m.noise if not legacy else m.spread,
                "noise_b": n.noise if not legacy else n.spread,
            }
        )
    return cells


def _groups(protocol: dict[str, Any]) -> list[int]:
    from edgefn.bench.stats import round_groups

    if protocol["name"] == "legacy":
        return list(range(protocol["rounds"]))
    return round_groups(protocol["rounds"], protocol["processes"])


def summarize(run_out: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    """A protocol's record: its cells, how many agree within 5% and are called ties, its flags and cost."""
    n = len(cells)
    assessment = run_out["machine"]["assessment"]
    protocol = {k: v for k, v in run_out["protocol"].items() if k not in ("round_other_cores", "round_steal")}
    return {
        "protocol": protocol,
        "wall_s": run_out["wall_s"],
        "cells": cells,
        "summary": {
            "cells": n,
            "within_5pct": sum(c["within_5pct"] for c in cells),
            "ties": sum(c["called_tie"] for c in cells),
            "share_within_5pct": sum(c["within_5pct"] for c in cells) / n if n else None,
            # the verdict's own estimator: the median of the per-round ratios (paired by round)
            "share_rounds_within_5pct": (
                sum(
                    abs(math.log(c["ratio_rounds"])) <= math.log(1.05) for c in cells if c.get("ratio_rounds")
                )
                / n
                if n
                else None
            ),
            "share_ties": sum(c["called_tie"] for c in cells) / n if n else None,
            "max_abs_log_ratio_p50": max((abs(math.log(c["ratio_p50"])) for c in cells), default=None),
            "cells_flagged": sum(c["flagged"] for c in cells),
            "unreliable": assessment["unreliable"],
            "reasons": assessment["reasons"],
        },
        "machine": run_out["machine"],
    }


def decomposition(
    after: dict[str, Any], spin_on: dict[str, Any], long_rounds: dict[str, Any]
) -> dict[str, Any]:
    """Where the spread comes from: per A/A cell of the after run, the robust standard deviation of the per-round
    log ratio within a process and the standard deviation of the processes' offsets; the same of one row alone
    (unpaired: the machine's common slow-downs included); spinning on and long rounds against the after run."""
    from edgefn.bench.stats import between_variance, dispersion

    groups = _groups(after["protocol"])
    per_cell = []
    for variant, m, n in _twins(after):
        if len(m.round_p50_ms) != len(n.round_p50_ms):
            continue
        logs = [math.log(x / y) for x, y in zip(m.round_p50_ms, n.round_p50_ms)]
        alone = [math.log(x) for x in m.round_p50_ms]
        per_cell.append(
            {
                "variant": variant,
                "shape": m.mode,
                "batch": m.batch_size,
                "paired_within_process": dispersion(m.round_p50_ms, n.round_p50_ms, groups),
                "paired_between_processes": _sd_between(logs, groups, between_variance),
                "row_within_process": dispersion(m.round_p50_ms, [1.0] * len(m.round_p50_ms), groups),
                "row_between_processes": _sd_between(alone, groups, between_variance),
            }
        )
    keys = (
        "paired_within_process",
        "paired_between_processes",
        "row_within_process",
        "row_between_processes",
    )
    return {
        "method": (
            "per A/A cell of the after run: within = robust SD (1.4826 MAD) of the per-round log ratio a/b around "
            "each process's median; between = SD of the processes' offsets (one-way ANOVA, rounds clipped at 3 "
            "robust SDs); 'row' = the same of name a's own per-round times (unpaired: the machine's common "
            "slow-downs included)"
        ),
        "cells": per_cell,
        "median": {k: _median([c[k] for c in per_cell]) for k in keys},
        "spin": _setting_effect(
            after, spin_on, "spinning on (ONNX Runtime allow_spinning 1, OpenMP default)"
        ),
        "round_length": _setting_effect(
            after,
            long_rounds,
            f"{long_rounds['protocol']['rounds']} long rounds in place of "
            f"{after['protocol']['rounds']} short ones (the same measuring time)",
        ),
    }


def _sd_between(values: list[float], groups: list[int], between_variance: Any) -> float | None:
    import numpy as np

    by: dict[int, list[float]] = {}
    for v, g in zip(values, groups):
        by.setdefault(g, []).append(v)
    if len(by) < 2:
        return None
    return math.expm1(math.sqrt(between_variance([np.array(v) for v in by.values()])))


def _median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _setting_effect(base: dict[str, Any], other: dict[str, Any], what: str) -> dict[str, Any]:
    """`other`'s A/A agreement and ties beside `base`'s, and how much slower or faster its rows ran."""
    base_p50 = {
        (r.variant, m.mode, m.batch_size): m.latency.p50_ms for r in base["results"] for m in r.measurements
    }
    change = [
        m.latency.p50_ms / base_p50[key]
        for r in other["results"]
        for m in r.measurements
        if (key := (r.variant, m.mode, m.batch_size)) in base_p50 and r.variant.endswith("/a")
    ]
    cells = aa_cells(other)
    return {
        "what": what,
        "summary": summarize(other, cells)["summary"],
        "cells": cells,
        "median_p50_vs_default": _median(change),
        "wall_s": other["wall_s"],
    }


def criteria(record: dict[str, Any]) -> dict[str, Any]:
    """Issue 25's targets from the after run; the cost from both runs."""
    after, before = record["after"]["summary"], record["before"]["summary"]
    cost = record["after"]["wall_s"] / record["before"]["wall_s"] if record["before"]["wall_s"] else None
    return {
        "agree_within_5pct": after["share_within_5pct"],
        "agree_target": TARGET_AGREE,
        "agree_met": after["share_within_5pct"] is not None and after["share_within_5pct"] >= TARGET_AGREE,
        "aa_ties": after["share_ties"],
        "aa_ties_target": TARGET_TIES,
        "aa_ties_met": after["share_ties"] is not None and after["share_ties"] >= TARGET_TIES,
        "before_agree_within_5pct": before["share_within_5pct"],
        "agree_within_5pct_median_of_round_ratios": after["share_rounds_within_5pct"],
        "before_aa_ties": before["share_ties"],
        "wall_after_over_before": cost,
        "wall_target": MAX_COST,
        "wall_met": cost is not None and cost <= MAX_COST,
        "quiet_run_not_unreliable": not record["after"]["summary"]["unreliable"],
    }


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def cell_rows(cells: list[dict[str, Any]]) -> list[list[Any]]:
    """The Markdown rows of a protocol's cells."""
    rows = []
    for c in cells:
        interval = f"{_fmt(c['ci_low'])}-{_fmt(c['ci_high'])}" if c["ci_low"] is not None else "-"
        rounds = c["rounds_a_faster"]
        rows.append(
            [
                c["variant"],
                c["shape"],
                c["batch"],
                _fmt(c["p50_a_ms"]),
                _fmt(c["p50_b_ms"]),
                _fmt(c["ratio_p50"]),
                interval,
                f"{rounds[0]}/{rounds[1]}" if rounds else "-",
                "tie" if c["called_tie"] else "LEAD",
                "yes" if c["within_5pct"] else "NO",
            ]
        )
    return rows


def format_markdown(record: dict[str, Any]) -> str:
    """aa.md: the setup, each protocol's cells and summary, the decomposition and the targets."""
    header = [
        "variant",
        "shape",
        "batch",
        "a p50 ms",
        "b p50 ms",
        "a/b p50",
        "interval",
        "a faster",
        "call",
        "<=5%",
    ]
    crit = record["criteria"]
    lines = [
        "# A/A: one model file timed twice in one bench, before and after issue 25",
        "",
        f"Command: `{record['command']}` ({record['finished']}); CPU {record['cpu_description']}; "
        f"{record['settings']['threads']} threads; {record['settings']['samples']} test texts; steal "
        f"{_share(record['machine']['steal_fraction'])} of the CPU time over the whole script.",
        "",
    ]
    for key, title in (("before", "Before: the legacy protocol"), ("after", "After: the paired protocol")):
        part = record[key]
        s = part["summary"]
        lines += [
            f"## {title}",
            "",
            f"{_describe(part['protocol'])}; {part['wall_s']:.0f} s. Within 5%: {s['within_5pct']} of {s['cells']} "
            f"cells; called a tie: {s['ties']} of {s['cells']}; cells flagged: {s['cells_flagged']}; "
            + ("UNRELIABLE: " + "; ".join(s["reasons"]) if s["unreliable"] else "not flagged unreliable")
            + ".",
            "",
            markdown_table(header, cell_rows(part["cells"])),
            "",
        ]
    d = record["decomposition"]
    med = d["median"]
    lines += [
        "## Where the spread comes from",
        "",
        f"Method: {d['method']}.",
        "",
        markdown_table(
            ["", "within a process (round to round)", "between processes"],
            [
                [
                    "A/A ratio (paired)",
                    _share(med["paired_within_process"]),
                    _share(med["paired_between_processes"]),
                ],
                ["one row alone", _share(med["row_within_process"]), _share(med["row_between_processes"])],
            ],
        ),
        "",
    ]
    for key in ("spin", "round_length"):
        e = d[key]
        s = e["summary"]
        lines.append(
            f"- {e['what']}: within 5% {s['within_5pct']} of {s['cells']}, ties {s['ties']} of {s['cells']}; "
            f"p50 {_fmt(e['median_p50_vs_default'], '.3f')}x the default's (median); {e['wall_s']:.0f} s"
        )
    lines += [
        "",
        "## Targets (issue 25)",
        "",
        f"- two timings of one file within 5% at p50: {_share(crit['agree_within_5pct'])} of cells (target "
        f">= {crit['agree_target']:.0%}; before {_share(crit['before_agree_within_5pct'])}): "
        f"{'met' if crit['agree_met'] else 'NOT met'}",
        f"- the same, by the verdict's estimator (the median of the per-round ratios): "
        f"{_share(crit['agree_within_5pct_median_of_round_ratios'])} of cells",
        f"- A/A called a tie: {_share(crit['aa_ties'])} of cells (target >= {crit['aa_ties_target']:.0%}; before "
        f"{_share(crit['before_aa_ties'])}): {'met' if crit['aa_ties_met'] else 'NOT met'}",
        f"- wall time, paired over legacy on these targets: {_fmt(crit['wall_after_over_before'], '.2f')}x "
        f"(target <= {crit['wall_target']}x): {'met' if crit['wall_met'] else 'NOT met'}",
        f"- the paired run {'is not' if crit['quiet_run_not_unreliable'] else 'IS'} flagged unreliable",
        "",
    ]
    return "\n".join(lines)


def _share(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _describe(protocol: dict[str, Any]) -> str:
    if protocol["name"] == "legacy":
        return f"{protocol['rounds']} rounds, a fresh process per target and round, the round-count tie rule"
    return (
        f"{protocol['processes']} processes per target x {protocol['rounds']} interleaved rounds of "
        f"{1000 * protocol['slice_s']:.0f} ms slices, the interval tie rule"
    )


def main() -> None:
    from edgefn.bench import noise
    from edgefn.bench.benchmark import LEGACY_ROUNDS, BenchConfig
    from edgefn.core.environment import cpu_info, describe_cpu, library_versions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run folder with its checkpoint and data")
    parser.add_argument("--work", type=Path, default=Path("artifacts/aa"), help="where the run is copied")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=None, help="test texts (default: all)")
    parser.add_argument("--min-time", type=float, default=1.0, help="bench's --min-time (its default)")
    parser.add_argument("--seq-len", type=int, default=None, help="fixed-shape length (default: the run's)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: batch 1 and 8, short and few rounds"
    )
    parser.add_argument("--results-dir", dest="results", type=Path, default=RESULTS)
    args = parser.parse_args()
    start = time.monotonic()
    args.work.mkdir(parents=True, exist_ok=True)
    run, variants = prepare_run(args.run, args.work, args.threads, print)
    targets = twin_targets(run, variants)
    batches = (1, 8) if args.quick else BATCHES
    common = dict(
        batch_sizes=batches,
        seq_len=args.seq_len,
        samples=args.samples,
        min_time_s=0.05 if args.quick else args.min_time,
        threads=args.threads,
        peers=(),
        peak_probe=False,
    )
    paired = {"rounds": 6, "processes": 2} if args.quick else {}  # else bench's defaults
    rounds = 2 if args.quick else LEGACY_ROUNDS
    first = noise.machine_state()
    runs_out = {}
    for name, cfg in (
        ("before", BenchConfig(protocol="legacy", rounds=rounds, **common)),
        ("after", BenchConfig(**paired, **common)),
        ("spin_on", BenchConfig(**paired, spin=True, **common)),
        ("long_rounds", BenchConfig(rounds=paired.get("processes", 4), **common)),
    ):
        print(f"== {name}: {cfg.protocol} protocol ==")
        runs_out[name] = measure(run, targets, cfg, print)
    last = noise.machine_state()
    cpu = cpu_info()
    record: dict[str, Any] = {
        "command": command_line(),
        "finished": now(),
        "cpu": {"model": cpu.get("model"), "flags": cpu.get("flags")},
        "cpu_description": describe_cpu(cpu),
        "versions": library_versions(),
        "settings": {
            "run": str(args.run),
            "variants": variants,
            "batches": batches,
            "threads": args.threads,
            "samples": args.samples or "all",
            "min_time_s": common["min_time_s"],
            "quick": args.quick,
        },
        "machine": {
            "before": first,
            "after": last,
            "steal_fraction": noise.steal_fraction(first.get("cpu_times"), last.get("cpu_times")),
        },
        "before": summarize(runs_out["before"], aa_cells(runs_out["before"])),
        "after": summarize(runs_out["after"], aa_cells(runs_out["after"])),
        "decomposition": decomposition(runs_out["after"], runs_out["spin_on"], runs_out["long_rounds"]),
        "seconds": time.monotonic() - start,
    }
    record["criteria"] = criteria(record)
    args.results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(runs.to_jsonable(record), indent=2) + "\n"
    (args.results / "aa.json").write_text(text, encoding="utf-8")
    (args.results / "aa.md").write_text(format_markdown(record), encoding="utf-8")
    print(format_markdown(record))


if __name__ == "__main__":
    main()
