"""Compare the latencies of interleaved `architectures.py --stage bench` runs of two code versions (A/B).

    python benchmarks/ab_compare.py --slot minilm --a old:/tmp/ab/res-old-1,/tmp/ab/res-old-2 \
        --b new:/tmp/ab/res-new-1,/tmp/ab/res-new-2 --out benchmarks/results/consolidation_ab

Each side lists the --results-dir of its runs, which were made alternately (A B A B) on one machine with
the same run folder. Per row (engine x input mode x batch size) it reports each run's per-sample p50, the
median per side, and the ratio B / A: 1.00 means the same speed, above 1 that B is slower.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from common import command_line, now

from edgefn import runs
from edgefn.bench.report import markdown_table
from edgefn.core.environment import describe_cpu


def load_side(spec: str, slot: str) -> tuple[str, list[dict[str, Any]]]:
    """`name:dir1,dir2` -> (name, the slot's bench record of each run)."""
    name, _, dirs = spec.partition(":")
    out = []
    for d in dirs.split(","):
        data = runs.read_json(Path(d) / "architectures.json")
        (record,) = [s for s in data["slots"] if s["slot"] == slot]
        out.append({"bench": record["bench"], "started": data["started"], "machine": data["machine"]})
    return name, out


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per engine x mode x batch: every run's p50, each side's median, and B / A."""
    rows = []
    for variant, row in a[0]["bench"]["rows"].items():
        for key in row["latency"]:
            pa = [r["bench"]["rows"][variant]["latency"][key]["per_sample_p50_ms"] for r in a]
            pb = [r["bench"]["rows"][variant]["latency"][key]["per_sample_p50_ms"] for r in b]
            ma, mb = statistics.median(pa), statistics.median(pb)
            rows.append(
                {"variant": variant, "measure": key, "a_ms": pa, "b_ms": pb, "ratio_b_over_a": mb / ma}
            )
    return rows


def ratio_summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median, least and greatest B / A ratio over the compared rows."""
    ratios = [r["ratio_b_over_a"] for r in rows]
    return {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def ratio_table(rows: list[dict[str, Any]], name_a: str, name_b: str) -> str:
    """The Markdown table of compared rows: every run's p50 per side and the ratio of the medians."""
    header = [
        "engine",
        "measure",
        f"{name_a} p50 ms (runs)",
        f"{name_b} p50 ms (runs)",
        f"{name_b} / {name_a}",
    ]
    table = [
        [
            r["variant"],
            r["measure"],
            " / ".join(f"{v:.2f}" for v in r["a_ms"]),
            " / ".join(f"{v:.2f}" for v in r["b_ms"]),
            f"{r['ratio_b_over_a']:.2f}",
        ]
        for r in rows
    ]
    return markdown_table(header, table)


def main() -> None:
    """Read both sides, compare, write JSON + Markdown."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slot", default="minilm")
    p.add_argument("--a", required=True, help="name:results_dir,results_dir,...")
    p.add_argument("--b", required=True, help="name:results_dir,results_dir,...")
    p.add_argument("--out", type=Path, required=True, help="output path without suffix")
    args = p.parse_args()
    (name_a, a), (name_b, b) = load_side(args.a, args.slot), load_side(args.b, args.slot)
    rows = compare(a, b)
    out = {
        "command": command_line(),
        "written": now(),
        "sides": {name_a: [r["started"] for r in a], name_b: [r["started"] for r in b]},
        "machine": a[0]["machine"],
        "rows": rows,
        **ratio_summary(rows),
    }
    runs.write_json(args.out.with_suffix(".json"), out)
    cpu = out["machine"]["cpu"]
    text = [
        f"# {name_b} vs {name_a}: {args.slot} latency, interleaved runs",
        "",
        f"- CPU: {describe_cpu(cpu)}; threads: {a[0]['bench']['threads']}",
        f"- runs in order: {', '.join(f'{name_a} {t}' for t in out['sides'][name_a])}; "
        f"{', '.join(f'{name_b} {t}' for t in out['sides'][name_b])} (alternating)",
        f"- per-sample p50; ratio = median {name_b} / median {name_a}: median {out['ratio_median']:.2f}, "
        f"range {out['ratio_min']:.2f}-{out['ratio_max']:.2f}",
        "",
        ratio_table(rows, name_a, name_b),
        "",
        f"Command: `{out['command']}`",
    ]
    args.out.with_suffix(".md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text))


if __name__ == "__main__":
    main()
