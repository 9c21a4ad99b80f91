"""Accuracy off the training set: minilm trained on CONSTRAINT, ISOT titles, LIAR and each union of two, every
model scored on every dataset (fp32 and int8-dynamic), with and without cue-neutral cleaning; shortcut audits.

Usage (the committed results; small trainings for a shared 2-core CPU, see the settings in the results):
    HF_HUB_OFFLINE=1 python benchmarks/robustness.py --work /tmp/robustness
Each model's results are saved as it finishes; a second call skips what is done (delete --work to redo).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

from common import RESULTS, command_line, fmt, now

from edgefn import runs
from edgefn.bench.report import markdown_table
from edgefn.core.environment import machine_environment

DATASETS = ("constraint", "isot", "liar")
SHORT = {"constraint": "C", "isot": "I", "liar": "L"}
VARIANTS = ("fp32", "int8-dynamic")
METRICS = ("balanced_accuracy", "f1_macro", "accuracy", "roc_auc", "ece")


def train_sets(datasets: tuple[str, ...]) -> list[str]:
    """Each dataset alone, then each union of two."""
    pairs = [f"{a}+{b}" for i, a in enumerate(datasets) for b in datasets[i + 1 :]]
    return [*datasets, *pairs]


def data_options(arm: str, train: str | None, args: argparse.Namespace) -> Any:
    from edgefn.data.catalog import DataOptions

    union = train is not None and "+" in train
    return DataOptions(clean=arm == "clean", max_train_per_source=args.rows_per_source if union else None)


def train_and_export(train: str, arm: str, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """Fine-tune minilm on `train` (cached: a complete run folder is reused) and export fp32 + int8-dynamic."""
    from edgefn.export.exporter import ExportConfig, export
    from edgefn.train.finetune import FinetuneConfig, finetune

    run_dir = Path(args.work) / f"{arm}-{train}"
    run = runs.RunFolder(run_dir)
    timing: dict[str, Any] = {}
    if not run.metrics.is_file():
        start = time.perf_counter()
        finetune(
            FinetuneConfig(
                preset=args.preset,
                init="scratch" if args.preset.startswith("test-") else "pretrained",
                data=train,
                data_options=data_options(arm, train, args),
                epochs=args.epochs,
                max_length=args.max_length,
                max_train_samples=None if "+" in train else args.rows_per_source,
                max_eval_samples=args.eval_rows,
                max_test_samples=args.test_rows,
                seed=42,
                run_dir=run_dir,
                overwrite=run_dir.exists(),
            )
        )
        timing["finetune_s"] = time.perf_counter() - start
        timing["load_after_finetune"] = os.getloadavg()
    if not all((run.variant_dir(v) / runs.EXPORT_MANIFEST).is_file() for v in VARIANTS):
        start = time.perf_counter()
        export(
            ExportConfig(
                run_dir=run_dir,
                schemes=("int8-dynamic",),
                parity_samples=16,
                eval_samples=200,
                threads=args.threads,
                overwrite=True,
            )
        )
        timing["export_s"] = time.perf_counter() - start
    return run_dir, timing


def score_model(run_dir: Path, arm: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every variant on every dataset's test split (capped), with in-domain figures and the OOD AUROC."""
    from edgefn.train.evaluate import EvalConfig, evaluate

    out: dict[str, Any] = {}
    for variant in VARIANTS:
        for data in args.datasets:
            start = time.perf_counter()
            result = evaluate(
                EvalConfig(
                    model=run_dir / runs.ONNX_DIR / variant,
                    data=data,
                    data_options=data_options(arm, None, args),
                    samples=args.test_rows,
                    threads=args.threads,
                    seed=42,
                )
            )
            m, home = result.manifest.metrics or {}, result.manifest.in_domain or {}
            out[f"{variant}/{data}"] = {
                "metrics": {k: m.get(k) for k in (*METRICS, "n", "fake_share")},
                "predicted_fake_share": _predicted_fake_share(m),
                "in_domain": {k: home.get(k) for k in (*METRICS, "n")},
                "ood": result.manifest.ood,
                "seconds": time.perf_counter() - start,
            }
    return out


