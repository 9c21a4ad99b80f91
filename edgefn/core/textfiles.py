"""Strict, streaming readers of text files (lines, CSV / TSV, JSONL) whose errors name the line (stdlib only).

`edgefn predict` and the training-data loaders read user files through them: a row is never invented,
dropped or merged without a word.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from edgefn.core.errors import EdgefnError

READ_CHUNK = 1 << 20  # bytes per read: memory stays flat however long the input is
# The longest line read: a 10 MB article fits; a file without newlines (/dev/zero, a sparse or binary file)
# is refused at this length instead of being held whole.
MAX_LINE_CHARS = 1 << 25
SURROGATE = re.compile("[\ud800-\udfff]")
CSV_HINT = "a stray quote? a field that holds a quote must be quoted whole, with its quotes doubled"


def _decode_error(
    e: UnicodeDecodeError, state: tuple[bytes, int], newlines: int, source: str, enc: str
) -> str:
    """The one-line message for undecodable bytes: the line is counted in the bytes decoded before them."""
    try:
        before = codecs.getincrementaldecoder(enc)(errors="replace")
        before.setstate((b"", state[1]))
        line = newlines + before.decode(e.object[: e.start]).count("\n") + 1
    except (UnicodeError, TypeError, ValueError):  # a codec without "replace" or state (idna ...)
        line = newlines + e.object[: e.start].count(b"\n") + 1
    return (
        f"{source} line {line}: byte 0x{e.object[e.start]:02x} is not valid {enc}; "
        "pass --encoding (e.g. --encoding latin-1) if the file uses another encoding"
    )


def text_decoder(encoding: str) -> codecs.IncrementalDecoder:
    """An incremental decoder of `encoding`; an unknown codec, or one that does not decode bytes to text
    (base64, rot13, zlib ...), is refused."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise EdgefnError(f"unknown --encoding {encoding!r}") from None
    if not getattr(info, "_is_text_encoding", True):
        raise EdgefnError(f"--encoding {encoding!r} is not a text encoding (try utf-8, latin-1 or utf-16)")
    return info.incrementaldecoder()


def _decoded_chunks(stream: BinaryIO, source: str, encoding: str) -> Iterator[str]:
    """Decoded text in chunks; a byte-order mark at the start is dropped (it belongs to no text)."""
    decoder = text_decoder(encoding)
    read = getattr(stream, "read1", stream.read)  # a pipe hands over what it has, without waiting for more
    newlines, first = 0, True
    while True:
        chunk = read(READ_CHUNK)
        state = decoder.getstate()
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as e:
            raise EdgefnError(_decode_error(e, state, newlines, source, encoding)) from None
        except UnicodeError as e:  # a codec's own complaint (idna, punycode ...)
            raise EdgefnError(f"{source}: not valid {encoding}: {' '.join(str(e).split())}") from None
        if first and text:
            text, first = text.removeprefix("\ufeff"), False
        newlines += text.count("\n")
        if text:
            yield text
        if not chunk:
            return


def raw_lines(stream: BinaryIO, source: str, encoding: str = "utf-8") -> Iterator[str]:
    """The decoded lines of a byte stream, each with its "\\n" (the last one may lack it), split at "\\n" only:
    U+2028, U+0085, a form feed or a lone "\\r" stay inside their line. A line longer than `MAX_LINE_CHARS`
    is refused naming it."""
    pieces: list[str] = []
    held = lines = 0  # characters of the unfinished line; lines ended so far
    for text in _decoded_chunks(stream, source, encoding):
        parts = text.split("\n")
        _check_lengths(parts, held, lines, source)
        if len(parts) == 1:
            pieces.append(text)
            held += len(text)
            continue
        pieces.append(parts[0])
        yield "".join(pieces) + "\n"
        yield from (part + "\n" for part in parts[1:-1])
        lines += len(parts) - 1
        pieces, held = [parts[-1]], len(parts[-1])
    tail = "".join(pieces)
    if tail:
        yield tail


def _check_lengths(parts: list[str], held: int, lines: int, source: str) -> None:
    """Refuse the first of `parts` (pieces of lines split at "\\n", the first continuing `held` characters)
    that makes a line longer than `MAX_LINE_CHARS`."""
    if held + sum(map(len, parts)) <= MAX_LINE_CHARS:  # the usual case: no line can be too long
        return
    for i, part in enumerate(parts):
        if len(part) + (held if i == 0 else 0) > MAX_LINE_CHARS:
            raise EdgefnError(
                f"{source} line {lines + i + 1}: longer than {MAX_LINE_CHARS:,} characters without a line "
                "break (a binary file, or one with no newlines?)"
            )


def strip_newline(line: str) -> str:
    """A line without its "\\n" or "\\r\\n"."""
    return line.removesuffix("\n").removesuffix("\r")


# --- CSV / TSV --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One row of a table: the line it starts on and its fields (None: a blank row)."""

    line: int
    fields: Any


def repeated(names: list[str]) -> list[str]:
    """The names that occur more than once, sorted."""
    return sorted(name for name, n in Counter(names).items() if n > 1)


def _is_int(value: str) -> bool:
    return value.strip().lstrip("+-").isdigit()


def _csv_error(e: csv.Error, source: str, start: int, end: int) -> EdgefnError:
    msg = str(e)
    if "unexpected end of data" in msg:
        detail = f"a quoted field opened on line {start} is never closed ({CSV_HINT})"
    elif "expected after" in msg:
        detail = (
            f"text follows the closing quote on line {end} of a field opened on line {start} ({CSV_HINT})"
        )
    elif "new-line character" in msg:
        detail = "a carriage return (\\r) inside an unquoted field (quote the field, or end lines with \\n)"
    else:
        detail = msg
    return EdgefnError(f"{source} line {start}: malformed CSV: {detail}")


