"""Paired ratio intervals: the median of per-round ratios and its bootstrap interval, resampled process by process."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONFIDENCE = 0.99  # an A/A comparison (one file timed twice) must come out a tie in nearly every cell
RESAMPLES = 2000
SEED = 0  # fixed: the verdict recomputes to the same intervals from report.json


@dataclass(frozen=True)
class RatioInterval:
    """The median over rounds of a / b (each round's two times measured moments apart), and its interval (`CONFIDENCE`)."""

    ratio: float
    ci_low: float
    ci_high: float
    rounds: int  # rounds in which both were measured
    processes: int  # measuring processes those rounds came from

    @property
    def tie(self) -> bool:
        """The interval holds 1: the data do not say which of the two is faster."""
        return self.ci_low <= 1.0 <= self.ci_high

    @property
    def half_width(self) -> float:
        """Half the interval's width relative to the ratio (0.05: +-5%)."""
        return (self.ci_high - self.ci_low) / 2 / self.ratio

    def as_dict(self) -> dict[str, float | int]:
        return {
            "ratio": self.ratio,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "rounds": self.rounds,
            "processes": self.processes,
        }


def quantiles(df: int | None, confidence: float = CONFIDENCE) -> float:
    """The two-sided quantile of an interval at `confidence`: Student's t with `df` degrees of freedom, or the
    normal's (None)."""
    from scipy import stats

    q = (1 + confidence) / 2
    return float(stats.norm.ppf(q) if df is None else stats.t.ppf(q, df))


def round_groups(rounds: int, processes: int) -> list[int]:
    """The measuring process (0 ..) of each round when `rounds` rounds are split evenly over `processes`
    processes in turn (the first processes take one more where they do not divide)."""
    processes = max(1, min(processes, rounds)) if rounds else 1
    size, extra = divmod(rounds, processes)
    return [g for g in range(processes) for _ in range(size + (g < extra))]


def ratio_interval(
    a: Sequence[float],
    b: Sequence[float],
    groups: Sequence[int] | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> RatioInterval | None:
    """The median of the per-round ratios a[r] / b[r] with a bootstrap interval (`CONFIDENCE`), paired by round.

    The within-process part: the variance of the median over bootstrap resamples that draw rounds with
    replacement inside each measuring process (`groups`: the process of every round), a round's two times kept
    together. The between-process part: the variance of the processes' own offsets (`between_variance`) over
    the number of processes, scaled by Student's t with processes - 1 degrees of freedom (few processes say
    little about it). The interval is the median's log +- 1.96 standard deviations of the two together.

    Returns None with fewer than two rounds measured by both.
    """
    import numpy as np

    groups = list(groups) if groups is not None else [0] * len(a)
    pairs = [(math.log(x) - math.log(y), g) for x, y, g in zip(a, b, groups) if x > 0 and y > 0]
    if len(pairs) < 2:
        return None
    logs = np.array([p[0] for p in pairs])
    center = float(np.median(logs))
    by_group = [logs[[g == k for _, g in pairs]] for k in dict.fromkeys(g for _, g in pairs)]
    if all(len(g) == 1 for g in by_group):  # a process per round: resampling the rounds draws processes
        by_group = [logs]
    rng = np.random.default_rng(seed)
    within = float(np.var(_resampled_medians(by_group, rng, resamples)))
    spread = (quantiles(len(logs) - len(by_group), confidence) ** 2) * within
    if len(by_group) > 1:
        spread += quantiles(len(by_group) - 1, confidence) ** 2 * between_variance(by_group) / len(by_group)
    half = math.sqrt(spread)
    return RatioInterval(
        math.exp(center), math.exp(center - half), math.exp(center + half), len(pairs), len(by_group)
    )


def dispersion(a: Sequence[float], b: Sequence[float], groups: Sequence[int] | None = None) -> float | None:
    """Round-to-round dispersion of a[r] / b[r]: the robust standard deviation (1.4826 x the median absolute
    deviation) of the log ratios around their own process's median, so a process's offset does not count; as a
    fraction (0.03: about 3% from one round to the next). None under three rounds."""
    import numpy as np

    groups = list(groups) if groups is not None else [0] * len(a)
    pairs = [(math.log(x) - math.log(y), g) for x, y, g in zip(a, b, groups) if x > 0 and y > 0]
    if len(pairs) < 3:
        return None
    by_group: dict[int, list[float]] = {}
    for value, g in pairs:
        by_group.setdefault(g, []).append(value)
    if all(len(v) == 1 for v in by_group.values()):  # a process per round: around the median of all rounds
        by_group = {0: [v for v, _ in pairs]}
    residuals = np.concatenate([np.array(v) - np.median(v) for v in by_group.values() if len(v) > 1])
    return math.expm1(1.4826 * float(np.median(np.abs(residuals))))


def between_variance(groups: list[Any]) -> float:
    """The variance of the process offsets of log ratios (one-way analysis of variance: the processes' means
    spread beyond what their rounds' spread explains, 0 when they do not), on values clipped at 3 robust
    standard deviations from the median so that one stalled round does not pass for an offset."""
    import numpy as np

    values = np.concatenate(groups)
    center = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - center))) or float(np.std(values))
    clipped = [np.clip(g, center - 3 * mad, center + 3 * mad) for g in groups]
    sizes = np.array([len(g) for g in clipped], dtype=float)
    n, k = float(sizes.sum()), len(clipped)
    if n <= k:
        return 0.0
    means = np.array([g.mean() for g in clipped])
    grand = float((sizes * means).sum() / n)
    within = sum(float(((g - m) ** 2).sum()) for g, m in zip(clipped, means)) / (n - k)
    between = float((sizes * (means - grand) ** 2).sum()) / (k - 1)
    size = (n - float((sizes**2).sum()) / n) / (k - 1)  # the mean group size, for unequal groups
    return max(0.0, (between - within) / size)


def _resampled_medians(groups: list[Any], rng: Any, resamples: int) -> Any:
    """Medians of `resamples` bootstrap samples, each group's rounds drawn with replacement (as many as it has)."""
    import numpy as np

    sizes = np.array([len(g) for g in groups])
    table = np.full((len(groups), int(sizes.max())), np.nan)
    for k, g in enumerate(groups):
        table[k, : len(g)] = g
    width = table.shape[1]
    picked = (rng.random((resamples, len(groups), width)) * sizes[:, None]).astype(int)
    values = table[np.arange(len(groups))[None, :, None], picked]
    values = np.where(np.arange(width) < sizes[:, None], values, np.nan)
    return np.nanmedian(values.reshape(resamples, -1), axis=1)