def _predicted_fake_share(m: dict[str, Any]) -> float:
    cm = m["confusion_matrix"]
    return (cm[0][1] + cm[1][1]) / max(m["n"], 1)


def run_audits(args: argparse.Namespace) -> dict[str, Any]:
    """`edgefn data audit` of each dataset, raw and as cleaned for training."""
    from edgefn.data.audit import audit_data
    from edgefn.data.catalog import DataOptions, load_data

    out = {}
    for data in args.datasets:
        for arm in ("raw", "clean"):
            start = time.perf_counter()
            report = audit_data(load_data(data, DataOptions(clean=arm == "clean")), ngrams=10)
            report["seconds"] = time.perf_counter() - start
            out[f"{arm}/{data}"] = report
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/edgefn-robustness", help="Run folders (kept for reuse).")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--arms", default="clean,raw", help="clean (cue-neutral, the default) and/or raw.")
    parser.add_argument("--rows-per-source", type=int, default=1000, help="Training rows per dataset.")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--eval-rows", type=int, default=300, help="Validation rows scored during training.")
    parser.add_argument("--test-rows", type=int, default=500, help="Test rows per dataset (seeded sample).")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--name", default="robustness")
    parser.add_argument("--preset", default="minilm", help="A tiny test preset for a smoke run.")
    parser.add_argument("--train-sets", default=None, help="Comma list of training sets (default: all six).")
    parser.add_argument("--skip-audits", action="store_true", help="No dataset audits (a follow-up run).")
    parser.add_argument(
        "--results-dir", dest="results", type=Path, default=RESULTS, help="Where the JSON and Markdown go."
    )
    args = parser.parse_args()
    args.datasets = tuple(d.strip() for d in args.datasets.split(","))
    for module in ("audit", "evaluate", "export", "finetune"):  # load the code once, up front
        importlib.import_module(f"edgefn.{module}")

    out_json = args.results / f"{args.name}.json"
    state: dict[str, Any] = json.loads(out_json.read_text()) if out_json.is_file() else {}
    state.update(
        command=command_line(),
        settings={k: v for k, v in vars(args).items() if k != "work"},
        machine=machine_environment(args.threads),
        note="2 shared CPU cores (other jobs ran at the same time); timings are indicative only",
    )
    state.setdefault("models", {})
    if "audits" not in state and not args.skip_audits:
        state["audits"] = run_audits(args)
        _save(state, out_json, args)
    for arm in args.arms.split(","):
        wanted = args.train_sets.split(",") if args.train_sets else train_sets(args.datasets)
        for train in wanted:
            key = f"{arm}/{train}"
            if arm == "raw" and train == "liar":
                state["models"][key] = {"same_as": "clean/liar (LIAR has no cleaning rules)"}
                continue
            if state["models"].get(key, {}).get("scores"):
                continue
            entry: dict[str, Any] = {"started": now(), "load_before": os.getloadavg()}
            try:
                run_dir, timing = train_and_export(train, arm, args)
                metrics = runs.RunFolder(run_dir).read_metrics()
                entry |= timing
                entry["training"] = {
                    k: metrics["training"].get(k) for k in ("train_seconds", "train_samples", "epochs_run")
                }
                entry["rows_per_source"] = metrics["data"].get("rows_per_source")
                entry["test_by_source"] = metrics.get("test_by_source")
                entry["shortcut_verdicts"] = metrics.get("shortcut_verdicts")
                entry["scores"] = score_model(run_dir, arm, args)
            except Exception as e:  # one failed model must not lose the others' results
                entry["error"] = f"{type(e).__name__}: {e}"
                entry["traceback"] = traceback.format_exc()[-2000:]
            entry["finished"] = now()
            state["models"][key] = entry
            _save(state, out_json, args)
            print(f"{now()} {key}: {'error ' + entry['error'] if 'error' in entry else 'done'}", flush=True)


