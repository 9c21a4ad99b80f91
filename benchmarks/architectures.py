"""Fine-tune, export and benchmark the five architectures on this CPU, and check the size / speed targets.

Usage (the committed results; `minilm` is the run made by benchmarks/finetune_bench.py --data constraint):
    HF_HUB_OFFLINE=1 python benchmarks/architectures.py
    HF_HUB_OFFLINE=1 python benchmarks/architectures.py --presets distilbert --stage bench   # re-measure one part

The other four presets are fine-tuned briefly on CONSTRAINT (1 epoch, --train-samples rows). Their hub
weights are tried first; where they are unreachable the preset is fine-tuned from a random init of its exact
architecture and every output row says "random init": such rows measure size and speed, not accuracy.
The report always covers every slot whose run folder exists, so re-running one stage of one preset
refreshes its rows and keeps the others.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from common import (
    INT8,
    ONNX_VARIANTS,
    RESULTS,
    command_line,
    fmt,
    now,
    score_test_split,
    verdict,
)

from edgefn import runs
from edgefn.bench.report import BenchReport, markdown_table
from edgefn.core.environment import describe_cpu, machine_environment
from edgefn.core.errors import EdgefnError
from edgefn.runs import RunFolder

PRESETS = ("minilm", "tinybert", "distilbert", "mobilebert", "albert")
STAGES = ("finetune", "export", "bench")
CPU = "CPUExecutionProvider"
ROWS = (
    ("pytorch", "torch-cpu", "PyTorch fp32"),
    ("fp32", CPU, "ONNX fp32"),
    ("int8-dynamic", CPU, "ONNX int8-dynamic"),
    ("int8-static", CPU, "ONNX int8-static"),
)
BATCHES = (1, 8, 32)
SEQ_LEN = 128
SIZE_TARGET = 0.27  # int8 file / fp32 file
ACCURACY_TARGET_POINTS = 0.5  # |int8 - fp32| test accuracy of the fine-tuned minilm, in percentage points
SPEEDUP_TARGETS = {"minilm": 2.0, "tinybert": 2.0, "distilbert": 2.0, "mobilebert": 1.5, "albert": 1.5}
PEAK_TARGET = ("distilbert", 0.75)  # ONNX fp32 at batch 1, seq 128: fraction of the measured MatMul peak
STANDS_IN = {
    "test-tiny-bert": "tinybert",
    "test-tiny-distilbert": "distilbert",  # smoke tests of this script
    "test-tiny-mobilebert": "mobilebert",
    "test-tiny-albert": "albert",
}
SEEDS_GPU_MS = {"albert": (9.74, 1.22, 0.42), "mobilebert": (34.45, 4.52, 2.38)}  # PyTorch, seq 512, b 1/8/32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(PRESETS), help="comma list (test-tiny-* for smoke tests)")
    p.add_argument("--stage", default=",".join(STAGES), help="comma list of finetune,export,bench")
    p.add_argument("--minilm-run", type=Path, default=runs.ARTIFACTS_DIR / "bench-minilm-constraint")
    p.add_argument(
        "--runs-root", type=Path, default=runs.ARTIFACTS_DIR, help="where the other run folders go"
    )
    p.add_argument("--train-samples", type=int, default=256, help="training rows for the brief fine-tunes")
    p.add_argument(
        "--eval-samples", type=int, default=512, help="validation rows scored during those fine-tunes"
    )
    p.add_argument(
        "--min-time", type=float, default=1.0, help="seconds measured per batch size and input mode"
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="test rows for accuracy and real-length inputs (default: all for pretrained runs, 300 "
        "for random-init ones)",
    )
    p.add_argument("--threads", type=int, default=None, help="default: physical cores")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    args.stage = [s.strip() for s in args.stage.split(",") if s.strip()]
    unknown = [s for s in args.stage if s not in STAGES]
    if unknown or not args.presets:
        p.error(
            f"unknown --stage {', '.join(unknown)} (known: {', '.join(STAGES)})"
            if unknown
            else "no --presets"
        )
    return args


# --- run folders and stages ------------------------------------------------------------------------------


def resolve_run(slot: str, args: argparse.Namespace) -> Path | None:
    """The slot's run folder: --minilm-run for minilm, else the newest bench-<preset>-{constraint,scratch}."""
    if slot == "minilm":
        return args.minilm_run if RunFolder(args.minilm_run).finetune_config.is_file() else None
    found = [RunFolder(args.runs_root / f"bench-{slot}-{kind}") for kind in ("constraint", "scratch")]
    found = [r for r in found if r.finetune_config.is_file()]
    latest = max(found, key=lambda r: r.finetune_config.stat().st_mtime, default=None)
    return None if latest is None else latest.path


