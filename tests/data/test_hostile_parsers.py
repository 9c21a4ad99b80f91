"""Hostile input for the parsers and predict's stream: strict CSV / JSONL with line numbers, one answer per row,
blank rows flagged, capped characters, batches, and output faults as one line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgefn.cli.commands import main
from edgefn.core.errors import EdgefnError
from edgefn.core.textfiles import CsvReader, raw_lines
from edgefn.data.catalog import DataOptions, load_data
from edgefn.runs import RunFolder
from edgefn.runtime.classifier import Classifier
from edgefn.runtime.inference import CHARS_PER_TOKEN, cut_text
from edgefn.runtime.predict_io import open_input, predict_stream
from tests.cli.test_bad_input import _error_lines, _snapshot


def _write(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def _training_csv(rows: list[str], blank_every: int = 0) -> str:
    """A training CSV (text,label) of `rows` lines, a blank line after every `blank_every` rows."""
    out = ["text,label"]
    for i, row in enumerate(rows, start=1):
        out.append(row)
        if blank_every and i % blank_every == 0:
            out.append("")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def model(tiny_run_factory, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The int8-dynamic variant of a tiny run (built once per module)."""
    import shutil

    from edgefn.export.exporter import ExportConfig, export

    run = tmp_path_factory.mktemp("hostile") / "run"
    shutil.copytree(tiny_run_factory("test-tiny-bert"), run)
    export(ExportConfig(run_dir=run, schemes=("int8-dynamic",), eval_samples=32, parity_samples=16))
    return str(RunFolder(run).variant_dir("int8-dynamic"))


STORIES = [f"story number {i},{i % 2}" for i in range(40)]

# (name, file name, content, extra args, message): predict refuses the file, one line, exit 2.
PREDICT_REFUSALS: list[tuple[str, str, str | bytes, list[str], str]] = [
    (
        "stray quote swallows to the end",
        "in.csv",
        'id,text\n1,a\n2,"b\n3,c\n4,d\n5,e\n',
        [],
        "in.csv line 3: malformed CSV: a quoted field opened on line 3 is never closed",
    ),
    (
        "stray quote closed by a later quoted field",
        "in.csv",
        'id,text\n1,a\n2,"b\n3,c\n4,"d"\n5,e\n',
        [],
        "line 3: malformed CSV: text follows the closing quote on line 5",
    ),
    (
        "stray quote closed before a line end",
        "in.csv",
        'id,text\n1,a\n2,"b\n3,c\n4,d"\n5,e\n',
        [],
        "line 3: a quoted field swallows what looks like a row ('3,c', line 4)",
    ),
    (
        "stray quote in the first row",
        "in.csv",
        'id,text,label\n1,"b,x\n2,c,y\n3,d",z\n',
        [],
        "line 2: a quoted field swallows what looks like a row",
    ),
    (
        "row wider than the header",
        "in.csv",
        "id,text\n1,a\n2,b,c\n",
        [],
        "line 3: 3 field(s), the header has 2",
    ),
    (
        "row narrower than the header",
        "in.tsv",
        "id\ttext\tx\n1\ta\n",
        [],
        "line 2: 2 field(s), the header has 3",
    ),
    (
        "duplicated header (csv)",
        "in.csv",
        "text,id,text\na,1,b\n",
        [],
        "line 1: the header names column(s) 'text'",
    ),
    ("duplicated header (tsv)", "in.tsv", "text\ttext\na\tb\n", [], "names column(s) 'text' more than once"),
    (
        "carriage return in an unquoted field",
        "in.csv",
        "id,text\n1,a\rb\n",
        [],
        "line 2: malformed CSV: a carriage",
    ),
    ("blank header line", "in.csv", "\nid,text\n1,a\n", [], "line 1: blank"),
    ("JSONL array", "in.jsonl", '{"text": "a"}\n{"text": ["a", "b"]}\n', [], "line 2: 'text' is an array"),
    ("JSONL number", "in.jsonl", '{"text": 7}\n', [], "line 1: 'text' is a number, not a string"),
    ("JSONL boolean", "in.jsonl", '{"text": "a"}\n\n{"text": true}\n', [], "line 3: 'text' is a boolean"),
    ("JSONL object", "in.jsonl", '{"text": {"a": "b"}}\n', [], "line 1: 'text' is an object"),
    ("JSONL NaN", "in.jsonl", '{"text": NaN}\n', [], "line 1: 'text' is a number"),
    (
        "JSONL duplicated key",
        "in.jsonl",
        '{"text": "a", "text": "b"}\n',
        [],
        "line 1: key(s) 'text' appear more",
    ),
    ("JSONL line of a string", "in.jsonl", '"just text"\n', [], "line 1: expected a JSON object, got str"),
    (
        "JSONL nested too deep",
        "in.jsonl",
        '{"text": "a"}\n' + "[" * 100_000 + "\n",
        [],
        "line 2: JSON nested",
    ),
    (
        "JSONL unpaired surrogate",
        "in.jsonl",
        '{"text": "a\\ud800b"}\n',
        [],
        "line 1: 'text' holds an unpaired",
    ),
    ("JSONL missing column", "in.jsonl", '{"text": "a"}\n{"body": "b"}\n', [], "line 2 has no column 'text'"),
    ("empty txt", "in.txt", "", [], "no texts:"),
    ("empty csv", "in.csv", "", [], "in.csv is empty"),
    ("csv header only", "in.csv", "id,text\n", [], "no texts:"),
    ("empty jsonl", "in.jsonl", "", [], "no texts:"),
    (
        "undecodable csv byte",
        "in.csv",
        b"id,text\n1,a\n2,caf\xe9\n",
        [],
        "in.csv line 3: byte 0xe9 is not valid",
    ),
    (
        "undecodable utf-16",
        "in.txt",
        "ok\n".encode("utf-16") + b"\x00\xd8x\x00",
        ["--encoding", "utf-16"],
        "line 2",
    ),
    ("unknown encoding", "in.txt", "a\n", ["--encoding", "nope"], "unknown --encoding 'nope'"),
]