def _save(state: dict[str, Any], out_json: Path, args: argparse.Namespace) -> None:
    runs.write_json(out_json, state)
    (args.results / f"{args.name}.md").write_text(format_markdown(state, args.datasets), encoding="utf-8")


# --- Markdown ---------------------------------------------------------------------------------------------


def _cell(state: dict[str, Any], arm: str, train: str, variant: str, data: str, key: str) -> Any:
    model = state["models"].get(f"{arm}/{train}") or {}
    if "same_as" in model:
        model = state["models"].get(model["same_as"].split(" ")[0]) or {}
    score = (model.get("scores") or {}).get(f"{variant}/{data}")
    if score is None:
        return None
    return score["metrics"].get(key)


def _matrix(state: dict[str, Any], arm: str, variant: str, key: str, datasets: tuple[str, ...]) -> str:
    header = ["trained on \\ scored on", *[f"{d} ({SHORT[d]})" for d in datasets], "mean off-domain"]
    rows = []
    for train in train_sets(datasets):
        cells, off = [], []
        for data in datasets:
            v = _cell(state, arm, train, variant, data, key)
            inside = data in train.split("+")
            cells.append("-" if v is None else (f"**{v:.3f}**" if inside else f"{v:.3f}"))
            if v is not None and not inside:
                off.append(v)
        rows.append([train, *cells, f"{sum(off) / len(off):.3f}" if off else "-"])
    return markdown_table(header, rows)


def _int8_rows(state: dict[str, Any], arm: str, datasets: tuple[str, ...]) -> str:
    header = [
        "trained on",
        "in-domain Δ bal.acc",
        "out-of-domain Δ bal.acc (mean)",
        "in-domain Δ macro F1",
        "out-of-domain Δ macro F1 (mean)",
    ]
    rows = []
    for train in train_sets(datasets):
        deltas: dict[str, dict[bool, list[float]]] = {
            k: {True: [], False: []} for k in ("balanced_accuracy", "f1_macro")
        }
        for data in datasets:
            for key in deltas:
                a = _cell(state, arm, train, "int8-dynamic", data, key)
                b = _cell(state, arm, train, "fp32", data, key)
                if a is not None and b is not None:
                    deltas[key][data in train.split("+")].append(a - b)

        def mean(v: list[float]) -> str:
            return f"{sum(v) / len(v):+.3f}" if v else "-"

        rows.append(
            [
                train,
                mean(deltas["balanced_accuracy"][True]),
                mean(deltas["balanced_accuracy"][False]),
                mean(deltas["f1_macro"][True]),
                mean(deltas["f1_macro"][False]),
            ]
        )
    return markdown_table(header, rows)


def _ood_rows(state: dict[str, Any], arm: str, datasets: tuple[str, ...]) -> str:
    header = ["trained on", *[f"vs {d}" for d in datasets]]
    rows = []
    for train in train_sets(datasets):
        model = state["models"].get(f"{arm}/{train}") or {}
        cells = []
        for data in datasets:
            s = (model.get("scores") or {}).get(f"fp32/{data}")
            ood = (s or {}).get("ood") or {}
            if not ood or data in train.split("+"):
                cells.append("(in-domain)" if data in train.split("+") else "-")
            else:
                cells.append(f"{fmt(ood.get('auroc'), '.3f')} (flags {ood['flagged_new_data']:.0%})")
        rows.append([train, *cells])
    return markdown_table(header, rows)


def _targets(state: dict[str, Any], datasets: tuple[str, ...]) -> list[str]:
    lines = []
    hits = 0
    for i, a in enumerate(datasets):
        for b in datasets[i + 1 :]:
            third = next((d for d in datasets if d not in (a, b)), None)
            if third is None:
                continue
            v = _cell(state, "clean", f"{a}+{b}", "fp32", third, "balanced_accuracy")
            ok = v is not None and v >= 0.65
            hits += ok
            lines.append(
                f"- {a}+{b} on {third}: balanced accuracy {fmt(v, '.3f')} ({'>= 0.65' if ok else '< 0.65'})"
            )
    lines.append(
        f"- target (>= 0.65 for at least two of three): {'met' if hits >= 2 else 'NOT met'} ({hits} of 3)"
    )
    return lines


