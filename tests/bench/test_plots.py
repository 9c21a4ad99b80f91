"""The bench plots on a report shaped like the peers bench (no model needed): labels, shipped row, budget, titles."""

from __future__ import annotations

from itertools import combinations

import matplotlib.pyplot as plt
import pytest

from edgefn.bench.measure import Latency
from edgefn.bench.plots import latency_figure, text_box, tradeoff_figure
from edgefn.bench.results import Accuracy, BenchReport, Measurement, TargetResult

CPU = "CPUExecutionProvider"
# (variant, provider, precision, peer, MB, accuracy, fixed batch-1 ms): three int8 files at ~23 MB with one
# accuracy, pairs of rows at one point, as the minilm peers bench had them
ROWS = [
    ("pytorch", "torch-cpu", None, False, 90.868, 0.95, 14.0),
    ("fp32", CPU, None, False, 90.879, 0.95, 14.1),
    ("int8-dynamic", CPU, None, False, 23.011, 0.95, 7.6),
    ("int8-static", CPU, None, False, 22.993, 0.94, 8.0),
    ("ov-bf16", "openvino-cpu", "bf16", False, 91.097, 0.9525, 3.2),
    ("ov-int8", "openvino-cpu", "bf16", False, 23.624, 0.955, 3.0),
    ("pytorch-int8", "torch-cpu", None, True, 90.868, 0.955, 8.7),
    ("ort-default", CPU, None, True, 23.011, 0.95, 7.3),
    ("optimum-recipe", CPU, None, True, 23.030, 0.95, 7.35),
    ("openvino-fp32", "openvino-cpu", "fp32", True, 91.097, 0.95, 10.2),
    ("openvino-bf16", "openvino-cpu", "bf16", True, 91.097, 0.9525, 3.17),
    ("openvino-int8", "openvino-cpu", "bf16", True, 23.624, 0.955, 3.01),
]


def make_report(verdict: bool = True) -> BenchReport:
    """A bench report of ROWS (batch 1 and 8, fixed inputs) whose verdict ships ov-int8 at batch 1."""
    results = []
    for variant, provider, precision, peer, mb, acc, ms in ROWS:
        measurements = [
            Measurement("fixed", b, Latency([ms * b * f for f in (1.0, 1.1, 0.9)], [b] * 3), [128], 128.0)
            for b in (1, 8)
        ]
        accuracy = Accuracy(400, acc, acc, acc, acc, {}, delta={"accuracy": acc - 0.95})
        results.append(
            TargetResult(
                variant,
                provider,
                "",
                "ok",
                size_mb=mb,
                accuracy=accuracy,
                precision=precision,
                peer=peer,
                measurements=measurements,
            )
        )
    results.append(TargetResult("fp16", "CUDAExecutionProvider", "", "unavailable", reason="no GPU"))
    cells = [
        {
            "device": "cpu",
            "mode": "fixed",
            "batch_size": b,
            "max_drop_pts": 0.5,
            "winner": {"variant": w, "provider": "openvino-cpu", "precision": "bf16", "peer": False},
        }
        for b, w in ((1, "ov-int8"), (8, "ov-bf16"))
    ]
    config = {"batch_sizes": [1, 8], "seq_len": 128, "max_drop": 0.5}
    return BenchReport(
        "/somewhere/runs/minilm-constraint",
        config,
        "pytorch on torch-cpu",
        128,
        {},
        {},
        results,
        verdict=cells if verdict else [],
    )


@pytest.fixture
def tradeoff():
    fig = tradeoff_figure(make_report())
    fig.canvas.draw()
    yield fig
    plt.close(fig)


def test_every_row_is_labelled_and_no_two_labels_overlap(tradeoff) -> None:
    """Each panel names every row with accuracy beside its marker; no label overlaps another, the legend or
    the panel's edge, though three int8 rows share one point."""
    renderer = tradeoff.canvas.get_renderer()
    legend = tradeoff.legends[0].get_window_extent(renderer)
    for ax in tradeoff.axes[:2]:
        texts = [t.get_text() for t in ax.texts]
        assert sorted(t.split(":")[0] for t in texts) == sorted(
            f"{v} (peer)" if peer else v for v, _, _, peer, *_ in ROWS
        )
        boxes = [text_box(t, renderer) for t in ax.texts]
        assert not [(a, b) for a, b in combinations(boxes, 2) if a.overlaps(b)]
        frame = ax.get_window_extent(renderer)
        for box in boxes:
            assert frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            assert not box.overlaps(legend)


def test_shipped_row_has_its_own_mark(tradeoff) -> None:
    """The verdict's winner at the plotted batch (ov-int8 at batch 1, not ov-bf16 at batch 8) is circled
    at its own point, in the legend and in bold beside it."""
    left, right = tradeoff.axes[:2]
    (ring,) = [line for line in left.get_lines() if line.get_label().startswith("shipped")]
    assert "ov-int8, openvino-cpu bf16" in ring.get_label()
    assert (ring.get_xdata()[0], ring.get_ydata()[0]) == pytest.approx((23.624, 95.5))
    assert any(t.get_text().startswith("shipped (verdict): ov-int8") for t in tradeoff.legends[0].get_texts())
    (bold,) = [t for t in right.texts if t.get_fontweight() == "bold"]
    assert bold.get_text() == "ov-int8: shipped (cpu)"


def test_budget_and_units_are_marked(tradeoff) -> None:
    """Accuracy is in %, the --max-drop band reaches 0.5 points below the reference, and a second axis
    counts points against the reference."""
    legend = [t.get_text() for t in tradeoff.legends[0].get_texts()]
    assert "budget: reference - 0.5 pts (--max-drop)" in legend
    assert "reference: pytorch on torch-cpu (95.0%)" in legend
    for ax in tradeoff.axes[:2]:
        assert ax.get_ylabel() == "test accuracy (%)"
        low, high = ax.get_ylim()
        assert low < 94.0 < 94.5 < 95.5 < high  # int8-static (94%) is below the band, which is drawn
        (band,) = [p for p in ax.patches if p.get_label().startswith("budget")]
        assert band.get_y() == pytest.approx(94.5)
    assert tradeoff.axes[0].get_xlabel() == "size on disk (MB)"
    assert "(ms" in tradeoff.axes[1].get_xlabel()
    assert "points" in tradeoff.axes[1].child_axes[0].get_ylabel()


def test_titles_name_the_run() -> None:
    """Both bench figures carry the run folder's name; without a verdict nothing is marked as shipped."""
    report = make_report(verdict=False)
    for make in (tradeoff_figure, latency_figure):
        fig = make(report)
        assert fig._suptitle.get_text().startswith("minilm-constraint: ")
        assert not [
            line for ax in fig.axes for line in ax.get_lines() if line.get_label().startswith("shipped")
        ]
        plt.close(fig)
