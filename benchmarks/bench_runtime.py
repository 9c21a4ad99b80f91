"""Cold start and peak RSS of `edgefn predict` on an ONNX variant vs a transformers pipeline on the checkpoint.

Each measurement is a fresh process. Cold start is the wall time from spawning the process to the moment it
reports its first prediction (the child prints a timestamp right after it); the whole process lifetime
(spawn to exit) is recorded too. Peak RSS is the child's own `ru_maxrss` from `os.wait4`. One unmeasured
run of each comes first so both start from a warm OS file cache: this measures process start-up, imports,
model load and one inference, not disk reads. The two kinds of process alternate within each repetition.

    python benchmarks/bench_runtime.py --run-dir artifacts/minilm-constraint --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgefn import runs
from edgefn.core.environment import cpu_info, library_versions

RESULTS = Path(__file__).resolve().parent / "results"
TEXT = "Drinking hot water every 15 minutes kills the coronavirus, doctors confirm."
TARGETS = {"cold_start": 1 / 3, "peak_rss": 1 / 2}

EDGEFN_CHILD = """
import sys, time
from edgefn.cli.commands import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    if e.code not in (0, None):
        raise
print("FIRST_PREDICTION", time.time(), file=sys.stderr, flush=True)
"""

PIPELINE_CHILD = """
import json, sys, time
threads = int(sys.argv[3])
if threads:
    import torch
    torch.set_num_threads(threads)
