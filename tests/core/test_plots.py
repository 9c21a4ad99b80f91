"""The confusion matrix and reliability diagram: readable cells, a confidence histogram, the title kept."""

from __future__ import annotations

import random

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgba

from edgefn.core.metrics import calibration, confusion_figure, luminance, reliability_figure


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """WCAG contrast ratio of two colours."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("matrix", [[[139, 15], [12, 134]], [[50, 50], [30, 70]], [[0, 0], [3, 7]]])
def test_confusion_cells_are_readable(matrix: list[list[int]]) -> None:
    """Every cell shows its count over its row share in %, in a colour that contrasts with the cell's
    (WCAG ratio >= 4.5), with the classes named real / fake."""
    fig = confusion_figure(matrix, "minilm-constraint test (pretrained)")
    ax = fig.axes[0]
    image = ax.images[0]
    assert len(ax.texts) == 4
    for text in ax.texts:
        x, y = text.get_position()
        i, j = round(y), round(x)
        share = matrix[i][j] / max(sum(matrix[i]), 1)
        assert text.get_text() == f"{matrix[i][j]}\n{100 * share:.1f}%"
        cell = image.cmap(image.norm(image.get_array()[i, j]))
        assert contrast(to_rgba(text.get_color()), cell) >= 4.5, (text.get_text(), text.get_color())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["real", "fake"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["real", "fake"]
    assert ax.get_title() == "minilm-constraint test (pretrained)"
    plt.close(fig)


def test_reliability_has_its_histogram() -> None:
    """Two panels: accuracy per bin with data only, and below it the rows per bin summing to the rows
    scored; the ECE and the run are in the title."""
    rng = random.Random(0)
    labels = [rng.randint(0, 1) for _ in range(500)]
    prob = [min(max((0.8 if y else 0.2) + rng.gauss(0, 0.2), 0.0), 1.0) for y in labels]
    cal = calibration(labels, prob)
    fig = reliability_figure(cal, "minilm-constraint: fp32 on constraint (test)")
    top, hist = fig.axes
    counts = [p.get_height() for p in hist.patches]
    assert sum(counts) == len(labels) and all(c > 0 for c in counts)
    assert len(counts) == len(cal["bins"]) < 10  # the empty bins (below 0.5 confidence) are not drawn
    assert [t.get_text() for t in hist.texts] == [str(b["n"]) for b in cal["bins"]]
    assert [p.get_height() for p in top.patches] == pytest.approx([b["accuracy"] for b in cal["bins"]])
    assert top.get_title().startswith("minilm-constraint: fp32 on constraint (test)\n")
    assert f"ECE {cal['ece']:.3f}" in top.get_title()
    assert hist.get_xlim()[0] == pytest.approx(min(0.5, cal["bins"][0]["low"]))
    plt.close(fig)
