"""What one spawned bench process does: load one model as a `Classifier`, time it, predict the test texts."""

from __future__ import annotations

import importlib
import os
import pickle
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.bench import measure
from edgefn.runtime import engines
from edgefn.runtime.classifier import Classifier
from edgefn.runtime.engines import Engine, LoadRequest
from edgefn.runtime.inference import length_sorted_batches

PREDICT_BATCH = 32


@dataclass
class Job:
    """One model on one engine, everything a fresh process needs (picklable)."""

    variant: str
    provider: str  # the engine's name
    model_dir: str
    texts: list[str]
    batch_sizes: tuple[int, ...]
    seq_len: int
    max_length: int
    modes: tuple[str, ...]  # "fixed" and/or "real"
    threads: int
    warmup: int
    min_iters: int
    min_time_s: float
    profile: bool = False  # record where each node ran (CUDA sessions)
    predict: bool = True  # predict every text (the first round of a target; later rounds only time)
    engine_module: str = ""  # the module that registers the engine, imported first ("": a built-in engine)
    # its export.json, checked against its hashes by bench (empty for the checkpoint)
    manifest: runs.VariantManifest = field(default_factory=runs.VariantManifest)
    options: dict[str, Any] = field(default_factory=dict)  # a peer's options for the engine's load


@dataclass
class JobResult:
    """Timings, predictions and memory of one job; measurements hold raw samples per batch size and mode."""

    session_ms: float
    first_inference_ms: float
    rss_before_load_mb: float
    peak_rss_mb: float
    active_providers: list[str]
    predictions: list[int]
    measurements: list[dict[str, Any]] = field(default_factory=list)
    prob_fake: list[float] = field(default_factory=list)  # for ROC-AUC and calibration
    profile_events: list[dict[str, Any]] | None = None
    params: int | None = None  # the parameter count of a runner that knows it (a checkpoint's)
    precision: str | None = None  # what a runner that sets it computes in (fp32 / bf16)


def engine_of(job: Job) -> Engine:
    """The job's engine, its module imported first (a built-in one is found anyway)."""
    if job.engine_module:
        importlib.import_module(job.engine_module)
    return engines.get(job.provider)


def load_classifier(job: Job) -> Classifier:
    """The model of a job behind the one inference path: the engine's runner in a `Classifier` (bench checked the
    folder against its hashes, once, before any timing)."""
    return Classifier.from_engine(
        engine_of(job),
        Path(job.model_dir),
        job.manifest,
        job.threads,
        PREDICT_BATCH,
        job.max_length,
        job.options,
    )


def _measure_fixed(job: Job, clf: Classifier, batch: int) -> dict[str, Any]:
    rows = [job.texts[i % len(job.texts)] for i in range(batch)]
    feed = clf.encoder.fixed_feed(rows, job.seq_len)  # tokenised once: fixed shape times the model call only
    lat = measure.measure_latency(
        lambda _: (clf.run(feed), batch)[1], job.warmup, job.min_iters, job.min_time_s
    )
    return {"mode": "fixed", "batch_size": batch, "latency": lat, "seq_lens": [job.seq_len] * lat.count}


def _measure_real(job: Job, clf: Classifier, batch: int, lengths: list[int]) -> dict[str, Any]:
    """End to end: each timed call is `Classifier.predict` on one length-sorted batch of test texts."""
    batches = length_sorted_batches(lengths, batch)
    random.Random(0).shuffle(batches)  # a partial pass then samples lengths without bias
    seq_lens: list[int] = []

    def call(i: int) -> int:
        rows = batches[i % len(batches)]
        clf.predict([job.texts[j] for j in rows], batch_size=batch)
        seq_lens.append(max(lengths[j] for j in rows))  # the batch is padded to its longest text
        return len(rows)

    lat = measure.measure_latency(call, job.warmup, job.min_iters, job.min_time_s)
    return {"mode": "real", "batch_size": batch, "latency": lat, "seq_lens": seq_lens[job.warmup :]}


def _profile_placement(job: Job, clf: Classifier) -> list[dict[str, Any]] | None:
    """One profiled inference, by the engine's profile hook, and its node events (None: the engine has none)."""
    engine = engine_of(job)
    if engine.profile is None:
        return None
    request = LoadRequest(engine.model_path(Path(job.model_dir)), job.threads)
    return measure.read_profile(engine.profile(request, clf.encoder.fixed_feed(job.texts[:1], job.seq_len)))


def run_job(job: Job) -> JobResult:
    """Load, time session creation and first inference, measure every batch size and mode, predict.

    Runs in a fresh spawned process so that peak RSS belongs to this model alone. Session creation is timed
    with the tokenizer load (what a user's first `Classifier.from_folder` costs); real-length calls time
    `Classifier.predict` itself.
    """
    rss_before = measure.current_rss_mb()
    session_ms, clf = measure.time_call(lambda: load_classifier(job))
    lengths = clf.encoder.lengths(job.texts)
    first_feed = clf.encoder.fixed_feed(job.texts[:1], job.seq_len)
    first_ms, _ = measure.time_call(lambda: clf.run(first_feed))
    measurements = []
    for batch in job.batch_sizes:
        if "fixed" in job.modes:
            measurements.append(_measure_fixed(job, clf, batch))
        if "real" in job.modes:
            measurements.append(_measure_real(job, clf, batch, lengths))
    predicted = clf.predict(job.texts, batch_size=PREDICT_BATCH) if job.predict else []
    events = _profile_placement(job, clf) if job.profile else None
    return JobResult(
        session_ms=session_ms,
        first_inference_ms=first_ms,
        rss_before_load_mb=rss_before,
        peak_rss_mb=measure.peak_rss_mb(),
        active_providers=clf.providers,
        predictions=[p.label_id for p in predicted],
        prob_fake=[p.prob_fake for p in predicted],
        measurements=measurements,
        profile_events=events,
        params=getattr(clf.runner, "parameters", None),  # a checkpoint's parameter count
        precision=getattr(clf.runner, "precision", None),
    )


def in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn(*args) in a new Python process (its own memory, threads and imports) and return its result.

    A plain `python -m edgefn.bench.worker` subprocess rather than multiprocessing's spawn, which re-imports
    the caller's __main__ (it breaks under `python -` and in scripts without a main guard).
    """
    with tempfile.TemporaryDirectory(prefix="edgefn-bench-") as tmp:
        job, out = Path(tmp) / "job.pkl", Path(tmp) / "out.pkl"
        job.write_bytes(pickle.dumps((fn, args)))
        root = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "edgefn.bench.worker", str(job), str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if not out.is_file():
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"the measuring process exited with code {proc.returncode}: {tail}")
        ok, value = pickle.loads(out.read_bytes())
    if not ok:
        raise RuntimeError(value)
    return value


def _child_main(job_path: str, out_path: str) -> None:
    fn, args = pickle.loads(Path(job_path).read_bytes())
    try:
        result = (True, fn(*args))
    except Exception as e:  # noqa: BLE001 - sent back to the parent as a one-line reason
        lines = str(e).strip().splitlines()
        result = (False, f"{type(e).__name__}: {lines[0] if lines else ''}")
    Path(out_path).write_bytes(pickle.dumps(result))


if __name__ == "__main__":
    _child_main(sys.argv[1], sys.argv[2])
