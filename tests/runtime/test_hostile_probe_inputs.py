"""Hostile inputs found by a probe of the CLI: odd codecs, endless lines, terminals, tables of the wrong kind."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from edgefn.core import textfiles
from edgefn.core.errors import EdgefnError
from edgefn.runtime.predict_io import iter_texts, read_texts
from tests.cli.test_bad_input import _error_lines, _invoke, _snapshot


def _refused(argv: list[str], *roots: Path, message: str) -> str:
    """Run the CLI and assert exit 2, exactly one `Error:` line holding `message`, and unchanged `roots`."""
    before = [_snapshot(root) for root in roots]
    code, out = _invoke(argv)
    errors = _error_lines(out)
    assert code == 2 and len(errors) == 1 and message in errors[0], out
    assert "Traceback" not in out
    assert [_snapshot(root) for root in roots] == before
    return errors[0]


@pytest.fixture
def model(exported_tiny_run: Path) -> str:
    """The int8-dynamic variant of the session's exported tiny run."""
    return str(exported_tiny_run / "onnx" / "int8-dynamic")


def _pad_records(n: int = 20) -> list[dict[str, object]]:
    return [{"text": f"pad row {i}", "label": i % 2} for i in range(n)]


# --- predict ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["rot13", "base64", "zlib_codec", "hex", "bz2_codec"])
def test_predict_refuses_codecs_that_are_not_text_encodings(codec, model, tmp_path) -> None:
    """--encoding naming a bytes-to-bytes or str-to-str codec is one line, not a TypeError."""
    (tmp_path / "in.csv").write_text("id,text\n1,a\n")
    argv = ["predict", "--model", model, "--input", str(tmp_path / "in.csv"), "--encoding", codec]
    _refused(argv, tmp_path, Path(model), message="is not a text encoding")


@pytest.mark.parametrize(
    "content, message",
    [(b"xn--a\n", "not valid idna: decoding with 'punycode'"), (b"a\n\xff\n", "line 2: byte 0xff")],
)
def test_predict_refuses_a_codec_error_of_its_own(content, message, model, tmp_path) -> None:
    """A codec with errors of its own (idna: a bad punycode label, no "replace" handler) is one line."""
    (tmp_path / "in.txt").write_bytes(content)
    argv = ["predict", "--model", model, "--input", str(tmp_path / "in.txt"), "--encoding", "idna"]
    _refused(argv, tmp_path, message=message)


@pytest.mark.parametrize("name", ["big.txt", "big.csv", "big.jsonl"])
def test_predict_refuses_a_file_without_newlines_instead_of_holding_it(name, model, tmp_path) -> None:
    """A sparse file of NUL bytes (no newline) longer than the line cap is refused, not read whole."""
    with open(tmp_path / name, "wb") as f:
        f.write(b"id,text\n" if name.endswith(".csv") else b"")
        f.truncate(textfiles.MAX_LINE_CHARS + 4096)
    argv = ["predict", "--model", model, "--input", str(tmp_path / name)]
    _refused(argv, tmp_path, message="without a line break")


def test_line_cap_names_the_line_and_spares_lines_below_it(monkeypatch) -> None:
    """Lines at the cap are read as they are; the first longer one is refused naming its line."""
    import io

    monkeypatch.setattr(textfiles, "MAX_LINE_CHARS", 10)
    ok = b"a" * 10 + b"\n" + b"b" * 10
    assert list(textfiles.raw_lines(io.BytesIO(ok), "s")) == ["a" * 10 + "\n", "b" * 10]
    with pytest.raises(EdgefnError, match="s line 3: longer than 10 characters"):
        list(textfiles.raw_lines(io.BytesIO(b"x\ny\n" + b"z" * 11 + b"\n"), "s"))
    stream = io.BufferedReader(io.BytesIO(b"q" * 25), buffer_size=4)  # the line arrives in pieces
    with pytest.raises(EdgefnError, match="s line 1:"):
        list(textfiles.raw_lines(stream, "s"))


def test_endless_standard_input_is_refused(model, monkeypatch) -> None:
    """Standard input without newlines (`< /dev/zero`) is refused at the line cap, with no row written."""
    from click.testing import CliRunner

    from edgefn.cli.commands import main

    monkeypatch.setattr(textfiles, "MAX_LINE_CHARS", 1 << 16)
    result = CliRunner().invoke(main, ["predict", "--model", model], input=b"\0" * (1 << 17))
    errors = _error_lines(result.output)
    assert result.exit_code == 2 and len(errors) == 1 and "stdin line 1: longer than" in errors[0]
    assert '"index"' not in result.output


def test_a_terminal_is_not_read_as_implicit_standard_input() -> None:
    """No texts, no --input and a terminal on stdin: refused at once instead of waiting for typing."""
    master, slave = os.openpty()
    try:
        with (
            open(slave, "rb", buffering=0, closefd=False) as tty,
            pytest.raises(EdgefnError, match="it is a terminal; --input - reads what you type"),
        ):
            iter_texts((), None, stdin=tty)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(
    "name, content",
    [
        ("in.json", b'[{"text": "a"}, {"text": "b"}]\n'),
        ("in.JSON", b'{"text": "a"}\n'),
        ("in.parquet", b"PAR1\0\0PAR1"),
        ("in.csv.gz", b"\x1f\x8b\x08\0"),
        ("in.xlsx", b"PK\x03\x04"),
    ],
)
def test_predict_refuses_files_whose_lines_are_not_texts(name, content, model, tmp_path) -> None:
    """A JSON array, Parquet or archive input was read as lines: one wrong answer; now it is one line."""
    (tmp_path / name).write_bytes(content)
    argv = ["predict", "--model", model, "--input", str(tmp_path / name)]
    _refused(argv, tmp_path, message="predict reads .txt (one text per line), .csv, .tsv or .jsonl")