def _invoke(argv: list[str], input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, argv, input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("name", "file", "content", "extra", "message"), PREDICT_REFUSALS, ids=[c[0] for c in PREDICT_REFUSALS]
)
def test_predict_refuses_malformed_input(name, file, content, extra, message, model, tmp_path) -> None:
    """Each malformed file: exit 2, one Error line naming the line, no output file, nothing else changed."""
    path = _write(tmp_path, file, content)
    before = _snapshot(tmp_path)
    code, out, err = _invoke(
        ["predict", "--model", model, "--input", path, "--output", str(tmp_path / "o"), *extra]
    )
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and message in lines[0], f"{name}: {err}"
    assert "Traceback" not in err and out == ""
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            lambda t: [
                "--input",
                _write(t, "in.txt", "a\n"),
                "--output",
                str(t / "nosuch" / ".." / "in.txt"),
            ],
            "is the input",
        ),
        (lambda t: ["--input", str(t)], "is not a regular file"),
        (lambda t: ["--input", str(t / "absent.txt")], "input file not found"),
        (lambda t: ["--input", _write(t, "in.txt", "a\n"), "--output", str(t)], "is a folder"),
    ],
)
def test_predict_refuses_bad_paths(argv: Callable[[Path], list[str]], message: str, model, tmp_path) -> None:
    """--output naming the input however spelled, a folder as input or output, a missing input: one line, exit 2."""
    args = argv(tmp_path)
    before = _snapshot(tmp_path)
    code, _, err = _invoke(["predict", "--model", model, *args])
    assert code == 2 and len(_error_lines(err)) == 1 and message in err, err
    assert _snapshot(tmp_path) == before


def test_undecodable_argument_text_is_refused(model) -> None:
    """A text argument with bytes the terminal could not decode (a lone surrogate): exit 2, one line."""
    code, out, err = _invoke(["predict", "--model", model, "fine", "caf\udce9"])
    assert (
        code == 2
        and out == ""
        and _error_lines(err)
        == ["Error: text argument 2 holds bytes that are not valid in the terminal's encoding"]
    )


def test_empty_stdin_is_refused(model) -> None:
    """No rows on standard input: exit 2, one line."""
    code, out, err = _invoke(["predict", "--model", model], input=b"")
    assert code == 2 and out == "" and _error_lines(err) == ["Error: no texts: standard input has no rows"]


