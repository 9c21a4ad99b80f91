"""Streaming `edgefn predict` against the path it replaced: peak RSS and throughput at 10k / 100k / 1M lines and on
one 10 MB text (CONSTRAINT test tweets, the int8-dynamic minilm).

The old path is the code of commit OLD_COMMIT itself (`git archive` of its `edgefn/` into a temporary folder,
run with PYTHONPATH pointing there): it read every text, classified all, formatted all and wrote once. The new
path is this checkout's `edgefn predict`. Both run as a fresh `python -m edgefn.cli predict --input FILE
--output FILE` process; its peak RSS is the kernel's ru_maxrss of that process (os.wait4), its throughput the
input rows over the process's wall time (model loading included, the same for both). Old and new alternate
within each round, the order flipping from round to round.

    python benchmarks/predict_stream.py --sizes 10k,100k --rounds 2 --huge-rounds 2
    python benchmarks/predict_stream.py --sizes 1M --paths new --append   # adds to the same results
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import RESULTS, command_line, fmt, now  # noqa: E402

OLD_COMMIT = (
    "cc7d5d1"  # the last commit whose predict read, classified, formatted and wrote everything at once
)
SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
HUGE = "10MB-text"
HUGE_CHARS = 10_000_000
DEFAULT_MODEL = REPO / "artifacts" / "minilm-bench" / "onnx" / "int8-dynamic"
TWEETS = REPO.parent / "shared" / "data" / "covid19-constraint" / "english_test_with_labels.csv"
TARGET_RSS_MB = 400
STEM = "predict-stream"


def _tweets() -> list[str]:
    """The CONSTRAINT test tweets, each on one line (inner whitespace runs, newlines included, as one space)."""
    import pandas as pd

    return [" ".join(str(t).split()) for t in pd.read_csv(TWEETS)["tweet"]]


def build_inputs(folder: Path, names: list[str], sizes: dict[str, int] = SIZES) -> dict[str, Path]:
    """Input files: `sizes[name]` lines cycling through the tweets, and one line of tweets joined to 10 MB."""
    tweets = _tweets()
    out = {}
    for name in names:
        path = folder / f"{name}.txt"
        out[name] = path
        if path.exists():
            continue
        with open(path, "w", encoding="utf-8") as f:
            if name == HUGE:
                text, i = [], 0
                while sum(map(len, text)) + len(text) < HUGE_CHARS:
                    text.append(tweets[i % len(tweets)])
                    i += 1
                f.write(" ".join(text)[:HUGE_CHARS] + "\n")
            else:
                f.writelines(tweets[i % len(tweets)] + "\n" for i in range(sizes[name]))
    return out


def export_old_code(folder: Path, commit: str) -> Path:
    """The `edgefn/` package of `commit`, extracted under `folder` (the PYTHONPATH of the old path)."""
    target = folder / f"edgefn-{commit}"
    if not (target / "edgefn" / "cli.py").is_file():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", commit, "edgefn"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def _env(code: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1"}


def _check_import(code: Path) -> None:
    """The child imports edgefn from `code`, not from the installed copy."""
    out = subprocess.run(
        [sys.executable, "-c", "import edgefn; print(edgefn.__file__)"],
        env=_env(code),
        cwd=tempfile.gettempdir(),  # not this checkout: `python -c` puts the working folder first on sys.path
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not out.startswith(str(code)):
        raise SystemExit(f"edgefn imports from {out}, expected under {code}")


def run_predict(code: Path, model: Path, source: Path, output: Path, threads: int | None) -> dict[str, Any]:
    """One `edgefn predict` process: wall time, its peak RSS (ru_maxrss), RSS samples, other processes' load."""
    extra = ["--threads", str(threads)] if threads else []
    run = measure_process(predict_command(model, source, output, *extra), _env(code), output.parent)
    del run["stderr"]
    return run


def predict_command(model: Path, source: Path, output: Path, *extra: str) -> list[str]:
    """`python -m edgefn.cli predict --model M --input F --output O [extra ...]` (old code: edgefn/cli.py; new:
    edgefn/cli/__main__.py)."""
    cmd = [sys.executable, "-m", "edgefn.cli", "predict", "--model", str(model), "--input", str(source)]
    return [*cmd, "--output", str(output), *extra]


