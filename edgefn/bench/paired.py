"""The paired protocol: every target loaded in its own measuring process, timed in many short interleaved rounds."""

# Per process block (`processes` of them, each a fresh process per target): start one process per target, load
# each model (in turn in the first block, whose load times are reported; all at once after it), warm each cell
# up (the first block: `warmup` calls, which also size the slices; after it: one call), then run that block's
# share of the rounds. A round times every cell of
# every target for a short slice (at least slice_s of calls, on the same inputs for every target), in a seeded
# random order that the next round reverses, so a slow moment of the machine falls on all targets alike and the
# two times of a pair are moments apart. The first block also predicts the texts and profiles.

from __future__ import annotations

import contextlib
import math
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgefn.bench.measure import Latency
from edgefn.bench.noise import RoundWatch
from edgefn.bench.rounds import Measured
from edgefn.bench.targets import Target
from edgefn.bench.worker import Job, cell_keys, child_env, receive, send
from edgefn.core.progress import Progress

MAX_INPUTS_PER_SLICE = 1000
ORDER = (
    "a seeded random order of the targets, reversed every other round; cells in a fixed order within a round"
)


@dataclass(frozen=True)
class Plan:
    """How the paired protocol spends its time: rounds split over fresh processes, a slice per cell and round."""

    processes: int  # fresh measuring processes per target, one after the other
    rounds: int  # interleaved rounds in all (split evenly over the processes)
    slice_s: float  # least timed seconds of one target's slice of one cell in one round
    min_calls: int = 1  # calls per cell over all rounds at least (the protocol's min_iters)
    warmup: int = 3  # untimed calls of each cell in a target's first process (later processes: one)
    seed: int = 0
    env: dict[str, str] = field(default_factory=dict)  # extra environment of the measuring processes


class MeasuringProcess:
    """A long-lived `python -m edgefn.bench.worker --serve` and its pipe; its stderr goes to a temporary file."""

    def __init__(self, env: dict[str, str]) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process, closed by close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgefn.bench.worker", "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=child_env(env),
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, op: str, *args: Any) -> Any:
        """Send one request and wait for its reply; RuntimeError with the reason, or stderr's end if it died."""
        self.request(op, *args)
        return self.reply()

    def request(self, op: str, *args: Any) -> None:
        """Send one request without waiting (`reply` collects the answer)."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):  # it died: reply() says how
            send(self.proc.stdin, (op, *args))

    def reply(self) -> Any:
        """The answer to the last request; RuntimeError with the reason, or stderr's end if it died."""
        assert self.proc.stdout is not None
        try:
            ok, value = receive(self.proc.stdout)
        except (EOFError, OSError):
            raise RuntimeError(
                f"the measuring process exited with code {self.proc.wait()}: {self._tail()}"
            ) from None
        if not ok:
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        """Ask it to exit; kill it if it does not within 30 seconds."""
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                send(self.proc.stdin, ("exit",))
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
            self._stderr.close()

    def _tail(self) -> str:
        self._stderr.seek(0)
        return " | ".join(self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-3:])


def inputs_per_slice(warm_ms: list[list[float]], plan: Plan) -> list[int]:
    """Inputs of each cell in one round (the same for every target): as many calls as the slowest target makes in
    a slice, by its typical (median) warm-up call; faster targets repeat them until their slice is full."""
    out = []
    for cell in zip(*warm_ms):
        slowest = max(cell)
        out.append(
            min(MAX_INPUTS_PER_SLICE, max(1, math.ceil(plan.slice_s * 1000 / slowest))) if slowest > 0 else 1
        )
    return out


def run_paired(
    targets: list[Target], make_job: Callable[[Target, int], Job], plan: Plan, say: Progress
) -> tuple[dict[int, Measured], dict[str, Any]]:
    """Measure the pending targets by the paired protocol.

    Returns:
        target index -> what it measured; and the protocol's record (inputs per slice of each cell, seconds).
    """
    measured = {i: Measured() for i, t in enumerate(targets) if t.status == "pending"}
    if not measured:
        return measured, {}
    keys = cell_keys(make_job(targets[next(iter(measured))], 0))
    sizes = [
        plan.rounds // plan.processes + (g < plan.rounds % plan.processes) for g in range(plan.processes)
    ]
    rng = random.Random(plan.seed)
    state: dict[str, Any] = {
        "inputs": None,
        "round": 0,
        "order": list(measured),
        "setup_s": 0.0,
        "rounds_s": 0.0,
    }
    state.update(other_cores=[], steal=[])
    start = time.monotonic()
    for block, size in enumerate(sizes):
        live = [i for i, m in measured.items() if m.failure is None]
        if not live:
            break
        say(
            f"process {block + 1}/{plan.processes} of each target: rounds {state['round'] + 1}-"
            f"{state['round'] + size} of {plan.rounds} ..."
        )
        _run_block(targets, make_job, plan, block, size, live, measured, state, rng, keys)
    record = {
        "cells": [f"{mode} b{batch}" for mode, batch in keys],
        "inputs_per_slice": state["inputs"],
        "wall_s": time.monotonic() - start,
        "setup_s": state["setup_s"],
        "rounds_s": state["rounds_s"],
        "round_other_cores": state["other_cores"],
        "round_steal": state["steal"],
    }
    return measured, record