def finetune_slot(slot: str, args: argparse.Namespace) -> tuple[Path, list[str]]:
    """Brief fine-tune on CONSTRAINT: hub weights first, a random init only when they are unreachable."""
    from edgefn.core.presets import get_preset
    from edgefn.train.finetune import FinetuneConfig, finetune

    if slot == "minilm":
        if resolve_run(slot, args) is None:
            raise EdgefnError(
                f"no minilm run at {args.minilm_run}: run benchmarks/finetune_bench.py --data "
                "constraint first (or pass --minilm-run)"
            )
        return args.minilm_run, []
    base = dict(
        preset=slot,
        data="constraint",
        epochs=1,
        max_train_samples=args.train_samples,
        max_eval_samples=args.eval_samples,
        overwrite=True,
    )
    notes = []
    if not get_preset(slot).test_only:
        try:
            run = finetune(
                FinetuneConfig(**base, init="pretrained", run_dir=args.runs_root / f"bench-{slot}-constraint")
            )
            return run.run_dir, notes
        except EdgefnError as e:
            notes.append(f"random init: pretrained weights unreachable ({str(e)[:160]}...)")
            print(f"[{slot}] {notes[-1]}", flush=True)
    # Random-init accuracy means nothing: score only a subset of the test split, to save time.
    scratch = dict(base, max_test_samples=args.eval_samples)
    run = finetune(
        FinetuneConfig(**scratch, init="scratch", run_dir=args.runs_root / f"bench-{slot}-scratch")
    )
    return run.run_dir, notes


def export_slot(run_dir: Path, slot: str, args: argparse.Namespace) -> None:
    """fp32 (checked against PyTorch), int8-dynamic and int8-static."""
    from edgefn.export.exporter import ExportConfig, export

    export(
        ExportConfig(run_dir=run_dir, schemes=INT8, overwrite=True, threads=args.threads),
        progress=lambda msg: print(f"[{slot}] export: {msg}", flush=True),
    )


def bench_slot(run_dir: Path, slot: str, args: argparse.Namespace) -> None:
    """PyTorch fp32 and the three ONNX variants on CPU, batch 1/8/32, seq 128 and real lengths."""
    from edgefn.bench.benchmark import BenchConfig, bench

    init = RunFolder(run_dir).read_finetune_config().init or "pretrained"
    samples = args.samples if args.samples is not None else (None if init == "pretrained" else 300)
    bench(
        BenchConfig(
            run_dir=run_dir,
            batch_sizes=BATCHES,
            seq_len=SEQ_LEN,
            min_time_s=args.min_time,
            samples=samples,
            providers=(CPU,),
            variants=("pytorch", *ONNX_VARIANTS),
            threads=args.threads,
        ),
        progress=lambda msg: print(f"[{slot}] bench: {msg}", flush=True),
    )
    plots = args.results_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for name in ("latency", "tradeoff"):
        shutil.copyfile(RunFolder(run_dir).bench_file(f"{name}_plot"), plots / f"{slot}-{name}.png")


