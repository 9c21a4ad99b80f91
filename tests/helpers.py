"""Test helpers: build a small trained run folder without the full finetune stage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from edgefn import runs
from edgefn.core.presets import get_preset
from edgefn.core.weights import load_model
from edgefn.runs import RunFolder, Split


def constraint_split(shared_data: Path, name: str, n: int) -> Split:
    """First n rows of a CONSTRAINT split (label 1 = fake)."""
    files = {
        "train": "Constraint_Train.csv",
        "validation": "Constraint_Val.csv",
        "test": "english_test_with_labels.csv",
    }
    df = pd.read_csv(shared_data / "covid19-constraint" / files[name]).head(n)
    return Split([str(t) for t in df["tweet"]], [int(v == "fake") for v in df["label"]])


def make_tiny_run(preset: str, run_dir: Path, shared_data: Path, steps: int = 60) -> Path:
    """Train a tiny preset for a few steps on CONSTRAINT and write a run folder like `edgefn finetune` does."""
    import torch

    torch.manual_seed(0)
    loaded = load_model(get_preset(preset), init="scratch")
    model, tok = loaded.model, loaded.tokenizer
    train = constraint_split(shared_data, "train", 800)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for step in range(steps):
        i = (step * 16) % (len(train) - 16)
        enc = tok(train.texts[i : i + 16], truncation=True, max_length=64, padding=True, return_tensors="pt")
        out = model(**enc, labels=torch.tensor(train.labels[i : i + 16]))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    run = RunFolder(run_dir)
    run.checkpoint.mkdir(parents=True)
    model.save_pretrained(run.checkpoint)
    tok.save_pretrained(run.checkpoint)
    run.write_split("validation", constraint_split(shared_data, "validation", 200))
    run.write_split("test", constraint_split(shared_data, "test", 200))
    run.write_split("calibration", Split(train.texts[:128], train.labels[:128]))
    runs.write_json(run.finetune_config, {"preset": preset, "init": loaded.init, "max_length": 128})
    runs.write_run_manifest(run.path, runs.RUN_TRAINING, preset=preset, data="constraint (test helper)")
    run.mark_complete()  # as `edgefn finetune` ends: the checkpoint's hashes recorded in run.json
    return run_dir


def record_training_cleaning(run_dir: Path, names: tuple[str, ...] = ("drop-urls", "drop-handles")) -> None:
    """Record in the run's metrics.json that its training texts were cleaned by `names`, as a fine-tune on
    CONSTRAINT records it (the tiny runs train on raw texts and record no data)."""
    run = RunFolder(run_dir)
    metrics = run.read_metrics()
    cleaning = {"applied": True, "rules": list(names), "available": list(names), "names": list(names)}
    metrics["data"] = {**metrics.get("data", {}), "name": "constraint", "cleaning": cleaning}
    runs.write_json(run.metrics, metrics)
