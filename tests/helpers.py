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


def make_outlier_run(src: Path, dst: Path, factor: float = 1000.0) -> Path:
    """A copy of a BERT run that int8 breaks in one known layer, the classifier, and keeping it in float mends.

    One pooled feature is made zero for every text (its pooler row and bias zeroed: tanh(0) = 0), and the
    classifier's weights on it `factor` times their largest: fp32 multiplies them by zero, so its logits stay what
    the other weights make them; int8 gives the classifier one scale per matrix (or per output, which here holds
    the outlier too), so every other weight rounds to zero and each text gets the same logits, the biases."""
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification

    shutil.copytree(src, dst)
    run = RunFolder(dst)
    model = AutoModelForSequenceClassification.from_pretrained(run.checkpoint)
    with torch.no_grad():
        model.bert.pooler.dense.weight[0] = 0.0
        model.bert.pooler.dense.bias[0] = 0.0
        model.classifier.weight[:, 0] = factor * model.classifier.weight.abs().max()
    model.save_pretrained(run.checkpoint)
    shutil.rmtree(run.onnx_dir, ignore_errors=True)
    run.mark_complete(preset="test-tiny-bert", data="constraint (test helper, an outlier classifier weight)")
    return dst