def test_tab_files_are_tsv(tmp_path) -> None:
    """A .tab input is read as TSV by its --column, like the training-data readers do."""
    (tmp_path / "in.tab").write_text("id\ttext\n1\ta,b\n2\tc\n")
    assert read_texts((), str(tmp_path / "in.tab")) == ["a,b", "c"]


# --- training and evaluation tables -----------------------------------------------------------------------


def _json_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "news.json"
    path.write_text(text)
    return path


def _json_rows(tmp_path: Path, *rows: object) -> Path:
    return _json_file(tmp_path, json.dumps([*_pad_records(), *rows]))


@pytest.mark.parametrize(
    "write, message",
    [
        (
            lambda p: _json_rows(p, {"text": ["a", "b"], "label": 0}),
            "item 21: 'text' is an array, not a string",
        ),
        (lambda p: _json_rows(p, {"text": 7, "label": 1}), "item 21: 'text' is a number"),
        (lambda p: _json_rows(p, {"text": True, "label": 1}), "item 21: 'text' is a boolean"),
        (lambda p: _json_rows(p, {"text": {"a": 1}, "label": 1}), "item 21: 'text' is an object"),
        (lambda p: _json_rows(p, "a text"), "item 21: expected a JSON object, got str"),
        (
            lambda p: _json_file(p, '[{"text": "a", "text": "b", "label": 0}]'),
            "'text' appear more than once",
        ),
        (lambda p: _json_file(p, '{"text": "a", "label": 0}'), "got an object"),
        (lambda p: _json_file(p, "[" * 100_000 + "]" * 100_000), "too deep"),
        (lambda p: _json_file(p, '[{"text": "a",}]'), "line 1: not valid JSON"),
    ],
)
def test_training_json_is_read_strictly(write: Callable[[Path], Path], message: str, tmp_path) -> None:
    """A .json table with a non-string text, a duplicated key, a non-object item or bad nesting is refused."""
    path = write(tmp_path)
    _refused(["data", "inspect", str(path)], tmp_path, message=message)


def test_training_json_texts_like_na_stay_texts(tmp_path) -> None:
    """Texts "NA" and "null" in a .json table are texts: every row is counted."""
    path = _json_rows(tmp_path, {"text": "NA", "label": 0}, {"text": "null", "label": 1})
    code, out = _invoke(["data", "inspect", str(path), "--json"])
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    assert sum(s["rows"] for s in report["per_split"].values()) == 22


@pytest.mark.parametrize(
    "column, what",
    [
        ([*range(22)], "a number"),
        ([[f"t{i}"] for i in range(22)], "an array"),
        ([f"t{i}".encode() for i in range(22)], "bytes"),
        ([True, False] * 11, "a boolean"),
    ],
)
def test_parquet_texts_must_be_strings(column, what, tmp_path) -> None:
    """A Parquet text column of numbers, lists, bytes or booleans is refused naming the row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "news.parquet"
    pq.write_table(pa.table({"text": pa.array(column), "label": [i % 2 for i in range(22)]}), path)
    _refused(["data", "inspect", str(path)], tmp_path, message=f"row 1: 'text' is {what}, not a string")


def test_training_csv_field_over_the_line_cap_is_refused(tmp_path, monkeypatch) -> None:
    """A training CSV whose (quoted, multi-line) field outgrows the cap is one line, not memory exhaustion."""
    monkeypatch.setattr(textfiles, "MAX_LINE_CHARS", 1000)
    path = tmp_path / "news.csv"
    path.write_text("text,label\n" + '"' + "word\n" * 400 + '",1\n')
    _refused(["data", "inspect", str(path)], tmp_path, message="malformed CSV")


# --- options ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", ",,", " , "])
@pytest.mark.parametrize("command", ["package", "bench"])
def test_variant_lists_naming_nothing_are_refused(command, value, exported_tiny_run, tmp_path) -> None:
    """`--variant ""` fell back to the default variants; a list naming nothing is now refused."""
    run = tmp_path / "run"
    shutil.copytree(exported_tiny_run, run)
    argv = (
        ["package", "--target", "mobile", "--run-dir", str(run), "--variants", value]
        if command == "package"
        else ["bench", "--run-dir", str(run), "--variants", value]
    )
    _refused(argv, tmp_path, message="names nothing; leave the option out for the default")


@pytest.mark.parametrize("tokenizer", ["/nonexistent/tok", "."])
def test_unloadable_tokenizer_is_one_short_line(tokenizer, tmp_path) -> None:
    """A --tokenizer that is no tokenizer names it in one short line, not transformers' list of every model."""
    path = _json_rows(tmp_path)
    line = _refused(
        ["data", "inspect", str(path), "--tokenizer", tokenizer],
        tmp_path,
        message="cannot load the tokenizer",
    )
    assert len(line) < 400, line
