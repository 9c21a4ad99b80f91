"""bench(cfg) -> BenchReport: accuracy, size, latency and hardware use of every variant on every provider."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.bench import noise
from edgefn.bench.peers import resolve_peers
from edgefn.bench.protocol import assess_timings, measure_targets
from edgefn.bench.report import Accuracy, BenchReport, TargetResult
from edgefn.bench.rounds import one_line, result_of
from edgefn.bench.targets import (
    REFERENCE,
    Variants,
    compared_variants,
    default_providers,
    device_of,
    peer_targets,
    plan_targets,
    select_variants,
)
from edgefn.bench.verdict import DEFAULT_MAX_DROP, compute_verdict
from edgefn.bench.worker import in_fresh_process
from edgefn.core import outputs
from edgefn.core.environment import check_threads, physical_cores
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.core.metrics import classification_metrics
from edgefn.core.progress import Progress, warn
from edgefn.runs import RunFolder
from edgefn.runtime import engines
from edgefn.runtime.inference import available_providers

MAX_MIN_TIME_S = 600.0  # per batch size and input mode: longer is a typo (or inf), not a measurement
MAX_ROUNDS = 400
MAX_PROCESSES = 20
MAX_SEQ_LEN = 8192
MODES = ("fixed", "real")
# "paired": the targets' processes stay up for a block of short interleaved rounds (edgefn.bench.paired); "legacy":
# one fresh process per target and round, each cell measured in one go, the round-count tie rule (issue 25's
# "before", kept reachable for benchmarks/aa_test.py)
PROTOCOLS = ("paired", "legacy")
LEGACY_ROUNDS = 3  # the legacy protocol's default
QUICK_ROUNDS = 8


@dataclass
class BenchConfig:
    """What to benchmark and how long to measure; None means the defaults described per field."""

    run_dir: Path | None = None  # None: the most recent run under artifacts/
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    providers: tuple[str, ...] | None = None  # engines; None: cpu, plus cuda where it runs
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
    rounds: int = (
        24  # short interleaved rounds: every cell of every target once per round (min_time_s / rounds)
    )
    processes: int = (
        4  # fresh measuring processes per target, the rounds split evenly (at most one per round)
    )
    max_drop: float = DEFAULT_MAX_DROP  # accuracy points a shippable row may lose against the reference
    peak_probe: bool = True  # measure this machine's MatMul peak first (for peak_fraction)
    compare: Path | None = None  # another run whose variants join the rounds (rows named <run>/<variant>)
    # idle worker threads spin between parallel sections (every engine that has the setting); off: with short
    # interleaved rounds a process's threads still spin while the next one is timed (benchmarks/results/aa.md)
    spin: bool = False
    protocol: str = "paired"  # or "legacy" (see PROTOCOLS)

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
            self.providers = tuple(engines.get(p).name for p in self.providers)
            if not self.providers:
                raise ConfigError("providers", "is empty")
        if self.variants is not None:
            self.variants = tuple(self.variants)
            if not self.variants:
                raise ConfigError("variants", "is empty")
        self.peers = resolve_peers(None if self.peers is None else tuple(self.peers) or ("none",))
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise ConfigError("rounds", f"must be between 1 and {MAX_ROUNDS}, got {self.rounds}")
        if self.compare is not None:
            self.compare = Path(self.compare)
        if self.protocol not in PROTOCOLS:
            raise ConfigError("protocol", f"must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if not 1 <= self.processes <= MAX_PROCESSES:
            raise ConfigError("processes", f"must be between 1 and {MAX_PROCESSES}, got {self.processes}")
        self.processes = min(self.processes, self.rounds)  # at most one process per round
        if not 0 <= self.max_drop <= 100:
            raise ConfigError("max_drop", f"must be between 0 and 100 accuracy points, got {self.max_drop}")

    @classmethod
    def quick(cls, **fields: Any) -> BenchConfig:
        """A first look: the run's own variants and the reference only (no peers), one process per target (its
        rounds' intervals leave the between-process part out), no peak probe."""
        return cls(**{**fields, "peers": (), "processes": 1, "rounds": QUICK_ROUNDS, "peak_probe": False})

    @property
    def modes(self) -> tuple[str, ...]:
        """Input modes measured, in report order."""
        return tuple(m for m, on in zip(MODES, (self.fixed_shape, self.real_lengths)) if on)


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
    """The checkpoint on the CPU's default engine (PyTorch fp32); else fp32 there (ONNX); else the first that ran."""
    ok = [r for r in results if r.status == "ok"]
    for variant in (REFERENCE, "fp32"):
        for r in ok:
            engine = engines.find(r.provider)
            if r.variant == variant and not r.peer and engine and engine.default and engine.device == "cpu":
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


