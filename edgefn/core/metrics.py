"""Classification metrics, misclassified-row tables and confusion-matrix plots (label 1 = fake)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LABEL_NAMES = ("real", "fake")


ECE_BINS = 10


def classification_metrics(
    labels: Sequence[int], preds: Sequence[int], prob_fake: Sequence[float] | None = None
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro / weighted / per-class precision, recall and F1, the confusion
    matrix and, given the probabilities of fake, ROC-AUC and expected calibration error.

    Args:
        labels: true labels (1 = fake, 0 = real).
        preds: predicted labels.
        prob_fake: the predicted probability of fake for each row (None: no ROC-AUC or ECE).

    Returns:
        A JSON-ready dict; `confusion_matrix[i][j]` counts true label i predicted as j (0 = real, 1 = fake).
        Balanced accuracy is the mean of the two recalls (a constant predictor gets 0.5); `roc_auc` is None
        when only one label is present; `ece` is the expected calibration error of the predicted label's
        probability over 10 equal-width bins.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    p, r, f, support = precision_recall_fscore_support(labels, preds, labels=[0, 1], zero_division=0)
    pw, rw, fw, _ = precision_recall_fscore_support(
        labels, preds, labels=[0, 1], average="weighted", zero_division=0
    )
    present = [i for i in (0, 1) if support[i] > 0]
    out = {
        "accuracy": float(accuracy_score(labels, preds)) if len(labels) else 0.0,
        "balanced_accuracy": float(sum(r[i] for i in present) / len(present)) if present else 0.0,
        "f1_macro": float((f[0] + f[1]) / 2),
        "precision_weighted": float(pw),
        "recall_weighted": float(rw),
        "f1_weighted": float(fw),
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(LABEL_NAMES)
        },
        "confusion_matrix": confusion_matrix(labels, preds, labels=[0, 1]).tolist(),
        "n": len(labels),
        "fake_share": float(sum(labels) / len(labels)) if len(labels) else 0.0,
    }
    if prob_fake is not None:
        out["roc_auc"] = roc_auc(labels, prob_fake)
        out["ece"] = calibration(labels, prob_fake)["ece"]
    return out


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve of `scores` for label 1; None when only one label is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def calibration(labels: Sequence[int], prob_fake: Sequence[float], bins: int = ECE_BINS) -> dict[str, Any]:
    """Reliability of the predicted label's probability: per equal-width confidence bin, the rows, the mean
    confidence and the accuracy, and the expected calibration error (their row-weighted gap)."""
    import numpy as np

    y = np.asarray(labels, dtype=int)
    p = np.asarray(prob_fake, dtype=float)
    pred = (p >= 0.5).astype(int)
    conf = np.where(pred == 1, p, 1.0 - p)  # in [0.5, 1] for two labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if n == 0:
            continue
        mean_conf, acc = float(conf[mask].mean()), float((pred[mask] == y[mask]).mean())
        ece += n / max(len(y), 1) * abs(acc - mean_conf)
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "n": n,
                "confidence": mean_conf,
                "accuracy": acc,
            }
        )
    return {"ece": float(ece), "bins": rows}


def metrics_by_group(
    labels: Sequence[int],
    preds: Sequence[int],
    groups: Sequence[str],
    prob_fake: Sequence[float] | None = None,
) -> dict[str, dict[str, Any]]:
    """`classification_metrics` of each group's rows (e.g. each source of a union), by group name."""
    out = {}
    for name in sorted(set(groups)):
        idx = [i for i, g in enumerate(groups) if g == name]
        probs = None if prob_fake is None else [prob_fake[i] for i in idx]
        out[name] = classification_metrics([labels[i] for i in idx], [preds[i] for i in idx], probs)
    return out


def write_errors_csv(
    path: Path, texts: Sequence[str], labels: Sequence[int], preds: Sequence[int], prob_fake: Sequence[float]
) -> int:
    """Write the misclassified rows (text, label, prediction, probability of fake); return how many."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "prediction", "prob_fake"])
        for text, label, pred, prob in zip(texts, labels, preds, prob_fake):
            if label != pred:
                w.writerow([text, LABEL_NAMES[label], LABEL_NAMES[pred], f"{prob:.4f}"])
                n += 1
    return n


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], path: Path, title: str) -> None:
    """Save a 2x2 confusion-matrix heat map with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(matrix, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=12)
    ax.set_xticks([0, 1], LABEL_NAMES)
    ax.set_yticks([0, 1], LABEL_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reliability(cal: dict[str, Any], path: Path, title: str) -> None:
    """Save a reliability diagram (accuracy against confidence per bin) from `calibration`'s dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.plot([0.5, 1.0], [0.5, 1.0], ls="--", color="grey", lw=1, label="calibrated")
    bins = cal["bins"]
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="model")
    for b in bins:
        ax.annotate(
            str(b["n"]),
            (b["confidence"], b["accuracy"]),
            fontsize=7,
            xytext=(3, -9),
            textcoords="offset points",
        )
    ax.set_xlim(0.45, 1.02)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("confidence of the predicted label")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {cal['ece']:.3f}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
