"""Inputs and outputs of `edgefn predict`: texts from arguments, files or stdin; JSONL or CSV out (stdlib only)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from edgefn.errors import EdgefnError

FORMATS = ("jsonl", "csv")
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def decode_bytes(data: bytes, source: str, encoding: str = "utf-8") -> str:
    """Decode a whole input, naming the line of the first undecodable byte."""
    try:
        text = data.decode(encoding)
    except LookupError:
        raise EdgefnError(f"unknown --encoding {encoding!r}") from None
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise EdgefnError(
            f"{source} line {line}: byte 0x{data[e.start]:02x} is not valid {encoding}; "
            "pass --encoding (e.g. --encoding latin-1) if the file uses another encoding"
        ) from None
    return text.removeprefix("\ufeff")  # a UTF-8 byte-order mark is not part of the first text


def _lines(text: str) -> list[str]:
    """One text per line, split at newlines only (\n or \r\n): U+2028, U+0085 or a form feed inside a text
    stay in it, so output indices match input line numbers. Blank lines stay, as empty texts."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no new one
    return [line.removesuffix("\r") for line in lines]


def _missing_column(source: str, column: str, found: Sequence[str]) -> EdgefnError:
    return EdgefnError(
        f"{source} has no column {column!r}; columns found: {', '.join(found) or '(none)'}; "
        "pick one with --column"
    )


def _csv_column(text: str, source: str, column: str, delimiter: str) -> list[str]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long articles exceed the 128 KiB default
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    fields = list(reader.fieldnames or [])
    if column not in fields:
        raise _missing_column(source, column, fields)
    try:
        return [row.get(column) or "" for row in reader]
    except csv.Error as e:
        raise EdgefnError(f"{source} line {reader.line_num}: malformed CSV ({e})") from None


def _jsonl_column(text: str, source: str, column: str) -> list[str]:
    out = []
    for n, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise EdgefnError(f"{source} line {n}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise EdgefnError(f"{source} line {n}: expected a JSON object, got {type(record).__name__}")
        if column not in record:
            raise _missing_column(f"{source} line {n}", column, list(record))
        value = record[column]
        out.append("" if value is None else value if isinstance(value, str) else str(value))
    return out


def parse_texts(text: str, source: str, kind: str, column: str = "text") -> list[str]:
    """Texts from decoded file contents of a kind: `lines`, `csv`, `tsv` or `jsonl`."""
    if kind == "csv":
        return _csv_column(text, source, column, ",")
    if kind == "tsv":
        return _csv_column(text, source, column, "\t")
    if kind == "jsonl":
        return _jsonl_column(text, source, column)
    return _lines(text)


def read_texts(
    texts: Sequence[str],
    input_path: str | None,
    column: str = "text",
    encoding: str = "utf-8",
    stdin: BinaryIO | None = None,
) -> list[str]:
    """Resolve `edgefn predict` inputs: argument texts, an input file, or stdin (one text per line).

    Args:
        texts: texts given as arguments (used when no input file is given).
        input_path: a .txt (one text per line), .csv / .tsv / .jsonl (`column`) file, or "-" for stdin.
        column: the text column of a CSV/TSV/JSONL input.
        encoding: how the input file or stdin is decoded.
        stdin: the binary stream to read when no texts and no file are given.

    Returns:
        The texts, in input order.
    """
    if list(texts) == ["-"] and input_path is None:  # `edgefn predict --model M -` reads stdin
        texts, input_path = (), "-"
    if input_path is not None and texts:
        raise EdgefnError("give texts as arguments or --input FILE, not both")
    if texts:
        return list(texts)
    if input_path is None or input_path == "-":
        stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
        if stream is None or stream.closed:
            raise EdgefnError(
                "no texts: give them as arguments, --input FILE, or on standard input (it is closed)"
            )
        return _lines(decode_bytes(stream.read(), "stdin", encoding))
    path = Path(input_path)
    if not path.is_file():
        raise EdgefnError(f"input file not found: {path}")
    kind = TABLE_SUFFIXES.get(path.suffix.lower(), "lines")
    return parse_texts(decode_bytes(path.read_bytes(), str(path), encoding), str(path), kind, column)


def format_predictions(predictions: Sequence[Any], fmt: str = "jsonl") -> str:
    """Predictions as JSONL (one object per text) or CSV (index, label, prob_fake, logit_<label>..., truncated,
    ood_score, ood)."""
    if fmt not in FORMATS:
        raise EdgefnError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    rows = [{"index": i, **p.to_dict()} for i, p in enumerate(predictions)]
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    n_logits = max((len(r["logits"]) for r in rows), default=2)
    names = ["real", "fake"] if n_logits == 2 else [str(k) for k in range(n_logits)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["index", "label", "label_id", "prob_fake", *[f"logit_{n}" for n in names], "truncated"]
    writer.writerow([*header, "ood_score", "ood"])
    for r in rows:
        ood = r.get("ood")
        writer.writerow(
            [
                r["index"],
                r["label"],
                r["label_id"],
                repr(r["prob_fake"]),
                *[repr(v) for v in r["logits"]],
                str(r["truncated"]).lower(),
                "" if r.get("ood_score") is None else repr(r["ood_score"]),
                "" if ood is None else str(ood).lower(),  # empty: no threshold calibrated (run `edgefn eval`)
            ]
        )
    return buf.getvalue()


def check_output(output: Path | None, input_path: str | None) -> None:
    """Refuse an --output that is a folder, or the --input file itself (it would be destroyed)."""
    if output is None:
        return
    output = Path(output)
    if output.is_dir():
        raise EdgefnError(f"--output {output} is a folder; give a file path")
    if (
        input_path not in (None, "-")
        and output.exists()
        and output.resolve() == Path(str(input_path)).resolve()
    ):
        raise EdgefnError(f"--output {output} is the --input file; write the predictions elsewhere")


def write_output(content: str, output: Path | None) -> None:
    """Write to a file atomically (temporary name, then rename), or to stdout when `output` is None."""
    if output is None:
        sys.stdout.write(content)
        sys.stdout.flush()
        return
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(content)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
