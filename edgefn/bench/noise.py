"""Is the machine quiet enough to trust a timing? Steal time, other processes' CPU, the clock and each row's
round-to-round agreement with the rows measured beside it."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn.bench.stats import dispersion
from edgefn.core.environment import cpu_mhz

# The paired protocol's flags, set against A/A runs (one model file entered as two rows, benchmarks/aa_test.py):
# on a quiet machine a row moves a few per cent from one round to the next against the rows beside it and
# neighbours take well under a tenth of a core; busy loops on the cores push both far past these.
NOISE_LIMIT = 0.10  # round-to-round dispersion of a row against the other rows of its cell, beyond: flagged
# Real-length rounds each time a different slice of the test texts, and engines scale differently with length,
# so a quiet row moves more against its neighbours there: 14-26% in the quiet A/A run (benchmarks/results/aa.md)
REAL_NOISE_LIMIT = 0.35
OTHER_CORES_LIMIT = (
    0.25  # mean cores other processes used during the rounds, beyond which every row is flagged
)
STEAL_LIMIT = 0.03  # share of CPU time the hypervisor gave to other guests during the rounds
FLAGGED_SHARE = 0.25  # the report calls its timings unreliable when more than this share of rows is flagged
CLOCK_LIMIT = 0.10  # a core clock that moved by more than this between the start and the end
# The legacy protocol's flag (3 rounds, each target in its own fresh process per round)
SPREAD_LIMIT = 0.10  # round-to-round spread of a row's p50 beyond which it is flagged
PROC_STAT = Path("/proc/stat")
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def read_cpu_times(text: str | None = None) -> dict[str, int] | None:
    """The machine's CPU time counters (jiffies, all cores together) from the "cpu" line of /proc/stat
    (or the given text); None where there is no such file (macOS, Windows)."""
    if text is None:
        try:
            text = PROC_STAT.read_text(encoding="ascii")
        except OSError:
            return None
    for line in text.splitlines():
        name, *values = line.split()
        if name == "cpu":
            return {k: int(v) for k, v in zip(CPU_FIELDS, values)}
    return None


def steal_fraction(before: dict[str, int] | None, after: dict[str, int] | None) -> float | None:
    """The share of CPU time between two `read_cpu_times` the hypervisor ran other guests on our cores
    (guest time is already inside user and nice, so it is not counted twice)."""
    if not before or not after:
        return None
    counted = [k for k in CPU_FIELDS if k not in ("guest", "guest_nice")]
    total = sum(after.get(k, 0) - before.get(k, 0) for k in counted)
    return (after.get("steal", 0) - before.get("steal", 0)) / total if total > 0 else None


def machine_state() -> dict[str, Any]:
    """Load averages (1, 5, 15 min), the mean core clock, the CPU time counters and the time, for the report's
    before / after."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "loadavg": [round(v, 2) for v in load],
        "cpu_mhz": cpu_mhz(),
        "cpu_times": read_cpu_times(),
        "time": time.time(),
    }


@dataclass
class CpuWatch:
    """CPU seconds the whole machine spent busy while a measured child ran, minus the child's and ours:
    what other processes took from the cores (psutil's system-wide times, os.times for this process tree)."""

    wall: float = 0.0
    other_cores: float = 0.0  # mean cores busy with other processes during the window

    def __enter__(self) -> CpuWatch:
        import psutil

        self._start = (time.monotonic(), _busy(psutil.cpu_times()), _ours())
        return self

    def __exit__(self, *exc: Any) -> None:
        import psutil

        t0, busy0, ours0 = self._start
        self.wall = time.monotonic() - t0
        other = (_busy(psutil.cpu_times()) - busy0) - (_ours() - ours0)
        self.other_cores = max(0.0, other / self.wall) if self.wall > 0 else 0.0