def _audit_section(state: dict[str, Any], datasets: tuple[str, ...]) -> list[str]:
    audits = state.get("audits") or {}
    if not audits:
        return []
    cues = list(next(iter(audits.values()))["cues"])
    header = ["cue (alone, test bal.acc)", *[f"{d} {arm}" for d in datasets for arm in ("raw", "clean")]]
    rows = [
        [
            cue,
            *[
                f"{audits[f'{arm}/{d}']['cues'][cue]['test_balanced_accuracy']:.2f}"
                for d in datasets
                for arm in ("raw", "clean")
            ],
        ]
        for cue in cues
    ]
    rows.append(
        [
            "TF-IDF + LR (all words)",
            *[
                f"{audits[f'{arm}/{d}']['ngrams']['test_balanced_accuracy']:.2f}"
                for d in datasets
                for arm in ("raw", "clean")
            ],
        ]
    )
    rows.append(
        [
            "near-dup train/test pairs",
            *[
                str(audits[f"{arm}/{d}"]["near_duplicates"]["train/test"]["pairs"])
                for d in datasets
                for arm in ("raw", "clean")
            ],
        ]
    )
    out = ["## Shortcut audits (`edgefn data audit`)", "", markdown_table(header, rows), ""]
    for key, report in audits.items():
        out.append(
            f"**{key}**: top fake n-grams: {', '.join(t for t, _ in report['ngrams']['fake'][:8])}; "
            f"top real: {', '.join(t for t, _ in report['ngrams']['real'][:8])}"
        )
        out += [f"- {v}" for v in report["verdicts"]] or ["- no strong cue"]
        out.append("")
    return out


def format_markdown(state: dict[str, Any], datasets: tuple[str, ...]) -> str:
    s = state["settings"]
    machine = state.get("machine", {})
    lines = [
        "# Robustness: accuracy off the training set",
        "",
        f"Command: `{state['command']}`. {s['preset']} (minilm: the bundled pretrained all-MiniLM-L6-v2), "
        f"{s['epochs']} epoch, "
        f"{s['rows_per_source']} training rows per source (a union of two: {2 * s['rows_per_source']}), "
        f"max_length {s['max_length']}, seed 42; every dataset's test split scored on a seeded sample of "
        f"{s['test_rows']} rows. Cleaning: `clean` = edgefn's defaults (CONSTRAINT: URLs and @handles deleted; "
        "ISOT: title whitespace stripped), `raw` = `--no-clean`; LIAR has no rules (raw = clean). "
        f"Bold cells are in-domain. CPU: {(machine.get('cpu') or {}).get('model', '?')}, "
        f"{machine.get('cores_logical', '?')} logical cores; {state['note']}; load averages before each "
        "model are in the JSON.",
        "",
    ]
    for arm in ("clean", "raw"):
        for key, label in (("balanced_accuracy", "balanced accuracy"), ("f1_macro", "macro F1")):
            lines += [f"## {label}, fp32, {arm}", "", _matrix(state, arm, "fp32", key, datasets), ""]
    lines += ["## int8-dynamic minus fp32 (clean)", "", _int8_rows(state, "clean", datasets), ""]
    lines += [
        "## balanced accuracy, int8-dynamic, clean",
        "",
        _matrix(state, "clean", "int8-dynamic", "balanced_accuracy", datasets),
        "",
    ]
    lines += [
        "## OOD: energy-score AUROC, in-domain test vs the other dataset (fp32, clean)",
        "",
        _ood_rows(state, "clean", datasets),
        "",
    ]
    lines += ["## Target: union of two on the third (fp32, clean)", "", *_targets(state, datasets), ""]
    lines += _audit_section(state, datasets)
    failed = [f"- {k}: {m['error']}" for k, m in state["models"].items() if "error" in m]
    if failed:
        lines += ["## Failed", "", *failed, ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
