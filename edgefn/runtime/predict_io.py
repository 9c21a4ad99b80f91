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
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, Any, BinaryIO

from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.core.textfiles import (
    SURROGATE,
    CsvReader,
    jsonl_records,
    missing_column,
    raw_lines,
    strip_newline,
    text_value,
)

FORMATS = ("jsonl", "csv")
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Files whose lines are not texts: read as lines they would give one wrong answer per line (or one in all).
UNREAD_SUFFIXES = (".json", ".parquet", ".pq", ".xlsx", ".xls", ".gz", ".zip", ".bz2", ".xz", ".zst", ".pdf")
# Texts classified per call (a window ends early at 16 M characters). Batches are sorted by token length
# within a window: on 100,000 CONSTRAINT tweets in batches of 32, windows of 1,024 texts feed 3.9% padding
# tokens, windows of 8,192 0.5% (one sort over all: 0.04%), for some 6 MB of compact tokens.
WINDOW_TEXTS = 8192
WINDOW_CHARS = 1 << 24
WRITE_ROWS = 1024  # rows formatted and written at a time


def _csv_texts(lines: Iterable[str], source: str, column: str, delimiter: str) -> Iterator[str]:
    reader = CsvReader(lines, source, delimiter)
    index = reader.column(column)
    for record in reader:
        yield "" if record.fields is None else record.fields[index]


def _jsonl_texts(lines: Iterable[str], source: str, column: str) -> Iterator[str]:
    for record in jsonl_records(lines, source):
        if record.fields is None:
            yield ""
            continue
        if column not in record.fields:
            raise missing_column(f"{source} line {record.line}", column, list(record.fields))
        yield text_value(record.fields[column], f"{source} line {record.line}", column)


def parse_texts(lines: Iterable[str], source: str, kind: str, column: str = "text") -> Iterator[str]:
    """Texts, one per row, from decoded lines (each ending with "\\n") of a kind: `lines`, `csv`, `tsv` or
    `jsonl`."""
    if kind in ("csv", "tsv"):
        return _csv_texts(lines, source, column, "," if kind == "csv" else "\t")
    if kind == "jsonl":
        return _jsonl_texts(lines, source, column)
    return (strip_newline(line) for line in lines)


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


def _input_file(input_path: str) -> Path:
    path = Path(input_path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise EdgefnError(f"input file not found: {path}") from None
    if not stat.S_ISREG(mode):
        raise EdgefnError(f"--input {path} is not a regular file (use --input - for standard input)")
    if path.suffix.lower() in UNREAD_SUFFIXES:
        raise EdgefnError(
            f"--input {path}: predict reads .txt (one text per line), .csv, .tsv or .jsonl files, "
            f"not {path.suffix}; convert it to one of those"
        )
    return path


def _file_texts(path: Path, column: str, encoding: str) -> Iterator[str]:
    kind = TABLE_SUFFIXES.get(path.suffix.lower(), "lines")
    with open(path, "rb") as f:
        yield from parse_texts(raw_lines(f, str(path), encoding), str(path), kind, column)


def _refuse_empty(texts: Iterator[str], source: str) -> Iterator[str]:
    """The texts, refused before any work when there are none."""
    first = next(texts, None)
    if first is None:
        raise EdgefnError(f"no texts: {source} has no rows")
    return chain([first], texts)


def iter_texts(
    texts: Sequence[str],
    input_path: str | None,
    column: str = "text",
    encoding: str = "utf-8",
    stdin: BinaryIO | None = None,
) -> Iterator[str]:
    """The texts of `edgefn predict`, one per input row, read as they are consumed.

    Args:
        texts: texts given as arguments (used when no input file is given).
        input_path: a .txt (one text per line), .csv / .tsv / .jsonl (`column`) file, or "-" for stdin.
        column: the text column of a CSV/TSV/JSONL input.
        encoding: how the input file or stdin is decoded.
        stdin: the binary stream to read when no texts and no file are given.

    Returns:
        An iterator over the texts in input order. A regular file is read through once here, so that a
        malformed row, an undecodable byte or an empty file is refused before the caller starts work.
    """
    if list(texts) == ["-"] and input_path is None:  # `edgefn predict --model M -` reads stdin
        texts, input_path = (), "-"
    if input_path is not None and texts:
        raise EdgefnError("give texts as arguments or --input FILE, not both")
    if texts:
        return iter(_argument_texts(texts))
    if input_path is None or input_path == "-":
        lines = raw_lines(_stdin(stdin, named=input_path == "-"), "stdin", encoding)
        return _refuse_empty((strip_newline(line) for line in lines), "standard input")
    path = _input_file(input_path)
    if sum(1 for _ in _file_texts(path, column, encoding)) == 0:
        raise EdgefnError(f"no texts: {path} has no rows")
    return _file_texts(path, column, encoding)


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
    texts: Iterable[str], size: int = WINDOW_TEXTS, max_chars: int = WINDOW_CHARS
) -> Iterator[list[str]]:
    """Consecutive texts in lists of `size`, a list ending early once it holds `max_chars` characters."""
    window: list[str] = []
    chars = 0
    for text in texts:
        window.append(text)
        chars += len(text)
        if len(window) >= size or chars >= max_chars:
            yield window
            window, chars = [], 0
    if window:
        yield window


