"""ExportConfig: what `export` makes of a run (schemes, graph optimisation, CPU target, calibration, checks)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from edgefn.core.environment import check_threads
from edgefn.core.errors import ConfigError
from edgefn.export import quantize as q
from edgefn.export import schemes

MIN_OPSET = 11  # the oldest Optimum exports text classifiers to
DEFAULT_TIME_BUDGET_S = 600.0  # the guard search of one scheme (minilm on 2 cores: a few steps of a minute)
OPTIMIZE_LEVELS = ("O1", "O2", "O3", "none")  # none: the plain graph, even where a preset defaults to O2


@dataclass
class ExportConfig:
    """What to export: the run, the schemes after fp32, optimisation level, CPU target and checks."""

    run_dir: Path | None = None
    schemes: tuple[str, ...] = ("int8-dynamic",)
    optimize: str | None = None
    target: str | None = None
    calibration_samples: int = 256
    calibration_method: str = "minmax"
    opset: int | None = None
    overwrite: bool = False
    parity_samples: int = 64
    eval_samples: int | None = None
    parity_atol: float = 1e-4
    saturation_check: bool = True  # int8-dynamic on x86 without VNNI: also measure u8/s8 full range
    threads: int | None = None
    max_drop: float | None = None  # validation points an int8 variant may lose; set: the guard search runs
    guard_data: str | None = None  # a second dataset the guarded variant must also stay within max_drop on
    time_budget_s: float = DEFAULT_TIME_BUDGET_S  # seconds the guard search may take per scheme

    def __post_init__(self) -> None:
        if isinstance(self.schemes, str):
            self.schemes = tuple(s for s in self.schemes.split(",") if s.strip())
        self.schemes = schemes.resolve_schemes(tuple(self.schemes) or ("none",))
        if self.optimize is not None and self.optimize not in OPTIMIZE_LEVELS:
            raise ConfigError(
                "optimize", f"unknown level {self.optimize!r}; choose one of {', '.join(OPTIMIZE_LEVELS)}"
            )
        if self.target is not None:
            q.get_target(self.target)
        if self.calibration_method not in q.CALIBRATION_METHODS:
            raise ConfigError(
                "calibration_method",
                f"unknown method {self.calibration_method!r}; choose one of {', '.join(q.CALIBRATION_METHODS)}",
            )
        check_threads(self.threads)
        if self.opset is not None and not MIN_OPSET <= self.opset <= max_opset():
            raise ConfigError(
                "opset", f"must be between {MIN_OPSET} and {max_opset()} (this onnx), got {self.opset}"
            )
        if self.max_drop is not None and not 0 <= self.max_drop <= 100:
            raise ConfigError("max_drop", f"must be between 0 and 100 accuracy points, got {self.max_drop}")
        if self.guard_data is not None and self.max_drop is None:
            raise ConfigError(
                "guard_data", "needs max_drop: the budget it holds the guarded variant to", ("max_drop",)
            )
        if not 0 <= self.time_budget_s < math.inf:
            raise ConfigError("time_budget_s", f"must be zero or more seconds, got {self.time_budget_s}")
        for name in ("calibration_samples", "parity_samples", "eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(name, f"must be a positive integer, got {value}")
        if self.run_dir is not None:
            self.run_dir = Path(self.run_dir)


def max_opset() -> int:
    """The newest ONNX opset the installed onnx package knows."""
    import onnx

    return int(onnx.defs.onnx_opset_version())
