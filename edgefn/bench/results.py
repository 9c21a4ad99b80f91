"""The bench report object: one result per variant and provider, with every latency sample; read back from JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.bench.measure import Latency, Placement
from edgefn.core.errors import EdgefnError


@dataclass
class Accuracy:
    """Test-split metrics of one target, its agreement with the reference, and deltas against it."""

    samples: int
    accuracy: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    per_class: dict[str, dict[str, float]]
    agreement: float | None = None  # fraction of test rows where the prediction equals the reference's
    delta: dict[str, float] = field(default_factory=dict)  # metric - reference metric
    balanced_accuracy: float | None = None  # None in reports written before it was measured
    f1_macro: float | None = None
    roc_auc: float | None = None  # of the probability of fake
    ece: float | None = None  # expected calibration error of the probability of fake

    @classmethod
    def from_metrics(cls, m: dict[str, Any]) -> Accuracy:
        """From `metrics.classification_metrics`' dict."""
        return cls(
            m["n"],
            m["accuracy"],
            m["precision_weighted"],
            m["recall_weighted"],
            m["f1_weighted"],
            {k: dict(v) for k, v in m["per_class"].items()},
            balanced_accuracy=m.get("balanced_accuracy"),
            f1_macro=m.get("f1_macro"),
            roc_auc=m.get("roc_auc"),
            ece=m.get("ece"),
        )


@dataclass
class Measurement:
    """Latency of one batch size and input mode, with the FLOPs it implies."""

    mode: str  # "fixed" (seq_len, model call only) or "real" (test texts, tokenisation included)
    batch_size: int
    latency: Latency
    seq_lens: list[int]  # padded length of every timed call
    mean_seq_len: float
    flops_per_sample: float | None = None
    achieved_gflops: float | None = None
    peak_gflops: float | None = None
    peak_fraction: float | None = None
    speedup_vs_reference: float | None = None  # reference per-sample p50 / this per-sample p50
    round_p50_ms: list[float] = field(default_factory=list)  # per-sample p50 of each interleaved round
    spread: float | None = None  # max / min - 1 of round_p50_ms
    # round-to-round dispersion of its ratio to the other rows of its cell (paired protocol; noise.row_noise)
    noise: float | None = None
    flags: list[str] = field(default_factory=list)  # why this timing is not to be trusted (empty: it is)


@dataclass
class TargetResult:
    """Everything measured for one variant on one provider."""

    variant: str
    provider: str
    scheme: str
    status: str
    reason: str | None = None
    size_mb: float | None = None
    params: int | None = None
    session_ms: float | None = None
    first_inference_ms: float | None = None
    rss_before_load_mb: float | None = None
    peak_rss_mb: float | None = None
    active_providers: list[str] = field(default_factory=list)
    accuracy: Accuracy | None = None
    measurements: list[Measurement] = field(default_factory=list)
    placement: Placement | None = None
    predictions: list[int] = field(default_factory=list)
    prob_fake: list[float] = field(default_factory=list)
    precision: str | None = None  # what OpenVINO computed in (fp32 / bf16); None for other runtimes
    peer: bool = False  # a peer (what users would pick instead), not one of edgefn's variants
    description: str | None = None  # a peer's recipe
    other_cores: float | None = None  # most cores other processes used while a round of it was timed
    model_fingerprint: str | None = None  # runs.model_fingerprint of its model files (None for PyTorch rows)
    run: str | None = None  # the --compare run this row's model comes from (None: the run benchmarked)


@dataclass
class BenchReport:
    """The whole benchmark: config, environment, MatMul peak, one result per variant and provider."""

    run_dir: str
    config: dict[str, Any]
    reference: str | None  # "variant on provider" whose predictions and latency the deltas use
    max_length: int
    environment: dict[str, Any]
    peak: dict[str, Any]
    results: list[TargetResult]
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)  # state before / after, and whether to trust it
    verdict: list[dict[str, Any]] = field(default_factory=list)  # what to ship (edgefn.bench.verdict)
    # how the timings were taken: the protocol, its rounds and processes, the engines' threading, seconds
    protocol: dict[str, Any] = field(default_factory=dict)

    def result(self, variant: str, provider: str) -> TargetResult:
        """The result of one variant on one provider."""
        for r in self.results:
            if r.variant == variant and r.provider == provider:
                return r
        raise KeyError(f"{variant} on {provider}")

    @classmethod
    def from_json(cls, path: Path) -> BenchReport:
        """Read a report.json written by `write_report` back into the report object."""
        d = runs.read_json_object(path, {"results": list}, required=("results",))
        try:
            return cls(
                **{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d and f.name != "results"},
                results=[_target_from_dict(r) for r in d["results"]],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise EdgefnError(f"{path} is not an edgefn bench report ({type(e).__name__}: {e})") from None


def _target_from_dict(d: dict[str, Any]) -> TargetResult:
    plain = {k: v for k, v in d.items() if k not in ("accuracy", "measurements", "placement")}
    r = TargetResult(**plain)
    if d.get("accuracy"):
        r.accuracy = Accuracy(**d["accuracy"])
    if d.get("placement"):
        r.placement = Placement(**d["placement"])
    for m in d.get("measurements") or []:
        lat = Latency(m["latency"]["call_ms"], m["latency"]["items"])
        rest = {k: v for k, v in m.items() if k != "latency"}
        r.measurements.append(Measurement(latency=lat, **rest))
    return r