@pytest.mark.parametrize(
    ("file", "content", "texts"),
    [
        ("in.txt", "first\n\n   \nlast\n", ["first", "", "   ", "last"]),
        ("in.txt", "first\r\n\r\nlast", ["first", "", "last"]),
        (
            "in.csv",
            'id,text\n1,first\n\n2,"two\nlines, quoted"\n  \n3,\n4,last\n',
            ["first", "", "two\nlines, quoted", "", "", "last"],
        ),
        (
            "in.jsonl",
            '{"text": "first"}\n\n{"text": null}\n   \n{"text": "last"}\n',
            ["first", "", "", "", "last"],
        ),
    ],
)
def test_blank_rows_are_empty_texts_in_place(file, content, texts, model, tmp_path) -> None:
    """Blank lines, blank CSV rows and null JSONL texts each give one row, in place, flagged `empty`; the
    labels equal those of the same texts given directly."""
    path = _write(tmp_path, file, content)
    code, out, err = _invoke(["predict", "--model", model, "--input", path])
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["index"] for r in rows] == list(range(len(texts)))
    assert [r["empty"] for r in rows] == [not t.strip() for t in texts]
    expected = Classifier.from_folder(model).predict(texts)
    assert [r["label_id"] for r in rows] == [p.label_id for p in expected]
    assert f"{sum(not t.strip() for t in texts)} of {len(texts)} texts are empty" in err


def test_csv_output_has_an_empty_column(model, tmp_path) -> None:
    """The CSV output ends each row with `empty` (true / false), one row per input line."""
    path = _write(tmp_path, "in.txt", "a\n\nb\n")
    code, out, err = _invoke(["predict", "--model", model, "--input", path, "--format", "csv"])
    lines = out.splitlines()
    assert code == 0 and lines[0].endswith(",truncated,ood_score,ood,empty"), err
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["false", "true", "false"]


# --- training files -----------------------------------------------------------------------------------------

TRAINING_REFUSALS: list[tuple[str, str, str | bytes, list[str], str]] = [
    (
        "stray quote",
        "d.csv",
        _training_csv(STORIES[:5] + ['"stray,1'] + STORIES[5:]),
        [],
        "d.csv line 7: malformed CSV",
    ),
    ("stray quote closed", "d.csv", 'text,label\n"a,1\nb,0\nc",1\n', [], "line 2: a quoted field swallows"),
    (
        "duplicated header",
        "d.csv",
        "text,label,text\na,1,b\n",
        [],
        "line 1: the header names column(s) 'text'",
    ),
    ("ragged row", "d.tsv", "text\tlabel\na\t1\nb\t0\textra\n", [], "line 3: 3 field(s), the header has 2"),
    (
        "JSONL array text",
        "d.jsonl",
        '{"text": "a", "label": 1}\n{"text": ["a"], "label": 0}\n',
        [],
        "line 2: 'text' is an array",
    ),
    ("JSONL number text", "d.jsonl", '{"text": 7, "label": 1}\n', [], "line 1: 'text' is a number"),
    (
        "JSONL duplicated key",
        "d.jsonl",
        '{"text": "a", "label": 1, "label": 0}\n',
        [],
        "key(s) 'label' appear more",
    ),
    ("undecodable csv", "d.csv", b"text,label\na,1\ncaf\xe9,0\n", [], "d.csv line 3: byte 0xe9"),
]


@pytest.mark.parametrize(
    ("name", "file", "content", "extra", "message"), TRAINING_REFUSALS, ids=[c[0] for c in TRAINING_REFUSALS]
)
def test_training_files_are_read_strictly(name, file, content, extra, message, tmp_path) -> None:
    """`edgefn data inspect FILE` (the loader finetune and eval use) refuses each, one line naming the line."""
    path = _write(tmp_path, file, content)
    before = _snapshot(tmp_path)
    code, _, err = _invoke(["data", "inspect", path, *extra])
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and message in lines[0], f"{name}: {err}"
    assert _snapshot(tmp_path) == before


