"""Runs that cannot learn are warned about: warm-up outlasting training, validation at the majority share."""

from __future__ import annotations

from edgefn.train.config import FinetuneConfig
from edgefn.train.trainer import chance_warning, training_steps, warmup_warning


def _cfg(**kw) -> FinetuneConfig:
    return FinetuneConfig(preset="minilm", data="sample", **kw)


def test_training_steps_count_batches_epochs_and_processes() -> None:
    """Steps are ceil(rows / (batch x processes)) x epochs, or --max-steps when set."""
    assert training_steps(_cfg(batch_size=16, epochs=1), 400) == 25
    assert training_steps(_cfg(batch_size=16, epochs=2), 401) == 52
    assert training_steps(_cfg(batch_size=16, epochs=1), 400, world_size=2) == 13
    assert training_steps(_cfg(batch_size=16, epochs=3, max_steps=7), 400) == 7


def test_warmup_warning_fires_at_the_threshold_and_not_below() -> None:
    """The issue's case (warm-up 100, 400 rows x 1 epoch at batch 16 = 25 steps) warns; warm-up equal to the
    steps warns; one step fewer does not; the line names the fix and fits the console."""
    case = warmup_warning(_cfg(batch_size=16, epochs=1, warmup_steps=100), 400)
    assert case is not None and "warm-up 100 steps >= training 25 steps" in case and "--warmup-steps" in case
    assert len("warning: " + case) <= 120
    assert warmup_warning(_cfg(batch_size=16, epochs=1, warmup_steps=25), 400) is not None
    assert warmup_warning(_cfg(batch_size=16, epochs=1, warmup_steps=24), 400) is None
    assert warmup_warning(_cfg(batch_size=16, epochs=1, warmup_steps=0), 400) is None


def test_majority_warning_on_a_constant_predictor_and_not_on_a_learner() -> None:
    """A model that always answers the majority class (accuracy = its share) is warned about, as is one
    within noise of it; a model clearly above it is not."""
    labels = [1] * 36 + [0] * 24  # majority share 0.6 of 60 rows
    constant = sum(y == 1 for y in labels) / len(labels)
    message = chance_warning(constant, labels)
    assert message is not None and "0.600 of 60 rows" in message and len("warning: " + message) <= 120
    assert chance_warning(0.65, labels) is not None  # within two standard errors (2 x 0.063) of 0.6
    assert chance_warning(0.90, labels) is None
    assert chance_warning(None, labels) is None and chance_warning(0.5, []) is None
