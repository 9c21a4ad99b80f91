"""What the rounds measured per target, the legacy protocol's rounds, pooled timings and each target's report row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgefn.bench import noise
from edgefn.bench.measure import Latency
from edgefn.bench.report import Measurement, TargetResult
from edgefn.bench.targets import Target, device_of
from edgefn.bench.worker import JobResult, in_fresh_process
from edgefn.core.progress import Progress


def _peak_for(scheme: str, provider: str, peak: dict[str, Any]) -> float | None:
    on_cuda = device_of(provider) == "cuda"
    if "int8" in scheme:  # int8-dynamic, int8-static, ov-int8 and the int8 peers
        return None if on_cuda else peak.get("int8_gops")
    if "bf16" in scheme:  # no bf16 peak is measured
        return None
    if scheme == "fp16":
        return peak.get("cuda_fp16_gflops") if on_cuda else None
    return peak.get("cuda_fp32_gflops") if on_cuda else peak.get("fp32_gflops")


def to_measurement(raw: dict[str, Any], flops_model: Any, peak_gflops: float | None) -> Measurement:
    """A worker's raw timings plus FLOPs per sample, achieved GFLOP/s and the fraction of the peak."""
    lat = raw["latency"]
    seq_lens = list(raw["seq_lens"])
    m = Measurement(raw["mode"], raw["batch_size"], lat, seq_lens, sum(seq_lens) / len(seq_lens))
    if flops_model is not None:
        total = sum(flops_model.per_sample(s) * n for s, n in zip(seq_lens, lat.items))
        m.flops_per_sample = total / sum(lat.items)
        m.achieved_gflops = total / lat.total_s / 1e9
        if peak_gflops:
            m.peak_fraction = m.achieved_gflops / peak_gflops
            m.peak_gflops = peak_gflops
    return m


def one_line(e: BaseException) -> str:
    """An exception in one line of at most 300 characters: its type and the first line of its message."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


@dataclass
class Measured:
    """What the rounds gave one target: its first process's load, memory and predictions, each round's timings."""

    first: JobResult | None = None
    rounds: list[list[dict[str, Any]]] = field(default_factory=list)  # per round: a raw measurement per cell
    peak_rss_mb: float | None = None
    other_cores: list[float] = field(default_factory=list)  # per round it ran in
    steal: list[float | None] = field(default_factory=list)
    failure: str | None = None


def run_rounds(
    targets: list[Target], make_job: Callable[[Target, int], Any], rounds: int, say: Progress
) -> dict[int, Measured]:
    """The legacy protocol: the pending targets interleaved (A B C, A B C, ...), each round of each target in a
    fresh process that measures every cell in one go.

    Returns:
        target index -> its rounds (other processes' cores during each; the failure that ended them, if any).
    """
    from edgefn.bench import worker as bench_worker

    done = {i: Measured() for i, t in enumerate(targets) if t.status == "pending"}
    for rnd in range(rounds):
        for i, m in done.items():
            if m.failure is not None:
                continue
            t = targets[i]
            say(f"round {rnd + 1}/{rounds}: {t.variant} on {t.provider} ...")
            with noise.CpuWatch() as watch:
                try:
                    out = in_fresh_process(bench_worker.run_job, make_job(t, rnd))
                except Exception as e:  # noqa: BLE001 - reported as a failed row, the other targets still run
                    m.failure = f"round {len(m.rounds) + 1}: {one_line(e)}"
                    continue
            m.first = m.first or out
            m.rounds.append(out.measurements)
            m.peak_rss_mb = max(m.peak_rss_mb or 0.0, out.peak_rss_mb)
            m.other_cores.append(watch.other_cores)
    return done


def merge_rounds(raws: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One raw measurement per (mode, batch size): every round's calls pooled, each round's p50 kept."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for raw in raws:
        for m in raw:
            key = (m["mode"], m["batch_size"])
            lat: Latency = m["latency"]
            if key not in merged:
                merged[key] = {**m, "call_ms": [], "items": [], "seq_lens": [], "round_p50_ms": []}
            cell = merged[key]
            cell["call_ms"] += lat.call_ms
            cell["items"] += lat.items
            cell["seq_lens"] += list(m["seq_lens"])
            cell["round_p50_ms"].append(lat.p50_ms)
    return [{**c, "latency": Latency(c.pop("call_ms"), c.pop("items"))} for c in merged.values()]


def result_of(target: Target, measured: Measured, flops_model: Any, peak: dict[str, Any]) -> TargetResult:
    """A target's row from its rounds: the first process's load, memory and predictions; pooled timings, each
    round's p50 kept (flags are set later, against the other rows: `noise`)."""
    from edgefn.bench import measure

    result = TargetResult(target.variant, target.provider, target.scheme, "ok", peer=target.peer)
    result.description, result.run = target.description, target.run
    engine = target.engine
    result.size_mb, result.params = measure.size_and_params(
        target.model_dir, engine.model_files(target.model_dir)
    )
    result.model_fingerprint = engine.fingerprint_of(target.model_dir)
    first = measured.first
    if first is None or not measured.rounds:
        result.status, result.reason = "failed", measured.failure or "no round ran"
        return result
    for key in (
        "session_ms",
        "first_inference_ms",
        "rss_before_load_mb",
        "active_providers",
        "predictions",
        "prob_fake",
    ):
        setattr(result, key, getattr(first, key))
    result.peak_rss_mb = measured.peak_rss_mb
    result.precision = first.precision
    result.other_cores = max(measured.other_cores) if measured.other_cores else None
    if first.params is not None:
        result.params = first.params
    if measured.failure is not None:
        result.status, result.reason = "failed", measured.failure
    if first.profile_events is not None:  # engines that place nodes on a device, falling back per node
        result.placement = measure.summarize_placement(first.profile_events, target.provider)
    peak_gflops = _peak_for(target.scheme, target.provider, peak)
    for raw in merge_rounds(measured.rounds):
        m = to_measurement(raw, flops_model, peak_gflops)
        m.round_p50_ms = list(raw["round_p50_ms"])
        m.spread = noise.spread(m.round_p50_ms)
        result.measurements.append(m)
    return result