from transformers import pipeline
clf = pipeline("text-classification", model=sys.argv[1], device=-1)
out = clf(sys.argv[2])
print(json.dumps(out[0]), flush=True)
print("FIRST_PREDICTION", time.time(), file=sys.stderr, flush=True)
"""


def child_env() -> dict[str, str]:
    """Environment for the children: offline hub, no tokenizer fork warnings."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def run_child(cmd: list[str]) -> dict:
    """Spawn one process; return its cold start, lifetime, peak RSS and stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env())
        _, status, usage = os.wait4(proc.pid, 0)
        t_exit = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {proc.returncode}:\n{stderr[-3000:]}")
    marks = [line.split()[1] for line in stderr.splitlines() if line.startswith("FIRST_PREDICTION")]
    return {
        "cold_start_s": float(marks[-1]) - t0,
        "process_s": t_exit - t0,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "stdout": stdout,
    }


def edgefn_cmd(variant: Path, text: str, threads: int) -> list[str]:
    """`edgefn predict --model VARIANT TEXT`, run through a wrapper that timestamps the first prediction."""
    cmd = [sys.executable, "-c", EDGEFN_CHILD, "predict", "--model", str(variant), text]
    return cmd + (["--threads", str(threads)] if threads else [])


def pipeline_cmd(checkpoint: Path, text: str, threads: int) -> list[str]:
    """A transformers text-classification pipeline on the PyTorch checkpoint."""
    return [sys.executable, "-c", PIPELINE_CHILD, str(checkpoint), text, str(threads)]


def summarise(samples: list[dict]) -> dict:
    """Median and spread of each measured quantity, plus every raw sample."""
    out: dict = {"n": len(samples)}
    for key in ("cold_start_s", "process_s", "peak_rss_mb"):
        values = [s[key] for s in samples]
        out[key] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "samples": values,
        }
    return out


def measure(run_dir: Path, variant: str, text: str, repeats: int, threads: int) -> dict:
    """Alternate edgefn / pipeline processes `repeats` times after one unmeasured warm-up of each."""
    folder = run_dir / runs.ONNX_DIR / variant
    runs.verify_variant(folder)
    commands = {
        "edgefn_predict": edgefn_cmd(folder, text, threads),
        "transformers_pipeline": pipeline_cmd(run_dir / runs.CHECKPOINT, text, threads),
    }
    warm = {name: run_child(cmd) for name, cmd in commands.items()}
    labels = {
        "edgefn_predict": json.loads(warm["edgefn_predict"]["stdout"].splitlines()[-1])["label"],
        "transformers_pipeline": json.loads(warm["transformers_pipeline"]["stdout"].splitlines()[-1])[
            "label"
        ],
    }
    samples: dict[str, list[dict]] = {name: [] for name in commands}
    for i in range(repeats):
        for name, cmd in commands.items():
            samples[name].append({k: v for k, v in run_child(cmd).items() if k != "stdout"})
            print(
                f"  [{i + 1}/{repeats}] {name}: cold start {samples[name][-1]['cold_start_s']:.2f} s, "
                f"peak RSS {samples[name][-1]['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    stats = {name: summarise(s) for name, s in samples.items()}
    ratios = {
        key: stats["edgefn_predict"][f"{key}_{unit}"]["median"]
        / stats["transformers_pipeline"][f"{key}_{unit}"]["median"]
        for key, unit in (("cold_start", "s"), ("peak_rss", "mb"))
    }
    return {
        "run_dir": str(run_dir),
        "variant": variant,
        "variant_size_mb": runs.file_size_mb(folder / runs.ONNX_FILE),
        "text": text,
        "repeats": repeats,
        "threads": threads or "library default",
        "labels": labels,
        "labels_agree": labels["edgefn_predict"] == labels["transformers_pipeline"],
        "results": stats,
        "ratios": ratios,
        "targets": TARGETS,
        "meets_targets": {k: ratios[k] <= TARGETS[k] for k in TARGETS},
        "environment": {
            "cpu": cpu_info()["model"],
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "versions": library_versions(),
        },
        "method": __doc__.strip().split("\n\n")[1],
    }


def to_markdown(r: dict) -> str:
    """A Markdown table of medians and ratios."""
    e, p = r["results"]["edgefn_predict"], r["results"]["transformers_pipeline"]
    rows = [
        ("cold start to first prediction (s)", "cold_start_s", "{:.2f}"),
        ("process lifetime (s)", "process_s", "{:.2f}"),
        ("peak RSS (MB)", "peak_rss_mb", "{:.0f}"),
    ]
    lines = [
        f"# Runtime: `edgefn predict` ({r['variant']}) vs transformers pipeline",
        "",
        f"Run `{r['run_dir']}`; {r['repeats']} fresh processes each (median; min-max); threads: "
        f"{r['threads']}; CPU: {r['environment']['cpu']} ({r['environment']['cpu_count']} logical cores).",
        "",
        r["method"],
        "",
        "| measure | edgefn predict | transformers pipeline | ratio | target |",
        "|---|---|---|---|---|",
    ]
    targets = {"cold_start_s": "cold_start", "peak_rss_mb": "peak_rss"}
    for title, key, fmt in rows:
        ratio = e[key]["median"] / p[key]["median"]
        target = targets.get(key)
        verdict = (
            f"<= {TARGETS[target]:.2f} ({'met' if ratio <= TARGETS[target] else 'missed'})" if target else ""
        )
        cell = [
            f"{fmt.format(s[key]['median'])} ({fmt.format(s[key]['min'])}-{fmt.format(s[key]['max'])})"
            for s in (e, p)
        ]
        lines.append(f"| {title} | {cell[0]} | {cell[1]} | {ratio:.2f} | {verdict} |")
    lines += [
        "",
        f"Both predicted `{r['labels']['edgefn_predict']}` / `{r['labels']['transformers_pipeline']}` "
        f"for the text ({'agree' if r['labels_agree'] else 'DISAGREE'}). "
        f"ONNX file: {r['variant_size_mb']:.1f} MB.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=None, help="Run folder (default: the most recent).")
    parser.add_argument("--variant", default="int8-dynamic")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="0: each library's default.")
    parser.add_argument("--name", default=None, help="Results name (default: the run folder's name).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    run_dir, _ = runs.resolve_run_dir(args.run_dir)
    result = measure(run_dir, args.variant, args.text, args.repeats, args.threads)
    name = args.name or run_dir.name
    md = to_markdown(result)
    runs.write_json(args.out / f"runtime_{name}.json", result)
    (args.out / f"runtime_{name}.md").write_text(md, encoding="utf-8")
    print(md)
    print(f"wrote {args.out / f'runtime_{name}.json'} and .md")


if __name__ == "__main__":
    main()
