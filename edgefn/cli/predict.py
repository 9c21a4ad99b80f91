"""`edgefn predict`: classify texts with an exported variant folder, torch-free, streaming."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edgefn.cli.configs import given, make_score_config
from edgefn.cli.errors import silence_stdout, user_errors
from edgefn.cli.options import INFERENCE, RAY, use
from edgefn.core.errors import EdgefnError, os_error_line
from edgefn.core.progress import wrap_line

if TYPE_CHECKING:
    from edgefn.runtime.predict_rows import PredictSummary


@click.command()
@use(
    ("texts", "--model", "--input", "--column", "--format", "--output"),
    INFERENCE,
    ("--provider", "--encoding", "--no-clean"),
    ("--id-column", "--echo", "--precision"),
    RAY,
)
@user_errors
def predict(
    texts: tuple[str, ...],
    model: Path,
    input_path: str | None,
    column: str,
    fmt: str,
    output: Path | None,
    batch_size: int | None,
    threads: int | None,
    max_length: int | None,
    provider: str,
    encoding: str,
    id_column: str | None,
    echo: bool,
    precision: int | None,
    no_clean: bool,
    engine: str,
    address: str | None,
    workers: int | None,
    threads_per_worker: int | None,
) -> None:
    """Classify TEXTS (or --input FILE, or stdin) with an exported ONNX folder; torch-free.

    One output row per input row, in order, written as the input is read: index (0, 1, ...), the input's id
    column (--id-column), the text (--echo), label, label_id, prob_fake, logits, truncated, ood_score, ood and
    empty (true for a blank row, which is classified as an empty text). ood_score is higher the less a text
    looks like the training data; ood is true above the threshold `edgefn eval` calibrates on the run's
    validation split (RUN/ood.json), and null until then.

    --engine ray scores --input files (a folder or a glob too; Parquet as well) on a pool of Ray actors, on this
    machine or a cluster (--address), into one --output file with the same rows and fields (docs/scaling.md)."""
    from edgefn import runs
    from edgefn.core import outputs
    from edgefn.runtime.classifier import Classifier
    from edgefn.runtime.predict_io import open_input, predict_stream
    from edgefn.runtime.predict_rows import FORMATS, RowFormat, ood_note

    if engine == "ray":
        _predict_on_ray(click.get_current_context().params)
        return
    ray_only = {"--address": address, "--workers": workers, "--threads-per-worker": threads_per_worker}
    for flag, value in ray_only.items():
        if value is not None:
            raise EdgefnError(f"{flag} needs --engine ray")
    if fmt not in FORMATS:
        raise EdgefnError(
            f"--format {fmt} is written by --engine ray; this engine writes {' or '.join(FORMATS)}"
        )
    if output is not None:
        outputs.refuse_input_as_output(output, [input_path], "--output")
        outputs.refuse_output_inside(output, model, "--output", "the model's folder")
        runs.refuse_output_in_run(output)
        outputs.check_output_file(output)
    inputs = open_input(texts, input_path, column, encoding, id_column=id_column)
    fields = RowFormat(inputs.id_name, echo, precision)
    clf = Classifier.from_folder(
        model,
        provider=provider,
        threads=threads,
        max_length=max_length,
        clean=not no_clean,
        **given(batch_size=batch_size),
    )
    for line in (clf.provider_note, clf.cleaning_note):
        if line:
            click.echo(wrap_line(f"note: {line}"), err=True)
    note = ood_note(model) if clf.ood is None else None
    if note:
        click.echo(wrap_line(f"note: {note}"), err=True)
    with _output_faults(output), outputs.open_output(output) as out:
        summary = predict_stream(clf.predict, inputs.rows, out, fmt, fields=fields)
    _summary_notes(summary, clf.max_length)
    if output is not None:
        click.echo(f"{summary.rows} predictions ({summary.fake} fake) -> {output}", err=True)


def _summary_notes(summary: PredictSummary, max_length: int) -> None:
    """The notes after a prediction run, local or on Ray: texts cut to the token limit, empty texts."""
    if summary.truncated:
        click.echo(
            f"note: {summary.truncated} of {summary.rows} texts truncated to {max_length} tokens", err=True
        )
    if summary.empty:
        click.echo(
            f'note: {summary.empty} of {summary.rows} texts are empty ("empty": true in their rows)', err=True
        )


def _predict_on_ray(opts: dict[str, Any]) -> None:
    """`--engine ray`: score the files on Ray (`runtime.ray_scoring.score`), then the notes and the summary."""
    from edgefn.runtime.ray_scoring import score

    result = score(make_score_config(opts), progress=lambda line: click.echo(wrap_line(line), err=True))
    for note in result.notes:
        click.echo(wrap_line(f"note: {note}"), err=True)
    summary = result.summary
    _summary_notes(summary, result.max_length)
    click.echo(
        f"{summary.rows} predictions ({summary.fake} fake) -> {result.output}; {result.workers} Ray workers x "
        f"{result.threads_per_worker} threads, first rows after {result.first_rows_s:.1f} s, "
        f"{result.total_s:.1f} s in all",
        err=True,
    )


@contextlib.contextmanager
def _output_faults(output: Path | None) -> Iterator[None]:
    """An OSError while streaming (a full disk, a closed pipe, an I/O error) ends predict with one line, exit 1."""
    try:
        yield
    except OSError as e:
        if output is None:
            silence_stdout()
        where = "standard output" if output is None else str(output)
        click.echo(f"Error: cannot write the predictions to {os_error_line(e, where)}", err=True)
        sys.exit(1)
