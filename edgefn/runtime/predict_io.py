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

import csv
import io
import json
import os
import shlex
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

from edgefn import runs
from edgefn.core.errors import ConfigError, EdgefnError
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


DEFAULT_ID = "id"  # the column kept without --id-column, where the input has one
DECIMALS = 4  # probabilities, logits and OOD scores are written rounded to this many decimals
NO_COLUMNS = "TEXTS, .txt files and standard input have no columns"


class Row(NamedTuple):
    """One input row: its text, and the value of its id column (None without one, or in a blank row)."""

    text: str
    key: Any = None


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


def parse_texts(lines: Iterable[str], source: str, kind: str, column: str = "text") -> Iterator[str]:
    """Texts, one per row, from decoded lines of a kind (see `parse_rows`)."""
    return (row.text for row in parse_rows(lines, source, kind, column))


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


def _kind(path: Path) -> str:
    return TABLE_SUFFIXES.get(path.suffix.lower(), "lines")


def _file_rows(path: Path, column: str, encoding: str, id_name: str | None) -> Iterator[Row]:
    with open(path, "rb") as f:
        yield from parse_rows(raw_lines(f, str(path), encoding), str(path), _kind(path), column, id_name)


def _file_id_name(path: Path, id_column: str | None, encoding: str) -> str | None:
    """The id column of a table file: `id_column` as given ("": none), else `id` where the CSV header or the
    first JSONL object has one."""
    kind = _kind(path)
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
    path = _input_file(input_path)
    id_name = _file_id_name(path, id_column, encoding)
    if sum(1 for _ in _file_rows(path, column, encoding, id_name)) == 0:
        raise EdgefnError(f"no texts: {path} has no rows")
    return PredictInput(_file_rows(path, column, encoding, id_name), id_name)


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


# --- output -----------------------------------------------------------------------------------------------

PREDICTION_FIELDS = ("label", "label_id", "prob_fake", "logits", "truncated", "ood_score", "ood", "empty")


@dataclass(frozen=True)
class RowFormat:
    """What an output row holds besides its index and prediction: the input's id column (under its own name),
    the input text (`text`, with `echo`), and the decimals its floats are rounded to (None: as computed)."""

    id_name: str | None = None
    echo: bool = False
    decimals: int | None = DECIMALS

    def __post_init__(self) -> None:
        taken = {"index", *PREDICTION_FIELDS, *(["text"] if self.echo else [])}
        if self.id_name in taken or (self.id_name or "").startswith("logit_"):
            raise EdgefnError(
                f"--id-column {self.id_name!r} is also the name of an output field; "
                "rename that column in the input, or pass --id-column '' to keep no id"
            )
        if self.decimals is not None and self.decimals < 0:
            raise EdgefnError(f"--precision must be 0 or more decimals, or full; got {self.decimals}")

    def round(self, value: float | None) -> float | None:
        """`value` to `decimals` places (-0.0 written as 0.0)."""
        if value is None or self.decimals is None:
            return value
        return round(value, self.decimals) + 0.0


def _csv_header(n_logits: int, fields: RowFormat) -> list[str]:
    names = ["real", "fake"] if n_logits == 2 else [str(k) for k in range(n_logits)]
    logits = [f"logit_{n}" for n in names]
    head = ["index", *([fields.id_name] if fields.id_name else []), *(["text"] if fields.echo else [])]
    return [*head, "label", "label_id", "prob_fake", *logits, "truncated", "ood_score", "ood", "empty"]


def _csv_value(value: Any) -> str:
    """A cell for any JSON value: a string as it is, null empty, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _csv_row(r: dict[str, Any], fields: RowFormat) -> list[Any]:
    ood = r.get("ood")
    head = [r["index"], *([_csv_value(r[fields.id_name])] if fields.id_name else [])]
    return [
        *head,
        *([r["text"]] if fields.echo else []),
        r["label"],
        r["label_id"],
        repr(r["prob_fake"]),
        *[repr(v) for v in r["logits"]],
        str(r["truncated"]).lower(),
        "" if r.get("ood_score") is None else repr(r["ood_score"]),
        "" if ood is None else str(ood).lower(),  # empty: no threshold calibrated (run `edgefn eval`)
        str(r["empty"]).lower(),
    ]


def prediction_rows(
    predictions: Sequence[Any], rows: Sequence[Row], start: int = 0, fields: RowFormat = RowFormat()
) -> list[dict[str, Any]]:
    """One dict per prediction: its index in the whole input, its row's id and text where `fields` asks, the
    prediction (floats rounded) and whether its text is empty."""
    out = []
    for i, (p, row) in enumerate(zip(predictions, rows, strict=True)):
        r: dict[str, Any] = {"index": start + i}
        if fields.id_name:
            r[fields.id_name] = row.key
        if fields.echo:
            r["text"] = row.text
        r.update(p.to_dict())
        r["prob_fake"] = fields.round(r["prob_fake"])
        r["logits"] = [fields.round(v) for v in r["logits"]]
        r["ood_score"] = fields.round(r["ood_score"])
        r["empty"] = not row.text.strip()
        out.append(r)
    return out


def format_rows(
    rows: Sequence[dict[str, Any]], fmt: str, header: bool = True, fields: RowFormat = RowFormat()
) -> str:
    """Rows as JSONL (one object per text) or CSV (index, the id column, text, label, label_id, prob_fake,
    logit_<label>..., truncated, ood_score, ood, empty), the CSV header first when `header`."""
    if fmt not in FORMATS:
        raise ConfigError("fmt", f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(_csv_header(max((len(r["logits"]) for r in rows), default=2), fields))
    writer.writerows(_csv_row(r, fields) for r in rows)
    return buf.getvalue()


def ood_note(model: Path, shown: str | None = None) -> str | None:
    """The line that says why every row's `ood` is null and what calibrates it, for a variant folder with no OOD
    threshold; None when its run's ood.json has an entry for it (ignored: `read_ood` has said why).

    Args:
        model: the variant folder.
        shown: the folder as the user named it (default: `model`), for the command in the line.
    """
    folder = Path(model)
    run = folder.parent.parent
    if folder.parent.name != runs.ONNX_DIR or not (run / runs.FINETUNE_CONFIG).is_file():
        return (
            '"ood" is null: this variant is not inside a run folder (RUN/onnx/<variant>), where `edgefn eval` '
            "calibrates the out-of-distribution threshold"
        )
    if runs.json_field(run / runs.OOD_FILE, folder.name) is not None:
        return None
    data = runs.json_field(run / runs.FINETUNE_CONFIG, "data")
    words = shlex.quote(shown or str(folder)), shlex.quote(data) if isinstance(data, str) else "DATA"
    return (
        '"ood" is null: no out-of-distribution threshold for this model yet; '
        f"`edgefn eval --model {words[0]} --data {words[1]}` calibrates one ({run.name}/{runs.OOD_FILE})"
    )


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
    rows: Iterable[Row],
    out: IO[str],
    fmt: str = "jsonl",
    window: int = WINDOW_TEXTS,
    fields: RowFormat = RowFormat(),
) -> PredictSummary:
    """Classify `rows` a window at a time and write each window's output rows to `out` as it is done, so memory
    stays flat whatever the input's length.

    Args:
        classify: texts -> one prediction each, in order (`Classifier.predict`).
        rows: the input rows, e.g. `open_input(...).rows`.
        out: a text stream, e.g. from `edgefn.core.outputs.open_output`.
        fmt: `jsonl` or `csv`.
        window: texts per `classify` call.
        fields: the id column, echo and decimals of each output row.
    """
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
