"""What a spawned bench process does: load one model as a `Classifier`, time it (whole or in slices), predict."""

from __future__ import annotations

import functools
import importlib
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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


@dataclass
class Cell:
    """One input mode and batch size of a loaded model: `call(i)` runs call number i and returns its samples;
    `seq_len(i)` is that call's padded length. Call i is the same input in every process and on every model."""

    mode: str
    batch_size: int
    call: Callable[[int], int]
    seq_len: Callable[[int], int]


def cell_keys(job: Job) -> list[tuple[str, int]]:
    """(mode, batch size) of the job's cells in measuring order: each batch size, fixed then real."""
    return [(mode, batch) for batch in job.batch_sizes for mode in ("fixed", "real") if mode in job.modes]


def make_cells(job: Job, clf: Classifier, lengths: list[int]) -> list[Cell]:
    """The job's cells, in `cell_keys` order."""
    return [
        _fixed_cell(job, clf, batch) if mode == "fixed" else _real_cell(job, clf, batch, lengths)
        for mode, batch in cell_keys(job)
    ]


def _fixed_cell(job: Job, clf: Classifier, batch: int) -> Cell:
    rows = [job.texts[i % len(job.texts)] for i in range(batch)]
    feed = clf.encoder.fixed_feed(rows, job.seq_len)  # tokenised once: fixed shape times the model call only
    return Cell("fixed", batch, lambda _: (clf.run(feed), batch)[1], lambda _: job.seq_len)


def _real_cell(job: Job, clf: Classifier, batch: int, lengths: list[int]) -> Cell:
    """End to end: each call is `Classifier.predict` on one length-sorted batch of test texts."""
    batches = length_sorted_batches(lengths, batch)
    random.Random(0).shuffle(batches)  # a partial pass then samples lengths without bias

    def call(i: int) -> int:
        rows = batches[i % len(batches)]
        clf.predict([job.texts[j] for j in rows], batch_size=batch)
        return len(rows)

    # the batch is padded to its longest text
    return Cell("real", batch, call, lambda i: max(lengths[j] for j in batches[i % len(batches)]))


def _measure_cell(job: Job, cell: Cell) -> dict[str, Any]:
    """The legacy protocol's measurement of a cell: warm-up, then calls until min_iters and min_time_s."""
    lat = measure.measure_latency(cell.call, job.warmup, job.min_iters, job.min_time_s)
    seq_lens = [cell.seq_len(job.warmup + k) for k in range(lat.count)]
    return {"mode": cell.mode, "batch_size": cell.batch_size, "latency": lat, "seq_lens": seq_lens}


def _profile_placement(job: Job, clf: Classifier) -> list[dict[str, Any]] | None:
    """One profiled inference, by the engine's profile hook, and its node events (None: the engine has none)."""
    engine = engine_of(job)
    if engine.profile is None:
        return None
    request = LoadRequest(engine.model_path(Path(job.model_dir)), job.threads)
    return measure.read_profile(engine.profile(request, clf.encoder.fixed_feed(job.texts[:1], job.seq_len)))


def run_job(job: Job) -> JobResult:
    """Load, time session creation and first inference, measure every batch size and mode, predict (the
    legacy protocol: one round of one target per process).

    Runs in a fresh spawned process so that peak RSS belongs to this model alone. Session creation is timed
    with the tokenizer load (what a user's first `Classifier.from_folder` costs); real-length calls time
    `Classifier.predict` itself.
    """
    measurer = Measurer(job)
    measurements = [_measure_cell(job, cell) for cell in measurer.cells]
    return measurer.finish(measurements)