def _run_block(
    targets: list[Target],
    make_job: Callable[[Target, int], Job],
    plan: Plan,
    block: int,
    size: int,
    live: list[int],
    measured: dict[int, Measured],
    state: dict[str, Any],
    rng: random.Random,
    keys: list[tuple[str, int]],
) -> None:
    """One block: a fresh process per live target, its models loaded and warmed, `size` rounds, finish."""
    t0 = time.monotonic()
    procs = {i: MeasuringProcess(plan.env) for i in live}
    try:

        def failed(i: int, op: str, e: RuntimeError) -> None:
            where = f"process {block + 1}" + (f", round {state['round'] + 1}" if op == "slice" else "")
            measured[i].failure = f"{where}: {str(e)[:300]}"

        def attempt(i: int, op: str, *args: Any) -> Any:
            try:
                return procs[i].call(op, *args)
            except RuntimeError as e:
                failed(i, op, e)
                return None

        if block == 0:  # one load at a time: session and first-inference times are the model's alone
            for i in live:
                attempt(i, "load", make_job(targets[i], block))
        else:  # their load times are not reported: all at once
            for i in live:
                procs[i].request("load", make_job(targets[i], block))
            for i in live:
                try:
                    procs[i].reply()
                except RuntimeError as e:
                    failed(i, "load", e)
        warm = {}
        calls = plan.warmup if block == 0 else 1
        for i in live:
            if measured[i].failure is None:
                warm[i] = attempt(i, "warm", calls)
        if state["inputs"] is None and any(w is not None for w in warm.values()):
            state["inputs"] = inputs_per_slice([w for w in warm.values() if w is not None], plan)
        state["setup_s"] += time.monotonic() - t0
        if state["inputs"] is None:  # no target loaded and warmed up: nothing to time
            return
        t1 = time.monotonic()
        for _ in range(size):
            _one_round(procs, plan, measured, state, rng, keys, attempt)
        state["rounds_s"] += time.monotonic() - t1
        t2 = time.monotonic()
        for i in live:
            if measured[i].failure is not None:
                continue
            info = attempt(i, "finish")
            if info is None:
                continue
            m = measured[i]
            m.first = m.first or info
            m.peak_rss_mb = max(m.peak_rss_mb or 0.0, info.peak_rss_mb)
        state["setup_s"] += time.monotonic() - t2
    finally:
        for p in procs.values():
            p.close()


def _one_round(
    procs: dict[int, MeasuringProcess],
    plan: Plan,
    measured: dict[int, Measured],
    state: dict[str, Any],
    rng: random.Random,
    keys: list[tuple[str, int]],
    attempt: Callable[..., Any],
) -> None:
    r = state["round"]
    if r % 2 == 0:
        state["order"] = rng.sample(list(measured), len(measured))
    else:
        state["order"] = state["order"][::-1]
    order = [i for i in state["order"] if i in procs and measured[i].failure is None]
    min_calls = -(-plan.min_calls // plan.rounds)
    raws: dict[int, list[dict[str, Any]]] = {i: [] for i in order}
    with RoundWatch([procs[i].pid for i in order]) as watch:
        for c, (mode, batch) in enumerate(keys):
            calls = state["inputs"][c]
            for i in order:
                if measured[i].failure is not None:
                    continue
                out = attempt(i, "slice", c, calls, r * calls, plan.slice_s, min_calls)
                if out is not None:
                    call_ms, items, seq_lens = out
                    raws[i].append(
                        {
                            "mode": mode,
                            "batch_size": batch,
                            "latency": Latency(call_ms, items),
                            "seq_lens": seq_lens,
                        }
                    )
    state["other_cores"].append(watch.other_cores)
    state["steal"].append(watch.steal)
    for i, raw in raws.items():
        if measured[i].failure is None:
            measured[i].rounds.append(raw)
            measured[i].other_cores.append(watch.other_cores)
            measured[i].steal.append(watch.steal)
    state["round"] = r + 1
