"""One command per pipeline stage: finetune, export, bench, eval and package, each over its library call."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from edgefn.cli.configs import (
    given,
    make_bench_config,
    make_data_options,
    make_distill_config,
    make_export_config,
    make_finetune_config,
    name_list,
)
from edgefn.cli.errors import user_errors
from edgefn.cli.options import BENCH, DATA, DISTILL, EXPORT, FINETUNE, INFERENCE, use


def _say(msg: str) -> None:
    """Progress lines go to stderr, results to stdout; a long one is folded to fit the console."""
    from edgefn.core.progress import wrap_line

    click.echo(wrap_line(msg), err=True)


def next_hint(*commands: str, run_dir: Path | str) -> str:
    """The line that tells what to run next on a run folder: `next: edgefn bench --run-dir RUN`."""
    folder = shlex.quote(str(run_dir))
    return "next: " + "  or  ".join(f"edgefn {c} --run-dir {folder}" for c in commands)


def _picked(run_dir: Path, picked: bool) -> None:
    if picked:
        click.echo(f"run: {run_dir} (most recent under artifacts/; pass --run-dir to choose)")


@click.command()
@use(("preset",), FINETUNE, ("--resume",))
@user_errors
def finetune(preset: str, resume: bool, **opts: Any) -> None:
    """Fine-tune PRESET (e.g. mobilebert, minilm, a hub id or a checkpoint folder) on a dataset."""
    from edgefn.train.finetune import finetune as run_finetune
    from edgefn.train.finetune import format_summary

    result = run_finetune(make_finetune_config(preset, opts, resume=resume), progress=_say)
    if result.finished:
        click.echo(
            f"{result.run_dir} is a finished run: nothing to resume (--overwrite trains it again)", err=True
        )
    if result.metrics:
        click.echo(format_summary(result))
        _say(next_hint("export", run_dir=result.run_dir))


@click.command()
@use(DISTILL)
@user_errors
def distill(**opts: Any) -> None:
    """Train a student with fewer layers from a fine-tuned run (the teacher): its layers copied, knowledge
    distillation on the teacher's logits plus the labels, on the teacher's data. Training settings not given
    are the teacher's. The student is an ordinary run folder: export, bench, eval, package and predict take it."""
    from edgefn.train.distill import distill as run_distill
    from edgefn.train.finetune import format_summary

    result = run_distill(make_distill_config(opts), progress=_say)
    if result.finished:
        click.echo(
            f"{result.run_dir} is a finished run: nothing to resume (--overwrite trains it again)", err=True
        )
    if result.metrics:
        click.echo(format_summary(result))
        _say(next_hint("export", run_dir=result.run_dir))


@click.command("export")
@use(("--run-dir",), EXPORT, ("--overwrite",))
@user_errors
def export_cmd(run_dir: Path | None, overwrite: bool, **opts: Any) -> None:
    """Export a run's checkpoint to ONNX (checked against PyTorch) and quantize it."""
    from edgefn.export.exporter import export, format_table
    from edgefn.export.guard import format_guard

    result = export(make_export_config(opts, run_dir=run_dir, overwrite=overwrite), progress=_say)
    _picked(result.run_dir, result.picked_automatically)
    click.echo(format_table(result))
    if any(v.guard for v in result.variants):
        click.echo(format_guard(result))
    for v in result.variants:
        for note in v.notes:
            click.echo(f"note ({v.name}): {note}")
    _say(next_hint("bench", run_dir=result.run_dir))


@click.command()
@use(("--run-dir",), BENCH)
@user_errors
def bench(run_dir: Path | None, **opts: Any) -> None:
    """Measure accuracy, size, latency and hardware use of every variant and peer on each provider, and say
    what to ship."""
    from edgefn.bench.benchmark import bench as run_bench
    from edgefn.bench.report import format_summary

    report = run_bench(make_bench_config(opts, run_dir=run_dir), progress=_say)
    click.echo(format_summary(report))
    for name, path in report.outputs.items():
        click.echo(f"{name}: {path}")
    _say(next_hint("show", "package", run_dir=report.run_dir))


@click.command("eval")
@use(("--model",), DATA, ("--split", "--max-samples", "--seed", "--ood-score"), INFERENCE, ("--output",))
@user_errors
def eval_cmd(
    model: Path,
    data: str,
    split: str,
    max_samples: int | None,
    seed: int,
    ood_score: str,
    batch_size: int | None,
    threads: int | None,
    max_length: int | None,
    output: Path | None,
    **opts: Any,
) -> None:
    """Score a run or an exported variant on any dataset, beside its in-domain figures."""
    from edgefn.train.evaluate import EvalConfig, evaluate, format_eval

    cfg = EvalConfig(
        model=model,
        data=data,
        data_options=make_data_options({**opts, "seed": seed}),
        split=split,
        samples=max_samples,
        seed=seed,
        ood_score=ood_score,
        threads=threads,
        max_length=max_length,
        output=output,
        clean=not opts["no_clean"],
        **given(batch_size=batch_size),
    )
    click.echo(format_eval(evaluate(cfg, progress=_say)))


@click.command("package")
@use(
    ("--target", "--run-dir", "--variants", "--check-samples", "--browser-check", "--threads", "--overwrite")
)
@user_errors
def package_cmd(
    target: str,
    run_dir: Path | None,
    variants: str | None,
    check_samples: int,
    browser_check: bool,
    threads: int | None,
    overwrite: bool,
) -> None:
    """Package a run's variants for a browser (RUN/package/web/) or a phone (RUN/package/mobile/)."""
    from edgefn.package.packager import PackageConfig, format_summary, package

    cfg = PackageConfig(
        target=target,
        run_dir=run_dir,
        variants=name_list(variants, "--variants"),
        check_samples=check_samples,
        browser_check=browser_check,
        threads=threads,
        overwrite=overwrite,
    )
    result = package(cfg, progress=_say)
    _picked(result.run_dir, result.picked_automatically)
    click.echo(format_summary(result))
