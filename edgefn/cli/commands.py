"""Command-line interface: one thin command per stage over the Python API."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from edgefn import __version__
from edgefn.cli.options import (
    RegistryHelp,
    cleaning_options,
    column_options_for,
    data_files,
    data_options,
    exit_on_os_error,
    finetune_options,
    make_data_options,
    make_finetune_config,
    name_list,
    parse_int_list,
    run_dir_option,
    split_list,
    user_errors,
)
from edgefn.core import outputs
from edgefn.core.errors import os_error_line


class _OneLineErrors(click.Group):
    """Usage errors as one line naming the help to read, like every other refusal (exit 2)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as e:
            where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            click.echo(f"Error: {e.format_message()}{where}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except OSError as e:  # the system refused: a full disk, an I/O error, a read-only file system
            exit_on_os_error(e, self._command_path(args))
        try:
            sys.stdout.flush()  # a full stdout (`> /dev/full`) fails here, not silently at exit
        except OSError as e:
            exit_on_os_error(e, self._command_path(args), stdout=True)
        sys.exit(code if isinstance(code, int) else 0)

    def _command_path(self, args: Sequence[str] | None) -> str:
        """`edgefn data list` from the arguments: the group and command names they start with."""
        words = ["edgefn"]
        group: click.Command = self
        for arg in sys.argv[1:] if args is None else args:
            sub = group.commands.get(arg) if isinstance(group, click.Group) else None
            if sub is None:
                break
            words.append(arg)
            group = sub
        return " ".join(words)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgefn")
def main() -> None:
    """edgefn: fine-tune a small transformer classifier, export it to ONNX, quantize and benchmark it."""
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM behaves like Ctrl-C: temporary folders are removed and measuring processes stopped."""
    raise KeyboardInterrupt


# --- data -------------------------------------------------------------------------------------------------


@main.group("data")
def data_group() -> None:
    """List the known datasets and inspect one."""


@data_group.command("list")
@user_errors
def data_list() -> None:
    """List the registered dataset names and what each needs."""
    from edgefn.data.catalog import get_dataset, list_datasets

    for name in list_datasets():
        entry = get_dataset(name)
        hub = f"; hub {entry.hub_id}" if entry.hub_id else ""
        click.echo(f"{name:12s} {entry.hint}{hub}")


@data_group.command("inspect")
@click.argument("data")
@column_options_for
@click.option("--no-clean", is_flag=True, help="Keep dataset shortcut cues (ISOT datelines etc.).")
@click.option(
    "--seed", default=42, show_default=True, help="Seed of the 70/15/15 split (no official splits)."
)
@click.option("--tokenizer", default=None, help="Tokenizer folder or hub id (default: bundled WordPiece).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@user_errors
def data_inspect(
    data: str,
    text_cols: tuple[str, ...],
    label_col: str | None,
    fake_label: str | None,
    no_clean: bool,
    seed: int,
    tokenizer: str | None,
    as_json: bool,
) -> None:
    """Rows, label balance, token lengths, duplicates and cleaning of DATA (a name or a path)."""
    import json

    from edgefn.data.catalog import format_inspect, inspect_data, load_data

    bundle = load_data(data, make_data_options(text_cols, label_col, fake_label, no_clean, seed))
    report = inspect_data(bundle, tokenizer)
    click.echo(json.dumps(report, indent=2) if as_json else format_inspect(report))


@data_group.command("audit")
@click.argument("data")
@column_options_for
@click.option("--no-clean", is_flag=True, help="Audit the texts with the dataset's shortcut cues kept.")
@cleaning_options[0]
@click.option(
    "--seed", default=42, show_default=True, help="Seed of the 70/15/15 split (no official splits)."
)
@click.option(
    "--ngrams", type=click.IntRange(min=0), default=15, show_default=True, help="Top n-grams per class."
)
@click.option("--no-duplicates", is_flag=True, help="Skip the MinHash near-duplicate search.")
@click.option(
    "--output", type=click.Path(path_type=Path), default=None, help="Also write the report as JSON here."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@user_errors
def data_audit(
    data: str,
    text_cols: tuple[str, ...],
    label_col: str | None,
    fake_label: str | None,
    no_clean: bool,
    clean_rules: str | None,
    seed: int,
    ngrams: int,
    no_duplicates: bool,
    output: Path | None,
    as_json: bool,
) -> None:
    """Shortcut audit of DATA: cues per class, what each alone predicts, top n-grams, near-duplicates."""
    import json

    from edgefn.data.audit import audit_data, format_audit
    from edgefn.data.catalog import load_data
    from edgefn.runs import refuse_output_in_run, write_json

    options = make_data_options(text_cols, label_col, fake_label, no_clean, seed, clean_rules)
    if output is not None:
        for source in data_files(data):
            outputs.refuse_input_as_output(output, [source], "--output")
            if Path(source).is_dir():
                outputs.refuse_output_inside(output, source, "--output", "the input folder")
        refuse_output_in_run(output)
        outputs.check_output_file(output)
    report = audit_data(load_data(data, options), ngrams=ngrams, duplicates=not no_duplicates)
    if output is not None:
        write_json(output, report, follow_symlinks=True)
    click.echo(json.dumps(report, indent=2) if as_json else format_audit(report))


# --- eval -------------------------------------------------------------------------------------------------


@main.command("eval")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A run folder (its PyTorch checkpoint) or an exported variant folder, e.g. RUN/onnx/int8-dynamic.",
)
@data_options
@click.option("--split", type=click.Choice(["test", "all"]), default="test", show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=None, help="Score a seeded random subset.")
@click.option("--seed", default=42, show_default=True, help="Seed of the subset and of 70/15/15 splits.")
@click.option("--ood-score", type=click.Choice(["energy", "msp"]), default="energy", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Intra-op threads.")
@click.option(
    "--max-length", type=click.IntRange(min=2), default=None, help="Token limit (default: the run's)."
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: RUN/eval/<data>).",
)
@user_errors
def eval_cmd(
    model_dir: Path,
    data: str,
    split: str,
    samples: int | None,
    seed: int,
    ood_score: str,
    batch_size: int,
    threads: int | None,
    max_length: int | None,
    output: Path | None,
    **data_opts: Any,
) -> None:
    """Score a run or an exported variant on any dataset, beside its in-domain figures."""
    from edgefn.train.evaluate import EvalConfig, evaluate, format_eval

    options = make_data_options(
        data_opts["text_cols"],
        data_opts["label_col"],
        data_opts["fake_label"],
        data_opts["no_clean"],
        seed,
        data_opts["clean_rules"],
        data_opts["strict"],
        data_opts["max_train_per_source"],
    )
    cfg = EvalConfig(
        model=model_dir,
        data=data,
        data_options=options,
        split=split,
        samples=samples,
        seed=seed,
        ood_score=ood_score,
        batch_size=batch_size,
        threads=threads,
        max_length=max_length,
        output=output,
    )
    click.echo(format_eval(evaluate(cfg)))


# --- finetune ---------------------------------------------------------------------------------------------


@main.command()
@click.argument("preset")
@finetune_options
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@user_errors
def finetune(preset: str, resume: bool, **opts: Any) -> None:
    """Fine-tune PRESET (e.g. mobilebert, minilm, a hub id or a checkpoint folder) on a dataset."""
    from edgefn.train.finetune import finetune as run_finetune
    from edgefn.train.finetune import format_summary

    result = run_finetune(make_finetune_config(preset, opts, resume=resume))
    if result.finished:
        click.echo(
            f"{result.run_dir} is a finished run: nothing to resume (--overwrite trains it again)", err=True
        )
    if result.metrics:
        click.echo(format_summary(result))


# --- export -----------------------------------------------------------------------------------------------


@main.command("export")
@run_dir_option
@click.option(
    "--quantize",
    "schemes",
    default="int8-dynamic",
    show_default=True,
    cls=RegistryHelp,
    help_from="edgefn.export.schemes:scheme_help",
)
@click.option(
    "--optimize",
    default=None,
    help="ONNX Runtime graph optimisation O1, O2, O3 or none. Default: O2 for BERT-family and DistilBERT "
    "presets, none for MobileBERT (unsupported) and ALBERT (fusion unshares its layers).",
)
@click.option(
    "--target", default=None, help="int8 target: avx2, avx512, avx512_vnni, arm64 (default: this CPU)."
)
@click.option(
    "--calibration-samples",
    type=int,
    default=256,
    show_default=True,
    help="Calibration texts for int8-static.",
)
@click.option(
    "--calibration-method", default="minmax", show_default=True, help="minmax, entropy or percentile."
)
@click.option(
    "--parity-samples",
    type=int,
    default=64,
    show_default=True,
    help="Validation texts for the fp32 ONNX vs PyTorch check.",
)
@click.option("--eval-samples", type=int, default=None, help="Cap the validation texts scored per variant.")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: Optimum's for the architecture).")
@click.option("--threads", type=int, default=None, help="Threads for PyTorch and ONNX Runtime.")
@click.option("--overwrite", is_flag=True, help="Replace existing variant folders.")
@user_errors
def export_cmd(
    run_dir: Path | None,
    schemes: str,
    optimize: str | None,
    target: str | None,
    calibration_samples: int,
    calibration_method: str,
    parity_samples: int,
    eval_samples: int | None,
    opset: int | None,
    threads: int | None,
    overwrite: bool,
) -> None:
    """Export a run's checkpoint to ONNX (checked against PyTorch) and quantize it."""
    from edgefn.export.exporter import ExportConfig, format_table
    from edgefn.export.exporter import export as run_export

    cfg = ExportConfig(
        run_dir=run_dir,
        schemes=split_list(schemes) or (),
        optimize=optimize,
        target=target,
        calibration_samples=calibration_samples,
        calibration_method=calibration_method,
        parity_samples=parity_samples,
        eval_samples=eval_samples,
        opset=opset,
        threads=threads,
        overwrite=overwrite,
    )
    result = run_export(cfg, on_step=lambda msg: click.echo(msg, err=True))
    if result.picked_automatically:
        click.echo(f"run: {result.run_dir} (most recent under artifacts/; pass --run-dir to choose)")
    click.echo(format_table(result))
    for v in result.variants:
        for note in v.notes:
            click.echo(f"note ({v.name}): {note}")


# --- bench ------------------------------------------------------------------------------------------------


@main.command()
@run_dir_option
@click.option("--batch-sizes", default="1,8,32", show_default=True, help="Comma list of batch sizes.")
@click.option(
    "--providers",
    default=None,
    cls=RegistryHelp,
    help_from="edgefn.runtime.engines:engine_help",
)
@click.option(
    "--variants", default=None, help="Comma list of variants (default: all of the run, plus pytorch)."
)
@click.option(
    "--seq-len",
    type=int,
    default=128,
    show_default=True,
    help="Fixed-shape input length (512 reproduces the seeds' protocol).",
)
@click.option(
    "--real-lengths/--no-real-lengths",
    default=True,
    show_default=True,
    help="Also time the test texts end to end (tokenisation, dynamic padding, sorted batches).",
)
@click.option(
    "--fixed-shape/--no-fixed-shape",
    default=True,
    show_default=True,
    help="Time fixed (batch, seq-len) inputs, model call only.",
)
@click.option("--samples", type=int, default=None, help="Cap the test rows used (accuracy and real lengths).")
@click.option(
    "--min-time",
    type=float,
    default=1.0,
    show_default=True,
    help="Least seconds measured per batch size and input mode.",
)
@click.option("--threads", type=int, default=None, help="Intra-op threads (default: physical cores).")
@click.option(
    "--peers",
    default="all",
    show_default=True,
    cls=RegistryHelp,
    help_from="edgefn.bench.peers:peer_help",
)
@click.option(
    "--rounds",
    type=int,
    default=3,
    show_default=True,
    help="Interleaved rounds (A B C, A B C, ...): the spread across them flags a noisy machine.",
)
@click.option(
    "--max-drop",
    type=float,
    default=0.5,
    show_default=True,
    help="Accuracy points below the reference a row may lose and still be what to ship.",
)
@user_errors
def bench(
    run_dir: Path | None,
    batch_sizes: str,
    providers: str | None,
    variants: str | None,
    seq_len: int,
    real_lengths: bool,
    fixed_shape: bool,
    samples: int | None,
    min_time: float,
    threads: int | None,
    peers: str,
    rounds: int,
    max_drop: float,
) -> None:
    """Measure accuracy, size, latency and hardware use of every variant and peer on each provider, and say
    what to ship."""
    from edgefn.bench.benchmark import BenchConfig
    from edgefn.bench.benchmark import bench as run_bench
    from edgefn.bench.report import format_summary

    cfg = BenchConfig(
        run_dir=run_dir,
        batch_sizes=parse_int_list(batch_sizes, "--batch-sizes"),
        providers=split_list(providers),
        variants=name_list(variants, "--variants"),
        seq_len=seq_len,
        real_lengths=real_lengths,
        fixed_shape=fixed_shape,
        samples=samples,
        min_time_s=min_time,
        threads=threads,
        peers=split_list(peers) or ("none",),
        rounds=rounds,
        max_drop=max_drop,
    )
    report = run_bench(cfg, progress=lambda msg: click.echo(msg, err=True))
    click.echo(format_summary(report))
    for name, path in report.outputs.items():
        click.echo(f"{name}: {path}")


# --- run / demo -------------------------------------------------------------------------------------------


@main.command("run")
@click.argument("preset")
@finetune_options
@click.option(
    "--quantize",
    "schemes",
    default="int8-dynamic,int8-static",
    show_default=True,
    help="Comma list of export schemes after fp32.",
)
@click.option(
    "--optimize",
    default=None,
    help="ONNX Runtime graph optimisation O1, O2, O3 or none. Default: O2 for BERT-family and DistilBERT "
    "presets, none for MobileBERT (unsupported) and ALBERT (fusion unshares its layers).",
)
@click.option("--batch-sizes", default="1,8,32", show_default=True, help="Bench batch sizes.")
@click.option("--providers", default=None, help="Bench providers (default: cpu, plus cuda when present).")
@click.option("--seq-len", type=int, default=128, show_default=True, help="Bench fixed-shape input length.")
@click.option("--samples", type=int, default=None, help="Cap the test rows used by bench.")
@click.option("--min-time", type=float, default=1.0, show_default=True, help="Least seconds per measurement.")
@click.option(
    "--threads", type=int, default=None, help="Threads for export and bench (default: physical cores)."
)
@click.option("--peers", default="all", show_default=True, help="Bench peers (see `edgefn bench --help`).")
@click.option("--rounds", type=int, default=3, show_default=True, help="Bench interleaved rounds.")
@user_errors
def run_cmd(
    preset: str,
    schemes: str,
    optimize: str | None,
    batch_sizes: str,
    providers: str | None,
    seq_len: int,
    samples: int | None,
    min_time: float,
    threads: int | None,
    peers: str,
    rounds: int,
    **opts: Any,
) -> None:
    """Fine-tune PRESET, export and quantize it, and benchmark every variant, in one run folder."""
    from edgefn.bench.benchmark import BenchConfig
    from edgefn.export.exporter import ExportConfig
    from edgefn.pipeline import PipelineConfig, format_pipeline_summary, run_pipeline

    cfg = PipelineConfig(
        finetune=make_finetune_config(preset, opts),
        export=ExportConfig(schemes=split_list(schemes) or ("none",), optimize=optimize, threads=threads),
        bench=BenchConfig(
            batch_sizes=parse_int_list(batch_sizes, "--batch-sizes"),
            providers=split_list(providers),
            seq_len=seq_len,
            samples=samples,
            min_time_s=min_time,
            threads=threads,
            peers=split_list(peers) or ("none",),
            rounds=rounds,
        ),
    )
    result = run_pipeline(cfg, progress=lambda msg: click.echo(msg, err=True))
    click.echo(format_pipeline_summary(result))


@main.command()
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: artifacts/demo-minilm-sample, replaced on each run).",
)
@click.option(
    "--threads", type=int, default=None, help="Threads for export and bench (default: physical cores)."
)
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


