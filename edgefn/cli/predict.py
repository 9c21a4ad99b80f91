"""`edgefn predict`: classify texts with an exported variant folder, torch-free, streaming."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from edgefn.cli.configs import given
from edgefn.cli.errors import silence_stdout, user_errors
from edgefn.cli.options import INFERENCE, use
from edgefn.core.errors import os_error_line
from edgefn.core.progress import wrap_line


@click.command()
@use(
    ("texts", "--model", "--input", "--column", "--format", "--output"),
    INFERENCE,
    ("--provider", "--encoding", "--no-clean"),
    ("--id-column", "--echo", "--precision"),
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
) -> None:
    """Classify TEXTS (or --input FILE, or stdin) with an exported ONNX folder; torch-free.

    One output row per input row, in order, written as the input is read: index (0, 1, ...), the input's id
    column (--id-column), the text (--echo), label, label_id, prob_fake, logits, truncated, ood_score, ood and
    empty (true for a blank row, which is classified as an empty text). ood_score is higher the less a text
    looks like the training data; ood is true above the threshold `edgefn eval` calibrates on the run's
    validation split (RUN/ood.json), and null until then."""
    from edgefn import runs
    from edgefn.core import outputs
    from edgefn.runtime.classifier import Classifier
    from edgefn.runtime.predict_io import open_input, predict_stream
    from edgefn.runtime.predict_rows import RowFormat, ood_note

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