def measure_process(cmd: list[str], env: dict[str, str], cwd: Path, tree: bool = False) -> dict[str, Any]:
    """Run `cmd` to its end: wall time, its peak RSS (ru_maxrss), RSS samples every 0.25 s, other processes'
    load, its standard error; with `tree`, also each process it started (`process_peaks`)."""
    import psutil

    from edgefn.bench.noise import CpuWatch, machine_state

    before = machine_state()
    samples: list[tuple[float, float]] = []
    peaks: dict[int, dict[str, Any]] = {}
    with CpuWatch() as watch, tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stderr=err, text=True)
        handle = psutil.Process(proc.pid)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # reaps it with its own rusage when done
            if pid:
                break
            with contextlib.suppress(psutil.Error):
                samples.append((round(time.monotonic() - start, 2), round(handle.memory_info().rss / 1e6, 1)))
                if tree:
                    process_peaks(handle, peaks)
            time.sleep(0.25)
        wall = time.monotonic() - start
        err.seek(0)
        stderr = err.read()
    returncode = os.waitstatus_to_exitcode(status)
    if returncode != 0:
        raise SystemExit(f"{cmd[3]} failed ({returncode}): {stderr.strip()[-500:]}")
    peak = usage.ru_maxrss * 1024 / 1e6  # ru_maxrss is in KiB on Linux
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak, 1),
        "rss_samples_mb": samples[:: max(1, len(samples) // 100)],
        "other_cores": round(watch.other_cores, 2),
        "loadavg_before": before["loadavg"],
        "loadavg_after": machine_state()["loadavg"],
        "stderr": stderr[-2000:],
        **({"processes": list(peaks.values())} if tree else {}),
    }


def process_peaks(root: Any, peaks: dict[int, dict[str, Any]]) -> None:
    """Update `peaks` (pid -> command line, peak RSS from the kernel's VmHWM, largest PSS seen) with `root`
    and every process under it (a Ray driver's raylet, GCS and workers, whose titles change as they work)."""
    import psutil

    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error, OSError, ValueError):
            status = Path(f"/proc/{proc.pid}/status").read_text(encoding="utf-8")
            hwm = next(
                (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), None
            )
            if hwm is None:  # a zombie holds no memory
                continue
            pss = proc.memory_full_info().pss
            title = " ".join(proc.cmdline())[:160]
            seen = peaks.setdefault(
                proc.pid,
                {
                    "pid": proc.pid,
                    "root": proc.pid == root.pid,
                    "titles": [],
                    "peak_rss_mb": 0.0,
                    "peak_pss_mb": 0.0,
                },
            )
            if title and title not in seen["titles"]:
                seen["titles"].append(title)
            seen["peak_rss_mb"] = max(seen["peak_rss_mb"], round(hwm / 1024, 1))
            seen["peak_pss_mb"] = max(seen["peak_pss_mb"], round(pss / 1e6, 1))


def compare_outputs(old: Path, new: Path) -> dict[str, Any]:
    """Rows, label agreement and the largest logit difference between the two outputs (read line by line)."""
    rows = agree = 0
    max_diff = 0.0
    with open(old, encoding="utf-8") as a, open(new, encoding="utf-8") as b:
        for line_a, line_b in zip(a, b, strict=True):
            ra, rb = json.loads(line_a), json.loads(line_b)
            rows += 1
            agree += ra["index"] == rb["index"] and ra["label_id"] == rb["label_id"]
            max_diff = max(max_diff, *(abs(x - y) for x, y in zip(ra["logits"], rb["logits"], strict=True)))
    return {"rows": rows, "label_agreement": agree / max(rows, 1), "max_logit_diff": max_diff}


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def measure(args: argparse.Namespace, work: Path, record: dict[str, Any]) -> None:
    """Run every (input, round, path) and add the runs to `record`, saving after each."""
    names = [n for n in args.sizes if n] + ([HUGE] if args.huge_rounds else [])
    inputs = build_inputs(work, names)
    codes = {"old": export_old_code(work, args.old_commit), "new": REPO}
    for path in args.paths:
        _check_import(codes[path])
    for name in names:
        rounds = args.huge_rounds if name == HUGE else args.rounds
        for r in range(rounds):
            order = args.paths if r % 2 == 0 else args.paths[::-1]
            outs = {}
            for path in order:
                outs[path] = work / f"out-{name}-{path}.jsonl"
                run = run_predict(codes[path], args.model, inputs[name], outs[path], args.threads)
                rows = _count_lines(outs[path])
                run.update(input=name, lines=_count_lines(inputs[name]), path=path, round=r, rows=rows)
                run["texts_per_s"] = round(_rate(run), 4)
                record["runs"].append({**run, "finished": now()})
                print(f"{name} round {r} {path}: {run['wall_s']} s, {run['peak_rss_mb']} MB", flush=True)
                save(args.results_dir, record)
            if len(outs) == 2 and r == 0:
                record["agreement"][name] = compare_outputs(outs["old"], outs["new"])
                save(args.results_dir, record)
            for out in outs.values():
                out.unlink(missing_ok=True)


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """Per input and path: median peak RSS and throughput over the rounds; ratios new / old."""
    out: dict[str, Any] = {}
    for name in [*SIZES, HUGE]:
        cell: dict[str, Any] = {}
        for path in ("old", "new"):
            runs = [r for r in record["runs"] if r["input"] == name and r["path"] == path]
            if runs:
                cell[path] = {
                    "rounds": len(runs),
                    "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
                    "texts_per_s": statistics.median(_rate(r) for r in runs),
                    "wall_s": statistics.median(r["wall_s"] for r in runs),
                }
        if "old" in cell and "new" in cell:
            cell["rss_ratio"] = round(cell["new"]["peak_rss_mb"] / cell["old"]["peak_rss_mb"], 3)
            cell["throughput_ratio"] = round(cell["new"]["texts_per_s"] / cell["old"]["texts_per_s"], 3)
            cell["paired_throughput_ratios"] = _paired_ratios(record["runs"], name)
            cell["throughput_interval"] = _interval(record["runs"], name)
        if cell:
            out[name] = cell
    out["old_1M_extrapolated_rss_mb"] = _extrapolate_old(out)
    return out


