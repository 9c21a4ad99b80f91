"""What `edgefn predict` writes for a user: the input's ids, the echoed text, rounded floats, the `ood` note,
and refusals of empty input."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.runtime.classifier import Classifier

TEXTS = ["Vaccines contain microchips, share now! 💉", "", 'WHO: "masks work",\nsays the report']


@pytest.fixture(scope="module")
def variant(exported_tiny_run: Path) -> Path:
    """The fp32 variant of the shared tiny run (its logits do not depend on the batch)."""
    return exported_tiny_run / runs.ONNX_DIR / "fp32"


def _predict(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["predict", *args], input=input)


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _jsonl_rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return str(path)


def test_id_column_round_trips_through_csv_and_jsonl(variant: Path, tmp_path: Path) -> None:
    """An `id` column is kept by default, another is picked by --id-column; each output row carries its input
    row's id, in order, in CSV and JSONL output, a blank row's id empty; JSON ids keep their type."""
    ids = ["a-17", "", "0042"]
    table = [[ids[0], TEXTS[0]], [], [ids[2], TEXTS[2]]]  # the middle row is blank
    source = _write_csv(tmp_path / "in.csv", ["id", "text"], table)
    for fmt in ("csv", "jsonl"):
        result = _predict("--model", str(variant), "--input", source, "--format", fmt)
        assert result.exit_code == 0, result.output
        rows = _csv_rows(result.stdout) if fmt == "csv" else _jsonl_rows(result.stdout)
        got = [r["id"] for r in rows]
        assert got == (ids if fmt == "csv" else [ids[0], None, ids[2]])  # "0042" stays a string
        assert [str(r["index"]) for r in rows] == ["0", "1", "2"]
        assert [str(r["empty"]).lower() for r in rows] == ["false", "true", "false"]

    keys = [7, "x-8", None]
    lines = [json.dumps({"tweet_id": k, "tweet": t}) for k, t in zip(keys, TEXTS, strict=True)]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["--model", str(variant), "--input", str(jsonl), "--column", "tweet", "--id-column", "tweet_id"]
    rows = _jsonl_rows(_predict(*argv).stdout)
    assert [r["tweet_id"] for r in rows] == keys and "id" not in rows[0]
    rows = _csv_rows(_predict(*argv, "--format", "csv").stdout)
    assert [r["tweet_id"] for r in rows] == ["7", "x-8", ""]
    assert list(rows[0])[:3] == ["index", "tweet_id", "label"]


def test_no_id_column_without_one(variant: Path, tmp_path: Path) -> None:
    """Text arguments, a .txt file and a table without `id` give rows with only the index; --id-column ''
    drops an `id` column the input has."""
    source = _write_csv(tmp_path / "in.csv", ["id", "text"], [[1, "a"], [2, "b"]])
    nameless = _write_csv(tmp_path / "nameless.csv", ["key", "text"], [[1, "a"]])
    for argv in (["one text"], ["--input", source, "--id-column", ""], ["--input", nameless]):
        result = _predict("--model", str(variant), *argv)
        assert result.exit_code == 0, result.output
        assert list(_jsonl_rows(result.stdout)[0])[:2] == ["index", "label"]


@pytest.mark.parametrize(
    ("file", "content", "argv", "message"),
    [
        ("in.csv", "key,text\n1,a\n", ["--id-column", "id"], "in.csv has no column 'id' for --id-column"),
        ("in.jsonl", '{"id": 1, "text": "a"}\n{"text": "b"}\n', [], "in.jsonl line 2 has no 'id'"),
        ("in.txt", "a\n", ["--id-column", "id"], "--id-column needs a .csv, .tsv or .jsonl --input"),
        ("in.csv", "label,text\n1,a\n", ["--id-column", "label"], "'label' is also the name of an output"),
        ("in.csv", "id,text\n1,a\n", ["--id-column", "text", "--echo"], "'text' is also the name"),
    ],
)
def test_bad_id_columns_are_refused(variant, tmp_path, file, content, argv, message) -> None:
    """An id column the input lacks, ids for an input without columns, an id that would overwrite an output
    field: exit 2, one Error line, nothing written."""
    (tmp_path / file).write_text(content, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = _predict("--model", str(variant), "--input", str(tmp_path / file), "--output", str(out), *argv)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 2 and len(errors) == 1 and message in errors[0], result.stderr
    assert result.stdout == "" and not out.exists()


def test_echo_copies_each_text(variant: Path, tmp_path: Path) -> None:
    """--echo puts the input text, as read (quotes, commas, a newline, an emoji, a blank row), in each JSONL
    and CSV row; without it no row holds the text."""
    source = _write_csv(tmp_path / "in.csv", ["id", "text"], [[1, TEXTS[0]], [2, TEXTS[1]], [3, TEXTS[2]]])
    for fmt in ("jsonl", "csv"):
        result = _predict("--model", str(variant), "--input", source, "--format", fmt, "--echo")
        assert result.exit_code == 0, result.output
        rows = _csv_rows(result.stdout) if fmt == "csv" else _jsonl_rows(result.stdout)
        assert [r["text"] for r in rows] == TEXTS
        assert list(rows[0])[:3] == ["index", "id", "text"]
    args = _predict("--model", str(variant), "--echo", *TEXTS[:1])
    assert _jsonl_rows(args.stdout)[0]["text"] == TEXTS[0]
    assert "text" not in _jsonl_rows(_predict("--model", str(variant), "--input", source).stdout)[0]


def _floats(row: dict) -> list[float]:
    return [row["prob_fake"], *row["logits"], row["ood_score"]]


def test_probabilities_are_rounded(variant: Path) -> None:
    """By default prob_fake, logits and ood_score are the model's values to 4 decimals, in JSONL and CSV;
    --precision 2 gives 2, --precision full every digit; --help says so."""
    texts = ["5G towers spread the virus", "CDC publishes new guidance", "hello"]
    exact = [p.to_dict() for p in Classifier.from_folder(variant).predict(texts)]
    rounded = _jsonl_rows(_predict("--model", str(variant), *texts).stdout)
    for row, want in zip(rounded, exact, strict=True):
        assert _floats(row) == [round(v, 4) + 0.0 for v in _floats(want)]
        assert all(len(repr(v).split(".")[1]) <= 4 for v in _floats(row))
    table = _csv_rows(_predict("--model", str(variant), "--format", "csv", *texts).stdout)
    cells = [r[k] for r in table for k in ("prob_fake", "logit_real", "logit_fake", "ood_score")]
    assert all(re.fullmatch(r"-?\d+\.\d{1,4}", c) for c in cells), cells
    assert [float(r["prob_fake"]) for r in table] == [round(w["prob_fake"], 4) for w in exact]
    two = _jsonl_rows(_predict("--model", str(variant), "--precision", "2", *texts).stdout)
    assert [r["prob_fake"] for r in two] == [round(w["prob_fake"], 2) for w in exact]
    full = _jsonl_rows(_predict("--model", str(variant), "--precision", "full", *texts).stdout)
    assert [_floats(r) for r in full] == [_floats(w) for w in exact]
    bad = _predict("--model", str(variant), "--precision", "many", "a")
    assert bad.exit_code == 2 and "'many' is not a number of decimals" in bad.stderr
    help_text = " ".join(_predict("--help").stdout.split())
    assert "--precision N|full Decimals of prob_fake, logits and ood_score" in help_text
    assert "[default: 4]" in help_text


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        (None, "", "Error: no texts: standard input has no rows"),
        ("in.txt", "", "Error: no texts: {path} has no rows"),
        ("in.csv", "id,text\n", "Error: no texts: {path} has no rows"),
        ("in.jsonl", "", "Error: no texts: {path} has no rows"),
    ],
)
def test_empty_input_exits_2(variant: Path, tmp_path: Path, file, content, message) -> None:
    """Empty standard input, an empty .txt or .jsonl file and a CSV of only a header: one Error line, exit 2,
    nothing on standard output (the model is not loaded, so no other note either)."""
    argv = ["--model", str(variant)]
    if file is not None:
        (tmp_path / file).write_text(content, encoding="utf-8")
        argv += ["--input", str(tmp_path / file)]
    result = _predict(*argv, input=content if file is None else None)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [message.format(path=tmp_path / (file or ""))]


def _ood_notes(stderr: str) -> list[str]:
    """The ood notes of `stderr`, each unfolded (predict folds its notes at 120 columns)."""
    lines = stderr.replace("\n  ", " ").splitlines()
    return [line for line in lines if '"ood" is null' in line]


def test_ood_note_names_the_eval_that_calibrates_it(run: Path, tmp_path: Path) -> None:
    """Without ood.json predict says once, on stderr only, why `ood` is null and which eval command writes
    the threshold; that very command calibrates it, after which rows say true/false and the note is gone."""
    config = json.loads((run / runs.FINETUNE_CONFIG).read_text())
    runs.write_json(run / runs.FINETUNE_CONFIG, {**config, "data": "sample"})
    model = str(run / runs.ONNX_DIR / "fp32")
    before = _predict("--model", model, "one", "two")
    assert before.exit_code == 0, before.output
    notes = _ood_notes(before.stderr)
    assert len(notes) == 1 and notes[0].startswith("note: ")
    assert [r["ood"] for r in _jsonl_rows(before.stdout)] == [None, None]
    assert "edgefn eval" not in before.stdout and "note" not in before.stdout
    command = shlex.split(re.search(r"`(edgefn eval [^`]+)`", notes[0]).group(1))
    assert command == ["edgefn", "eval", "--model", model, "--data", "sample"]
    evaluated = CliRunner().invoke(main, [*command[1:], "--max-samples", "40"])
    assert evaluated.exit_code == 0, evaluated.output
    after = _predict("--model", model, "one", "two")
    assert after.exit_code == 0 and _ood_notes(after.stderr) == []
    assert all(isinstance(r["ood"], bool) for r in _jsonl_rows(after.stdout))
    record = json.loads((run / runs.OOD_FILE).read_text())
    record["fp32"]["model_sha256"] = "0" * 64  # calibrated for another model: ignored with one warning
    runs.write_json(run / runs.OOD_FILE, record)
    other = _predict("--model", model, "one")
    assert other.exit_code == 0 and _ood_notes(other.stderr) == []
    assert "calibrated for another model" in other.stderr and _jsonl_rows(other.stdout)[0]["ood"] is None


def test_ood_note_for_a_variant_outside_a_run(run: Path, tmp_path: Path) -> None:
    """A variant copied out of its run has no run to calibrate in: the note says so instead of naming eval."""
    loose = tmp_path / "loose"
    shutil.copytree(run / runs.ONNX_DIR / "fp32", loose)
    result = _predict("--model", str(loose), "text")
    assert result.exit_code == 0, result.output
    assert _ood_notes(result.stderr) == [
        'note: "ood" is null: this variant is not inside a run folder (RUN/onnx/<variant>), where `edgefn eval` '
        "calibrates the out-of-distribution threshold"
    ]