def test_class_txt_files_split_at_newlines_and_name_bad_bytes(tmp_path) -> None:
    """fake=a.txt,real=b.txt: U+2028 stays inside its line, and an undecodable byte is refused with its line."""
    fake = [f"made up claim {i}\u2028still the same text" for i in range(20)]
    real = [f"reported fact {i}" for i in range(20)]
    _write(tmp_path, "fake.txt", "\n".join(fake) + "\n")
    _write(tmp_path, "real.txt", "\n".join(real) + "\n")
    b = load_data(f"fake={tmp_path / 'fake.txt'},real={tmp_path / 'real.txt'}", DataOptions(clean=False))
    assert sum(b.info["rows"].values()) == 40
    _write(tmp_path, "real.txt", b"fine\nalso fine\ncaf\xe9\n")
    with pytest.raises(EdgefnError, match=r"real.txt line 3: byte 0xe9"):
        load_data(f"fake={tmp_path / 'fake.txt'},real={tmp_path / 'real.txt'}")


def test_training_blank_rows_are_counted_and_na_is_a_text(tmp_path) -> None:
    """Blank CSV and JSONL rows are dropped but counted (info and `data inspect`); "NA" and "None" are texts."""
    rows = STORIES + ["NA,1", "None,0"]
    path = _write(tmp_path, "d.csv", _training_csv(rows, blank_every=7))
    b = load_data(path)
    assert b.info["dropped"]["blank_rows"] == len(rows) // 7
    assert sum(b.info["rows"].values()) == len(rows)
    assert {"NA", "None"} <= set(b.train.texts + b.validation.texts + b.test.texts)
    code, out, _ = _invoke(["data", "inspect", path])
    assert code == 0 and f"{len(rows) // 7} blank rows" in out
    jsonl = "".join(
        json.dumps({"text": f"claim {i}", "label": i % 2}) + "\n" + ("\n" if i % 10 == 0 else "")
        for i in range(40)
    )
    b = load_data(_write(tmp_path, "d.jsonl", jsonl))
    assert b.info["dropped"]["blank_rows"] == 4 and sum(b.info["rows"].values()) == 40


def test_real_csv_files_pass_the_strict_reader(shared_data: Path) -> None:
    """Every shared CONSTRAINT and ISOT CSV (hundreds of quoted multi-line tweets) reads whole: as many rows as
    pandas finds."""
    import pandas as pd

    files = sorted(shared_data.glob("*/*.csv")) + sorted(shared_data.glob("*/*/*.csv"))
    assert len(files) >= 8
    for path in files:
        with open(path, "rb") as f:
            n = sum(1 for _ in CsvReader(raw_lines(f, str(path)), str(path)))
        assert n == len(pd.read_csv(path)), path


# --- long texts and streaming ---------------------------------------------------------------------------------


def test_encoder_caps_characters_before_tokenizing(model, shared_data: Path) -> None:
    """A 10 MB text reaches the tokenizer as at most max_length * 64 characters and is flagged truncated; a long
    ordinary text gives the same tokens capped as whole."""
    clf = Classifier.from_folder(model)
    limit = clf.max_length * CHARS_PER_TOKEN
    seen: list[int] = []
    encode_batch = clf.tokenizer.encode_batch
    clf.encoder.tokenizer = type("Spy", (), {})()  # a stand-in recording what is tokenized
    clf.encoder.tokenizer.encode_batch = lambda texts: (seen.extend(map(len, texts)), encode_batch(texts))[1]
    clf.encoder.tokenizer.truncation = {"max_length": clf.max_length}
    huge = "fake news " * 1_000_000
    (pred,) = clf.predict([huge])
    assert len(huge) == 10_000_000 and seen == [len(cut_text(huge, limit))] and seen[0] <= limit
    assert pred.truncated
    import pandas as pd

    tweets = pd.read_csv(shared_data / "covid19-constraint" / "english_test_with_labels.csv")["tweet"]
    long = " ".join(tweets.head(400))
    assert len(long) > limit
    assert [e.ids for e in clf.encoder.encode([long])] == [encode_batch([long])[0].ids]


