"""`edgefn run` (finetune -> export -> bench, the three stages' options) and the offline `edgefn demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgefn.cli.configs import make_bench_config, make_export_config, make_finetune_config
from edgefn.cli.errors import user_errors
from edgefn.cli.options import BENCH, EXPORT, FINETUNE, use


@click.command("run")
@use(("preset",), FINETUNE, EXPORT, BENCH)
@user_errors
def run_cmd(preset: str, **opts: Any) -> None:
    """Fine-tune PRESET, export and quantize it, and benchmark every variant, in one run folder."""
    from edgefn.pipeline import RUN_SCHEMES, PipelineConfig, format_pipeline_summary, run_pipeline

    cfg = PipelineConfig(
        finetune=make_finetune_config(preset, opts),
        export=make_export_config(opts, default_schemes=RUN_SCHEMES),
        bench=make_bench_config(opts),
    )
    result = run_pipeline(cfg, progress=lambda msg: click.echo(msg, err=True))
    click.echo(format_pipeline_summary(result))


@click.command()
@use(("--run-dir", "--threads"))
@user_errors
def demo(run_dir: Path | None, threads: int | None) -> None:
    """Run the whole pipeline offline: minilm (bundled weights) on the embedded sample corpus, CPU, a few minutes."""
    from edgefn.pipeline import demo_config, format_pipeline_summary, run_pipeline

    click.echo(
        "edgefn demo: minilm (pretrained, bundled) on the embedded 400-item smoke-test corpus; "
        "the accuracy says nothing about real fake-news detection.",
        err=True,
    )
    result = run_pipeline(demo_config(run_dir, threads), progress=lambda msg: click.echo(msg, err=True))
    click.echo(format_pipeline_summary(result))
