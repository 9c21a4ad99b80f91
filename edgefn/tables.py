"""Training-data tables read strictly: CSV / TSV / JSONL checked row by row (`textfiles`), then as DataFrames.

pandas alone would mis-read a stray quote (it swallows the rows after it), take a duplicated column name
as `name.1`, skip blank lines without a word, read the text "NA" as missing, and turn a JSON array into
its repr. Here each of these is refused with the line, and blank rows are counted in `df.attrs["blank_rows"]`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefn.errors import EdgefnError
from edgefn.textfiles import SURROGATE, CsvReader, jsonl_records, raw_lines, strip_newline

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".json", ".parquet", ".pq")
# Only an empty field is missing: "NA", "None", "null" or "nan" in a text column are texts.
NA_ARGS: dict[str, Any] = {"keep_default_na": False, "na_values": [""]}


def _whitespace_row(fields: list[str] | None) -> bool:
    """A row pandas skips as a blank line: no fields, or one field of spaces only."""
    return fields is None or (len(fields) == 1 and not fields[0].strip())


def check_csv(path: Path, sep: str = ",") -> tuple[int, int]:
    """Read a CSV / TSV file with the strict `textfiles.CsvReader` (its rules refuse a stray quote, a
    duplicated column name and a row of the wrong width, naming the line); return (rows, blank rows)."""
    with open(path, "rb") as f:
        reader = CsvReader(raw_lines(f, str(path)), str(path), sep)
        rows = blank = 0
        for record in reader:
            rows += 1
            blank += _whitespace_row(record.fields)
    return rows, blank


def read_csv(path: Path, sep: str = ",", **kwargs: Any) -> pd.DataFrame:
    """A CSV / TSV file checked by `check_csv`, then read by pandas (only empty fields missing); blank rows are
    dropped and counted in `attrs["blank_rows"]`."""
    import pandas as pd

    if not path.is_file():
        raise EdgefnError(f"missing data file {path}")
    rows, blank = check_csv(path, sep)
    try:
        df = pd.read_csv(path, sep=sep, **{**NA_ARGS, **kwargs})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise EdgefnError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    if "nrows" not in kwargs and len(df) != rows - blank:
        raise EdgefnError(
            f"{path}: pandas reads {len(df)} rows where the strict CSV reader reads {rows - blank}; "
            "check the file's quoting"
        )
    df.attrs["blank_rows"] = blank
    return df


def _text_problem(value: Any) -> str | None:
    """Why a JSON value cannot be a text (None when it can: a string, or null)."""
    if value is None or (isinstance(value, str) and not SURROGATE.search(value)):
        return None
    if isinstance(value, str):
        return "a string with an unpaired surrogate escape (\\ud800-\\udfff)"
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def read_jsonl(path: Path) -> pd.DataFrame:
    """A JSONL file, one object per line, read strictly (`textfiles.jsonl_records`); blank lines are dropped
    and counted in `attrs["blank_rows"]`, and the first value per key that cannot be a text is recorded in
    `attrs["not_text"]` as (line, what it is) for `require_texts`."""
    import pandas as pd

    records: list[dict[str, Any]] = []
    not_text: dict[str, tuple[int, str]] = {}
    blank = 0
    with open(path, "rb") as f:
        for record in jsonl_records(raw_lines(f, str(path)), str(path)):
            if record.fields is None:
                blank += 1
                continue
            records.append(record.fields)
            for key, value in record.fields.items():
                problem = None if key in not_text else _text_problem(value)
                if problem:
                    not_text[key] = (record.line, problem)
    df = pd.DataFrame.from_records(records)
    df.attrs.update(blank_rows=blank, not_text=not_text)
    return df


def require_texts(df: pd.DataFrame, cols: list[str] | tuple[str, ...], path: Path) -> None:
    """Refuse a JSONL text column holding a value that is no string (an array, a number, true ...)."""
    for col in cols:
        bad = df.attrs.get("not_text", {}).get(col)
        if bad:
            line, what = bad
            raise EdgefnError(
                f"{path} line {line}: {col!r} is {what}, not a string; texts must be JSON strings (or null)"
            )


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV / TSV / JSONL / JSON / Parquet file into a DataFrame, with a one-line error if it fails."""
    import pandas as pd

    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        ".csv": read_csv,
        ".tsv": lambda p: read_csv(p, sep="\t"),
        ".tab": lambda p: read_csv(p, sep="\t"),
        ".jsonl": read_jsonl,
        ".json": lambda p: pd.read_json(p, dtype=False),
        ".parquet": pd.read_parquet,
        ".pq": pd.read_parquet,
    }
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise EdgefnError(f"cannot read {path}: use a .csv, .tsv, .jsonl, .json or .parquet file")
    try:
        return reader(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise EdgefnError(
            f"cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None


def read_lines(path: Path) -> list[str]:
    """The lines of a .txt file (one text each), split at "\\n" only; undecodable bytes name their line."""
    with open(path, "rb") as f:
        return [strip_newline(line) for line in raw_lines(f, str(path))]


def read_document(path: Path) -> str:
    """A whole .txt file as one text; undecodable bytes name their line."""
    with open(path, "rb") as f:
        return "".join(raw_lines(f, str(path)))


def blank_rows(*frames: pd.DataFrame) -> int:
    """The blank rows the readers dropped from these frames."""
    return sum(int(df.attrs.get("blank_rows", 0)) for df in frames)


def dropped_blank(n: int) -> dict[str, int]:
    """A `dropped` entry for `n` blank rows (none when there are none)."""
    return {"blank_rows": n} if n else {}
