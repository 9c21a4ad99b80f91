"""How bench takes its timings: the protocol a config asks for, its jobs and engine settings, each row's flags."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from edgefn.bench import noise
from edgefn.bench.results import TargetResult
from edgefn.bench.rounds import Measured, run_rounds
from edgefn.bench.stats import round_groups
from edgefn.bench.targets import Target
from edgefn.bench.verdict import LEGACY_RULE, PAIRED_RULE
from edgefn.core.progress import Progress
from edgefn.runtime import engines


def engine_options(cfg: Any) -> dict[str, Any]:  # cfg: a BenchConfig (benchmark imports this module)
    """The threading settings every engine gets under the paired protocol (explicit, and equal across engines:
    spinning as asked, no thread pinned); the legacy protocol leaves each library's defaults."""
    return {} if cfg.protocol == "legacy" else {engines.SPIN: cfg.spin, engines.CPU_PINNING: False}


def _job(t: Target, cfg: Any, texts: list[str], max_length: int, threads: int, rnd: int) -> Any:
    """One round (legacy) or one process (paired) of one target: the legacy protocol times 1/rounds of the
    measuring time per cell; the first round or process also predicts and profiles."""
    from edgefn.bench.worker import Job

    assert cfg.seq_len is not None  # decided by resolve_lengths before measuring
    return Job(
        variant=t.variant,
        provider=t.provider,
        engine_module=t.engine.module,
        model_dir=str(t.model_dir),
        manifest=t.manifest,
        options={**t.options, **engine_options(cfg)},
        texts=texts,
        batch_sizes=cfg.batch_sizes,
        seq_len=cfg.seq_len,
        max_length=max_length,
        modes=cfg.modes,
        threads=threads,
        warmup=cfg.warmup,
        min_iters=max(3, -(-cfg.min_iters // cfg.rounds)),
        min_time_s=cfg.min_time_s / cfg.rounds,
        profile=t.engine.profile is not None and rnd == 0,
        predict=rnd == 0,
    )


def measure_targets(
    targets: list[Target], cfg: Any, texts: list[str], max_length: int, threads: int, say: Progress
) -> tuple[dict[int, Measured], dict[str, Any]]:
    """Time the pending targets by `cfg.protocol`.

    Returns:
        target index -> what its rounds measured; and the protocol's record for the report (its settings, the
        engines' threading, calls per slice, seconds).
    """
    from edgefn.bench.paired import ORDER, Plan, run_paired

    def make_job(t: Target, rnd: int) -> Any:
        return _job(t, cfg, texts, max_length, threads, rnd)

    start = time.monotonic()
    settings = engine_options(cfg)
    used = {t.engine.name: t.engine for t in targets if t.status == "pending"}
    threading = {
        name: e.threading(engines.LoadRequest(Path(), threads, options=settings))
        for name, e in used.items()
        if e.threading is not None
    }
    record: dict[str, Any] = {
        "name": cfg.protocol,
        "rounds": cfg.rounds,
        "threads": threads,
        "engines": threading,
    }
    if cfg.protocol == "legacy":
        measured = run_rounds(targets, make_job, cfg.rounds, say)
        record.update(processes=cfg.rounds, rule=LEGACY_RULE)
    else:
        plan = Plan(
            cfg.processes,
            cfg.rounds,
            cfg.min_time_s / cfg.rounds,
            cfg.min_iters,
            warmup=cfg.warmup,
            env={} if cfg.spin else {"OMP_WAIT_POLICY": "PASSIVE"},
        )
        measured, extra = run_paired(targets, make_job, plan, say)
        record.update(
            processes=cfg.processes,
            rounds_per_process=[
                round_groups(cfg.rounds, cfg.processes).count(g) for g in range(cfg.processes)
            ],
            slice_s=plan.slice_s,
            order=ORDER,
            warmup_calls_per_process=[cfg.warmup] + [1] * (cfg.processes - 1),
            rule=PAIRED_RULE,
            **extra,
        )
    record["wall_s"] = time.monotonic() - start
    return measured, record


def assess_timings(
    results: list[TargetResult], protocol: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """Flag each measured row by its protocol's rule and judge the whole run: the report's machine block."""
    measured = [(r, m) for r in results for m in r.measurements]
    label = "{r.variant} on {r.provider} {m.mode} b{m.batch_size}".format
    if protocol.get("name") == "legacy":
        for r, m in measured:
            m.flags = noise.legacy_row_flags({"other_cores": r.other_cores, "spread": m.spread})
        legacy = [
            {"label": label(r=r, m=m), "spread": m.spread, "other_cores": r.other_cores} for r, m in measured
        ]
        assessment = noise.assess_legacy(before, after, os.cpu_count() or 1, legacy)
        return {"before": before, "after": after, "assessment": assessment}
    groups = round_groups(protocol["rounds"], protocol["processes"])
    others = protocol.get("round_other_cores") or []
    steal = protocol.get("round_steal") or []
    mean_others = statistics.fmean(others) if others else None
    stolen = noise.steal_fraction(before.get("cpu_times"), after.get("cpu_times"))
    for r, m in measured:
        beside = [
            n.round_p50_ms
            for q, n in measured
            if q is not r and (n.mode, n.batch_size) == (m.mode, m.batch_size)
        ]
        m.noise = noise.row_noise(m.round_p50_ms, beside, groups)
        m.flags = noise.row_flags(m.noise, mean_others, stolen, noise.noise_limit(m.mode))
    rows: list[dict[str, Any]] = [
        {"label": label(r=r, m=m), "noise": m.noise, "flags": m.flags} for r, m in measured
    ]
    assessment = noise.assess(before, after, rows, others, steal)
    return {"before": before, "after": after, "assessment": assessment}