@dataclass
class RoundWatch:
    """One round of the paired protocol: the cores other processes used (the machine's busy time less this
    process's and its live measuring processes') and the share of CPU time stolen by the hypervisor."""

    pids: Sequence[int]
    wall: float = 0.0
    other_cores: float = 0.0
    steal: float | None = None
    _start: tuple[Any, ...] = field(default=(), repr=False)

    def __enter__(self) -> RoundWatch:
        import psutil

        self._start = (time.monotonic(), _busy(psutil.cpu_times()), self._ours(), read_cpu_times())
        return self

    def __exit__(self, *exc: Any) -> None:
        import psutil

        t0, busy0, ours0, stat0 = self._start
        self.wall = time.monotonic() - t0
        other = (_busy(psutil.cpu_times()) - busy0) - (self._ours() - ours0)
        self.other_cores = max(0.0, other / self.wall) if self.wall > 0 else 0.0
        self.steal = steal_fraction(stat0, read_cpu_times())

    def _ours(self) -> float:
        import psutil

        t = os.times()
        total = t.user + t.system
        for pid in self.pids:
            try:
                c = psutil.Process(pid).cpu_times()
            except psutil.Error:  # gone: its time is no longer anyone's
                continue
            total += c.user + c.system
        return total


def _busy(times: Any) -> float:
    idle = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
    return float(sum(times)) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _ours() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# --- the paired protocol ------------------------------------------------------------------------------------


def row_noise(
    times: Sequence[float], others: Sequence[Sequence[float]], groups: Sequence[int]
) -> float | None:
    """How much a row's timing moves from one round to the next against the rows measured moments apart on the
    same inputs: the robust dispersion (`stats.dispersion`) of its per-round ratio to the median of the other
    rows of its cell, process offsets left out; with no other row, of its own rounds. A fraction (0.03: 3%);
    None under three rounds.

    Args:
        times: the row's per-round p50s.
        others: the per-round p50s of the other rows of the cell (each as long as its rounds went).
        groups: the measuring process of each round.
    """
    if not others:
        return dispersion(times, [1.0] * len(times), groups[: len(times)])
    consensus = []
    for r in range(len(times)):
        values = [o[r] for o in others if r < len(o) and o[r] > 0]
        consensus.append(statistics.median(values) if values else 0.0)
    return dispersion(times, consensus, groups[: len(times)])


def noise_limit(mode: str) -> float:
    """The round-to-round limit of a row measured at `mode` (fixed shapes or real lengths)."""
    return REAL_NOISE_LIMIT if mode == "real" else NOISE_LIMIT


def row_flags(
    noise: float | None, other_cores: float | None, steal: float | None, limit: float = NOISE_LIMIT
) -> list[str]:
    """Why one row's timing is not to be trusted under the paired protocol (empty: it is)."""
    flags = []
    if noise is not None and noise > limit:
        flags.append(f"moves {noise:.1%} from round to round against the rows beside it (limit {limit:.0%})")
    if (other_cores or 0.0) > OTHER_CORES_LIMIT:
        flags.append(f"other processes used {other_cores:.2f} cores")
    if (steal or 0.0) > STEAL_LIMIT:
        flags.append(f"the hypervisor stole {steal:.1%} of the CPU time")
    return flags