# --- output -----------------------------------------------------------------------------------------------


def _csv_header(n_logits: int) -> list[str]:
    names = ["real", "fake"] if n_logits == 2 else [str(k) for k in range(n_logits)]
    logits = [f"logit_{n}" for n in names]
    return ["index", "label", "label_id", "prob_fake", *logits, "truncated", "ood_score", "ood", "empty"]


def _csv_row(r: dict[str, Any]) -> list[Any]:
    ood = r.get("ood")
    return [
        r["index"],
        r["label"],
        r["label_id"],
        repr(r["prob_fake"]),
        *[repr(v) for v in r["logits"]],
        str(r["truncated"]).lower(),
        "" if r.get("ood_score") is None else repr(r["ood_score"]),
        "" if ood is None else str(ood).lower(),  # empty: no threshold calibrated (run `edgefn eval`)
        str(r["empty"]).lower(),
    ]


def prediction_rows(predictions: Sequence[Any], texts: Sequence[str], start: int = 0) -> list[dict[str, Any]]:
    """One dict per prediction: its index in the whole input, the prediction, and whether its text is empty."""
    return [
        {"index": start + i, **p.to_dict(), "empty": not text.strip()}
        for i, (p, text) in enumerate(zip(predictions, texts, strict=True))
    ]


def format_rows(rows: Sequence[dict[str, Any]], fmt: str, header: bool = True) -> str:
    """Rows as JSONL (one object per text) or CSV (index, label, label_id, prob_fake, logit_<label>...,
    truncated, ood_score, ood, empty), the CSV header first when `header`."""
    if fmt not in FORMATS:
        raise ConfigError("fmt", f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(_csv_header(max((len(r["logits"]) for r in rows), default=2)))
    writer.writerows(_csv_row(r) for r in rows)
    return buf.getvalue()


@dataclass
class PredictSummary:
    """What a streamed prediction wrote: rows, and how many were fake, truncated and empty."""

    rows: int = 0
    fake: int = 0
    truncated: int = 0
    empty: int = 0

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows += len(rows)
        self.fake += sum(r["label"] == "fake" for r in rows)
        self.truncated += sum(bool(r["truncated"]) for r in rows)
        self.empty += sum(bool(r["empty"]) for r in rows)


def predict_stream(
    classify: Callable[[list[str]], Sequence[Any]],
    texts: Iterable[str],
    out: IO[str],
    fmt: str = "jsonl",
    window: int = WINDOW_TEXTS,
) -> PredictSummary:
    """Classify `texts` a window at a time and write each window's rows to `out` as it is done, so memory stays
    flat whatever the input's length.

    Args:
        classify: texts -> one prediction each, in order (`Classifier.predict`).
        texts: the input texts, e.g. from `iter_texts`.
        out: a text stream, e.g. from `edgefn.core.outputs.open_output`.
        fmt: `jsonl` or `csv`.
        window: texts per `classify` call.
    """
    summary = PredictSummary()
    for part in windows(texts, window):
        predictions = classify(part)
        for start in range(0, len(part), WRITE_ROWS):
            chunk = part[start : start + WRITE_ROWS]
            rows = prediction_rows(predictions[start : start + WRITE_ROWS], chunk, summary.rows)
            out.write(format_rows(rows, fmt, header=summary.rows == 0))
            summary.add(rows)
        out.flush()
    return summary