# --- predict / show ---------------------------------------------------------------------------------------


@main.command()
@click.argument("texts", nargs=-1)
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="An exported variant folder, e.g. RUN/onnx/int8-dynamic.",
)
@click.option(
    "--input",
    "input_path",
    default=None,
    help="A .txt file (one text per line), a .csv/.tsv/.jsonl file (see --column), or - for stdin.",
)
@click.option("--column", default="text", show_default=True, help="Text column of a CSV/TSV/JSONL input.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="Intra-op threads (default: ORT's)."
)
@click.option(
    "--provider", default="cpu", show_default=True, help="cpu, cuda or a full ONNX Runtime EP name."
)
@click.option(
    "--max-length",
    type=click.IntRange(min=2),
    default=None,
    help="Token limit (default: the run's fine-tuning max_length, else 512).",
)
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the input file or stdin.")
@user_errors
def predict(
    texts: tuple[str, ...],
    model_dir: Path,
    input_path: str | None,
    column: str,
    fmt: str,
    output: Path | None,
    batch_size: int,
    threads: int | None,
    provider: str,
    max_length: int | None,
    encoding: str,
) -> None:
    """Classify TEXTs (or --input FILE, or stdin) with an exported ONNX folder; torch-free.

    One output row per input row, in order, written as the input is read; a blank row is an empty text
    (`empty` true in its row)."""
    from edgefn import runs
    from edgefn.core import outputs
    from edgefn.runtime.classifier import Classifier
    from edgefn.runtime.predict_io import iter_texts, predict_stream

    if output is not None:
        outputs.refuse_input_as_output(output, [input_path], "--output")
        outputs.refuse_output_inside(output, model_dir, "--output", "the model's folder")
        runs.refuse_output_in_run(output)
        outputs.check_output_file(output)
    inputs = iter_texts(texts, input_path, column, encoding)
    clf = Classifier.from_folder(
        model_dir, provider=provider, threads=threads, batch_size=batch_size, max_length=max_length
    )
    if clf.provider_note:
        click.echo(f"note: {clf.provider_note}", err=True)
    with _output_faults(output), outputs.open_output(output) as out:
        summary = predict_stream(clf.predict, inputs, out, fmt)
    if summary.truncated:
        click.echo(
            f"note: {summary.truncated} of {summary.rows} texts truncated to {clf.max_length} tokens",
            err=True,
        )
    if summary.empty:
        click.echo(
            f'note: {summary.empty} of {summary.rows} texts are empty ("empty": true in their rows)', err=True
        )
    if output is not None:
        click.echo(f"{summary.rows} predictions ({summary.fake} fake) -> {output}", err=True)


@contextlib.contextmanager
def _output_faults(output: Path | None) -> Any:
    """An OSError while streaming (a full disk, a closed pipe, an I/O error) ends predict with one line, exit 1."""
    try:
        yield
    except OSError as e:
        if output is None:
            _silence_stdout()
        where = "standard output" if output is None else str(output)
        click.echo(f"Error: cannot write the predictions to {os_error_line(e, where)}", err=True)
        sys.exit(1)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of a broken stdout raises nothing."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@main.command("package")
@click.option(
    "--target", required=True, help="web (a static page + Transformers.js layout) or mobile (.ort)."
)
@run_dir_option
@click.option(
    "--variant",
    "variants",
    default=None,
    help="Comma list of variants (default: web fp32, the first int8 that runs in WASM, fp16; mobile every CPU one).",
)
@click.option(
    "--check-samples", type=int, default=100, show_default=True, help="Validation texts to check on."
)
@click.option("--browser-check", is_flag=True, help="web: also run the page in headless Chromium on them.")
@click.option("--threads", type=int, default=None, help="ONNX Runtime threads of the Python checks.")
@click.option("--overwrite", is_flag=True, help="Replace RUN/package/<target>/.")
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
        variants=name_list(variants, "--variant"),
        check_samples=check_samples,
        browser_check=browser_check,
        threads=threads,
        overwrite=overwrite,
    )
    result = package(cfg, step=lambda msg: click.echo(msg, err=True))
    if result.picked_automatically:
        click.echo(f"run: {result.run_dir} (most recent under artifacts/; pass --run-dir to choose)")
    click.echo(format_summary(result))


@main.command()
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON dict.")
@user_errors
def show(run_dir: Path | None, as_json: bool) -> None:
    """Print a run folder's stages, variants and headline numbers (default: the most recent run)."""
    import json

    from edgefn import runs
    from edgefn.cli.show import describe_run, format_run

    run, picked = runs.resolve_run_dir(run_dir)
    if picked:
        click.echo(f"(most recent run: {run})", err=True)
    d = describe_run(run)
    click.echo(json.dumps(d, indent=2) if as_json else format_run(d))


if __name__ == "__main__":
    main()
