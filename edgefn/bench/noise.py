"""Is the machine quiet enough to trust a timing? Load average, clock and other processes' CPU use."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from edgefn.core.environment import cpu_mhz

OTHER_CORES_LIMIT = 0.25  # cores used by other processes while a target is timed, beyond which it is flagged
SPREAD_LIMIT = 0.10  # round-to-round spread of a row's p50 beyond which it is flagged


def machine_state() -> dict[str, Any]:
    """Load averages (1, 5, 15 min), the mean core clock and the time, for the report's before / after."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"loadavg": [round(v, 2) for v in load], "cpu_mhz": cpu_mhz(), "time": time.time()}


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


def _busy(times: Any) -> float:
    idle = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
    return float(sum(times)) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _ours() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def spread(values: list[float]) -> float | None:
    """max / min - 1 of a row's per-round p50s (None with fewer than two rounds)."""
    values = [v for v in values if v > 0]
    return max(values) / min(values) - 1 if len(values) > 1 else None


def assess(
    before: dict[str, Any], after: dict[str, Any], cores: int, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """The report's verdict on its own timings.

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
    flagged = [r["label"] for r in rows if row_flags(r)]
    if flagged:
        reasons.append(
            f"{len(flagged)} of {len(rows)} rows with other processes above {OTHER_CORES_LIMIT} cores or a "
            f"round-to-round spread above {SPREAD_LIMIT:.0%}"
        )
    clocks = [s["cpu_mhz"] for s in (before, after) if s.get("cpu_mhz")]
    if len(clocks) == 2 and abs(clocks[1] / clocks[0] - 1) > SPREAD_LIMIT:
        reasons.append(f"core clock moved from {clocks[0]:.0f} to {clocks[1]:.0f} MHz")
    return {"unreliable": bool(reasons), "reasons": reasons, "flagged": flagged}


def row_flags(row: dict[str, Any]) -> list[str]:
    """Why one row's timing is not to be trusted (empty: it is)."""
    flags = []
    if (row.get("other_cores") or 0.0) > OTHER_CORES_LIMIT:
        flags.append(f"other processes used {row['other_cores']:.2f} cores")
    if (row.get("spread") or 0.0) > SPREAD_LIMIT:
        flags.append(f"p50 spread {row['spread']:.0%} across rounds")
    return flags
