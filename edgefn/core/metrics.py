"""Classification metrics, misclassified-row tables, confusion-matrix and reliability plots (label 1 = fake)."""

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


def confusion_figure(matrix: Sequence[Sequence[int]], title: str) -> Any:
    """A 2x2 confusion matrix (rows: true class, columns: predicted) shaded by each row's share, every cell
    with its count and that share in %, in black or white, whichever contrasts more with the cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [[int(c) for c in row] for row in matrix]
    shares = [[c / max(sum(row), 1) for c in row] for row in counts]
    fig, ax = plt.subplots(figsize=(4.8, 4.0), dpi=120, layout="constrained")
    cmap = plt.get_cmap("Blues")
    image = ax.imshow(shares, cmap=cmap, vmin=0.0, vmax=1.0)
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            colour = text_colour([float(c) for c in cmap(shares[i][j])])
            ax.text(
                j,
                i,
                f"{count}\n{100 * shares[i][j]:.1f}%",
                ha="center",
                va="center",
                color=colour,
                fontsize=11,
                linespacing=1.4,
            )
    ax.set_xticks([0, 1], LABEL_NAMES)
    ax.set_yticks([0, 1], LABEL_NAMES)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label's rows")
    return fig


def text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever contrasts more with the background `rgba` (WCAG ratio >= 4.58 either way)."""
    lum = luminance(rgba) + 0.05
    return "white" if 1.05 / lum > lum / 0.05 else "black"


def luminance(rgba: Sequence[float]) -> float:
    """Relative luminance (WCAG) of an RGB(A) colour with channels in [0, 1]."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], path: Path, title: str) -> None:
    """Save `confusion_figure` as a PNG."""
    _save(confusion_figure(matrix, title), path)


def reliability_figure(cal: dict[str, Any], title: str) -> Any:
    """From `calibration`'s dict: accuracy against confidence for the bins with rows (bars over each bin,
    the mean confidence marked, the diagonal for perfect calibration), the ECE in the legend, and below it
    the rows per bin (their counts on the bars; they sum to the rows scored)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = cal["bins"]
    n = sum(b["n"] for b in bins)
    fig, (top, hist) = plt.subplots(
        2, 1, figsize=(4.8, 5.2), dpi=120, sharex=True, gridspec_kw={"height_ratios": (3, 1.2)}
    )
    left = min([0.5] + [b["low"] for b in bins])
    top.plot([left, 1.0], [left, 1.0], ls="--", color="grey", lw=1, label="perfectly calibrated")
    lows, widths = [b["low"] for b in bins], [b["high"] - b["low"] for b in bins]
    top.bar(
        lows,
        [b["accuracy"] for b in bins],
        width=widths,
        align="edge",
        color="tab:blue",
        alpha=0.35,
        edgecolor="tab:blue",
        label="accuracy per bin",
    )
    top.plot(
        [b["confidence"] for b in bins],
        [b["accuracy"] for b in bins],
        "o",
        color="tab:blue",
        label="at the bin's mean confidence",
    )
    top.set_ylim(0.0, 1.05)
    top.set_ylabel("accuracy")
    top.legend(fontsize=7, loc="upper left")
    top.set_title(f"{title}\nECE {cal['ece']:.3f} over {n} rows", fontsize=9)
    counts = hist.bar(lows, [b["n"] for b in bins], width=widths, align="edge", color="0.6", edgecolor="0.3")
    hist.bar_label(counts, fontsize=7, padding=1)
    hist.set_ylim(0, max([b["n"] for b in bins] + [1]) * 1.3)
    hist.set_ylabel("rows")
    hist.set_xlabel("confidence of the predicted label")
    hist.set_xlim(left, 1.0)
    for ax in (top, hist):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def plot_reliability(cal: dict[str, Any], path: Path, title: str) -> None:
    """Save `reliability_figure` as a PNG."""
    _save(reliability_figure(cal, title), path)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path)
    plt.close(fig)