class CsvReader:
    """A strict CSV / TSV reader with a header row.

    The rules, each refused with one line naming the line of the file:
    - quoting is strict: a quote that opens a field must close it right before a delimiter or a line end,
      and a quoted field must close before the file ends (a stray quote otherwise swallows the rows after it);
    - the header names each column once;
    - every row has the header's number of fields;
    - a quoted field may span lines (multi-line texts are legal CSV), unless its continuation lines are rows
      swallowed by a stray quote whose closing quote fell before a delimiter: each continuation line but the
      last (or the only one), read on its own, has the header's width and an integer in every column that
      holds one in this row and all earlier rows. Text paragraphs do not look like that: in the CONSTRAINT
      and ISOT files no one of the 1,649 continuation lines of multi-line fields does, while 36 have the
      header's width (so width alone would refuse those files).
    A blank line (or one of spaces only, when there are several columns) is a blank row: `fields` is None.
    """

    def __init__(self, lines: Iterable[str], source: str, delimiter: str = ",") -> None:
        csv.field_size_limit(MAX_LINE_CHARS)  # long articles exceed the 128 KiB default
        self.source, self.delimiter = source, delimiter
        self.reader = csv.reader(lines, delimiter=delimiter, strict=True)
        header = self._next()
        if header is None:
            raise EdgefnError(f"{source} is empty: no header, no rows")
        if not header:
            raise EdgefnError(
                f"{source} line 1: blank; a CSV file starts with a header row naming its columns"
            )
        self.header: list[str] = header
        dup = repeated(header)
        if dup:
            raise EdgefnError(
                f"{source} line 1: the header names column(s) {', '.join(map(repr, dup))} more than once; "
                "rename them so each column is named once"
            )
        self.int_columns = set(range(len(header)))

    def _next(self) -> list[str] | None:
        start = self.reader.line_num + 1
        try:
            return next(self.reader)
        except StopIteration:
            return None
        except csv.Error as e:
            raise _csv_error(e, self.source, start, self.reader.line_num) from None

    def __iter__(self) -> Iterator[Record]:
        while True:
            start = self.reader.line_num + 1
            row = self._next()
            if row is None:
                return
            if not row or (len(self.header) > 1 and len(row) == 1 and not row[0].strip()):
                yield Record(start, None)
                continue
            self._check_row(row, start)
            yield Record(start, row)

    def _check_row(self, row: list[str], start: int) -> None:
        end = self.reader.line_num
        where = f"{self.source} line {start}" + (f" (a row over lines {start}-{end})" if end > start else "")
        if len(row) != len(self.header):
            raise EdgefnError(
                f"{where}: {len(row)} field(s), the header has {len(self.header)} "
                f"(a stray quote or {'tab' if self.delimiter == chr(9) else 'delimiter'}?)"
            )
        self.int_columns &= {i for i, value in enumerate(row) if _is_int(value)}
        if end > start:
            self._check_continuations(row, start)

    def _check_continuations(self, row: list[str], start: int) -> None:
        if not self.int_columns:
            return
        for value in row:
            lines = value.split("\n")[1:]
            swallowed = lines[:-1] or lines  # the last line ends at the closing quote: part of a row only
            if swallowed and all(self._row_like(line) for line in swallowed):
                raise EdgefnError(
                    f"{self.source} line {start}: a quoted field swallows what looks like a row "
                    f"({swallowed[0][:40]!r}, line {start + 1}): {CSV_HINT}"
                )

    def _row_like(self, line: str) -> bool:
        parts = next(csv.reader([line], delimiter=self.delimiter), [])
        return len(parts) == len(self.header) and all(_is_int(parts[i]) for i in self.int_columns)

    def column(self, name: str) -> int:
        """The index of column `name`; a missing one is refused listing the columns found."""
        if name not in self.header:
            raise missing_column(self.source, name, self.header)
        return self.header.index(name)


def missing_column(source: str, column: str, found: Iterable[str]) -> EdgefnError:
    """The error for a missing text column, listing the columns found."""
    return EdgefnError(
        f"{source} has no column {column!r}; columns found: {', '.join(found) or '(none)'}; "
        "pick one with --column"
    )


# --- JSONL ------------------------------------------------------------------------------------------------


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    dup = repeated([k for k, _ in pairs])
    if dup:
        raise ValueError(f"key(s) {', '.join(map(repr, dup))} appear more than once in one object")
    return dict(pairs)


def jsonl_records(lines: Iterable[str], source: str) -> Iterator[Record]:
    """One JSON object per line (`fields` a dict; None for a blank line). Invalid JSON, a value that is no
    object, a key given twice in one object and nesting too deep to parse are refused naming the line."""
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            yield Record(n, None)
            continue
        try:
            record = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as e:
            raise EdgefnError(f"{source} line {n}: not valid JSON ({e.msg})") from None
        except ValueError as e:
            raise EdgefnError(f"{source} line {n}: {e}") from None
        except RecursionError:
            raise EdgefnError(f"{source} line {n}: JSON nested too deep to read") from None
        if not isinstance(record, dict):
            raise EdgefnError(f"{source} line {n}: expected a JSON object, got {_json_type(record)}")
        yield Record(n, record)


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def text_value(value: Any, where: str, column: str) -> str:
    """A text from a JSON value: a string as it is, null as the empty text; any other type is refused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EdgefnError(
            f"{where}: {column!r} is {_json_type(value)}, not a string; texts must be JSON strings (or null)"
        )
    if SURROGATE.search(value):
        raise EdgefnError(f"{where}: {column!r} holds an unpaired surrogate escape (\\ud800-\\udfff)")
    return value