def _flops_models(variants: Variants, say: Progress) -> dict[str, Any]:
    """Per-sample FLOPs of the model, counted once on the fp32 graph where there is one: every variant
    computes the same products (quantized graphs also hide some shapes behind their quantize nodes)."""
    from edgefn.bench.measure import fit_flops_model

    out: dict[str, Any] = {}
    counted = ["fp32"] if "fp32" in variants else [n for n in variants if n != REFERENCE]
    for name in counted:
        try:
            out[name] = fit_flops_model(variants[name][0] / runs.ONNX_FILE)
        except Exception as e:  # noqa: BLE001 - FLOPs are a view, not a reason to stop
            say(f"  could not count FLOPs of {name}: {one_line(e)}")
    same_model = out.get("fp32")
    return {name: out.get(name, same_model) for name in variants}


def _describe(r: TargetResult) -> str:
    if r.status != "ok":
        return f"{r.status}: {r.reason}"
    first = r.measurements[0] if r.measurements else None
    lat = f", {first.mode} batch {first.batch_size}: {first.latency.p50_ms:.3f} ms/sample" if first else ""
    return f"ok ({r.session_ms:.0f} ms to load{lat}, peak RSS {r.peak_rss_mb:.0f} MB)"


def sample_warning(samples: int, max_drop: float) -> str | None:
    """A warning when one text of the accuracy sample is worth more than `max_drop` points: the verdict
    could then drop a row for a single text."""
    if samples <= 0 or max_drop <= 0 or 100 / samples <= max_drop:
        return None
    need = math.ceil(100 / max_drop)
    return (
        f"one text of {samples} is {100 / samples:.4g} accuracy points > --max-drop {max_drop:g}: "
        f"it can decide the verdict; score >= {need} texts"
    )


