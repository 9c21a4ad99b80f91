"""Students of minilm distilled on CONSTRAINT: int8 speed beside the teacher's, accuracy in and out of domain.

Usage (the committed results; a quiet machine):
    HF_HUB_OFFLINE=1 python benchmarks/distill.py                      # teacher + 8 students: 2.5-3 h on 2 cores
    HF_HUB_OFFLINE=1 python benchmarks/distill.py --teacher-run RUN    # reuse minilm fine-tuned on CONSTRAINT: 2-2.5 h
    HF_HUB_OFFLINE=1 python benchmarks/distill.py --quick --results-dir /tmp/distill   # smoke test, minutes

The teacher is minilm fine-tuned on the full CONSTRAINT training split (`edgefn finetune`). Each student of
1, 2, 3 and 4 layers is distilled from it twice: with knowledge distillation (`edgefn distill`, T = 2,
alpha = 0.5) and without (`--no-kd`: the same layers, fine-tuned on the labels only). Every model is exported
to int8-dynamic; one `edgefn bench --compare TEACHER` per student measures the student's int8 and the
teacher's int8 in the same interleaved rounds at real text lengths, batch 1 and 32 (the speed-ups are the
teacher's p50 / the student's). Out of domain: balanced accuracy of each int8 model on the LIAR and ISOT test
splits (`edgefn eval`). Writes results/distill.{json,md}: {"teacher": ..., "students": [...], "targets": ...}.
Runs already complete under --root are reused (a run cut short is resumed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from common import RESULTS, command_line, now

from edgefn import runs
from edgefn.bench.report import BenchReport, markdown_table
from edgefn.runs import RunFolder

LAYERS = (1, 2, 3, 4)
BATCHES = (1, 32)
OOD = ("liar", "isot")
VARIANT = "int8-dynamic"
TARGET_LAYERS, TARGET_SPEEDUP, TARGET_DROP_PTS, TARGET_KD_GAIN_PTS, TARGET_TIME = 3, 1.8, 1.0, 1.0, 2.0
# --quick: a smoke test of every step on a few rows (its numbers mean nothing)
QUICK = {"layers": (1, 2), "train": 64, "val": 32, "test": 48, "epochs": 1, "max_length": 64, "ood": 32}


def ensure_teacher(args: argparse.Namespace) -> Path:
    """The teacher run: --teacher-run as given, else minilm fine-tuned into ROOT/teacher (reused when complete)."""
    from edgefn.train.finetune import FinetuneConfig, finetune

    if args.teacher_run is not None:
        RunFolder(args.teacher_run).require_complete()
        return Path(args.teacher_run)
    quick = args.quick
    path = args.root / "teacher"
    finetune(
        FinetuneConfig(
            preset="minilm",
            data="constraint",
            epochs=QUICK["epochs"] if quick else args.epochs,
            max_length=QUICK["max_length"] if quick else None,
            max_train_samples=QUICK["train"] if quick else None,
            max_eval_samples=QUICK["val"] if quick else None,
            max_test_samples=QUICK["test"] if quick else None,
            warmup_steps=0 if quick else None,
            run_dir=path,
            resume=RunFolder(path).status() is not None,
        ),
        progress=print,
    )
    return path


def ensure_student(teacher: Path, layers: int, kd: bool, args: argparse.Namespace) -> Path:
    """A student of `layers` layers, with or without KD, distilled into ROOT/student<N>[-nokd]."""
    from edgefn.train.distill import DistillConfig, distill

    path = args.root / f"student{layers}{'' if kd else '-nokd'}"
    distill(
        DistillConfig(
            teacher=teacher,
            layers=layers,
            kd=kd,
            epochs=args.student_epochs,
            run_dir=path,
            resume=RunFolder(path).status() is not None,
        ),
        progress=print,
    )
    return path


def export_int8(run: Path, threads: int | None) -> None:
    from edgefn.export.exporter import ExportConfig, export

    export(ExportConfig(run_dir=run, schemes=(VARIANT,), threads=threads), progress=print)


def bench_pair(student: Path, teacher: Path, args: argparse.Namespace) -> BenchReport:
    """The student's int8 and the teacher's int8 in the same interleaved rounds, real lengths."""
    from edgefn.bench.benchmark import BenchConfig, bench

    return bench(
        BenchConfig(
            run_dir=student,
            compare=teacher,
            variants=(VARIANT,),
            include_pytorch=False,
            batch_sizes=BATCHES,
            fixed_shape=False,
            real_lengths=True,
            samples=QUICK["test"] if args.quick else args.samples,
            min_time_s=args.min_time,
            rounds=args.rounds,
            threads=args.threads,
            peers=(),
            peak_probe=False,
        ),
        progress=print,
    )


def ood_balanced_accuracy(run: Path, args: argparse.Namespace) -> dict[str, float | None]:
    """Balanced accuracy of the run's int8 variant on each out-of-domain test split (RUN/eval/<data>-int8-dynamic)."""
    from edgefn.train.evaluate import EvalConfig, evaluate

    out = {}
    for data in OOD:
        result = evaluate(
            EvalConfig(
                model=RunFolder(run).variant_dir(VARIANT),
                data=data,
                samples=QUICK["ood"] if args.quick else args.ood_samples,
                in_domain=False,
                threads=args.threads,
            ),
            progress=print,
        )
        out[data] = (result.manifest.metrics or {}).get("balanced_accuracy")
    return out


