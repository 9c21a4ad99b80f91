"""Inputs and outputs of `edgefn predict`, streamed: texts from arguments, a file or stdin in, JSONL or CSV out.

Exactly one output row per input row, in input order:
- a .txt file or stdin holds one text per line, split at "\\n" only ("\\r\\n" ends a line too);
- a .csv / .tsv file holds one text per row in `--column`, read by the strict `textfiles.CsvReader`;
- a .jsonl file holds one JSON object per line, the text a string (or null) under `--column`.
A blank line or blank CSV row is an empty text: it gets a prediction like any other (the model sees only its
special tokens) and its row says `"empty": true`, as does every text of whitespace only. Nothing is skipped.
Input with no rows at all is refused. Any malformed row is refused with one line naming it; a regular input
file is checked whole before the model loads, so that nothing is written. Standard input cannot be read
twice: rows before a malformed one have been written to stdout when the error is raised (with --output, the
file is written only when every row succeeded).
A CSV / TSV / JSONL row's id column (`--id-column`; by default `id` where the input has one) is copied to its
output row under its own name, so predictions join back to the input.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, Any, BinaryIO

from edgefn.core.errors import EdgefnError
from edgefn.core.textfiles import (
    SURROGATE,
    CsvReader,
    Record,
    jsonl_records,
    missing_column,
    raw_lines,
    strip_newline,
    text_value,
)
from edgefn.runtime.predict_rows import PredictSummary, Row, RowFormat, format_rows, prediction_rows

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Files whose lines are not texts: read as lines they would give one wrong answer per line (or one in all).
UNREAD_SUFFIXES = (".json", ".parquet", ".pq", ".xlsx", ".xls", ".gz", ".zip", ".bz2", ".xz", ".zst", ".pdf")
# Texts classified per call (a window ends early at 16 M characters). Batches are sorted by token length
# within a window: on 100,000 CONSTRAINT tweets in batches of 32, windows of 1,024 texts feed 3.9% padding
# tokens, windows of 8,192 0.5% (one sort over all: 0.04%), for some 6 MB of compact tokens.
WINDOW_TEXTS = 8192
WINDOW_CHARS = 1 << 24
WRITE_ROWS = 1024  # rows formatted and written at a time


DEFAULT_ID = "id"  # the column kept without --id-column, where the input has one
NO_COLUMNS = "TEXTS, .txt files and standard input have no columns"


def _csv_rows(
    lines: Iterable[str], source: str, column: str, delimiter: str, id_name: str | None
) -> Iterator[Row]:
    reader = CsvReader(lines, source, delimiter)
    index = reader.column(column)
    key = None if id_name is None else _id_index(reader, id_name)
    for record in reader:
        if record.fields is None:
            yield Row("")
        else:
            yield Row(record.fields[index], None if key is None else record.fields[key])


def _id_index(reader: CsvReader, name: str) -> int:
    if name not in reader.header:
        raise EdgefnError(
            f"{reader.source} has no column {name!r} for --id-column; columns found: {', '.join(reader.header)}"
        )
    return reader.header.index(name)


def _jsonl_rows(lines: Iterable[str], source: str, column: str, id_name: str | None) -> Iterator[Row]:
    for record in jsonl_records(lines, source):
        if record.fields is None:
            yield Row("")
            continue
        if column not in record.fields:
            raise missing_column(f"{source} line {record.line}", column, list(record.fields))
        text = text_value(record.fields[column], f"{source} line {record.line}", column)
        yield Row(text, None if id_name is None else _jsonl_id(record, source, id_name))


def _jsonl_id(record: Record, source: str, name: str) -> Any:
    if name not in record.fields:
        raise EdgefnError(
            f"{source} line {record.line} has no {name!r}, the id column copied to each output row "
            "(--id-column names another; --id-column '' keeps none)"
        )
    return record.fields[name]


def parse_rows(
    lines: Iterable[str], source: str, kind: str, column: str = "text", id_name: str | None = None
) -> Iterator[Row]:
    """Rows, one per input row, from decoded lines (each ending with "\\n") of a kind: `lines`, `csv`, `tsv` or
    `jsonl`; `id_name` is the id column of a table (every row must have it)."""
    if kind in ("csv", "tsv"):
        return _csv_rows(lines, source, column, "," if kind == "csv" else "\t", id_name)
    if kind == "jsonl":
        return _jsonl_rows(lines, source, column, id_name)
    return (Row(strip_newline(line)) for line in lines)


def _argument_texts(texts: Sequence[str]) -> list[str]:
    """Texts given as arguments; one holding bytes the terminal could not decode is refused."""
    for n, text in enumerate(texts, start=1):
        if SURROGATE.search(text):
            raise EdgefnError(f"text argument {n} holds bytes that are not valid in the terminal's encoding")
    return list(texts)


def _stdin(stdin: BinaryIO | None, named: bool) -> BinaryIO:
    """Standard input; refused when closed, or when it is a terminal that `--input -` did not name (predict
    would otherwise wait for typing)."""
    stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
    if stream is None or stream.closed:
        raise EdgefnError(
            "no texts: give them as arguments, --input FILE, or on standard input (it is closed)"
        )
    if not named and stream.isatty():
        raise EdgefnError(
            "no texts: give them as arguments, --input FILE, or pipe them on standard input "
            "(it is a terminal; --input - reads what you type, ended by Ctrl-D)"
        )
    return stream


def check_input_file(path: Path, reads: str, also_read: tuple[str, ...] = (), hint: str = "") -> Path:
    """`path` when it is a regular file that can be opened, of a kind read here; else one line: not found, not a
    regular file (`hint` says what to use instead), a suffix that is not text (`reads` says what is read;
    `also_read` lists the suffixes the caller reads besides text), or cannot be read."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise EdgefnError(f"input file not found: {path}") from None
    if not stat.S_ISREG(mode):
        raise EdgefnError(f"--input {path} is not a regular file{hint}")
    suffix = path.suffix.lower()
    if suffix in UNREAD_SUFFIXES and suffix not in also_read:
        raise EdgefnError(f"--input {path}: {reads}, not {path.suffix}; convert it to one of those")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise EdgefnError(f"cannot read {path}: {e.strerror or e}") from None
    return path