def _notes(cfg: BenchConfig, max_length: int, results: list[TargetResult]) -> list[str]:
    from edgefn.bench.measure import RSS_METHOD

    peak = (
        "peak_fraction divides achieved GFLOP/s by this machine's MatMul peak (int8 rows: the int8 peak) "
        "measured in this run with the same threads"
        if cfg.peak_probe
        else "peak_fraction is empty: the MatMul peak was not measured (--quick)"
    )
    notes = [
        f"fixed: inputs pre-tokenised to (batch, {cfg.seq_len}); the timed call is the model alone",
        f"real: the test texts sorted by length, padded to each batch's longest (truncated at {max_length}); "
        "the timed call includes tokenisation",
        "latency figures are per sample (call time / samples in the call); throughput is samples / total time",
        f"peak_rss_mb: {RSS_METHOD}",
        "FLOPs: 2*M*K*N of every MatMul/Gemm/MatMulInteger in the ONNX graph at the padded shape (PyTorch "
        f"rows use the fp32 graph); {peak}",
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
    if cfg.compare is not None:
        _check_compared(run, RunFolder(cfg.compare))
    out_dir = Path(cfg.out_dir) if cfg.out_dir else run.bench_dir
    outputs.check_output_dir(out_dir, overwrite=True, owned=runs.is_bench_dir, kind="bench folder")
    with run.lock("bench"):
        return _bench(run, cfg, say)


def _bench(run: RunFolder, cfg: BenchConfig, say: Progress) -> BenchReport:
    from edgefn.bench import measure
    from edgefn.bench.report import collect_environment, write_report
    from edgefn.export import quantize

    variants = select_variants(run, cfg.variants, cfg.include_pytorch)
    if cfg.variants is None and run.incomplete_variants():
        say(f"skipped (no {runs.EXPORT_MANIFEST}, unverifiable): {', '.join(run.incomplete_variants())}")
    config = runs.read_json_object(next(iter(variants.values()))[0] / runs.MODEL_CONFIG)
    cfg = resolve_lengths(cfg, run.max_length(0) or None)
    max_length = check_fits(config, cfg, None)
    test = run.read_split("test")
    texts, labels = test.texts[: cfg.samples], test.labels[: cfg.samples]
    small = sample_warning(len(texts), cfg.max_drop)
    if small:
        warn(say, small)
    providers = cfg.providers or default_providers()
    targets = plan_targets(variants, providers)
    compared = (
        compared_variants(RunFolder(cfg.compare), cfg.variants, cfg.include_pytorch) if cfg.compare else {}
    )
    targets += plan_targets(compared, providers, run=str(cfg.compare) if cfg.compare else None)
    if not any(t.status == "pending" for t in targets):
        raise EdgefnError(
            "nothing to measure: " + "; ".join(f"{t.variant} on {t.provider}: {t.reason}" for t in targets)
        )
    threads = cfg.threads or physical_cores()
    assert cfg.peers is not None
    targets += peer_targets(run, cfg.peers, providers, quantize.detect_target(), say)
    peak: dict[str, Any] = {}
    if cfg.peak_probe:
        say(f"measuring this machine's MatMul peak ({threads} threads) ...")
        peak = in_fresh_process(
            measure.measure_matmul_peak,
            threads,
            1024,
            any(t.status == "pending" and device_of(t.provider) == "cuda" for t in targets),
        )
    flops = _flops_models(variants, say)
    if compared:  # its own model: another layer count or width
        other = RunFolder(Path(str(cfg.compare))).name  # the prefix of its rows' names
        plain = {name.removeprefix(f"{other}/"): found for name, found in compared.items()}
        flops.update({f"{other}/{k}": v for k, v in _flops_models(plain, say).items()})
    before = noise.machine_state()
    measured, protocol = measure_targets(targets, cfg, texts, max_length, threads, say)
    after = noise.machine_state()
    results = []
    for i, t in enumerate(targets):
        if t.status == "unavailable":
            r = TargetResult(t.variant, t.provider, t.scheme, "unavailable", t.reason, peer=t.peer)
            r.description, r.run = t.description, t.run
        else:
            flops_model = flops.get(t.variant, flops.get("fp32"))
            r = result_of(t, measured[i], flops_model, peak)
        results.append(r)
        say(f"{t.variant} on {t.provider}: {_describe(r)}")
    if not any(r.status == "ok" for r in results):
        raise EdgefnError(
            "no target ran, the previous report is kept: "
            + "; ".join(f"{r.variant} on {r.provider}: {r.reason}" for r in results)
        )
    ref = add_comparisons(results, labels)
    report = BenchReport(
        str(run.path),
        {**_config_dict(cfg), "threads": threads, "samples_used": len(texts)},
        f"{ref.variant} on {ref.provider}" if ref else None,
        max_length,
        collect_environment(threads, available_providers(), engines.cuda_device_present()),
        peak,
        results,
        _notes(cfg, max_length, results) + ([f"warning: {small}"] if small else []) + _compare_note(cfg),
        machine=assess_timings(results, protocol, before, after),
        protocol=protocol,
    )
    report.verdict = compute_verdict(report, cfg.max_drop)
    write_report(report, Path(cfg.out_dir) if cfg.out_dir else run.bench_dir)
    return report


def _check_compared(run: RunFolder, other: RunFolder) -> None:
    """Refuse a --compare run that is this run, not a complete run, or one whose checkpoint changed."""
    if not other.path.is_dir():
        raise ConfigError("compare", f"{other.path} is not a folder; give another run folder")
    if other.path.resolve() == run.path.resolve():
        raise ConfigError("compare", f"{other.path} is the run being benchmarked; give another run")
    try:
        other.require_complete()
    except EdgefnError as e:
        raise ConfigError("compare", str(e)) from None


def _compare_note(cfg: BenchConfig) -> list[str]:
    if cfg.compare is None:
        return []
    name = RunFolder(cfg.compare).name
    return [
        f"{name}/<variant> rows are the variants of {cfg.compare} (--compare), measured in the same interleaved "
        "rounds and scored on this run's test split"
    ]


def _config_dict(cfg: BenchConfig) -> dict[str, Any]:
    import dataclasses
    import json

    return dict(json.loads(json.dumps(dataclasses.asdict(cfg), default=str)))
