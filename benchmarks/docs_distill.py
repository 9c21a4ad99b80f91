"""docs/results.md's distillation section, rendered from benchmarks/results/distill.json when it is there."""

from __future__ import annotations

from typing import Any

from docs_common import RESULTS, describe_cpu, load, md_table, num, result_link

COMMAND = "HF_HUB_OFFLINE=1 python benchmarks/distill.py"
OOD = ("liar", "isot")


def _name(s: dict[str, Any]) -> str:
    return f"{s['layers']} layer{'s' * (s['layers'] != 1)}, {'KD' if s['kd'] else 'no KD'}"


def _speedup(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render_distill_section() -> list[str]:
    """The students beside their teacher: accuracy in and out of domain, int8 speed-ups, training time."""
    head = [
        "## Smaller models: distilled students",
        "",
        "minilm fine-tuned on CONSTRAINT (the teacher, 6 layers) and students of 1 to 4 of its layers, each "
        "trained with knowledge distillation (`edgefn distill`) and without it (`--no-kd`: the same layers on "
        "the labels only); all int8-dynamic. How distillation works here: [distill.md](distill.md).",
        "",
    ]
    if not (RESULTS / "distill.json").is_file():
        return [*head, f"Not measured yet: `{COMMAND}` writes `benchmarks/results/distill.json`.", ""]
    data = load("distill.json")
    t = data["teacher"]
    header = ["model", "test acc", "vs teacher", "int8 speed-up b1", "int8 speed-up b32", "MB"]
    header += [f"{d.upper()} bal. acc" for d in OOD] + ["train s"]
    rows = [
        [
            "teacher",
            num(t["test_accuracy"], ".4f"),
            "-",
            "1.00x",
            "1.00x",
            num(t.get("size_mb"), ".1f"),
            *(num(t["ood"][d], ".4f") for d in OOD),
            num(t["train_seconds"], ".0f"),
        ]
    ]
    rows += [
        [
            _name(s),
            num(s["test_accuracy"], ".4f"),
            f"{s['delta_vs_teacher_pts']:+.2f} pts",
            _speedup(s["speedup_b1_real"]),
            _speedup(s["speedup_b32_real"]),
            num(s.get("size_mb"), ".1f"),
            *(num(s["ood"][d]["student"], ".4f") for d in OOD),
            f"{s['train_seconds']:.0f} ({s['train_seconds_vs_teacher']:.2f}x)",
        ]
        for s in data["students"]
    ]
    quick = (
        ["**A quick smoke test (`--quick`): its numbers mean nothing.**", ""]
        if data["settings"]["quick"]
        else []
    )
    by = {(s["layers"], s["kd"]): s for s in data["students"]}
    gains = [
        f"{n} layer{'s' * (n != 1)} {100 * (by[n, True]['test_accuracy'] - by[n, False]['test_accuracy']):+.2f}"
        for n in sorted({s["layers"] for s in data["students"]})
        if (n, True) in by and (n, False) in by
    ]
    return [
        *head,
        *quick,
        md_table(header, rows),
        "",
        f"What KD added over the same layers fine-tuned on the labels alone (test accuracy points): "
        f"{'; '.join(gains)}.",
        "",
        f"Speed-ups: the teacher's int8 p50 / the student's, both measured in the same interleaved `edgefn bench "
        f"--compare` rounds at real text lengths (tokenisation included); {describe_cpu(data['machine'])}. Test "
        "accuracy: the PyTorch checkpoint on the CONSTRAINT test split; LIAR / ISOT: balanced accuracy of the "
        f"int8 model on their test splits. Command `{data['command']}`, from {result_link('distill')}.",
        "",
    ]


def distill_headline() -> list[str]:
    """The README's line on the 3-layer student beside its teacher, from distill.json (none before it exists)."""
    if not (RESULTS / "distill.json").is_file():
        return []
    data = load("distill.json")
    if data["settings"]["quick"]:
        return []
    by = {(s["layers"], s["kd"]): s for s in data["students"]}
    s, plain, t = by.get((3, True)), by.get((3, False)), data["teacher"]
    if s is None:
        return []
    ood = ", ".join(f"{d.upper()} {s['ood'][d]['student']:.3f} vs {s['ood'][d]['teacher']:.3f}" for d in OOD)
    no_kd = (
        f"; the same 3 layers fine-tuned without distillation: {plain['test_accuracy']:.4f}" if plain else ""
    )
    return [
        "",
        f"When int8 is still too slow, `edgefn distill --layers 3` keeps 3 of minilm's 6 layers: in int8 the "
        f"student ran {_speedup(s['speedup_b1_real'])} (batch 1) and {_speedup(s['speedup_b32_real'])} (batch 32) "
        f"as fast as its teacher's int8, with test accuracy {s['test_accuracy']:.4f} against the teacher's "
        f"{t['test_accuracy']:.4f}{no_kd}; off domain (balanced accuracy) {ood}; training took "
        f"{s['train_seconds_vs_teacher']:.2f}x the teacher's fine-tune. Command `{data['command']}`, from "
        f"{result_link('distill', prefix='')}.",
    ]
