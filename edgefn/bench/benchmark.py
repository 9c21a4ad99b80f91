"""bench(cfg) -> BenchReport: accuracy, size, latency and hardware use of every variant on every provider."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.bench import noise
from edgefn.bench.measure import Latency
from edgefn.bench.peers import PEERS, build_peers, resolve_peers
from edgefn.bench.report import Accuracy, BenchReport, Measurement, TargetResult
from edgefn.bench.verdict import DEFAULT_MAX_DROP, compute_verdict
from edgefn.bench.worker import in_fresh_process
from edgefn.core import outputs
from edgefn.core.environment import check_threads, physical_cores
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.core.metrics import classification_metrics
from edgefn.runs import RunFolder
from edgefn.runtime.inference import (
    CPU,
    CUDA,
    OPENVINO,
    available_providers,
    openvino_available,
    provider_name,
)

REFERENCE = "pytorch"
MAX_MIN_TIME_S = 600.0  # per batch size and input mode: longer is a typo (or inf), not a measurement
MAX_ROUNDS = 20
MAX_SEQ_LEN = 8192
PEER_CALIBRATION_SAMPLES = 256  # as export's --calibration-samples default
MODES = ("fixed", "real")
TORCH_DEVICE = {CPU: "torch-cpu", CUDA: "torch-cuda"}
Progress = Callable[[str], None]


@dataclass
class BenchConfig:
    """What to benchmark and how long to measure; None means the defaults described per field."""

    run_dir: Path | None = None  # None: the most recent run under artifacts/
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    providers: tuple[str, ...] | None = (
        None  # None: CPU, plus CUDA when onnxruntime-gpu and a GPU are present
    )
    variants: tuple[str, ...] | None = None  # None: every variant of the run plus "pytorch"
    seq_len: int | None = None  # fixed-shape inputs' length (512: the seeds); None: max_length
    max_length: int | None = None  # token limit of real-length texts; None: the run's fine-tuning max_length
    real_lengths: bool = True  # the test texts, dynamic padding, sorted batches, tokenisation included
    fixed_shape: bool = True
    samples: int | None = None  # cap on test rows (accuracy and real-length inputs)
    min_time_s: float = 1.0
    min_iters: int = 10
    warmup: int = 3
    threads: int | None = None  # None: physical cores
    include_pytorch: bool = True
    out_dir: Path | None = None  # None: RUN/bench
    peers: tuple[str, ...] | None = None  # None: every peer (pytorch-int8, ort-default, ...); (): none
    rounds: int = 3  # interleaved rounds: every target once per round, in a fresh process
    max_drop: float = DEFAULT_MAX_DROP  # accuracy points a shippable row may lose against the reference

    def __post_init__(self) -> None:
        self.batch_sizes = tuple(self.batch_sizes)
        if not self.batch_sizes or any(not isinstance(b, int) or b <= 0 for b in self.batch_sizes):
            raise ConfigError("batch_sizes", f"must be positive integers, got {self.batch_sizes}")
        for name in ("seq_len", "max_length"):
            value = getattr(self, name)
            if value is not None and not 2 <= value <= MAX_SEQ_LEN:
                raise ConfigError(name, f"must be between 2 and {MAX_SEQ_LEN}, got {value}")
        if not (self.real_lengths or self.fixed_shape):
            raise ConfigError(
                "fixed_shape",
                "nothing to measure: enable fixed_shape or real_lengths",
                ("fixed_shape", "real_lengths"),
            )
        if self.samples is not None and self.samples <= 0:
            raise ConfigError("samples", f"must be positive, got {self.samples}")
        if not 0 <= self.min_time_s <= MAX_MIN_TIME_S:
            raise ConfigError(
                "min_time_s", f"must be between 0 and {MAX_MIN_TIME_S:g} seconds, got {self.min_time_s:g}"
            )
        if self.min_iters < 1 or self.warmup < 0:
            raise ConfigError("min_iters", "must be >= 1 and warmup >= 0", ("warmup",))
        check_threads(self.threads)
        if self.providers is not None:
            self.providers = tuple(provider_name(p) for p in self.providers)
            if not self.providers:
                raise ConfigError("providers", "is empty")
        if self.variants is not None:
            self.variants = tuple(self.variants)
            if not self.variants:
                raise ConfigError("variants", "is empty")
        self.peers = resolve_peers(None if self.peers is None else tuple(self.peers) or ("none",))
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise ConfigError("rounds", f"must be between 1 and {MAX_ROUNDS}, got {self.rounds}")
        if not 0 <= self.max_drop <= 100:
            raise ConfigError("max_drop", f"must be between 0 and 100 accuracy points, got {self.max_drop}")

    @property
    def modes(self) -> tuple[str, ...]:
        """Input modes measured, in report order."""
        return tuple(m for m, on in zip(MODES, (self.fixed_shape, self.real_lengths)) if on)


@dataclass
class Target:
    """One model on one provider, and whether it can run here."""

    variant: str
    provider: str  # ONNX Runtime provider, or torch-cpu / torch-cuda for the PyTorch checkpoint
    model_dir: Path
    scheme: str
    status: str = "pending"  # pending -> ok | failed; or unavailable
    reason: str | None = None
    peer: bool = False
    description: str | None = None


# --- planning -----------------------------------------------------------------------------------------------


def default_providers(available: list[str], gpu: bool) -> tuple[str, ...]:
    """CPU, plus CUDA when this onnxruntime build has it and a GPU is present."""
    return (CPU, CUDA) if CUDA in available and gpu else (CPU,)


def cuda_device_present() -> bool:
    """Whether a CUDA GPU is usable (via torch, which every edgefn install has)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _unavailable_reason(provider: str, available: list[str], gpu: bool) -> str | None:
    if provider not in available:
        hint = " (install onnxruntime-gpu)" if provider == CUDA else ""
        return f"{provider} is not in this onnxruntime build{hint}; available: {', '.join(available)}"
    if provider == CUDA and not gpu:
        return "no CUDA GPU found"
    return None


