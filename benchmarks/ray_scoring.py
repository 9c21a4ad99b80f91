"""Scoring on Ray against local streaming predict: throughput, start-up overhead and peak RSS per process at 100k
and 1M lines (CONSTRAINT test tweets, the int8-dynamic minilm), on this machine.

Three setups, each a fresh `python -m edgefn.cli predict` process on the same input file, interleaved within each
round (the order rotating from round to round): local predict with 2 threads, and `--engine ray` with 1 actor of
2 threads and with 2 actors of 1 thread (a local Ray on the machine's cores). Throughput is the input lines over
the process's wall time (Ray's start and shutdown included); the start-up overhead is the wall time of the same
command on a 1-line input. Peak RSS per process is the kernel's VmHWM of the driver and of every process it
started (raylet, GCS, Ray workers, the actors), read every 0.25 s; the largest PSS seen is kept beside it, since an
actor's RSS also counts the pages of Ray's shared object store it reads. The inputs are predict_stream.py's.

    python benchmarks/ray_scoring.py                      # 100k and 1M lines, 2 rounds
    python benchmarks/ray_scoring.py --quick --results-dir /tmp/ray-quick   # a smoke run on 1,000 lines
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import RESULTS, fmt, write_measurement  # noqa: E402
from benchmarks.predict_stream import (  # noqa: E402
    DEFAULT_MODEL,
    SIZES,
    build_inputs,
    compare_outputs,
    measure_process,
    predict_command,
)

STEM = "ray"
SETUPS = {  # name -> the predict options that make it
    "local": ["--threads", "2"],
    "ray-1x2": ["--engine", "ray", "--workers", "1", "--threads-per-worker", "2"],
    "ray-2x1": ["--engine", "ray", "--workers", "2", "--threads-per-worker", "1"],
}
ACTORS = {"local": 0, "ray-1x2": 1, "ray-2x1": 2}
QUICK_ROWS = 1000
TARGET_RATIO, TARGET_ACTOR_MB = (
    0.85,
    400,
)  # the issue's bar at 1M lines: Ray / local throughput, RSS per actor
FIRST_ROWS = re.compile(r"first rows after ([0-9.]+) s")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}


def _role(process: dict[str, Any]) -> str:
    """driver, actor (a `_Scorer`), worker (Ray's other workers: reads, idle) or ray (raylet, GCS, ...)."""
    titles = " ".join(process["titles"])
    if process["root"]:
        return "driver"
    if "Scorer" in titles:
        return "actor"
    return "worker" if "ray::" in titles else "ray"


def run_setup(setup: str, model: Path, source: Path, output: Path) -> dict[str, Any]:
    """One predict process of `setup` on `source`: its measurements, per-role peaks and Ray's first-rows time."""
    cmd = predict_command(model, source, output, *SETUPS[setup])
    run = measure_process(cmd, _env(), output.parent, tree=True)
    found = FIRST_ROWS.search(run.pop("stderr"))
    run["first_rows_s"] = float(found.group(1)) if found else None
    for process in run["processes"]:
        process["role"] = _role(process)
    by_role = {role: [p for p in run["processes"] if p["role"] == role] for role in ("driver", "actor")}
    run["driver_peak_rss_mb"] = max((p["peak_rss_mb"] for p in by_role["driver"]), default=None)
    run["actor_peak_rss_mb"] = max((p["peak_rss_mb"] for p in by_role["actor"]), default=None)
    run["actor_peak_pss_mb"] = max((p["peak_pss_mb"] for p in by_role["actor"]), default=None)
    run["actors_seen"] = len(by_role["actor"])
    others = [p for p in run["processes"] if p["role"] in ("ray", "worker")]
    run["ray_system_rss_mb"] = round(
        sum(p["peak_rss_mb"] for p in others), 1
    )  # raylet, GCS, agents, Ray's actors
    return run


def measure(args: argparse.Namespace, record: dict[str, Any]) -> None:
    """The start-up runs, then every (size, round, setup), rotating the order; saved after each run."""
    names = list(args.sizes)
    inputs = build_inputs(args.work_dir, [*names, "one"], {**args.sizes, "one": 1})
    for r in range(args.rounds):
        for setup in _order(r):
            out = args.work_dir / f"out-one-{setup}.jsonl"
            run = run_setup(setup, args.model, inputs["one"], out)
            out.unlink()
            record["startup"].append({"setup": setup, "round": r, "wall_s": run["wall_s"]})
            print(f"start-up {setup}: {run['wall_s']} s", flush=True)
    for name in names:
        for r in range(args.rounds_1m if name == "1M" else args.rounds):
            outs = {}
            for setup in [s for s in _order(r) if name != "1M" or s in args.setups_1m]:
                outs[setup] = args.work_dir / f"out-{name}-{setup}.jsonl"
                run = run_setup(setup, args.model, inputs[name], outs[setup])
                run.update(input=name, lines=args.sizes[name], setup=setup, round=r)
                run["texts_per_s"] = round(run["lines"] / run["wall_s"], 2)
                record["runs"].append(run)
                print(
                    f"{name} round {r} {setup}: {run['wall_s']} s, {run['texts_per_s']} texts/s", flush=True
                )
                save(args.results_dir, record)
            if r == 0:
                record["agreement"][name] = {
                    s: compare_outputs(outs["local"], outs[s]) for s in outs if s != "local"
                }
            for out in outs.values():
                out.unlink(missing_ok=True)
    save(args.results_dir, record)


def _order(r: int) -> list[str]:
    names = list(SETUPS)
    k = r % len(names)
    return names[k:] + names[:k]


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """Per input and setup: medians over the rounds, the largest peaks, and the throughput ratio to local
    (the median of the per-round ratios, with bench's bootstrap interval when there are 2 rounds or more)."""
    from edgefn.bench.stats import ratio_interval

    startup = {
        s: statistics.median(x["wall_s"] for x in record["startup"] if x["setup"] == s)
        for s in SETUPS
        if any(x["setup"] == s for x in record["startup"])
    }
    out: dict[str, Any] = {"startup_s": startup}
    for name in dict.fromkeys(r["input"] for r in record["runs"]):
        runs = [r for r in record["runs"] if r["input"] == name]
        local = {r["round"]: r["texts_per_s"] for r in runs if r["setup"] == "local"}
        cells = {}
        for setup in SETUPS:
            mine = [r for r in runs if r["setup"] == setup]
            if not mine:
                continue
            cell: dict[str, Any] = {
                "rounds": len(mine),
                "texts_per_s": statistics.median(r["texts_per_s"] for r in mine),
                "wall_s": statistics.median(r["wall_s"] for r in mine),
                # once started: the lines over the wall time less the setup's start-up (a 1-line run)
                "steady_texts_per_s": round(
                    statistics.median(
                        r["lines"] / max(r["wall_s"] - startup.get(setup, 0.0), 1e-3) for r in mine
                    ),
                    2,
                ),
                "driver_peak_rss_mb": max(r["driver_peak_rss_mb"] or 0 for r in mine),
                "ray_system_rss_mb": statistics.median(r["ray_system_rss_mb"] for r in mine),
                "other_cores": round(statistics.mean(r["other_cores"] for r in mine), 2),
            }
            if ACTORS[setup]:
                cell["actor_peak_rss_mb"] = max(r["actor_peak_rss_mb"] or 0 for r in mine)
                cell["actor_peak_pss_mb"] = max(r["actor_peak_pss_mb"] or 0 for r in mine)
                cell["first_rows_s"] = statistics.median(r["first_rows_s"] or 0 for r in mine)
                cell["steady_texts_per_s_per_cpu"] = round(cell["steady_texts_per_s"] / 2, 2)  # 2 CPUs each
                pairs = [(r["texts_per_s"], local[r["round"]]) for r in mine if r["round"] in local]
                cell["ratios"] = [round(a / b, 3) for a, b in pairs]
                if pairs:
                    cell["ratio"] = round(statistics.median(cell["ratios"]), 3)
                found = (
                    ratio_interval([a for a, _ in pairs], [b for _, b in pairs]) if len(pairs) > 1 else None
                )
                if found is not None:
                    cell["interval"] = [round(found.ci_low, 3), round(found.ci_high, 3)]
            cells[setup] = cell
        out[name] = cells
    return out


def markdown_table(record: dict[str, Any]) -> str:
    """One row per input and setup."""
    s = record["summary"]
    lines = [
        "| lines | setup | rounds | texts/s | vs local (per round) | start-up s | first rows s | peak RSS driver MB "
        "| peak RSS per actor MB (PSS) | Ray's other processes MB (sum) | other cores busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, cells in s.items():
        if name == "startup_s":
            continue
        for setup, c in cells.items():
            ratio = (
                "1.00"
                if setup == "local"
                else f"{fmt(c.get('ratio'), '.2f')} ({', '.join(map(str, c['ratios']))})"
            )
            actor = (
                "-" if setup == "local" else f"{c['actor_peak_rss_mb']:.0f} ({c['actor_peak_pss_mb']:.0f})"
            )
            lines.append(
                f"| {record['sizes'][name]:,} | {setup} | {c['rounds']} | {c['texts_per_s']:.1f} | {ratio} "
                f"| {fmt(s['startup_s'].get(setup), '.1f')} | {fmt(c.get('first_rows_s'), '.1f')} "
                f"| {c['driver_peak_rss_mb']:.0f} | {actor} | {c['ray_system_rss_mb']:.0f} | {c['other_cores']:.2f} |"
            )
    return "\n".join([*lines, "", *record["notes"]])


def save(results: Path, record: dict[str, Any]) -> None:
    """results/ray.json and ray.md (after every run, so a long run keeps what it measured)."""
    from edgefn.bench.noise import machine_state

    record["machine"]["after"] = machine_state()
    record["summary"] = summarize(record)
    setup = f"{record['cores_logical']} cores, Ray {record['ray_version']}, model {record['model_name']}" + (
        " (a --quick smoke run: not a measurement)" if record["quick"] else ""
    )
    title = "Scoring on Ray vs local streaming predict"
    write_measurement(results, STEM, record, title, setup, markdown_table(record))


def new_record(args: argparse.Namespace) -> dict[str, Any]:
    from importlib import metadata

    from edgefn.bench.noise import machine_state

    return {
        "model": str(args.model),
        "model_name": f"{args.model.parent.parent.name} {args.model.name}",
        "quick": args.quick,
        "sizes": args.sizes,
        "rounds": args.rounds,
        "rounds_1m": args.rounds_1m,
        "setups_1m": args.setups_1m,
        "setups": SETUPS,
        "cores_logical": os.cpu_count(),
        "ray_version": metadata.version("ray"),
        "machine": {"before": machine_state()},
        "notes": [
            "Throughput: input lines over the whole process's wall time (imports, model loads, Ray's start and "
            "shutdown included). Start-up: the wall time on a 1-line input. First rows: seconds from the start "
            "of `score` to the first rows written (Ray's start and the actors' model loads).",
            "Peak RSS per actor counts the shared object-store pages it read; PSS shares them out. Ray's other "
            "processes: raylet, GCS, its agents and its own actors (stats, autoscaling), their peaks summed.",
            *args.note,
        ],
        "startup": [],
        "runs": [],
        "agreement": {},
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="The variant folder to score with.")
    p.add_argument("--sizes", default="100k,1M", help="Comma list of 10k, 100k, 1M.")
    p.add_argument("--rounds", type=int, default=2, help="Rounds per size (each runs every setup once).")
    p.add_argument(
        "--rounds-1m",
        type=int,
        help="Rounds at 1M lines (default: --rounds; one round of 3 setups: ~90 min).",
    )
    p.add_argument(
        "--setups-1m",
        default=",".join(SETUPS),
        help="Comma list of the setups run at 1M lines (local is always among them).",
    )
    p.add_argument(
        "--quick", action="store_true", help=f"A smoke run: {QUICK_ROWS:,} lines (--quick-rows), 1 round."
    )
    p.add_argument("--quick-rows", type=int, default=QUICK_ROWS)
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "edgefn-predict-stream")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    p.add_argument("--note", action="append", default=[], help="A note for the Markdown (repeatable).")
    args = p.parse_args()
    args.model, args.work_dir = args.model.resolve(), args.work_dir.resolve()
    args.rounds_1m = args.rounds if args.rounds_1m is None else args.rounds_1m
    args.setups_1m = ["local", *(s for s in args.setups_1m.split(",") if s != "local")]
    if any(s not in SETUPS for s in args.setups_1m):
        p.error(f"--setups-1m: choose from {', '.join(SETUPS)}")
    if args.quick:
        args.sizes, args.rounds = {f"quick-{args.quick_rows}": args.quick_rows}, 1
    else:
        unknown = [s for s in args.sizes.split(",") if s not in SIZES]
        if unknown:
            p.error(f"unknown size: {', '.join(unknown)}")
        args.sizes = {s: SIZES[s] for s in args.sizes.split(",")}
    return args


def main() -> None:
    args = parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    record = new_record(args)
    measure(args, record)
    print((args.results_dir / f"{STEM}.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
