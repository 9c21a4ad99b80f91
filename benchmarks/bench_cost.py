"""What the paired protocol costs: one run's default `edgefn bench` (every variant, PyTorch, every peer) timed
by the legacy protocol and by the paired one, back to back on one quiet machine.

Usage (the committed results):
    HF_HUB_OFFLINE=1 python benchmarks/bench_cost.py --run artifacts/minilm-bench --threads 2

The legacy protocol is bench before issue 25 (3 rounds, a fresh process per target and round); the paired one is
today's default (24 short rounds in 4 processes per target). Both run bench() whole, with the same settings
otherwise (the MatMul peak probe included), into RUN/bench-legacy and RUN/bench-paired; the peers are built (or
reused) under RUN/peers before the first timed run, so neither run pays for building them. The order alternates
with --repeat (legacy, paired, paired, legacy, ...). Writes results/bench-cost.{json,md}: each run's wall
seconds, rows, flagged rows and verdict ties, and the paired / legacy wall ratio against the issue's 1.5x.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from common import RESULTS, write_measurement

from edgefn.runs import RunFolder

MAX_COST = 1.5  # issue 25: the default bench takes no more than 1.5x the legacy wall time
PROTOCOLS = {"legacy": {"protocol": "legacy", "rounds": 3}, "paired": {}}


def order(repeat: int) -> list[str]:
    """Legacy and paired alternately, each pair reversed from the one before (ABBA...)."""
    pairs = [("legacy", "paired") if i % 2 == 0 else ("paired", "legacy") for i in range(repeat)]
    return [name for pair in pairs for name in pair]


def build_peers(run: Path) -> None:
    """Every peer of the run built (or reused) as bench builds them, outside the timed runs."""
    from edgefn.bench.targets import peer_targets
    from edgefn.export import quantize
    from edgefn.runtime import engines

    peer_targets(RunFolder(run), tuple(engines.peers()), ("cpu",), quantize.detect_target(), print)


def run_bench(run: Path, name: str, threads: int | None) -> dict[str, Any]:
    """One whole default bench of `run` by protocol `name`: its wall seconds and what it decided."""
    from edgefn.bench.benchmark import BenchConfig, bench

    cfg = BenchConfig(run_dir=run, out_dir=run / f"bench-{name}", threads=threads, **PROTOCOLS[name])
    start = time.monotonic()
    report = bench(cfg, progress=print)
    wall = time.monotonic() - start
    assessment = report.machine.get("assessment", {})
    return {
        "protocol": name,
        "wall_s": wall,
        "rows": len(report.results),
        "timed_cells": sum(len(r.measurements) for r in report.results),
        "targets": sorted({r.variant for r in report.results}),
        "measuring_s": report.protocol.get("seconds"),
        "flagged": len(assessment.get("flagged", [])),
        "unreliable": assessment.get("unreliable"),
        "verdict_cells": len(report.verdict),
        "ties": sum(bool(c.get("tie_with_runner_up")) for c in report.verdict),
        "load_before_after": [
            report.machine.get("before", {}).get("loadavg"),
            report.machine.get("after", {}).get("loadavg"),
        ],
    }


def format_table(runs_done: list[dict[str, Any]]) -> str:
    from edgefn.bench.report import markdown_table

    rows = [
        [
            str(i + 1),
            r["protocol"],
            f"{r['wall_s']:.0f}",
            str(r["rows"]),
            f"{r['flagged']} of {r['timed_cells']}",
            "yes" if r["unreliable"] else "no",
            f"{r['ties']} of {r['verdict_cells']}",
        ]
        for i, r in enumerate(runs_done)
    ]
    return markdown_table(
        ["#", "protocol", "wall s", "targets", "flagged timings", "unreliable", "verdict ties"], rows
    )


def main() -> None:
    from edgefn.bench import noise

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="an exported run folder")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="legacy/paired pairs, alternating order")
    parser.add_argument("--results-dir", dest="results", type=Path, default=RESULTS)
    args = parser.parse_args()
    RunFolder(args.run).require_complete()
    build_peers(args.run)
    before = noise.machine_state()
    done = [run_bench(args.run, name, args.threads) for name in order(args.repeat)]
    after = noise.machine_state()
    walls = {name: sum(r["wall_s"] for r in done if r["protocol"] == name) for name in PROTOCOLS}
    cost = walls["paired"] / walls["legacy"]
    record = {
        "run": str(args.run),
        "threads": args.threads,
        "runs": done,
        "wall_paired_over_legacy": cost,
        "target": MAX_COST,
        "met": cost <= MAX_COST,
        "machine": {"before": before, "after": after},
    }
    setup = (
        f"run {args.run.name}, {args.threads or 'all'} threads, default bench (every variant, PyTorch, every "
        f"peer, batch 1/8/32, fixed and real lengths); wall paired / legacy = {cost:.2f}x (target <= "
        f"{MAX_COST}x: {'met' if cost <= MAX_COST else 'NOT met'})"
    )
    print(
        write_measurement(
            args.results,
            "bench-cost",
            record,
            "Wall time of the default bench: legacy vs paired protocol",
            setup,
            format_table(done),
        )
    )


if __name__ == "__main__":
    main()