def plan_targets(
    variants: dict[str, tuple[Path, runs.VariantManifest]],
    providers: tuple[str, ...],
    available: list[str],
    gpu: bool,
) -> list[Target]:
    """Every variant on every requested provider, marked unavailable (with a reason) where it cannot run.

    Args:
        variants: name -> (folder, manifest); "pytorch" -> (checkpoint folder, an empty manifest).
        providers: requested ONNX Runtime provider names.
        available: onnxruntime.get_available_providers().
        gpu: whether a CUDA GPU is present.
    """
    targets = []
    for name, (folder, manifest) in variants.items():
        scheme = "fp32" if name == REFERENCE else manifest.scheme or name
        for provider in providers:
            if name == REFERENCE:
                device = TORCH_DEVICE.get(provider)
                if device is None:
                    continue  # PyTorch rows exist for CPU and CUDA only
                reason = "torch.cuda is not available" if device == "torch-cuda" and not gpu else None
                targets.append(
                    Target(name, device, folder, scheme, "unavailable" if reason else "pending", reason)
                )
                continue
            meant_for = manifest.execution_providers or [CPU]
            if OPENVINO in meant_for:  # OpenVINO's own runtime, on the CPU
                if provider == CPU:
                    hint = openvino_available()
                    status = "unavailable" if hint else "pending"
                    targets.append(Target(name, OPENVINO, folder, scheme, status, hint))
                continue
            reason = _unavailable_reason(provider, available, gpu)
            if reason is None and provider == CPU and CPU not in meant_for:
                reason = f"{scheme} needs {' or '.join(meant_for)}"
            targets.append(
                Target(name, provider, folder, scheme, "unavailable" if reason else "pending", reason)
            )
    return targets


