"""Latency of one run benchmarked by two code versions, alternating (A B A B ...): did a refactor change speed?

Each side is a checkout of edgefn (its `edgefn/` imported through PYTHONPATH) and the `edgefn bench` arguments
that version takes (flags were renamed between versions). Both bench the same run folder, one after the other, in
fresh processes; after each bench the run's report.json is kept. Per variant x input mode x batch size the
Markdown gives every run's per-sample p50, each side's median and the ratio B / A (1.00: the same speed).

    python benchmarks/layout_ab.py --run artifacts/minilm-bench --pairs 2 \
        --a "before:/work/ab-before:--samples 300" --b "after:.:--max-test-samples 300" \
        --out benchmarks/results/layout_ab
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ab_compare import ratio_summary, ratio_table
from common import command_line, now

from edgefn.core.environment import cpu_info, describe_cpu

COMMON = [
    "--peers",
    "none",
    "--rounds",
    "1",
    "--min-time",
    "0.5",
    "--batch-sizes",
    "1,8,32",
    "--providers",
    "cpu",
]


def parse_side(spec: str) -> tuple[str, Path, list[str]]:
    """`name:checkout:extra args` -> (name, checkout folder, args)."""
    name, checkout, extra = spec.split(":", 2)
    return name, Path(checkout).resolve(), shlex.split(extra)


def bench_once(checkout: Path, run: Path, extra: list[str], keep: Path) -> dict[str, Any]:
    """One `python -m edgefn.cli bench` of `checkout` on `run`; its report.json copied to `keep`."""
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [sys.executable, "-m", "edgefn.cli", "bench", "--run-dir", str(run), *COMMON, *extra]
    subprocess.run(cmd, env=env, cwd=tempfile.gettempdir(), check=True, stdout=subprocess.DEVNULL)
    shutil.copyfile(run / "bench" / "report.json", keep)
    return json.loads(keep.read_text(encoding="utf-8"))


def p50s(report: dict[str, Any]) -> dict[tuple[str, str, int], float]:
    """Per-sample p50 (ms) by (variant, mode, batch size) of the rows that ran."""
    out = {}
    for r in report["results"]:
        if r.get("status") != "ok":
            continue
        for m in r.get("measurements") or []:
            out[(r["variant"], m["mode"], m["batch_size"])] = m["latency"]["p50_ms"]
    return out


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant x mode x batch measured on both sides."""
    pa, pb = [p50s(r) for r in a], [p50s(r) for r in b]
    keys = [k for k in pa[0] if all(k in p for p in pa + pb)]
    rows = []
    for key in keys:
        xa, xb = [p[key] for p in pa], [p[key] for p in pb]
        rows.append(
            {
                "variant": key[0],
                "measure": f"{key[1]}-b{key[2]}",
                "a_ms": xa,
                "b_ms": xb,
                "ratio_b_over_a": statistics.median(xb) / statistics.median(xa),
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="the run folder both versions bench")
    p.add_argument("--a", required=True, help="name:checkout:extra bench args (the version before)")
    p.add_argument("--b", required=True, help="name:checkout:extra bench args (the version after)")
    p.add_argument("--pairs", type=int, default=2, help="A B pairs, the order flipping each pair")
    p.add_argument("--out", type=Path, required=True, help="output path without suffix")
    args = p.parse_args()
    sides = [parse_side(args.a), parse_side(args.b)]
    reports: dict[str, list[dict[str, Any]]] = {sides[0][0]: [], sides[1][0]: []}
    order: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            for name, checkout, extra in sides if i % 2 == 0 else sides[::-1]:
                print(f"pair {i + 1}: {name}", flush=True)
                reports[name].append(
                    bench_once(checkout, args.run.resolve(), extra, Path(tmp) / f"{name}-{i}.json")
                )
                order.append(f"{name} {now()}")
    (name_a, _, _), (name_b, _, _) = sides
    rows = compare(reports[name_a], reports[name_b])
    record = {
        "command": command_line(),
        "written": now(),
        "cpu": describe_cpu(cpu_info()),
        "bench_args": COMMON,
        "order": order,
        "rows": rows,
        **ratio_summary(rows),
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# {name_b} vs {name_a}: latency of one run, alternating benches",
        "",
        f"- Command: `{record['command']}`",
        f"- CPU: {record['cpu']}; `edgefn bench {' '.join(COMMON)}` and each side's own arguments",
        f"- runs in order: {', '.join(order)}",
        f"- per-sample p50; ratio = median {name_b} / median {name_a}: median {record['ratio_median']:.2f}, "
        f"range {record['ratio_min']:.2f}-{record['ratio_max']:.2f}",
        "",
        ratio_table(rows, name_a, name_b),
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