def test_ten_megabyte_line_predicts_one_truncated_row(model, tmp_path) -> None:
    """One 10 MB line: one row, truncated true, exit 0."""
    path = _write(tmp_path, "big.txt", "x" * 10_000_000 + "\n")
    code, out, err = _invoke(["predict", "--model", model, "--input", path])
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 1 and rows[0]["truncated"] is True, err


class _CountingStream(io.BytesIO):
    """A binary stream that records how many bytes have been read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read1(self, size: int = -1) -> bytes:
        out = super().read1(size)
        self.consumed += len(out)
        return out


def test_predict_streams_in_windows(model) -> None:
    """Input is read as it is classified and each window written before the next is read: the classifier gets
    windows of the given size, and the output has one row per input row, in order."""
    clf = Classifier.from_folder(model)
    window, n = 600, 5 * 600 + 300
    stdin = _CountingStream(b"".join(f"text {i} ".encode() * 300 + b"\n" for i in range(n)))
    out = io.StringIO()
    calls: list[tuple[int, int, int]] = []

    def classify(texts: list[str]):
        calls.append((len(texts), stdin.consumed, len(out.getvalue().splitlines())))
        return clf.predict(texts)

    summary = predict_stream(classify, open_input((), "-", stdin=stdin).rows, out, window=window)
    assert [c[0] for c in calls] == [window] * 5 + [300] and summary.rows == n
    assert calls[0][1] < len(stdin.getvalue()) // 2  # the first window ran before the input was read
    assert [c[2] for c in calls] == [k * window for k in range(6)]  # each window written before the next
    assert [json.loads(line)["index"] for line in out.getvalue().splitlines()] == list(range(n))


def test_window_predictions_equal_one_text_at_a_time(model) -> None:
    """A window of thousands of texts, sorted by length as compact tokens, predicts as each text alone does
    (fp32: int8-dynamic scales its activations per batch, so its logits depend on the batch)."""
    clf = Classifier.from_folder(Path(model).parent / "fp32")
    texts = [f"claim {i} " * (1 + i % 90) for i in range(3000)] + [
        "",
        "x" * (clf.max_length * CHARS_PER_TOKEN + 1),
    ]
    together = clf.predict(texts)
    alone = [clf.predict([t])[0] for t in texts[::50]]
    assert [p.label_id for p in together[::50]] == [p.label_id for p in alone]
    assert all(abs(a - b) < 1e-5 for p, q in zip(together[::50], alone) for a, b in zip(p.logits, q.logits))
    assert [p.truncated for p in together[-2:]] == [False, True]


# --- output faults ---------------------------------------------------------------------------------------------


def _predict_process(model: str, stdout: int, tmp: Path) -> subprocess.CompletedProcess[str]:
    path = _write(tmp, "in.txt", "".join(f"text {i}\n" for i in range(3000)))
    cmd = [sys.executable, "-m", "edgefn.cli.commands", "predict", "--model", model, "--input", path]
    return subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300)


def test_stdout_on_a_full_device_is_one_line(model, tmp_path) -> None:
    """`edgefn predict ... > /dev/full`: exit 1, one Error line, no traceback."""
    with open("/dev/full", "w") as full:
        proc = _predict_process(model, full.fileno(), tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert _error_lines(proc.stderr) == [
        "Error: cannot write the predictions to standard output: No space left on device (errno 28 ENOSPC)"
    ]


def test_closed_stdout_pipe_is_one_line(model, tmp_path) -> None:
    """A reader that has gone away (broken pipe): exit 1, one Error line, no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = _predict_process(model, write_end, tmp_path)
    finally:
        os.close(write_end)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert _error_lines(proc.stderr) == [
        "Error: cannot write the predictions to standard output: Broken pipe (errno 32 EPIPE)"
    ]


def test_output_on_a_full_device_is_one_line(model, tmp_path) -> None:
    """--output /dev/full: exit 1, one Error line, and the folder unchanged."""
    path = _write(tmp_path, "in.txt", "a\nb\n")
    before = _snapshot(tmp_path)
    code, _, err = _invoke(["predict", "--model", model, "--input", path, "--output", "/dev/full"])
    assert code == 1 and _error_lines(err) == [
        "Error: cannot write the predictions to /dev/full: No space left on device (errno 28 ENOSPC)"
    ], err
    assert _snapshot(tmp_path) == before
