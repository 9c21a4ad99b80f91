"""Classification metrics, misclassified-row tables and confusion-matrix plots (label 1 = fake)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LABEL_NAMES = ("real", "fake")


def classification_metrics(labels: Sequence[int], preds: Sequence[int]) -> dict[str, Any]:
    """Accuracy, weighted and per-class precision / recall / F1, and the confusion matrix.

    Returns:
        A JSON-ready dict; `confusion_matrix[i][j]` counts true label i predicted as j (0 = real, 1 = fake).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    p, r, f, support = precision_recall_fscore_support(labels, preds, labels=[0, 1], zero_division=0)
    pw, rw, fw, _ = precision_recall_fscore_support(
        labels, preds, labels=[0, 1], average="weighted", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(labels, preds)),
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
    }


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