def _rate(run: dict[str, Any]) -> float:
    """Input rows per second of wall time."""
    return float(run["lines"] / run["wall_s"])


def _paired_ratios(runs: list[dict[str, Any]], name: str) -> list[float]:
    """New / old throughput within each round (the two ran back to back, so they shared the machine's load)."""
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        if r["input"] == name:
            by_round.setdefault(r["round"], {})[r["path"]] = _rate(r)
    return [round(p["new"] / p["old"], 3) for _, p in sorted(by_round.items()) if len(p) == 2]


def _interval(runs: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """New / old throughput as bench's verdict judges a lead: the median of the per-round ratios with its
    bootstrap interval (edgefn.bench.stats, each round its own pair of processes); a tie when it holds 1."""
    from edgefn.bench.stats import CONFIDENCE, ratio_interval

    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        if r["input"] == name:
            by_round.setdefault(r["round"], {})[r["path"]] = _rate(r)
    pairs = [p for _, p in sorted(by_round.items()) if len(p) == 2]
    found = ratio_interval([p["new"] for p in pairs], [p["old"] for p in pairs], groups=range(len(pairs)))
    if found is None:
        return None
    return {
        "ratio": round(found.ratio, 3),
        "ci_low": round(found.ci_low, 3),
        "ci_high": round(found.ci_high, 3),
        "confidence": CONFIDENCE,
        "tie": found.tie,
    }


def _extrapolate_old(summary: dict[str, Any]) -> float | None:
    """The old path's peak RSS at 1M lines, on the line through its 10k and 100k medians (it holds every text,
    encoding, prediction and the whole formatted output, so its memory grows linearly)."""
    try:
        a, b = summary["10k"]["old"]["peak_rss_mb"], summary["100k"]["old"]["peak_rss_mb"]
    except KeyError:
        return None
    return round(a + (b - a) * (SIZES["1M"] - SIZES["10k"]) / (SIZES["100k"] - SIZES["10k"]), 0)


def markdown(record: dict[str, Any]) -> str:
    """The results table, targets and notes."""
    s = record["summary"]
    lines = [
        f"# Streaming predict: peak RSS and throughput ({record['model_name']})",
        "",
        f"Command: `{record['command']}` ({record['finished']}); CPU {record['cpu_described']}; "
        f"threads {record['threads'] or 'ONNX Runtime default'}. {record['machine_note']}",
        "",
        f"Old path: commit {record['old_commit']} ({record['old_path']}). New path: {record['new_path']}",
        "",
        "| input | lines | rounds old / new | peak RSS old (MB) | peak RSS new (MB) | new / old | texts/s old "
        "| texts/s new | new / old (per round, 99% interval) | wall s old / new | other cores busy (mean) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in [*SIZES, HUGE]:
        cell = s.get(name)
        if not cell:
            continue
        old, new = cell.get("old", {}), cell.get("new", {})
        runs = [r for r in record["runs"] if r["input"] == name]
        busy = statistics.mean(r["other_cores"] for r in runs)
        n_lines = runs[0]["lines"]
        old_rss = fmt(old.get("peak_rss_mb"), ".0f")
        if name == "1M" and not old:
            old_rss = f"not run (~{fmt(s.get('old_1M_extrapolated_rss_mb'), '.0f')} extrapolated)"
        lines.append(
            f"| {name} | {n_lines:,} | {old.get('rounds', 0)} / {new.get('rounds', 0)} | {old_rss} "
            f"| {fmt(new.get('peak_rss_mb'), '.0f')} | {fmt(cell.get('rss_ratio'), '.2f')} "
            f"| {fmt(old.get('texts_per_s'), '.4g')} | {fmt(new.get('texts_per_s'), '.4g')} "
            f"| {fmt(cell.get('throughput_ratio'), '.2f')}{_per_round(cell)} | {fmt(old.get('wall_s'), '.1f')} / "
            f"{fmt(new.get('wall_s'), '.1f')} | {busy:.2f} |"
        )
    lines += ["", *record["notes"], ""]
    return "\n".join(lines)


def _per_round(cell: dict[str, Any]) -> str:
    ratios = cell.get("paired_throughput_ratios") or []
    found = cell.get("throughput_interval")
    interval = f", interval {found['ci_low']:.2f}-{found['ci_high']:.2f}" if found else ""
    return f" ({', '.join(f'{r:.2f}' for r in ratios)}{interval})" if len(ratios) > 1 else ""


def save(results: Path, record: dict[str, Any]) -> None:
    """Write results/predict-stream.json and .md (after every run, so a long run keeps what it measured)."""
    from edgefn.core.environment import describe_cpu

    record["summary"] = summarize(record)
    record["finished"] = now()
    record["cpu_described"] = describe_cpu(record["cpu"])
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{STEM}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (results / f"{STEM}.md").write_text(markdown(record), encoding="utf-8")


def new_record(args: argparse.Namespace) -> dict[str, Any]:
    from edgefn.core.environment import cpu_info, library_versions

    return {
        "command": command_line(),
        "cpu": cpu_info(),
        "cores_logical": os.cpu_count(),
        "versions": library_versions(),
        "model": str(args.model),
        "model_name": f"{args.model.parent.parent.name} {args.model.name}",
        "threads": args.threads,
        "old_commit": args.old_commit,
        "old_path": "reads the whole input, classifies every text (tokenizing each whole), formats all rows, "
        "writes once",
        "new_path": "reads the input as it classifies it, in windows of 8,192 texts sorted by token length, each "
        "window written as it is done; texts cut to max_length x 64 characters before tokenizing",
        "machine_note": args.machine_note,
        "notes": [],
        "agreement": {},
        "runs": [],
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="The variant folder to predict with.")
    p.add_argument("--sizes", default="10k,100k,1M", help="Comma list of 10k, 100k, 1M (empty: none).")
    p.add_argument("--rounds", type=int, default=2, help="Rounds per line count.")
    p.add_argument("--huge-rounds", type=int, default=2, help="Rounds on the 10 MB text (0: skip it).")
    p.add_argument("--paths", default="old,new", help="old, new or both (alternating).")
    p.add_argument("--old-commit", default=OLD_COMMIT)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "edgefn-predict-stream")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    p.add_argument("--append", action="store_true", help="Add the runs to the existing results.")
    p.add_argument(
        "--machine-note", default="", help="What else ran on the machine (goes into the Markdown)."
    )
    p.add_argument("--note", action="append", default=[], help="A note for the Markdown (repeatable).")
    args = p.parse_args()
    args.model, args.work_dir = args.model.resolve(), args.work_dir.resolve()
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.paths = [s for s in args.paths.split(",") if s]
    unknown = [s for s in args.sizes if s not in SIZES] + [s for s in args.paths if s not in ("old", "new")]
    if unknown:
        p.error(f"unknown size or path: {', '.join(unknown)}")
    return args


def main() -> None:
    args = parse_args()
    existing = args.results_dir / f"{STEM}.json"
    record = json.loads(existing.read_text(encoding="utf-8")) if args.append and existing.is_file() else None
    record = record or new_record(args)
    record["commands"] = [*record.get("commands", []), command_line()]
    record["notes"] = [*record["notes"], *args.note]
    if args.machine_note:
        record["machine_note"] = args.machine_note
    args.work_dir.mkdir(parents=True, exist_ok=True)
    measure(args, args.work_dir, record)
    save(args.results_dir, record)
    print(markdown(record))


if __name__ == "__main__":
    main()