def _row(report: BenchReport, variant: str) -> Any:
    return next(r for r in report.results if r.variant == variant)


def _p50(row: Any, batch: int) -> float | None:
    m = next((m for m in row.measurements if (m.mode, m.batch_size) == ("real", batch)), None)
    return None if row.status != "ok" or m is None else m.latency.p50_ms


def student_entry(
    student: Path, kd: bool, report: BenchReport, teacher: dict[str, Any], ood: dict[str, Any]
) -> dict[str, Any]:
    """One student's record: accuracy beside the teacher's, int8 speed-ups from one interleaved bench, OOD."""
    metrics = RunFolder(student).read_metrics()
    d = metrics["distillation"]
    own, theirs = _row(report, VARIANT), _row(report, f"{Path(teacher['run']).name}/{VARIANT}")
    speedups, p50 = {}, {}
    for b in BATCHES:
        mine, base = _p50(own, b), _p50(theirs, b)
        p50[f"real_b{b}"] = {"student": mine, "teacher": base}
        speedups[f"speedup_b{b}_real"] = base / mine if mine and base else None
    return {
        "layers": d["student_layers"],
        "teacher_layers_kept": d["layers"],
        "teacher_layers": d["teacher_layers"],
        "kd": kd,
        "run": str(student),
        "test_accuracy": metrics["test"]["accuracy"],
        "teacher_test_accuracy": d["teacher_test_accuracy"],
        "delta_vs_teacher_pts": 100 * (metrics["test"]["accuracy"] - d["teacher_test_accuracy"]),
        "int8_test_accuracy": own.accuracy.accuracy if own.accuracy else None,
        "teacher_int8_test_accuracy": theirs.accuracy.accuracy if theirs.accuracy else None,
        **speedups,
        "p50_ms": p50,
        "size_mb": own.size_mb,
        "teacher_size_mb": theirs.size_mb,
        "parameters": metrics["parameters"],
        "ood": {data: {"student": ood[data], "teacher": teacher["ood"][data]} for data in OOD},
        "train_seconds": metrics["training"]["train_seconds"],
        "train_seconds_vs_teacher": metrics["training"]["train_seconds"] / teacher["train_seconds"],
        "epochs_run": metrics["training"]["epochs_run"],
        "resumed": metrics["training"]["resumed"],
        "machine": report.machine["assessment"],
    }