def input_kind(path: Path) -> str:
    """How a file's rows are read: `csv`, `tsv` or `jsonl` by its suffix, else `lines` (one text per line)."""
    return TABLE_SUFFIXES.get(path.suffix.lower(), "lines")


def file_rows(path: Path, column: str, encoding: str, id_name: str | None) -> Generator[Row, None, None]:
    """The rows of one input file, read as they are consumed (`parse_rows` of its kind)."""
    with open(path, "rb") as f:
        yield from parse_rows(raw_lines(f, str(path), encoding), str(path), input_kind(path), column, id_name)


def file_id_name(path: Path, id_column: str | None, encoding: str) -> str | None:
    """The id column of a table file: `id_column` as given ("": none), else `id` where the CSV header or the
    first JSONL object has one."""
    kind = input_kind(path)
    if kind == "lines":
        if id_column:
            raise EdgefnError(f"--id-column needs a .csv, .tsv or .jsonl --input; {NO_COLUMNS}")
        return None
    if id_column is not None:
        return id_column or None
    with open(path, "rb") as f:
        lines = raw_lines(f, str(path), encoding)
        if kind == "jsonl":
            first = next((r for r in jsonl_records(lines, str(path)) if r.fields is not None), None)
            found = list(first.fields) if first is not None else []
        else:
            found = CsvReader(lines, str(path), "," if kind == "csv" else "\t").header
    return DEFAULT_ID if DEFAULT_ID in found else None


def _refuse_empty(rows: Iterator[Row], source: str) -> Iterator[Row]:
    """The rows, refused before any work when there are none."""
    first = next(rows, None)
    if first is None:
        raise EdgefnError(f"no texts: {source} has no rows")
    return chain([first], rows)


@dataclass
class PredictInput:
    """The rows `edgefn predict` reads, streamed, and the id column each output row copies (None: none)."""

    rows: Iterator[Row]
    id_name: str | None = None


