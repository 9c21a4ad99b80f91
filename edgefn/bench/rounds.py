"""Measuring the targets: interleaved rounds in fresh processes, pooled timings, and each target's report row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgefn.bench import noise
from edgefn.bench.measure import Latency
from edgefn.bench.report import Measurement, TargetResult
from edgefn.bench.targets import Target, device_of
from edgefn.bench.worker import in_fresh_process
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


def run_rounds(
    targets: list[Target], make_job: Callable[[Target, int], Any], rounds: int, say: Progress
) -> dict[int, tuple[list[Any], list[float], str | None]]:
    """Measure the pending targets interleaved (A B C, A B C, ...), each round in fresh processes, so that a
    slow phase of the machine hits every target alike.

    Returns:
        target index -> (the worker results of its rounds, other processes' cores during each, failure).
    """
    from edgefn.bench import worker as bench_worker

    done: dict[int, tuple[list[Any], list[float], str | None]] = {
        i: ([], [], None) for i, t in enumerate(targets) if t.status == "pending"
    }
    for rnd in range(rounds):
        for i, (outs, others, failure) in done.items():
            if failure is not None:
                continue
            t = targets[i]
            say(f"round {rnd + 1}/{rounds}: {t.variant} on {t.provider} ...")
            with noise.CpuWatch() as watch:
                try:
                    outs.append(in_fresh_process(bench_worker.run_job, make_job(t, rnd)))
                except Exception as e:  # noqa: BLE001 - reported as a failed row, the other targets still run
                    done[i] = (outs, others, one_line(e))
                    continue
            others.append(watch.other_cores)
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


def result_of(
    target: Target,
    outs: list[Any],
    others: list[float],
    failure: str | None,
    flops_model: Any,
    peak: dict[str, Any],
) -> TargetResult:
    """A target's row from its rounds: the first round's load, memory and predictions; pooled timings."""
    from edgefn.bench import measure

    result = TargetResult(target.variant, target.provider, target.scheme, "ok", peer=target.peer)
    result.description, result.run = target.description, target.run
    engine = target.engine
    result.size_mb, result.params = measure.size_and_params(
        target.model_dir, engine.model_files(target.model_dir)
    )
    result.model_fingerprint = engine.fingerprint_of(target.model_dir)
    if not outs:
        result.status, result.reason = "failed", failure or "no round ran"
        return result
    first = outs[0]
    for key in (
        "session_ms",
        "first_inference_ms",
        "rss_before_load_mb",
        "active_providers",
        "predictions",
        "prob_fake",
    ):
        setattr(result, key, getattr(first, key))
    result.peak_rss_mb = max(o.peak_rss_mb for o in outs)
    result.precision = first.precision
    result.other_cores = max(others) if others else None
    if first.params is not None:
        result.params = first.params
    if failure is not None:
        result.status, result.reason = "failed", f"round {len(outs) + 1}: {failure}"
    if first.profile_events is not None:  # engines that place nodes on a device, falling back per node
        result.placement = measure.summarize_placement(first.profile_events, target.provider)
    peak_gflops = _peak_for(target.scheme, target.provider, peak)
    for raw in merge_rounds([o.measurements for o in outs]):
        m = to_measurement(raw, flops_model, peak_gflops)
        m.round_p50_ms = list(raw["round_p50_ms"])
        m.spread = noise.spread(m.round_p50_ms)
        m.flags = noise.row_flags({"other_cores": result.other_cores, "spread": m.spread})
        result.measurements.append(m)
    return result
