"""What scoring on Ray reads and writes: the files an `--input` names, checked on the driver before Ray starts;
their rows, read in Ray tasks by predict's own readers; the output file, written by the driver (pyarrow, no pandas).

A text input (.txt, .csv, .tsv, .jsonl) gives exactly the rows `edgefn predict` reads from it (blank rows, ids
and refusals included): each file is parsed by `predict_io.file_rows` in one Ray task. Parquet is read by Ray
Data's own reader, the text column as it is (null as the empty text), the id column with its type.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from edgefn.core.errors import EdgefnError
from edgefn.core.textfiles import missing_column
from edgefn.runtime.predict_io import DEFAULT_ID, check_input_file, file_id_name, file_rows, input_kind
from edgefn.runtime.predict_rows import FORMATS, PREDICTION_FIELDS, RowFormat, format_rows

PARQUET_SUFFIXES = (".parquet", ".pq")
GLOB_CHARS = "*?["
PATH_COLUMN = "path"  # the dataset of text files: one row per file
TEXT_COLUMN, KEY_COLUMN = "text", "key"  # the rows read from a text file: the text, and its id as JSON
PARQUET_ROWS = 65_536  # output rows per Parquet row group


@dataclass(frozen=True)
class ScoreInput:
    """The files scored, in the order their rows are numbered; their kind (`parquet`, `csv`, `tsv`, `jsonl` or
    `lines`); the text column; the id column each output row copies (None: none) and, for Parquet, its type."""

    files: tuple[Path, ...]
    kind: str
    column: str
    id_name: str | None = None
    id_type: Any = None


def find_input_files(pattern: str) -> list[Path]:
    """The files an `--input` names, in the order they are scored: one file, the files of a folder (hidden ones
    left out), or the matches of a glob (`**` spans folders), sorted by path."""
    if any(c in pattern for c in GLOB_CHARS) and not os.path.lexists(pattern):
        found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if not os.path.isdir(p))
        if not found:
            raise EdgefnError(f"--input {pattern} matches no files")
        return found
    path = Path(pattern)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if not p.name.startswith(".") and not p.is_dir())
        if not found:
            raise EdgefnError(f"--input {path} is a folder with no files in it")
        return found
    return [path]


def _file_kind(path: Path) -> str:
    """How a file is read (`parquet`, or predict's kinds); refused as local predict refuses its --input."""
    reads = "scoring on Ray reads .parquet, .csv, .tsv, .jsonl or text files (one text per line)"
    check_input_file(path, reads, also_read=PARQUET_SUFFIXES)
    return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else input_kind(path)


def open_score_input(
    pattern: str, column: str = "text", id_column: str | None = None, encoding: str = "utf-8"
) -> ScoreInput:
    """The files of `pattern`, checked before any work: each one readable, all of one kind, each holding the
    text column (and the id column); refused when none holds a row.

    Args:
        pattern: a file, a folder or a glob of .parquet, .csv / .tsv / .jsonl or text files.
        column: the text column of a table.
        id_column: the column copied to each output row (None: `id` where the first file has one; "": none).
        encoding: how text files are decoded.
    """
    files = find_input_files(pattern)
    kinds = sorted({_file_kind(path) for path in files})
    if len(kinds) > 1:
        raise EdgefnError(
            f"--input {pattern} holds files of kinds {', '.join(kinds)}; score one kind at a time"
        )
    if kinds == ["parquet"]:
        return _parquet_input(files, column, id_column)
    id_name = file_id_name(files[0], id_column, encoding)
    if not sum(_has_rows(path, column, encoding, id_name) for path in files):
        raise EdgefnError(f"no texts: --input {pattern} has no rows")
    return ScoreInput(tuple(files), kinds[0], column, id_name)


def _has_rows(path: Path, column: str, encoding: str, id_name: str | None) -> bool:
    """Whether a text file has a row; its header or first row is parsed as predict parses it (a missing column
    is refused here, on the driver)."""
    rows = file_rows(path, column, encoding, id_name)
    try:
        return next(rows, None) is not None
    finally:
        rows.close()


def _parquet_input(files: list[Path], column: str, id_column: str | None) -> ScoreInput:
    """Parquet files whose schemas hold a text column of strings and an id column of plain values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas, rows = [], 0
    for path in files:
        try:
            meta = pq.read_metadata(path)
        except (pa.ArrowException, OSError) as e:
            raise EdgefnError(f"cannot read {path} as Parquet: {str(e).splitlines()[0]}") from None
        schemas.append(meta.schema.to_arrow_schema())
        rows += meta.num_rows
    if id_column is not None:
        id_name = id_column or None
    else:
        id_name = DEFAULT_ID if DEFAULT_ID in schemas[0].names else None
    for path, schema in zip(files, schemas, strict=True):
        if column not in schema.names:
            raise missing_column(str(path), column, schema.names)
        kind = schema.field(column).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
            raise EdgefnError(f"{path}: column {column!r} holds {kind}, not text")
        if id_name is not None:
            _check_parquet_id(path, schema, id_name)
    if rows == 0:
        raise EdgefnError(f"no texts: the Parquet files ({files[0]} ...) have no rows")
    return ScoreInput(
        tuple(files), "parquet", column, id_name, schemas[0].field(id_name).type if id_name else None
    )


def _check_parquet_id(path: Path, schema: Any, name: str) -> None:
    import pyarrow as pa

    if name not in schema.names:
        raise EdgefnError(
            f"{path} has no column {name!r} for --id-column; columns found: {', '.join(schema.names)}"
        )
    kind = schema.field(name).type
    plain = (pa.types.is_integer, pa.types.is_string, pa.types.is_large_string, pa.types.is_boolean)
    if not any(test(kind) for test in plain):
        raise EdgefnError(
            f"{path}: id column {name!r} holds {kind}; ids must be integers, strings or booleans"
        )


def read_file_rows(batch: Any, column: str, encoding: str, id_name: str | None, window: int) -> Iterator[Any]:
    """A Ray task: the rows of each file named in `batch` (column `path`), as `edgefn predict` reads them, in
    Arrow tables of at most `window` rows (the text, and the id as JSON so that any JSON value keeps its type)."""
    import pyarrow as pa

    def table(texts: list[str], keys: list[str]) -> Any:
        return pa.table({TEXT_COLUMN: pa.array(texts, pa.string()), KEY_COLUMN: pa.array(keys, pa.string())})

    for path in batch.column(PATH_COLUMN).to_pylist():
        texts: list[str] = []
        keys: list[str] = []
        for row in file_rows(Path(path), column, encoding, id_name):
            texts.append(row.text)
            keys.append(json.dumps(row.key))
            if len(texts) >= window:
                yield table(texts, keys)
                texts, keys = [], []
        if texts:
            yield table(texts, keys)


def _parquet_schema(fields: RowFormat, id_type: Any) -> Any:
    """The columns of a Parquet output: the index, the id (its input type, else text), the text with echo, then
    `PREDICTION_FIELDS` as local predict's rows hold them."""
    import pyarrow as pa

    types = {
        "label": pa.string(),
        "label_id": pa.int64(),
        "prob_fake": pa.float64(),
        "logits": pa.list_(pa.float64()),
        "truncated": pa.bool_(),
        "ood_score": pa.float64(),
        "ood": pa.bool_(),
        "empty": pa.bool_(),
    }
    head = [("index", pa.int64())]
    if fields.id_name:
        head.append((fields.id_name, id_type or pa.string()))
    if fields.echo:
        head.append(("text", pa.string()))
    return pa.schema([*head, *((name, types[name]) for name in PREDICTION_FIELDS)])


def _text_key(value: Any) -> str | None:
    """An id of a text input as a Parquet string: a string as it is, null as null, another JSON value as JSON."""
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class RowWriter:
    """Output rows into one stream: JSONL or CSV exactly as `edgefn predict` formats them, or Parquet (the same
    fields, `logits` a list column, row groups of `PARQUET_ROWS`)."""

    def __init__(self, out: IO[Any], fmt: str, fields: RowFormat, id_type: Any = None) -> None:
        self.out, self.fmt, self.fields, self.id_type = out, fmt, fields, id_type
        self.written = 0
        self.pending: list[dict[str, Any]] = []
        self.parquet: Any = None
        if fmt not in FORMATS:
            import pyarrow.parquet as pq

            self.parquet = pq.ParquetWriter(out, _parquet_schema(fields, id_type))

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write `rows` (numbered by the caller), the CSV header before the first ones."""
        if self.parquet is None:
            self.out.write(format_rows(rows, self.fmt, header=self.written == 0, fields=self.fields))
        else:
            self.pending += rows
            if len(self.pending) >= PARQUET_ROWS:
                self._flush()
        self.written += len(rows)

    def _flush(self) -> None:
        import pyarrow as pa

        if self.fields.id_name and self.id_type is None:  # a text input's ids: JSON values as text
            for row in self.pending:
                row[self.fields.id_name] = _text_key(row[self.fields.id_name])
        self.parquet.write_table(pa.Table.from_pylist(self.pending, schema=self.parquet.schema))
        self.pending = []

    def close(self) -> None:
        """Write what is pending and the Parquet footer (the stream itself stays open)."""
        if self.parquet is not None:
            if self.pending:
                self._flush()
            self.parquet.close()
        self.out.flush()