def select_variants(run: RunFolder, cfg: BenchConfig) -> dict[str, tuple[Path, runs.VariantManifest]]:
    """The requested variants, each checked against its recorded hash; "pytorch" is the checkpoint."""
    folders = {p.name: p for p in run.variants()}
    for name in sorted(set(cfg.variants or ()) & set(run.incomplete_variants())):  # no export.json
        runs.verify_variant(run.variant_dir(name))  # refused with the re-export command
    if not folders:
        raise EdgefnError(f"no ONNX variants in {run.onnx_dir}: run `edgefn export` first")
    known = [REFERENCE, *folders]
    wanted = list(cfg.variants) if cfg.variants is not None else known
    unknown = [v for v in wanted if v not in known]
    if unknown:
        raise EdgefnError(
            f"unknown variant(s) {', '.join(unknown)} in {run.path}; available: {', '.join(known)}"
        )
    if not cfg.include_pytorch:
        wanted = [v for v in wanted if v != REFERENCE]
    if not wanted:
        raise EdgefnError("no variants left to benchmark")
    out: dict[str, tuple[Path, runs.VariantManifest]] = {}
    for name in wanted:
        if name == REFERENCE:
            checkpoint = run.checkpoint
            if not (checkpoint / runs.MODEL_CONFIG).is_file():
                raise EdgefnError(
                    f"{checkpoint} holds no model: the PyTorch reference needs the fine-tuned "
                    "checkpoint (or pass --variants without pytorch)"
                )
            run.verify_checkpoint()
            out[name] = (checkpoint, runs.VariantManifest())
        else:
            out[name] = (folders[name], runs.verify_variant(folders[name]))
    return out


# --- measuring ----------------------------------------------------------------------------------------------


def _peak_for(scheme: str, provider: str, peak: dict[str, Any]) -> float | None:
    on_cuda = provider in (CUDA, "torch-cuda")
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


def _one_line(e: BaseException) -> str:
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
                    done[i] = (outs, others, _one_line(e))
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
    result.description = target.description
    exported = target.provider not in TORCH_DEVICE.values()
    result.size_mb, result.params = measure.size_and_params(target.model_dir, onnx=exported)
    result.model_fingerprint = runs.model_fingerprint(target.model_dir) if exported else None
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
    if target.provider == CUDA and first.active_providers[:1] != [CUDA]:
        result.status, result.reason = (
            "failed",
            f"session fell back to {first.active_providers} (CUDA did not load)",
        )
    if first.profile_events is not None and target.provider in (CUDA, "torch-cuda"):
        result.placement = measure.summarize_placement(first.profile_events, CUDA)
    peak_gflops = _peak_for(target.scheme, target.provider, peak)
    for raw in merge_rounds([o.measurements for o in outs]):
        m = to_measurement(raw, flops_model, peak_gflops)
        m.round_p50_ms = list(raw["round_p50_ms"])
        m.spread = noise.spread(m.round_p50_ms)
        m.flags = noise.row_flags({"other_cores": result.other_cores, "spread": m.spread})
        result.measurements.append(m)
    return result


# --- accuracy -----------------------------------------------------------------------------------------------


def score(
    labels: list[int],
    preds: list[int],
    reference: list[int] | None = None,
    reference_accuracy: Accuracy | None = None,
    prob_fake: list[float] | None = None,
) -> Accuracy:
    """`metrics.classification_metrics` of one target (ROC-AUC and calibration given the probabilities of
    fake); agreement and deltas against a reference."""
    acc = Accuracy.from_metrics(classification_metrics(labels, preds, prob_fake or None))
    if reference is not None:
        acc.agreement = sum(a == b for a, b in zip(preds, reference)) / len(preds)
    if reference_accuracy is not None:
        acc.delta = {
            k: getattr(acc, k) - getattr(reference_accuracy, k)
            for k in ("accuracy", "precision_weighted", "recall_weighted", "f1_weighted")
        }
    return acc


def pick_reference(results: list[TargetResult]) -> TargetResult | None:
    """PyTorch fp32 on CPU; else ONNX fp32 on CPU; else the first result that ran."""
    ok = [r for r in results if r.status == "ok"]
    for variant, provider in ((REFERENCE, "torch-cpu"), ("fp32", CPU)):
        for r in ok:
            if (r.variant, r.provider) == (variant, provider):
                return r
    return ok[0] if ok else None