def targets(students: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets for the 3-layer student: speed-ups, accuracy drop, KD's gain, training time."""
    by = {(s["layers"], s["kd"]): s for s in students}
    kd, plain = by.get((TARGET_LAYERS, True)), by.get((TARGET_LAYERS, False))
    if kd is None:
        return {}
    gain = kd["test_accuracy"] - plain["test_accuracy"] if plain else None
    return {
        "student": f"{TARGET_LAYERS} layers, KD",
        "speedup_b1_real_at_least_1.8": (kd["speedup_b1_real"] or 0) >= TARGET_SPEEDUP,
        "speedup_b32_real_at_least_1.8": (kd["speedup_b32_real"] or 0) >= TARGET_SPEEDUP,
        "within_1_pt_of_teacher": kd["delta_vs_teacher_pts"] >= -TARGET_DROP_PTS,
        "kd_gain_over_no_kd_pts": None if gain is None else 100 * gain,
        "kd_at_least_1_pt_better": None if gain is None else 100 * gain >= TARGET_KD_GAIN_PTS,
        "train_time_at_most_2x_teacher": kd["train_seconds_vs_teacher"] <= TARGET_TIME,
    }


def _label(s: dict[str, Any]) -> str:
    return f"{s['layers']} layer{'s' * (s['layers'] != 1)}, {'KD' if s['kd'] else 'no KD'}"


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_markdown(record: dict[str, Any]) -> str:
    t = record["teacher"]
    header = ["student", "test acc", "vs teacher", "int8 acc", "speed-up b1", "speed-up b32", "MB"]
    header += [f"{d.upper()} bal. acc" for d in OOD] + ["train s (x teacher)"]
    rows = [
        [
            f"teacher ({record['students'][0]['teacher_layers']} layers)"
            if record["students"]
            else "teacher",
            _fmt(t["test_accuracy"], ".4f"),
            "-",
            _fmt(t["int8_test_accuracy"], ".4f"),
            "1.00x",
            "1.00x",
            _fmt(t["size_mb"], ".1f"),
            *(_fmt(t["ood"][d], ".4f") for d in OOD),
            f"{t['train_seconds']:.0f}",
        ]
    ]
    for s in record["students"]:
        rows.append(
            [
                _label(s),
                _fmt(s["test_accuracy"], ".4f"),
                f"{s['delta_vs_teacher_pts']:+.2f} pts",
                _fmt(s["int8_test_accuracy"], ".4f"),
                _fmt(s["speedup_b1_real"], ".2f") + "x",
                _fmt(s["speedup_b32_real"], ".2f") + "x",
                _fmt(s["size_mb"], ".1f"),
                *(f"{_fmt(s['ood'][d]['student'], '.4f')}" for d in OOD),
                f"{s['train_seconds']:.0f} ({s['train_seconds_vs_teacher']:.2f}x)",
            ]
        )
    unreliable = [_label(s) for s in record["students"] if s["machine"]["unreliable"]]
    lines = [
        "# Distilled students of minilm on CONSTRAINT",
        "",
        f"Command: `{record['command']}` ({record['finished']}); {record['settings']['threads'] or 'all'} threads; "
        f"{record['settings']['rounds']} interleaved rounds per student.",
        "",
        *(
            ["**QUICK smoke test: a few rows, numbers mean nothing.**", ""]
            if record["settings"]["quick"]
            else []
        ),
        "Test accuracy: PyTorch checkpoint on the CONSTRAINT test split; int8 acc and speed-ups: int8-dynamic, "
        "student and teacher in the same interleaved `edgefn bench --compare` rounds, real text lengths "
        "(tokenisation included), speed-up = teacher p50 / student p50; LIAR and ISOT: balanced accuracy of the "
        "int8 model on their test splits (the teacher's on the first row).",
        "",
        markdown_table(header, rows),
        "",
    ]
    if unreliable:
        lines += [f"Timings flagged by bench (busy machine): {'; '.join(unreliable)}.", ""]
    if record["targets"]:
        lines += ["Targets (3-layer KD student): `" + _json(record["targets"]) + "`", ""]
    return "\n".join(lines)


def _json(obj: Any) -> str:
    import json

    return json.dumps(runs.to_jsonable(obj))


def write_results(record: dict[str, Any], results: Path) -> None:
    import json

    results.mkdir(parents=True, exist_ok=True)
    (results / "distill.json").write_text(
        json.dumps(runs.to_jsonable(record), indent=2) + "\n", encoding="utf-8"
    )
    (results / "distill.md").write_text(format_markdown(record), encoding="utf-8")


def main() -> None:
    from edgefn.core.environment import machine_environment, physical_cores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher-run", type=Path, default=None, help="a complete minilm run on CONSTRAINT")
    parser.add_argument("--root", type=Path, default=None, help="run folders (default: artifacts/distill)")
    parser.add_argument("--epochs", type=int, default=3, help="the teacher's epochs (students: the same)")
    parser.add_argument("--student-epochs", type=int, default=None, help="default: the teacher's")
    parser.add_argument(
        "--layers", default=",".join(map(str, LAYERS)), help="the students' layer counts, in training order"
    )
    parser.add_argument("--samples", type=int, default=None, help="bench test texts (default: all)")
    parser.add_argument("--ood-samples", type=int, default=None, help="LIAR / ISOT test rows (default: all)")
    parser.add_argument("--min-time", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: one per physical core")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test on a few rows (numbers mean nothing)"
    )
    parser.add_argument(
        "--results-dir", dest="results", type=Path, default=RESULTS, help="Where the JSON and Markdown go."
    )
    args = parser.parse_args()
    args.root = args.root or Path("artifacts/distill-quick" if args.quick else "artifacts/distill")
    if args.quick:
        args.layers, args.min_time, args.rounds = ",".join(map(str, QUICK["layers"])), 0.05, 2
    start = time.perf_counter()
    teacher = ensure_teacher(args)
    export_int8(teacher, args.threads)
    metrics = RunFolder(teacher).read_metrics()
    teacher_entry: dict[str, Any] = {
        "run": str(teacher),
        "test_accuracy": metrics["test"]["accuracy"],
        "train_seconds": metrics["training"]["train_seconds"],
        "epochs_run": metrics["training"]["epochs_run"],
        "parameters": metrics["parameters"],
        "ood": ood_balanced_accuracy(teacher, args),
    }
    students = []
    for layers in (int(n) for n in args.layers.split(",")):
        for kd in (True, False):
            student = ensure_student(teacher, layers, kd, args)
            export_int8(student, args.threads)
            report = bench_pair(student, teacher, args)
            teacher_row = _row(report, f"{teacher.name}/{VARIANT}")
            teacher_entry["int8_test_accuracy"] = (
                teacher_row.accuracy.accuracy if teacher_row.accuracy else None
            )
            teacher_entry["size_mb"] = teacher_row.size_mb
            students.append(
                student_entry(student, kd, report, teacher_entry, ood_balanced_accuracy(student, args))
            )
    record = {
        "command": command_line(),
        "finished": now(),
        "machine": machine_environment(args.threads or physical_cores()),
        "settings": {
            "quick": args.quick,
            "batches": BATCHES,
            "mode": "real lengths",
            "variant": VARIANT,
            "rounds": args.rounds,
            "min_time_s": args.min_time,
            "samples": args.samples,
            "ood_samples": args.ood_samples,
            "threads": args.threads,
        },
        "teacher": teacher_entry,
        "students": sorted(students, key=lambda s: (s["layers"], not s["kd"])),
        "targets": targets(students),
        "total_seconds": time.perf_counter() - start,
    }
    write_results(record, args.results)
    print(format_markdown(record))


if __name__ == "__main__":
    main()