def open_input(
    texts: Sequence[str],
    input_path: str | None,
    column: str = "text",
    encoding: str = "utf-8",
    stdin: BinaryIO | None = None,
    id_column: str | None = None,
) -> PredictInput:
    """The input rows of `edgefn predict`, read as they are consumed.

    Args:
        texts: texts given as arguments (used when no input file is given).
        input_path: a .txt (one text per line), .csv / .tsv / .jsonl (`column`) file, or "-" for stdin.
        column: the text column of a CSV/TSV/JSONL input.
        encoding: how the input file or stdin is decoded.
        stdin: the binary stream to read when no texts and no file are given.
        id_column: the column of a CSV/TSV/JSONL file copied to each output row (None: `id` where the file
            has one; "": none).

    Returns:
        The rows in input order and the id column. A regular file is read through once here, so that a
        malformed row, an undecodable byte or an empty file is refused before the caller starts work.
    """
    if list(texts) == ["-"] and input_path is None:  # `edgefn predict --model M -` reads stdin
        texts, input_path = (), "-"
    if input_path is not None and texts:
        raise EdgefnError("give texts as arguments or --input FILE, not both")
    if id_column and (input_path is None or input_path == "-"):
        raise EdgefnError(f"--id-column needs a .csv, .tsv or .jsonl --input; {NO_COLUMNS}")
    if texts:
        return PredictInput(iter([Row(text) for text in _argument_texts(texts)]))
    if input_path is None or input_path == "-":
        lines = raw_lines(_stdin(stdin, named=input_path == "-"), "stdin", encoding)
        return PredictInput(_refuse_empty((Row(strip_newline(line)) for line in lines), "standard input"))
    path = check_input_file(
        Path(input_path),
        "predict reads .txt (one text per line), .csv, .tsv or .jsonl files",
        hint=" (use --input - for standard input)",
    )
    id_name = file_id_name(path, id_column, encoding)
    if sum(1 for _ in file_rows(path, column, encoding, id_name)) == 0:
        raise EdgefnError(f"no texts: {path} has no rows")
    return PredictInput(file_rows(path, column, encoding, id_name), id_name)


def iter_texts(
    texts: Sequence[str],
    input_path: str | None,
    column: str = "text",
    encoding: str = "utf-8",
    stdin: BinaryIO | None = None,
) -> Iterator[str]:
    """The texts of `open_input`'s rows, in input order, read as they are consumed."""
    return (row.text for row in open_input(texts, input_path, column, encoding, stdin, id_column="").rows)


def read_texts(
    texts: Sequence[str],
    input_path: str | None,
    column: str = "text",
    encoding: str = "utf-8",
    stdin: BinaryIO | None = None,
) -> list[str]:
    """All texts of `iter_texts` as a list (for small inputs and tests)."""
    return list(iter_texts(texts, input_path, column, encoding, stdin))


def windows(
    rows: Iterable[Row], size: int = WINDOW_TEXTS, max_chars: int = WINDOW_CHARS
) -> Iterator[list[Row]]:
    """Consecutive rows in lists of `size`, a list ending early once its texts hold `max_chars` characters."""
    window: list[Row] = []
    chars = 0
    for row in rows:
        window.append(row)
        chars += len(row.text)
        if len(window) >= size or chars >= max_chars:
            yield window
            window, chars = [], 0
    if window:
        yield window


def predict_stream(
    classify: Callable[[list[str]], Sequence[Any]],
    rows: Iterable[Row],
    out: IO[str],
    fmt: str = "jsonl",
    window: int = WINDOW_TEXTS,
    fields: RowFormat | None = None,
) -> PredictSummary:
    """Classify `rows` a window at a time and write each window's output rows to `out` as it is done, so memory
    stays flat whatever the input's length.

    Args:
        classify: texts -> one prediction each, in order (`Classifier.predict`).
        rows: the input rows, e.g. `open_input(...).rows`.
        out: a text stream, e.g. from `edgefn.core.outputs.open_output`.
        fmt: `jsonl` or `csv`.
        window: texts per `classify` call.
        fields: the id column, echo and decimals of each output row (default: no id, no text, 4 decimals).
    """
    fields = fields or RowFormat()
    summary = PredictSummary()
    for part in windows(rows, window):
        predictions = classify([row.text for row in part])
        for start in range(0, len(part), WRITE_ROWS):
            chunk = part[start : start + WRITE_ROWS]
            done = prediction_rows(predictions[start : start + WRITE_ROWS], chunk, summary.rows, fields)
            out.write(format_rows(done, fmt, header=summary.rows == 0, fields=fields))
            summary.add(done)
        out.flush()
    return summary