def add_comparisons(results: list[TargetResult], labels: list[int]) -> TargetResult | None:
    """Fill accuracy (with deltas and agreement) and latency speedups against the reference."""
    ref = pick_reference(results)
    if ref is None:
        return None
    ref.accuracy = score(labels, ref.predictions, prob_fake=ref.prob_fake)
    ref_p50 = {(m.mode, m.batch_size): m.latency.p50_ms for m in ref.measurements}
    for r in results:
        if r.status != "ok":
            continue
        r.accuracy = score(labels, r.predictions, ref.predictions, ref.accuracy, r.prob_fake)
        for m in r.measurements:
            base = ref_p50.get((m.mode, m.batch_size))
            m.speedup_vs_reference = base / m.latency.p50_ms if base and m.latency.p50_ms > 0 else None
    return ref


# --- the entry point ----------------------------------------------------------------------------------------


RAM_SHARE = 0.8  # of the memory available now that one measured batch may take


def activation_estimate_bytes(config: dict[str, Any], batch: int, seq: int) -> int:
    """A rough peak of one forward pass's fp32 activations: one layer's attention scores and probabilities,
    its feed-forward intermediate and a few hidden-state copies (ONNX Runtime reuses buffers across layers)."""
    hidden = int(config.get("hidden_size") or config.get("dim") or 768)
    heads = int(config.get("num_attention_heads") or config.get("n_heads") or 12)
    inter = int(config.get("intermediate_size") or config.get("hidden_dim") or 4 * hidden)
    return 4 * batch * (2 * heads * seq * seq + 2 * seq * inter + 8 * seq * hidden)


def resolve_lengths(cfg: BenchConfig, run_max_length: int | None) -> BenchConfig:
    """`cfg` with both token lengths decided: max_length (else the run's fine-tuning one) and seq_len (else
    max_length, else 128)."""
    max_length = cfg.max_length or run_max_length
    return dataclasses.replace(cfg, max_length=max_length, seq_len=cfg.seq_len or max_length or 128)


def check_fits(config: dict[str, Any], cfg: BenchConfig, max_length: int | None) -> int:
    """Refuse, before measuring, token lengths over the model's positions and batch sizes whose estimated
    activations exceed the memory available; returns the truncation length of real texts."""
    import psutil

    cfg = resolve_lengths(cfg, max_length)
    assert cfg.seq_len is not None
    positions = int(config.get("max_position_embeddings") or 512)
    for name in ("max_length", "seq_len"):
        value = getattr(cfg, name)
        if value is not None and value > positions:
            raise ConfigError(name, f"{value} exceeds the model's {positions} positions")
    max_length = min(cfg.max_length or positions, positions)
    seq = max(cfg.seq_len if cfg.fixed_shape else 0, max_length if cfg.real_lengths else 0)
    need = activation_estimate_bytes(config, max(cfg.batch_sizes), seq)
    available = psutil.virtual_memory().available
    if need > RAM_SHARE * available:
        raise ConfigError(
            "batch_sizes",
            f"{max(cfg.batch_sizes)} needs about {need / 1e9:.1f} GB of activations at "
            f"{seq} tokens (an estimate), over {RAM_SHARE:.0%} of the {available / 1e9:.1f} GB available; "
            "use smaller batch sizes",
        )
    return max_length


def _flops_models(variants: dict[str, tuple[Path, runs.VariantManifest]], say: Progress) -> dict[str, Any]:
    """Per-sample FLOPs of the model, counted once on the fp32 graph where there is one: every variant
    computes the same products (quantized graphs also hide some shapes behind their quantize nodes)."""
    from edgefn.bench.measure import fit_flops_model

    out: dict[str, Any] = {}
    counted = ["fp32"] if "fp32" in variants else [n for n in variants if n != REFERENCE]
    for name in counted:
        try:
            out[name] = fit_flops_model(variants[name][0] / runs.ONNX_FILE)
        except Exception as e:  # noqa: BLE001 - FLOPs are a view, not a reason to stop
            say(f"  could not count FLOPs of {name}: {_one_line(e)}")
    same_model = out.get("fp32")
    return {name: out.get(name, same_model) for name in variants}