def run_stages(slot: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the requested stages of one slot; seconds per stage and notes."""
    record: dict[str, Any] = {"seconds": {}, "notes": []}
    run_dir = resolve_run(slot, args)
    for stage in STAGES:
        if stage not in args.stage:
            continue
        start = time.perf_counter()
        print(f"[{slot}] {stage} ...", flush=True)
        if stage == "finetune":
            run_dir, notes = finetune_slot(slot, args)
            record["notes"] += notes
        elif run_dir is None:
            raise EdgefnError(f"no run folder for {slot}: run --stage finetune first")
        elif stage == "export":
            export_slot(run_dir, slot, args)
        else:
            bench_slot(run_dir, slot, args)
        record["seconds"][stage] = time.perf_counter() - start
    return record


# --- collecting ------------------------------------------------------------------------------------------


def collect_export(run_dir: Path) -> dict[str, Any]:
    """Per variant: file MB, ratio to fp32, parity, validation accuracy and its delta (from export.json)."""
    out: dict[str, Any] = {}
    run = RunFolder(run_dir)
    exported = run.variant_names()
    for name in ONNX_VARIANTS:
        folder = run.variant_dir(name)
        if name not in exported:
            continue
        m = run.verify_variant(name)
        out[name] = {
            k: getattr(m, k)
            for k in (
                "size_mb",
                "size_ratio_to_fp32",
                "parity",
                "validation_accuracy",
                "validation_samples",
                "accuracy_delta_vs_fp32",
                "init",
                "target",
                "nodes_kept_float",
                "notes",
            )
        }
        if m.size_ratio_to_fp32 is None and name == "fp32":
            out[name]["size_ratio_to_fp32"] = 1.0
        out[name]["optimize_applied"] = m.optimize.get("applied") if isinstance(m.optimize, dict) else None
        settings = m.settings or {}
        out[name]["int8_weights"] = (
            f"u8/{settings['weights']}{', 7-bit' if settings.get('reduce_range') else ''}"
            if "weights" in settings
            else None
        )
        out[name]["graph_passes"] = [g.get("name") for g in m.graph_passes or []]
        out[name]["exported_at"] = (folder / runs.EXPORT_MANIFEST).stat().st_mtime
    return out


def _measurements(result: Any) -> dict[str, Any]:
    out = {}
    for m in result.measurements:
        out[f"{m.mode}-b{m.batch_size}"] = {
            "per_sample_p50_ms": m.latency.p50_ms,
            "per_sample_p90_ms": m.latency.p90_ms,
            "throughput_samples_per_s": m.latency.throughput_samples_per_s,
            "iterations": m.latency.count,
            "mean_seq_len": m.mean_seq_len,
            "speedup_vs_pytorch": m.speedup_vs_reference,
            "achieved_gflops": m.achieved_gflops,
            "peak_fraction": m.peak_fraction,
        }
    return out


def collect_bench(run_dir: Path) -> dict[str, Any] | None:
    """Per row (PyTorch fp32, ONNX fp32, int8-dynamic, int8-static on CPU): params, MB, test accuracy, latency."""
    path = RunFolder(run_dir).bench_file("json")
    if not path.is_file():
        return None
    report = BenchReport.from_json(path)
    found = {(r.variant, r.provider): r for r in report.results}
    rows = {}
    for variant, provider, _ in ROWS:
        r = found.get((variant, provider))
        if r is None:
            continue
        acc = r.accuracy
        rows[variant] = {
            "status": r.status,
            "reason": r.reason,
            "params": r.params,
            "size_mb": r.size_mb,
            "test_accuracy": acc.accuracy if acc else None,
            "test_delta_vs_pytorch": acc.delta.get("accuracy") if acc else None,
            "agreement_with_pytorch": acc.agreement if acc else None,
            "peak_rss_mb": r.peak_rss_mb,
            "latency": _measurements(r),
        }
    return {
        "reference": report.reference,
        "test_rows": report.config["samples_used"],
        "threads": report.config["threads"],
        "peak": report.peak,
        "rows": rows,
        "measured_at": path.stat().st_mtime,
        "environment": report.environment,
    }


def collect_slot(slot: str, args: argparse.Namespace, record: dict[str, Any]) -> dict[str, Any]:
    """Everything known about one slot, read back from its run folder."""
    run_dir = resolve_run(slot, args)
    if run_dir is None:
        return {"slot": slot, "status": "not run", **record}
    ft = RunFolder(run_dir).read_finetune_config()
    metrics = RunFolder(run_dir).read_metrics()
    out = {
        "slot": slot,
        "status": "ok",
        "run_dir": str(run_dir),
        "preset": ft.preset,
        "init": ft.init or "pretrained",
        "weights_source": ft.weights_source,
        "pytorch_test_accuracy_finetune": (metrics.get("test") or {}).get("accuracy"),
        "parameters": metrics.get("parameters"),
        "checkpoint_mb": metrics.get("checkpoint_mb"),
        "export": collect_export(run_dir),
        "bench": collect_bench(run_dir),
        **record,
    }
    stamps = [v["exported_at"] for v in out["export"].values()]
    if out["bench"] and stamps and max(stamps) > out["bench"]["measured_at"]:
        out["notes"].append("the bench report predates the latest export: re-run --stage bench for this slot")
    return out


def minilm_test_accuracy(slot: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """fp32 / int8 test accuracy of minilm: the bench's when it scored every test row, else scored here."""
    run_dir = Path(slot["run_dir"])
    n_test = len(RunFolder(run_dir).read_split("test"))
    bench = slot.get("bench")
    if bench and bench["test_rows"] == n_test and all(v in bench["rows"] for v in ONNX_VARIANTS):
        return {
            "source": "bench",
            "test_rows": n_test,
            **{v: bench["rows"][v]["test_accuracy"] for v in ONNX_VARIANTS},
        }
    scored = score_test_split(run_dir, threads=args.threads)
    return {
        "source": "edgefn.runtime.classifier.Classifier",
        "test_rows": n_test,
        **{v: scored[v]["accuracy"] for v in ONNX_VARIANTS if v in scored},
    }


# --- targets ---------------------------------------------------------------------------------------------


def _target(
    name: str, slot: str, measured: float | None, threshold: str, passed: bool | None, spec: str = ".2f"
) -> dict[str, Any]:
    return {
        "target": name,
        "slot": slot,
        "measured": measured,
        "shown": fmt(measured, spec),
        "threshold": threshold,
        "passed": passed,
        "verdict": verdict(passed),
    }


def _latency(slot: dict[str, Any], variant: str, key: str) -> dict[str, Any]:
    row = ((slot.get("bench") or {}).get("rows") or {}).get(variant) or {}
    return dict((row.get("latency") or {}).get(key) or {})


def evaluate_targets(slots: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every target of issues 3 and 4 that these runs can answer, with the measured number."""
    out = []
    for s in (s for s in slots if s["status"] == "ok"):
        family = STANDS_IN.get(s["slot"], s["slot"])
        for scheme in INT8:
            ratio = (s["export"].get(scheme) or {}).get("size_ratio_to_fp32")
            out.append(
                _target(
                    f"{scheme} file <= {SIZE_TARGET:.0%} of fp32",
                    s["slot"],
                    ratio,
                    f"<= {SIZE_TARGET:.0%}",
                    None if ratio is None else ratio <= SIZE_TARGET,
                    ".1%",
                )
            )
        if family in SPEEDUP_TARGETS:
            speedup = _latency(s, "int8-dynamic", "fixed-b1").get("speedup_vs_pytorch")
            need = SPEEDUP_TARGETS[family]
            out.append(
                _target(
                    f"int8-dynamic vs PyTorch fp32 per-sample latency, batch 1, seq {SEQ_LEN}",
                    s["slot"],
                    speedup,
                    f">= {need}x",
                    None if speedup is None else speedup >= need,
                )
            )
        if family == PEAK_TARGET[0]:
            frac = _latency(s, "fp32", "fixed-b1").get("peak_fraction")
            out.append(
                _target(
                    f"ONNX fp32 batch 1, seq {SEQ_LEN}: fraction of the measured MatMul peak",
                    s["slot"],
                    frac,
                    f">= {PEAK_TARGET[1]:.0%}",
                    None if frac is None else frac >= PEAK_TARGET[1],
                    ".1%",
                )
            )
        if s["slot"] == "minilm" and "fp32" in s["export"]:
            acc = s["minilm_test_accuracy"] = minilm_test_accuracy(s, args)
            for scheme in INT8:
                points = (
                    None
                    if acc.get(scheme) is None or acc.get("fp32") is None
                    else 100 * abs(acc[scheme] - acc["fp32"])
                )
                out.append(
                    _target(
                        f"{scheme} test accuracy within {ACCURACY_TARGET_POINTS} points of fp32 "
                        f"({acc['test_rows']} CONSTRAINT test rows)",
                        s["slot"],
                        points,
                        f"<= {ACCURACY_TARGET_POINTS} points",
                        None if points is None else points <= ACCURACY_TARGET_POINTS,
                    )
                )
    return out


# --- Markdown --------------------------------------------------------------------------------------------


def _label(s: dict[str, Any]) -> str:
    name = s["slot"] if s.get("preset") in (None, s["slot"]) else f"{s['slot']} ({s['preset']})"
    return f"{name} **[random init]**" if s.get("init") != "pretrained" else name


def size_table(slots: list[dict[str, Any]]) -> str:
    """Params and MB of every format, int8 ratios to fp32."""
    rows = []
    for s in slots:
        ex, bench = s["export"], (s.get("bench") or {}).get("rows", {})
        params = (bench.get("pytorch") or {}).get("params") or s.get("parameters")
        torch_mb = (bench.get("pytorch") or {}).get("size_mb") or s.get("checkpoint_mb")
        mb = [fmt((ex.get(v) or {}).get("size_mb"), ".1f") for v in ONNX_VARIANTS]
        ratios = [fmt((ex.get(v) or {}).get("size_ratio_to_fp32"), ".1%") for v in INT8]
        graph = (ex.get("fp32") or {}).get("optimize_applied") or "plain"
        weights = (ex.get("int8-dynamic") or {}).get("int8_weights") or "-"
        rows.append(
            [
                _label(s),
                f"{params / 1e6:.1f} M" if params else "-",
                f"{graph}; {weights}",
                fmt(torch_mb, ".1f"),
                *mb,
                *ratios,
            ]
        )
    return markdown_table(
        [
            "preset",
            "params",
            "ONNX graph; int8 act/weights",
            "MB PyTorch",
            "MB ONNX fp32",
            "MB int8-dynamic",
            "MB int8-static",
            "int8-dynamic / fp32",
            "int8-static / fp32",
        ],
        rows,
    )


def latency_table(slots: list[dict[str, Any]], mode: str) -> str:
    """Per-sample p50 latency (ms) at batch 1/8/32 and speed-up vs PyTorch fp32, one row per engine."""
    rows = []
    for s in slots:
        for variant, _, title in ROWS:
            cells = [_latency(s, variant, f"{mode}-b{b}") for b in BATCHES]
            if not any(cells):
                continue
            seeds = (
                SEEDS_GPU_MS.get(STANDS_IN.get(s["slot"], s["slot"]))
                if variant == "pytorch" and mode == "fixed"
                else None
            )
            rows.append(
                [
                    _label(s),
                    title,
                    *(fmt(c.get("per_sample_p50_ms"), ".3f") for c in cells),
                    *(fmt(c.get("speedup_vs_pytorch"), ".2f") + "x" if c else "-" for c in cells),
                    " / ".join(f"{v}" for v in seeds) if seeds else "",
                ]
            )
    header = [
        "preset",
        "engine (CPU)",
        *(f"b{b} ms" for b in BATCHES),
        *(f"b{b} speed-up" for b in BATCHES),
        "seeds' GPU PyTorch ms, seq 512, b1/8/32 (context only)",
    ]
    return markdown_table(header, rows)


def accuracy_table(slots: list[dict[str, Any]]) -> str:
    """Validation (export) and test (bench) accuracy of every variant, with deltas."""
    rows = []
    for s in slots:
        bench = (s.get("bench") or {}).get("rows", {})
        for variant, _, title in ROWS:
            ex, b = s["export"].get(variant) or {}, bench.get(variant) or {}
            if not ex and not b:
                continue
            rows.append(
                [
                    _label(s),
                    title,
                    fmt(ex.get("validation_accuracy"), ".4f"),
                    fmt(ex.get("accuracy_delta_vs_fp32"), "+.4f"),
                    fmt(b.get("test_accuracy"), ".4f"),
                    fmt(b.get("test_delta_vs_pytorch"), "+.4f"),
                    fmt(b.get("agreement_with_pytorch"), ".3f"),
                    str((s.get("bench") or {}).get("test_rows", "-")),
                ]
            )
    return markdown_table(
        [
            "preset",
            "variant",
            "val acc",
            "Δ vs ONNX fp32",
            "test acc",
            "Δ vs PyTorch",
            "agreement with PyTorch",
            "test rows",
        ],
        rows,
    )


def _full_test_line(slots: list[dict[str, Any]]) -> list[str]:
    acc = next((s["minilm_test_accuracy"] for s in slots if "minilm_test_accuracy" in s), None)
    if acc is None:
        return []
    figures = ", ".join(f"{v} {fmt(acc.get(v), '.4f')}" for v in ONNX_VARIANTS)
    return [f"minilm on all {acc['test_rows']} test rows ({acc['source']}): {figures}.", ""]


def to_markdown(out: dict[str, Any]) -> str:
    """architectures.md: setup, deployment tables, accuracy, targets, notes."""
    ok = [s for s in out["slots"] if s["status"] == "ok"]
    m = out["machine"]
    lines = [
        "# Five architectures on CPU: size, accuracy, latency",
        "",
        f"Command: `{out['command']}` ({out['finished']}). Every number below comes from the run folders "
        "listed in architectures.json; each preset was measured in one bench run.",
        "",
        f"CPU: {describe_cpu(m['cpu'])}; {m['cores_physical']} physical / "
        f"{m['cores_logical']} logical cores; threads: {out['threads']}.",
        "",
        "**random init** rows: no pretrained weights could be reached for that architecture, so it was "
        "fine-tuned briefly from random weights. Their size and latency are those of the real architecture; "
        "their accuracy means nothing.",
        "",
        "## Size",
        "",
        size_table(ok),
        "",
        f"## Per-sample latency, fixed inputs (batch x {SEQ_LEN} tokens, model call only)",
        "",
        latency_table(ok, "fixed"),
        "",
        "The seeds' numbers are PyTorch on a GPU at seq 512: they are quoted as context and are not "
        "comparable with these CPU numbers.",
        "",
        "## Per-sample latency, real lengths (test texts, sorted batches, tokenisation included)",
        "",
        latency_table(ok, "real"),
        "",
        "## Accuracy (CONSTRAINT)",
        "",
        accuracy_table(ok),
        "",
        *_full_test_line(ok),
        "## Targets",
        "",
        markdown_table(
            ["target", "preset", "measured", "threshold", "result"],
            [
                [t["target"], t["slot"], t["shown"], t["threshold"], f"**{t['verdict']}**"]
                for t in out["targets"]
            ],
        ),
        "",
        "## Notes",
        "",
    ]
    lines += [f"- {s['slot']}: not run (no run folder)" for s in out["slots"] if s["status"] != "ok"]
    lines += [
        f"- {s['slot']}: " + ", ".join(f"{k} {v:.0f} s" for k, v in s["seconds"].items())
        for s in out["slots"]
        if s.get("seconds")
    ]
    lines += [
        f"- this invocation ({', '.join(out['stages_run'])} for {', '.join(out['presets_run'])}): "
        f"{out['total_seconds']:.0f} s"
    ]
    lines += [f"- {s['slot']}: {n}" for s in out["slots"] for n in s.get("notes", [])]
    lines += [
        "- Latency: p50 of (call time / samples in the call); speed-up = PyTorch fp32 p50 / this p50, "
        "from the same bench run.",
        "- Plots: plots/<preset>-latency.png and plots/<preset>-tradeoff.png.",
    ]
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------------------------


def previous_records(path: Path) -> dict[str, dict[str, Any]]:
    """Stage seconds and notes of slots not re-run this time, from the last architectures.json."""
    if not path.is_file():
        return {}
    return {
        s["slot"]: {
            "seconds": s.get("seconds", {}),
            "notes": [n for n in s.get("notes", []) if n.startswith("random init")],
        }
        for s in runs.read_json(path).get("slots", [])
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the stages, collect every slot, evaluate the targets, write JSON + Markdown."""
    args = parse_args(argv)
    started, start = now(), time.perf_counter()
    json_path = args.results_dir / "architectures.json"
    records = previous_records(json_path)
    for slot in args.presets:
        try:
            records[slot] = run_stages(slot, args)
        except Exception as e:  # noqa: BLE001 - one architecture failing must not lose the others' results
            print(f"[{slot}] FAILED: {type(e).__name__}: {e}", flush=True)
            records[slot] = {
                "seconds": {},
                "notes": [f"FAILED this time: {type(e).__name__}: {str(e)[:300]}"],
            }
    slots = [
        collect_slot(s, args, records.get(s, {"seconds": {}, "notes": []}))
        for s in dict.fromkeys([*PRESETS, *args.presets])
    ]
    out: dict[str, Any] = {
        "command": command_line(),
        "started": started,
        "presets_run": args.presets,
        "stages_run": args.stage,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "threads": args.threads or "physical cores",
        "machine": machine_environment(args.threads),
        "slots": slots,
    }
    out["targets"] = evaluate_targets(slots, args)
    out["seeds_gpu_context_ms"] = {k: dict(zip(("b1", "b8", "b32"), v)) for k, v in SEEDS_GPU_MS.items()}
    out["finished"], out["total_seconds"] = now(), time.perf_counter() - start
    runs.write_json(json_path, out)
    (args.results_dir / "architectures.md").write_text(to_markdown(out), encoding="utf-8")
    for t in out["targets"]:
        print(f"{t['verdict']:>12}  {t['slot']:<22} {t['target']}: {t['shown']} ({t['threshold']})")
    print(f"wrote {json_path} and architectures.md ({out['total_seconds']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
