"""What one spawned bench process does: load one model on one provider, time it, predict the test texts."""

from __future__ import annotations

import json
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

from edgefn import measure

PREDICT_BATCH = 32
TORCH_PROVIDERS = {"torch-cpu": "cpu", "torch-cuda": "cuda"}


@dataclass
class Job:
    """One model on one provider, everything a fresh process needs (picklable)."""

    variant: str
    provider: str  # an ONNX Runtime provider, or torch-cpu / torch-cuda for the PyTorch checkpoint
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
    profile_events: list[dict[str, Any]] | None = None
    params: int | None = None  # PyTorch parameter count (checkpoint jobs)


class _Tokenizer:
    """The variant's fast tokenizer (tokenizers only, no torch), producing int64 numpy batches."""

    def __init__(self, folder: Path, max_length: int):
        from tokenizers import Tokenizer

        path = folder / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the variant folder must hold its tokenizer")
        self.tok = Tokenizer.from_file(str(path))
        config = (
            json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        )
        self.pad_id = int(config.get("pad_token_id") or 0)
        self.max_length = max_length

    def lengths(self, texts: list[str]) -> list[int]:
        """Token counts after truncation (no padding)."""
        self.tok.no_padding()
        self.tok.enable_truncation(self.max_length)
        return [len(e.ids) for e in self.tok.encode_batch(texts)]

    def __call__(self, texts: list[str], pad_to: int | None = None) -> dict[str, Any]:
        import numpy as np

        self.tok.enable_truncation(pad_to or self.max_length)
        self.tok.enable_padding(pad_id=self.pad_id, length=pad_to)
        encs = self.tok.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
        }


def _load_onnx(job: Job) -> tuple[Callable[[dict[str, Any]], Any], list[str], int | None]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = job.threads, 1
    so.log_severity_level = 3
    providers = (
        [job.provider] if job.provider == "CPUExecutionProvider" else [job.provider, "CPUExecutionProvider"]
    )
    session = ort.InferenceSession(str(Path(job.model_dir) / "model.onnx"), so, providers=providers)
    names = [i.name for i in session.get_inputs()]

    def run(feed: dict[str, Any]) -> Any:
        return session.run(None, {k: feed[k] for k in names})[0]

    return run, session.get_providers(), None


def _load_torch(job: Job) -> tuple[Callable[[dict[str, Any]], Any], list[str], int | None]:
    import inspect

    import torch
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(job.threads)
    device = TORCH_PROVIDERS[job.provider]
    model = AutoModelForSequenceClassification.from_pretrained(job.model_dir).eval().to(device)
    accepted = inspect.signature(model.forward).parameters

    def run(feed: dict[str, Any]) -> Any:
        with torch.inference_mode():
            inputs = {k: torch.from_numpy(v).to(device) for k, v in feed.items() if k in accepted}
            return model(**inputs).logits.float().cpu().numpy()

    from edgefn.presets import count_parameters

    return run, [job.provider], count_parameters(model)


def _real_batches(texts: list[str], lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices of the texts sorted by length, cut into batches."""
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _predict(
    run: Callable[[dict[str, Any]], Any], tok: _Tokenizer, texts: list[str], lengths: list[int]
) -> list[int]:
    preds = [0] * len(texts)
    for batch in _real_batches(texts, lengths, PREDICT_BATCH):
        logits = run(tok([texts[i] for i in batch]))
        for i, p in zip(batch, logits.argmax(axis=-1)):
            preds[i] = int(p)
    return preds


def _measure_fixed(
    job: Job, run: Callable[[dict[str, Any]], Any], tok: _Tokenizer, batch: int
) -> dict[str, Any]:
    rows = [job.texts[i % len(job.texts)] for i in range(batch)]
    feed = tok(rows, pad_to=job.seq_len)  # tokenised once: fixed shape times the model call only
    lat = measure.measure_latency(lambda _: (run(feed), batch)[1], job.warmup, job.min_iters, job.min_time_s)
    return {"mode": "fixed", "batch_size": batch, "latency": lat, "seq_lens": [job.seq_len] * lat.count}


def _measure_real(
    job: Job, run: Callable[[dict[str, Any]], Any], tok: _Tokenizer, batch: int, lengths: list[int]
) -> dict[str, Any]:
    batches = _real_batches(job.texts, lengths, batch)
    random.Random(0).shuffle(batches)  # a partial pass then samples lengths without bias
    seq_lens: list[int] = []

    def call(i: int) -> int:
        rows = batches[i % len(batches)]
        feed = tok([job.texts[j] for j in rows])  # end to end: tokenise, pad to the batch's longest, run
        run(feed)
        seq_lens.append(int(feed["input_ids"].shape[1]))
        return len(rows)

    lat = measure.measure_latency(call, job.warmup, job.min_iters, job.min_time_s)
    return {"mode": "real", "batch_size": batch, "latency": lat, "seq_lens": seq_lens[job.warmup :]}


def _profile_placement(job: Job, tok: _Tokenizer) -> list[dict[str, Any]]:
    """Run one profiled inference in a separate session and return its node events."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.intra_op_num_threads = job.threads
    session = ort.InferenceSession(
        str(Path(job.model_dir) / "model.onnx"), so, providers=[job.provider, "CPUExecutionProvider"]
    )
    feed = tok(job.texts[:1], pad_to=job.seq_len)
    session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})
    return measure.read_profile(Path(session.end_profiling()))


def run_job(job: Job) -> JobResult:
    """Load, time session creation and first inference, measure every batch size and mode, predict.

    Runs in a fresh spawned process so that peak RSS belongs to this model alone.
    """
    rss_before = measure.current_rss_mb()
    loader = _load_torch if job.provider in TORCH_PROVIDERS else _load_onnx
    session_ms, (run, active, params) = measure.time_call(lambda: loader(job))
    tok = _Tokenizer(Path(job.model_dir), job.max_length)
    lengths = tok.lengths(job.texts)
    first_feed = tok(job.texts[:1], pad_to=job.seq_len)
    first_ms, _ = measure.time_call(lambda: run(first_feed))
    measurements = []
    for batch in job.batch_sizes:
        if "fixed" in job.modes:
            measurements.append(_measure_fixed(job, run, tok, batch))
        if "real" in job.modes:
            measurements.append(_measure_real(job, run, tok, batch, lengths))
    preds = _predict(run, tok, job.texts, lengths)
    events = _profile_placement(job, tok) if job.profile else None
    return JobResult(
        session_ms=session_ms,
        first_inference_ms=first_ms,
        rss_before_load_mb=rss_before,
        peak_rss_mb=measure.peak_rss_mb(),
        active_providers=list(active),
        predictions=preds,
        measurements=measurements,
        profile_events=events,
        params=params,
    )


def in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn(*args) in a new Python process (its own memory, threads and imports) and return its result.

    A plain `python -m edgefn.bench_worker` subprocess rather than multiprocessing's spawn, which re-imports
    the caller's __main__ (it breaks under `python -` and in scripts without a main guard).
    """
    with tempfile.TemporaryDirectory(prefix="edgefn-bench-") as tmp:
        job, out = Path(tmp) / "job.pkl", Path(tmp) / "out.pkl"
        job.write_bytes(pickle.dumps((fn, args)))
        root = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "edgefn.bench_worker", str(job), str(out)],
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