class Measurer:
    """A model loaded in its own process, timed in short slices on request (the paired protocol's side of one
    target; the legacy protocol measures each cell in one go)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.rss_before = measure.current_rss_mb()
        self.session_ms, self.clf = measure.time_call(lambda: load_classifier(job))
        lengths = self.clf.encoder.lengths(job.texts)
        first_feed = self.clf.encoder.fixed_feed(job.texts[:1], job.seq_len)
        self.first_ms, _ = measure.time_call(lambda: self.clf.run(first_feed))
        self.cells = make_cells(job, self.clf, lengths)

    def warm(self, calls: int | None = None) -> list[float]:
        """`calls` (None: `job.warmup`) untimed calls of each cell, at least one; the median call's milliseconds
        of each."""
        n = max(1, self.job.warmup if calls is None else calls)
        return [
            statistics.median(measure.time_call(functools.partial(c.call, i))[0] for i in range(n))
            for c in self.cells
        ]

    def slice(
        self, index: int, inputs: int, start: int, seconds: float, min_calls: int = 1
    ) -> tuple[list[float], list[int], list[int]]:
        """Time cell `index` on calls start .. start + inputs - 1, again and again, until `seconds` of timed calls
        and `min_calls` calls are reached: every target then runs the same inputs. Real-length passes end whole
        (a partial pass would favour its first batches); fixed-shape calls are all alike and stop at once.

        Returns:
            The milliseconds, samples and padded length of every call.
        """
        cell = self.cells[index]
        call_ms: list[float] = []
        items: list[int] = []
        seq_lens: list[int] = []

        def done() -> bool:
            return sum(call_ms) >= 1000 * seconds and len(call_ms) >= min_calls

        while not done():
            for i in range(start, start + inputs):
                ms, n = measure.time_call(functools.partial(cell.call, i))
                call_ms.append(ms)
                items.append(int(n))
                seq_lens.append(cell.seq_len(i))
                if cell.mode == "fixed" and done():
                    break
        return call_ms, items, seq_lens

    def finish(self, measurements: list[dict[str, Any]] | None = None) -> JobResult:
        """Predict the texts and profile where the job asks, then everything but the timings (or with them)."""
        job, clf = self.job, self.clf
        predicted = clf.predict(job.texts, batch_size=PREDICT_BATCH) if job.predict else []
        events = _profile_placement(job, clf) if job.profile else None
        return JobResult(
            session_ms=self.session_ms,
            first_inference_ms=self.first_ms,
            rss_before_load_mb=self.rss_before,
            peak_rss_mb=measure.peak_rss_mb(),
            active_providers=clf.providers,
            predictions=[p.label_id for p in predicted],
            prob_fake=[p.prob_fake for p in predicted],
            measurements=measurements or [],
            profile_events=events,
            params=getattr(clf.runner, "parameters", None),  # a checkpoint's parameter count
            precision=getattr(clf.runner, "precision", None),
        )


def send(stream: IO[bytes], obj: Any) -> None:
    """One pickled message on a pipe, its length first."""
    data = pickle.dumps(obj)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """The next message `send` wrote (EOFError when the other end is gone)."""
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the pipe closed")
    size = int.from_bytes(head, "little")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the pipe closed mid-message")
    return pickle.loads(data)


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """A measuring process of the paired protocol: ("load", job), then ("warm", calls), ("slice", cell, calls, start)
    and ("finish",) on one `Measurer` until ("exit",); each reply is (True, value) or (False, one-line reason)."""
    measurer: Measurer | None = None
    while True:
        op, *args = receive(requests)
        if op == "exit":
            return
        try:
            if op == "load":
                measurer = Measurer(*args)
                value: Any = None
            else:
                assert measurer is not None, "load first"
                value = getattr(measurer, op)(*args)
            send(replies, (True, value))
        except Exception as e:  # noqa: BLE001 - sent back to the parent as a one-line reason
            lines = str(e).strip().splitlines()
            send(replies, (False, f"{type(e).__name__}: {lines[0] if lines else ''}"))


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a measuring process: this checkout first on its path, plus `extra`."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


def in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn(*args) in a new Python process (its own memory, threads and imports) and return its result.

    A plain `python -m edgefn.bench.worker` subprocess rather than multiprocessing's spawn, which re-imports
    the caller's __main__ (it breaks under `python -` and in scripts without a main guard).
    """
    with tempfile.TemporaryDirectory(prefix="edgefn-bench-") as tmp:
        job, out = Path(tmp) / "job.pkl", Path(tmp) / "out.pkl"
        job.write_bytes(pickle.dumps((fn, args)))
        proc = subprocess.run(
            [sys.executable, "-m", "edgefn.bench.worker", str(job), str(out)],
            env=child_env(),
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


def _serve_main() -> None:
    """Messages on stdin and a private copy of stdout; the libraries' own prints go to stderr."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # the module under its own name, not __main__: its results then unpickle in the parent
    importlib.import_module("edgefn.bench.worker").serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        _serve_main()
    else:
        _child_main(sys.argv[1], sys.argv[2])