def _job(t: Target, cfg: BenchConfig, texts: list[str], max_length: int, threads: int, rnd: int) -> Any:
    """One round of one target: 1/rounds of the measuring time; the first round also predicts and profiles."""
    from edgefn.bench.worker import Job

    assert cfg.seq_len is not None  # decided by resolve_lengths before measuring
    return Job(
        variant=t.variant,
        provider=t.provider,
        model_dir=str(t.model_dir),
        texts=texts,
        batch_sizes=cfg.batch_sizes,
        seq_len=cfg.seq_len,
        max_length=max_length,
        modes=cfg.modes,
        threads=threads,
        warmup=cfg.warmup,
        min_iters=max(3, -(-cfg.min_iters // cfg.rounds)),
        min_time_s=cfg.min_time_s / cfg.rounds,
        profile=t.provider == CUDA and rnd == 0,
        predict=rnd == 0,
    )


def peer_targets(run: RunFolder, cfg: BenchConfig, providers: tuple[str, ...], say: Progress) -> list[Target]:
    """The requested peers as targets on the CPU (built from the run's checkpoint where missing); a peer
    that cannot run here is a target marked unavailable with the reason."""
    from edgefn.engines.reference import checkpoint_encoder
    from edgefn.export import quantize
    from edgefn.export.exporter import calibration_inputs

    assert cfg.peers is not None
    if not cfg.peers or CPU not in providers:
        return []

    def calibration() -> dict[str, list[list[int]]]:
        encoder = checkpoint_encoder(run.checkpoint, run.max_length(128))
        return calibration_inputs(run, encoder, PEER_CALIBRATION_SAMPLES)

    ready, unavailable = build_peers(run, cfg.peers, quantize.detect_target(), calibration, say)
    targets = []
    for name in cfg.peers:
        peer = PEERS[name]
        folder = ready[name][0] if name in ready else run.peer_dir(name)
        reason = unavailable.get(name)
        status = "unavailable" if reason else "pending"
        targets.append(
            Target(name, peer.provider, folder, peer.scheme, status, reason, True, peer.description)
        )
    return targets


def _describe(r: TargetResult) -> str:
    if r.status != "ok":
        return f"{r.status}: {r.reason}"
    first = r.measurements[0] if r.measurements else None
    lat = f", {first.mode} batch {first.batch_size}: {first.latency.p50_ms:.3f} ms/sample" if first else ""
    return f"ok ({r.session_ms:.0f} ms to load{lat}, peak RSS {r.peak_rss_mb:.0f} MB)"


def _notes(cfg: BenchConfig, max_length: int, results: list[TargetResult]) -> list[str]:
    from edgefn.bench.measure import RSS_METHOD

    notes = [
        f"fixed: inputs pre-tokenised to (batch, {cfg.seq_len}); the timed call is the model alone",
        f"real: the test texts sorted by length, padded to each batch's longest (truncated at {max_length}); "
        "the timed call includes tokenisation",
        "latency figures are per sample (call time / samples in the call); throughput is samples / total time",
        f"peak_rss_mb: {RSS_METHOD}",
        "FLOPs: 2*M*K*N of every MatMul/Gemm/MatMulInteger in the ONNX graph at the padded shape (PyTorch "
        "rows use the fp32 graph); peak_fraction divides achieved GFLOP/s by this machine's MatMul peak "
        "(int8 rows: the int8 peak) measured in this run with the same threads",
    ]
    notes += [
        f"{r.variant} on {r.provider}: {r.placement.warning}"
        for r in results
        if r.placement is not None and r.placement.warning
    ]
    return notes


def bench(cfg: BenchConfig, progress: Progress | None = None) -> BenchReport:
    """Measure accuracy, size, latency and hardware use of a run's variants and write RUN/bench/.

    Args:
        cfg: what to measure.
        progress: called with one line per step (the CLI prints them); None is silent.

    Returns:
        The report, also written as report.json / .csv / .md and two plots (paths in `outputs`).
    """
    say = progress or (lambda _msg: None)
    run, picked = RunFolder.resolve(cfg.run_dir)
    if picked:
        say(f"run folder: {run.path} (the most recent)")
    run.require_complete()
    out_dir = Path(cfg.out_dir) if cfg.out_dir else run.bench_dir
    outputs.check_output_dir(out_dir, overwrite=True, owned=runs.is_bench_dir, kind="bench folder")
    with run.lock("bench"):
        return _bench(run, cfg, say)


def _bench(run: RunFolder, cfg: BenchConfig, say: Progress) -> BenchReport:
    from edgefn.bench import measure
    from edgefn.bench.report import collect_environment, write_report

    variants = select_variants(run, cfg)
    if cfg.variants is None and run.incomplete_variants():
        say(f"skipped (no {runs.EXPORT_MANIFEST}, unverifiable): {', '.join(run.incomplete_variants())}")
    config = runs.read_json_object(next(iter(variants.values()))[0] / runs.MODEL_CONFIG)
    cfg = resolve_lengths(cfg, run.max_length(0) or None)
    max_length = check_fits(config, cfg, None)
    test = run.read_split("test")
    texts, labels = test.texts[: cfg.samples], test.labels[: cfg.samples]
    available, gpu = available_providers(), cuda_device_present()
    targets = plan_targets(variants, cfg.providers or default_providers(available, gpu), available, gpu)
    if not any(t.status == "pending" for t in targets):
        raise EdgefnError(
            "nothing to measure: " + "; ".join(f"{t.variant} on {t.provider}: {t.reason}" for t in targets)
        )
    threads = cfg.threads or physical_cores()
    targets += peer_targets(run, cfg, cfg.providers or default_providers(available, gpu), say)
    say(f"measuring this machine's MatMul peak ({threads} threads) ...")
    peak = in_fresh_process(
        measure.measure_matmul_peak,
        threads,
        1024,
        any(t.status == "pending" and t.provider in (CUDA, "torch-cuda") for t in targets),
    )
    flops = _flops_models(variants, say)
    before = noise.machine_state()
    measured = run_rounds(
        targets, lambda t, rnd: _job(t, cfg, texts, max_length, threads, rnd), cfg.rounds, say
    )
    after = noise.machine_state()
    results = []
    for i, t in enumerate(targets):
        if t.status == "unavailable":
            r = TargetResult(t.variant, t.provider, t.scheme, "unavailable", t.reason, peer=t.peer)
            r.description = t.description
        else:
            flops_model = flops.get(t.variant, flops.get("fp32"))
            r = result_of(t, *measured[i], flops_model, peak)
        results.append(r)
        say(f"{t.variant} on {t.provider}: {_describe(r)}")
    if not any(r.status == "ok" for r in results):
        raise EdgefnError(
            "no target ran, the previous report is kept: "
            + "; ".join(f"{r.variant} on {r.provider}: {r.reason}" for r in results)
        )
    ref = add_comparisons(results, labels)
    rows = [
        {
            "label": f"{r.variant} on {r.provider} {m.mode} b{m.batch_size}",
            "spread": m.spread,
            "other_cores": r.other_cores,
        }
        for r in results
        for m in r.measurements
    ]
    report = BenchReport(
        str(run.path),
        {**_config_dict(cfg), "threads": threads, "samples_used": len(texts)},
        f"{ref.variant} on {ref.provider}" if ref else None,
        max_length,
        collect_environment(threads, available, gpu),
        peak,
        results,
        _notes(cfg, max_length, results),
        machine={
            "before": before,
            "after": after,
            "assessment": noise.assess(before, after, os.cpu_count() or 1, rows),
        },
    )
    report.verdict = compute_verdict(report, cfg.max_drop)
    write_report(report, Path(cfg.out_dir) if cfg.out_dir else run.bench_dir)
    return report


def _config_dict(cfg: BenchConfig) -> dict[str, Any]:
    import dataclasses
    import json

    return dict(json.loads(json.dumps(dataclasses.asdict(cfg), default=str)))
