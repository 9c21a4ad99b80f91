"""Training-data tables read strictly: CSV / TSV / JSONL checked row by row (`textfiles`), then as DataFrames.

pandas alone would mis-read a stray quote (it swallows the rows after it), take a duplicated column name
as `name.1`, skip blank lines without a word, read the text "NA" as missing, and turn a JSON array into
its repr. Here each of these is refused with the line, and blank rows are counted in `df.attrs["blank_rows"]`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefn.core.errors import EdgefnError
from edgefn.core.textfiles import SURROGATE, CsvReader, jsonl_records, raw_lines, repeated, strip_newline

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
    """Why a JSON or Parquet value cannot be a text (None when it can: a string, or null)."""
    if value is None or (isinstance(value, str) and not SURROGATE.search(value)):
        return None
    if isinstance(value, str):
        return "a string with an unpaired surrogate escape (\\ud800-\\udfff)"
    return _json_type(value)


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if hasattr(value, "dtype") and hasattr(value, "__len__"):  # a Parquet list (a numpy array)
        return "an array"
    if hasattr(value, "dtype"):  # a numpy scalar
        return "a boolean" if value.dtype.kind == "b" else "a number"
    return names.get(type(value), type(value).__name__)


def read_jsonl(path: Path) -> pd.DataFrame:
    """A JSONL file, one object per line, read strictly (`textfiles.jsonl_records`); blank lines are dropped
    and counted in `attrs["blank_rows"]`, and the first value per key that cannot be a text is recorded in
    `attrs["not_text"]` as (where, what it is) for `require_texts`."""
    import pandas as pd

    records: list[dict[str, Any]] = []
    lines: list[int] = []
    blank = 0
    with open(path, "rb") as f:
        for record in jsonl_records(raw_lines(f, str(path)), str(path)):
            if record.fields is None:
                blank += 1
                continue
            records.append(record.fields)
            lines.append(record.line)
    df = pd.DataFrame.from_records(records)
    df.attrs.update(blank_rows=blank, not_text=_not_text(records, [f"line {n}" for n in lines]))
    return df


def _not_text(records: list[dict[str, Any]], where: list[str]) -> dict[str, tuple[str, str]]:
    """Per key, where its first value that cannot be a text is, and what it is."""
    found: dict[str, tuple[str, str]] = {}
    for record, place in zip(records, where, strict=True):
        for key, value in record.items():
            problem = None if key in found else _text_problem(value)
            if problem:
                found[key] = (place, problem)
    return found


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    dup = repeated([k for k, _ in pairs])
    if dup:
        raise EdgefnError(f"key(s) {', '.join(map(repr, dup))} appear more than once in one object")
    return dict(pairs)


def read_json_records(path: Path) -> pd.DataFrame:
    """A .json file holding an array of objects (one per row), read strictly: a key given twice in an
    object, an item that is no object and nesting too deep are refused naming the item, and values that
    cannot be texts are recorded in `attrs["not_text"]` for `require_texts`."""
    import json

    import pandas as pd

    try:
        with open(path, "rb") as f:
            data = json.load(f, object_pairs_hook=_unique_keys)
    except EdgefnError as e:
        raise EdgefnError(f"{path}: {e}") from None
    except json.JSONDecodeError as e:
        raise EdgefnError(f"{path} line {e.lineno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise EdgefnError(f"{path}: JSON nested too deep to read") from None
    except UnicodeDecodeError as e:
        raise EdgefnError(f"{path}: not valid UTF-8 JSON ({e.reason})") from None
    if not isinstance(data, list):
        raise EdgefnError(f"{path}: expected a JSON array of objects (one per row), got {_json_type(data)}")
    for n, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise EdgefnError(f"{path} item {n}: expected a JSON object, got {_json_type(item)}")
    df = pd.DataFrame.from_records(data)
    df.attrs["not_text"] = _not_text(data, [f"item {n}" for n in range(1, len(data) + 1)])
    return df


def read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file; values that cannot be texts (numbers, lists, bytes ...) are recorded per column in
    `attrs["not_text"]` for `require_texts`."""
    import pandas as pd

    df = pd.read_parquet(path)
    found: dict[str, tuple[str, str]] = {}
    for col in df.columns:
        for n, value in enumerate(df[col], start=1):
            problem = None if _missing(value) else _text_problem(value)
            if problem:
                found[str(col)] = (f"row {n}", problem)
                break
    df.attrs["not_text"] = found
    return df


def _missing(value: Any) -> bool:
    """A Parquet null: None, or the NaN / NaT pandas puts in its place."""
    return value is None or (isinstance(value, float) and value != value) or str(value) in ("NaT", "<NA>")


def require_texts(df: pd.DataFrame, cols: list[str] | tuple[str, ...], path: Path) -> None:
    """Refuse a JSONL text column holding a value that is no string (an array, a number, true ...)."""
    for col in cols:
        bad = df.attrs.get("not_text", {}).get(col)
        if bad:
            where, what = bad
            raise EdgefnError(
                f"{path} {where}: {col!r} is {what}, not a string; texts must be strings (or null)"
            )


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV / TSV / JSONL / JSON / Parquet file into a DataFrame, with a one-line error if it fails."""
    import pandas as pd

    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        ".csv": read_csv,
        ".tsv": lambda p: read_csv(p, sep="\t"),
        ".tab": lambda p: read_csv(p, sep="\t"),
        ".jsonl": read_jsonl,
        ".json": read_json_records,
        ".parquet": read_parquet,
        ".pq": read_parquet,
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
