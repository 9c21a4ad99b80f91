"""The budget a quantized variant is held to: the samples it is scored on (validation, --guard-data's rows) with
fp32's logits, and its score against fp32 on each."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.core.cleaning import clean_texts
from edgefn.export.variants import FP32, ExportJob, compare_logits, model_logits

GUARD_DATA_ROWS = 1000  # rows of --guard-data's validation split scored at each step (a seeded sample)
EPSILON_PTS = 1e-9  # a drop equal to the budget is inside it (floating-point sums of 1/n)


@dataclass(frozen=True)
class Sample:
    """Texts the budget is checked on (validation, or --guard-data's rows) with fp32's logits on them."""

    name: str
    texts: list[str]
    labels: np.ndarray
    fp32_logits: np.ndarray

    @property
    def fp32_accuracy(self) -> float:
        return float((self.fp32_logits.argmax(1) == self.labels).mean())


@dataclass(frozen=True)
class Score:
    """A model against fp32 on one sample, and how far it is beyond the budget (excess <= 0: inside).

    The trigger is the accuracy drop. Where one text of the sample is worth more than the budget, a drop inside the
    budget is a drop of no text at all, or a gain, which says nothing on so few texts: the disagreement with fp32
    (the share of texts whose prediction changed, in points) is the trigger then, a finer signal there."""

    accuracy: float
    drop_pts: float
    agreement: float
    samples: int
    excess_pts: float
    trigger: str  # "accuracy" or "agreement"

    @classmethod
    def of(cls, logits: np.ndarray, sample: Sample, max_drop: float) -> Score:
        accuracy = float((logits.argmax(1) == sample.labels).mean())
        drop = 100 * (sample.fp32_accuracy - accuracy)
        agreement = compare_logits(logits, sample.fp32_logits)["agreement"]
        one_text = 100 / len(sample.labels)
        if drop <= max_drop + EPSILON_PTS and one_text > max_drop + EPSILON_PTS:
            return cls(
                accuracy, drop, agreement, len(sample.labels), 100 * (1 - agreement) - max_drop, "agreement"
            )
        return cls(accuracy, drop, agreement, len(sample.labels), drop - max_drop, "accuracy")

    def lost_pts(self, measure: str) -> float:
        """Points lost by `measure`: the accuracy drop, or the disagreement with fp32 ("agreement")."""
        return self.drop_pts if measure == "accuracy" else 100 * (1 - self.agreement)

    def describe(self) -> str:
        if self.trigger == "agreement":
            return f"{self.agreement:.1%} agreement with fp32 ({-self.drop_pts:+.2f} pts; one text outweighs the budget)"
        return f"{-self.drop_pts:+.2f} pts"

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "drop_pts": self.drop_pts,
            "agreement": self.agreement,
            "samples": self.samples,
            "trigger": self.trigger,
            "inside": self.excess_pts <= EPSILON_PTS,
        }


def load_samples(job: ExportJob) -> list[Sample]:
    """The validation sample, and --guard-data's (read by `read_guard_data`, scored by fp32 once per export)."""
    out = [Sample("validation", job.eval_texts, job.eval_labels, job.fp32_logits)]
    if job.cfg.guard_data is None:
        return out
    if job.guard_sample is None:
        job.guard_sample = _guard_sample(job)
    return [*out, job.guard_sample]


def read_guard_data(job: ExportJob) -> None:
    """Read --guard-data before any variant is written, so an unknown name or a malformed file is refused
    first: a seeded sample of its validation split (else its test split), cleaned as the model serves texts."""
    if job.cfg.guard_data is None:
        return
    from edgefn.data.catalog import load_data

    bundle = load_data(job.cfg.guard_data)
    split = bundle.validation if len(bundle.validation) else bundle.test
    n = min(len(split), job.cfg.eval_samples or GUARD_DATA_ROWS)
    split = split.subset(sorted(random.Random(42).sample(range(len(split)), n)))
    texts = list(clean_texts(split.texts, job.cleaning)) if job.cleaning else split.texts
    job.guard_data = (bundle.name, texts, np.asarray(split.labels))


def _guard_sample(job: ExportJob) -> Sample:
    """--guard-data's sample (read by `read_guard_data` when the export began) with fp32's logits."""
    name, texts, labels = job.guard_data
    job.step(f"guard data: {len(texts)} validation rows of {name}, scored by fp32")
    logits = model_logits(job, job.variant_dir(FP32) / runs.ONNX_FILE, texts)
    return Sample(f"guard:{name}", texts, labels, logits)
