"""Fine-tune minilm on a dataset, compare with a TF-IDF baseline, and time dynamic vs 512 padding.

Usage (the committed CONSTRAINT results):
    HF_HUB_OFFLINE=1 python benchmarks/finetune_bench.py --data constraint --epochs 3 --throughput-steps 12
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core.presets import get_preset
from edgefn.core.weights import load_model
from edgefn.data.baseline import tfidf_baseline
from edgefn.data.catalog import load_data
from edgefn.train.finetune import FinetuneConfig, finetune
from edgefn.train.trainer import tokenize_split, training_arguments

RESULTS = Path(__file__).parent / "results"


def measure_train_throughput(
    preset: str, data: str, pad_to_512: bool, steps: int, batch_size: int
) -> dict[str, Any]:
    """Training samples/s for `steps` optimizer steps, edgefn's dynamic padding or the seeds' pad-to-512."""
    from transformers import DataCollatorWithPadding, Trainer

    bundle = load_data(data)
    loaded = load_model(get_preset(preset))
    cfg = FinetuneConfig(
        preset=preset,
        data=data,
        max_length=512,
        batch_size=batch_size,
        max_steps=steps,
        pad_to_max_length=pad_to_512,
        epochs=1,
        lr=5e-5,
        warmup_steps=0,
        weight_decay=0.01,
    )
    n = steps * batch_size
    from edgefn.data.catalog import Split

    train = tokenize_split(Split(bundle.train.texts[:n], bundle.train.labels[:n]), loaded.tokenizer, cfg)
    args = training_arguments(cfg, Path("/tmp/edgefn-throughput"))
    args.eval_strategy = args.save_strategy = "no"
    args.load_best_model_at_end = False
    trainer = Trainer(
        model=loaded.model,
        args=args,
        train_dataset=train,
        data_collator=DataCollatorWithPadding(loaded.tokenizer),
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    tokens = sum(len(x) for x in train["input_ids"])
    return {
        "recipe": "pad to 512, no length grouping (seeds)"
        if pad_to_512
        else "dynamic padding + length grouping (edgefn)",
        "steps": steps,
        "batch_size": batch_size,
        "samples": n,
        "seconds": seconds,
        "samples_per_s": n / seconds,
        "mean_tokens_per_sample": tokens / n,
    }


def compare_padding(preset: str, data: str, steps: int) -> dict[str, Any]:
    """Both recipes on the same texts, model and batch size, one after the other."""
    batch = get_preset(preset).hparams.batch_size
    dyn = measure_train_throughput(preset, data, False, steps, batch)
    pad = measure_train_throughput(preset, data, True, steps, batch)
    return {"edgefn": dyn, "seeds": pad, "ratio": dyn["samples_per_s"] / pad["samples_per_s"]}


def export_and_score(run_dir: Path, pytorch_test: dict[str, Any]) -> dict[str, Any]:
    """Export fp32 / int8-dynamic / int8-static and score each on the test split with edgefn.runtime.classifier.Classifier."""
    from common import ONNX_VARIANTS, score_test_split

    from edgefn.export.exporter import ExportConfig, export

    start = time.perf_counter()
    result = export(
        ExportConfig(run_dir=run_dir, schemes=("int8-dynamic", "int8-static"), overwrite=True),
        progress=lambda msg: print(f"export: {msg}", flush=True),
    )
    sizes = {v.name: (v.size_mb, v.size_ratio_to_fp32) for v in result.variants}
    scored = score_test_split(run_dir, ONNX_VARIANTS)
    rows = [
        {
            "variant": "pytorch fp32",
            "test_accuracy": pytorch_test["accuracy"],
            "f1_weighted": pytorch_test["f1_weighted"],
            "delta_vs_fp32": None,
            "delta_vs_pytorch": 0.0,
        }
    ]
    for name in ONNX_VARIANTS:
        m = scored[name]
        rows.append(
            {
                "variant": name,
                "test_accuracy": m["accuracy"],
                "f1_weighted": m["f1_weighted"],
                "delta_vs_fp32": m["accuracy"] - scored["fp32"]["accuracy"],
                "delta_vs_pytorch": m["accuracy"] - pytorch_test["accuracy"],
                "agreement_with_fp32": m["agreement_with_fp32"],
                "size_mb": sizes[name][0],
                "size_ratio_to_fp32": sizes[name][1],
                "test_rows": m["n"],
            }
        )
    return {
        "rows": rows,
        "target": result.target,
        "seconds": time.perf_counter() - start,
        "scored_with": "edgefn.runtime.classifier.Classifier (batch 32, length-sorted, the run's max_length)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minilm")
    parser.add_argument("--data", default="constraint")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--throughput-steps", type=int, default=0, help="0 skips the padding comparison")
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="re-measure only the padding comparison, keeping the committed accuracy results",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="also export fp32 / int8-dynamic / int8-static and score each on the test split",
    )
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="add the --export rows to an existing results JSON, using its run folder (no re-training)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.export_only:
        out = json.loads((args.results_dir / f"finetune_{args.data}.json").read_text())
        out["onnx"] = export_and_score(args.run_dir or Path(out["run_dir"]), out["edgefn"]["test"])
        out["command_export"] = f"python benchmarks/finetune_bench.py --data {args.data} --export-only"
        write_results(out, args.data, args.results_dir)
        return
    if args.throughput_only:
        out = json.loads((args.results_dir / f"finetune_{args.data}.json").read_text())
        out["throughput"] = compare_padding(args.preset, args.data, args.throughput_steps)
        out["command_throughput"] = (
            f"python benchmarks/finetune_bench.py --data {args.data} --throughput-only "
            f"--throughput-steps {args.throughput_steps}"
        )
        write_results(out, args.data, args.results_dir)
        return
    started = time.perf_counter()
    bundle = load_data(args.data)
    baseline = tfidf_baseline(bundle)
    run_dir = args.run_dir or runs.ARTIFACTS_DIR / f"bench-{args.preset}-{args.data}"
    result = finetune(
        FinetuneConfig(
            preset=args.preset,
            data=args.data,
            epochs=args.epochs,
            max_train_samples=args.max_train_samples,
            max_length=args.max_length,
            run_dir=run_dir,
            overwrite=True,
        )
    )
    out: dict[str, Any] = {
        "command": f"python benchmarks/finetune_bench.py --data {args.data} --epochs {args.epochs}"
        + (f" --max-train-samples {args.max_train_samples}" if args.max_train_samples else "")
        + (f" --throughput-steps {args.throughput_steps}" if args.throughput_steps else "")
        + (" --export" if args.export else ""),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": __import__("os").cpu_count()},
        "data": result.metrics["data"],
        "run_dir": str(run_dir),
        "edgefn": {
            "preset": args.preset,
            "init": result.metrics["init"],
            "test": result.metrics["test"],
            "training": {k: v for k, v in result.metrics["training"].items() if k != "log_history"},
        },
        "baseline": baseline,
    }
    if args.export:
        out["onnx"] = export_and_score(run_dir, result.metrics["test"])
    if args.throughput_steps:
        out["throughput"] = compare_padding(args.preset, args.data, args.throughput_steps)
    out["total_seconds"] = time.perf_counter() - started
    write_results(out, args.data, args.results_dir)


def write_results(out: dict[str, Any], data: str, results_dir: Path = RESULTS) -> None:
    """Write JSON and a Markdown summary under benchmarks/results/ (or `results_dir`)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json(results_dir / f"finetune_{data}.json", out)
    e, b = out["edgefn"]["test"], out["baseline"]
    lines = [
        f"# Fine-tuning on {data}",
        "",
        f"Command: `{out['command']}`",
        "",
        "| model | test accuracy | F1 (weighted) | F1 fake | F1 real |",
        "|---|---|---|---|---|",
        f"| {out['edgefn']['preset']} ({out['edgefn']['init']}) | {e['accuracy']:.4f} | {e['f1_weighted']:.4f} "
        f"| {e['per_class']['fake']['f1']:.4f} | {e['per_class']['real']['f1']:.4f} |",
        f"| TF-IDF + LR (C={b['C']}) | {b['accuracy']:.4f} | {b['f1_weighted']:.4f} "
        f"| {b['per_class']['fake']['f1']:.4f} | {b['per_class']['real']['f1']:.4f} |",
        "",
        f"Training: {out['edgefn']['training']['train_samples']} samples, "
        f"{out['edgefn']['training']['epochs_run']} epochs, {out['edgefn']['training']['train_seconds']:.0f} s.",
    ]
    if "onnx" in out:
        lines += [
            "",
            "| variant | test accuracy | F1 (weighted) | Δ vs ONNX fp32 | Δ vs PyTorch | MB |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['variant']} | {r['test_accuracy']:.4f} | {r['f1_weighted']:.4f} | "
            + ("-" if r["delta_vs_fp32"] is None else f"{r['delta_vs_fp32']:+.4f}")
            + f" | {r['delta_vs_pytorch']:+.4f} | "
            + (f"{r['size_mb']:.1f}" if "size_mb" in r else "-")
            + " |"
            for r in out["onnx"]["rows"]
        ]
        lines += [
            "",
            f"ONNX variants scored with {out['onnx']['scored_with']}; int8 target {out['onnx']['target']}.",
        ]
    if "throughput" in out:
        t = out["throughput"]
        lines += ["", "| training recipe | samples/s | mean tokens/sample |", "|---|---|---|"]
        lines += [
            f"| {r['recipe']} | {r['samples_per_s']:.2f} | {r['mean_tokens_per_sample']:.0f} |"
            for r in (t["edgefn"], t["seeds"])
        ]
        lines += [
            "",
            f"Speed-up of edgefn's dynamic padding over the seeds' pad-to-512: **{t['ratio']:.1f}x** "
            f"({t['edgefn']['steps']} steps of batch {t['edgefn']['batch_size']} each).",
        ]
    (results_dir / f"finetune_{data}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(json.dumps({"total_seconds": out["total_seconds"]}))


if __name__ == "__main__":
    main()