def assess(
    before: dict[str, Any],
    after: dict[str, Any],
    rows: list[dict[str, Any]],
    other_cores: list[float],
    steal: list[float | None],
) -> dict[str, Any]:
    """The report's verdict on its own timings under the paired protocol, and what it measured.

    Args:
        before / after: `machine_state()` around the measuring.
        rows: per measured row {"label", "noise" (`row_noise`), "flags"}.
        other_cores / steal: per round, from `RoundWatch`.

    Returns:
        {"unreliable", "reasons", "flagged", "measured": {steal, other cores, row intervals}, "limits"}.
    """
    stolen = steal_fraction(before.get("cpu_times"), after.get("cpu_times"))
    noises = sorted(r["noise"] for r in rows if r.get("noise") is not None)
    flagged = [r["label"] for r in rows if r.get("flags")]
    measured = {
        "steal_fraction": stolen,
        "steal_fraction_max_round": max((s for s in steal if s is not None), default=None),
        "other_cores_mean": statistics.fmean(other_cores) if other_cores else None,
        "other_cores_max_round": max(other_cores, default=None),
        "row_noise_median": statistics.median(noises) if noises else None,
        "row_noise_max": noises[-1] if noises else None,
        "rows": len(rows),
        "rows_flagged": len(flagged),
    }
    reasons = []
    if stolen is not None and stolen > STEAL_LIMIT:
        reasons.append(f"the hypervisor stole {stolen:.1%} of the CPU time (limit {STEAL_LIMIT:.0%})")
    if rows and len(flagged) > FLAGGED_SHARE * len(rows):
        reasons.append(
            f"{len(flagged)} of {len(rows)} rows flagged: moving more than {NOISE_LIMIT:.0%} (real lengths: "
            f"{REAL_NOISE_LIMIT:.0%}) from round to round against the rows beside them, other processes above {OTHER_CORES_LIMIT} cores or steal above "
            f"{STEAL_LIMIT:.0%}"
        )
    reasons += _clock_reasons(before, after)
    return {
        "unreliable": bool(reasons),
        "reasons": reasons,
        "flagged": flagged,
        "measured": measured,
        "limits": {
            "row_noise": NOISE_LIMIT,
            "row_noise_real": REAL_NOISE_LIMIT,
            "other_cores": OTHER_CORES_LIMIT,
            "steal_fraction": STEAL_LIMIT,
            "flagged_share": FLAGGED_SHARE,
            "clock_change": CLOCK_LIMIT,
        },
    }


def _clock_reasons(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    clocks = [s["cpu_mhz"] for s in (before, after) if s.get("cpu_mhz")]
    if len(clocks) == 2 and abs(clocks[1] / clocks[0] - 1) > CLOCK_LIMIT:
        return [f"core clock moved from {clocks[0]:.0f} to {clocks[1]:.0f} MHz"]
    return []


# --- the legacy protocol ------------------------------------------------------------------------------------


def spread(values: list[float]) -> float | None:
    """max / min - 1 of a row's per-round p50s (None with fewer than two rounds)."""
    values = [v for v in values if v > 0]
    return max(values) / min(values) - 1 if len(values) > 1 else None


def legacy_row_flags(row: dict[str, Any]) -> list[str]:
    """Why one row's timing is not to be trusted under the legacy protocol (empty: it is)."""
    flags = []
    if (row.get("other_cores") or 0.0) > OTHER_CORES_LIMIT:
        flags.append(f"other processes used {row['other_cores']:.2f} cores")
    if (row.get("spread") or 0.0) > SPREAD_LIMIT:
        flags.append(f"p50 spread {row['spread']:.0%} across rounds")
    return flags


def assess_legacy(
    before: dict[str, Any], after: dict[str, Any], cores: int, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """The legacy protocol's verdict on its timings: load above the cores, any row flagged, a moving clock.

    Args:
        before / after: `machine_state()` around the whole bench.
        cores: logical cores.
        rows: per measured row {"label", "spread", "other_cores"}.

    Returns:
        {"unreliable": bool, "reasons": [...], "flagged": [labels]}.
    """
    reasons = []
    load = max(before["loadavg"][0], after["loadavg"][0])
    if load > cores:
        reasons.append(f"load average {load:.1f} above the {cores} cores")
    flagged = [r["label"] for r in rows if legacy_row_flags(r)]
    if flagged:
        reasons.append(
            f"{len(flagged)} of {len(rows)} rows with other processes above {OTHER_CORES_LIMIT} cores or a "
            f"round-to-round spread above {SPREAD_LIMIT:.0%}"
        )
    reasons += _clock_reasons(before, after)
    return {"unreliable": bool(reasons), "reasons": reasons, "flagged": flagged}
