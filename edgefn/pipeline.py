"""finetune -> export -> bench in one call, and the offline demo built on the embedded sample corpus."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn.bench.benchmark import BenchConfig
from edgefn.core.progress import Progress
from edgefn.export.exporter import ExportConfig
from edgefn.runtime.inference import CPU
from edgefn.train.finetune import FinetuneConfig

RUN_SCHEMES = ("int8-dynamic", "int8-static")  # what `edgefn run` exports after fp32 unless told otherwise


@dataclass
class PipelineConfig:
    """The three stages' configs; the run folder of the fine-tune stage is used by the other two."""

    finetune: FinetuneConfig
    export: ExportConfig = field(default_factory=lambda: ExportConfig(schemes=RUN_SCHEMES))
    bench: BenchConfig = field(default_factory=BenchConfig)


@dataclass
class PipelineResult:
    """Each stage's result and how long it took."""

    run_dir: Path
    finetune: Any
    export: Any
    bench: Any
    seconds: dict[str, float]


def run_pipeline(cfg: PipelineConfig, progress: Progress | None = None) -> PipelineResult:
    """Fine-tune, export and benchmark into one run folder.

    Args:
        cfg: stage configs; `export.run_dir` and `bench.run_dir` are set to the fine-tune run folder.
        progress: called with one line per stage.

    Returns:
        The stage results, with wall-clock seconds per stage.
    """
    from edgefn.bench.benchmark import bench, check_fits
    from edgefn.export.exporter import export
    from edgefn.train.finetune import finetune

    say = progress or (lambda _msg: None)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    say(f"[1/3] fine-tuning {cfg.finetune.preset} on {cfg.finetune.data}")
    ft = finetune(
        cfg.finetune,
        say,
        resume_hint=False,  # `edgefn run` has no --resume
        # the bench settings are checked against the model before training, not after it
        check_model=lambda config, max_length: check_fits(config.to_dict(), cfg.bench, max_length),
    )
    seconds["finetune"] = time.perf_counter() - start
    start = time.perf_counter()
    say(f"[2/3] exporting {', '.join(cfg.export.schemes)}")
    ex = export(dataclasses.replace(cfg.export, run_dir=ft.run_dir, overwrite=True), progress=say)
    seconds["export"] = time.perf_counter() - start
    start = time.perf_counter()
    say(f"[3/3] benchmarking batch sizes {','.join(map(str, cfg.bench.batch_sizes))}")
    report = bench(dataclasses.replace(cfg.bench, run_dir=ft.run_dir), progress=say)
    seconds["bench"] = time.perf_counter() - start
    return PipelineResult(run_dir=ft.run_dir, finetune=ft, export=ex, bench=report, seconds=seconds)


def demo_config(run_dir: Path | None = None, threads: int | None = None) -> PipelineConfig:
    """`edgefn demo`: minilm (bundled pretrained weights) on the embedded `sample` corpus, quick settings."""
    run_dir = run_dir or Path("artifacts") / "demo-minilm-sample"
    return PipelineConfig(
        finetune=FinetuneConfig(
            preset="minilm",
            data="sample",
            epochs=3,
            batch_size=16,
            lr=5e-5,
            max_length=64,
            run_dir=run_dir,
            overwrite=True,
        ),
        export=ExportConfig(schemes=RUN_SCHEMES, calibration_samples=128, threads=threads),
        bench=BenchConfig(
            batch_sizes=(1, 8, 32),
            providers=(CPU,),
            seq_len=64,
            min_time_s=0.5,
            threads=threads,
            peers=("pytorch-int8", "ort-default"),  # the two peers one line away; `edgefn bench` runs all
            rounds=12,
            processes=3,  # two would leave one degree of freedom to the processes' spread: every lead a tie
        ),
    )


def format_pipeline_summary(result: PipelineResult) -> str:
    """The final table of a pipeline run plus where its outputs are."""
    from edgefn.bench.report import format_summary as bench_summary
    from edgefn.export.exporter import format_table
    from edgefn.export.guard import format_guard
    from edgefn.train.finetune import format_summary as finetune_summary

    took = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    parts = [
        "== fine-tune ==",
        finetune_summary(result.finetune),
        "",
        "== export ==",
        format_table(result.export),
        *([format_guard(result.export)] if any(v.guard for v in result.export.variants) else []),
        "",
        "== bench ==",
        bench_summary(result.bench),
        "",
        f"time: {took} (total {sum(result.seconds.values()):.0f} s)",
        f"run folder: {result.run_dir}",
    ]
    parts += [f"{name}: {path}" for name, path in result.bench.outputs.items()]
    return "\n".join(parts)
