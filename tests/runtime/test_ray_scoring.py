"""Scoring on Ray (`edgefn predict --engine ray`, `edgefn.score`): local predict's rows, on a local Ray of 2 CPUs."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.runtime.ray_scoring import (
    ScoreConfig,
    _check_reachable,
    _Scorer,
    score,
)
from tests.helpers import constraint_split

UNDER_CI = os.environ.get("CI", "").lower() == "true"
ODD_TEXTS = ["Vaccines contain microchips, share now! 💉", "", 'WHO: "masks work",\nsays the report', "   "]
FLOATS = ("prob_fake", "ood_score")


@pytest.fixture(scope="session")
def local_ray() -> Any:
    """One local Ray of 2 CPUs for the session (a start takes seconds), shut down at its end; skipped without
    Ray, except under CI, which installs the ray extra."""
    try:
        import ray
    except ImportError:
        message = 'ray is not installed (pip install "edgefn[ray]")'
        if UNDER_CI:
            pytest.fail(f"{message}: required under CI")
        pytest.skip(message)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", object_store_memory=256 << 20)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def variant(exported_tiny_run: Path) -> Path:
    """The fp32 variant of the shared tiny run (its logits barely depend on the batch)."""
    return exported_tiny_run / runs.ONNX_DIR / "fp32"


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    """60 CONSTRAINT test tweets with odd rows among them: blank, whitespace only, quotes and a newline, emoji."""
    tweets = constraint_split(shared_data, "test", 60).texts
    return tweets[:20] + ODD_TEXTS + tweets[20:]


def _write_input(folder: Path, kind: str, texts: list[str]) -> Path:
    """`texts` as a CSV (string ids with leading zeros), a JSONL (ids of mixed JSON types) or a text file."""
    if kind == "csv":
        path = folder / "in.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["id", "text"], *([f"{i:04d}", t] for i, t in enumerate(texts))])
    elif kind == "jsonl":
        path = folder / "in.jsonl"
        ids = [i if i % 3 else f"x-{i}" if i % 2 else None for i in range(len(texts))]
        path.write_text("".join(json.dumps({"id": k, "text": t}) + "\n" for k, t in zip(ids, texts)), "utf-8")
    else:
        path = folder / "in.txt"
        path.write_text("".join(" ".join(t.split()) + "\n" for t in texts), encoding="utf-8")
    return path


def _local_rows(variant: Path, source: Path, *args: str) -> list[dict[str, Any]]:
    """What local `edgefn predict` writes for `source`, every digit kept."""
    result = CliRunner().invoke(
        main, ["predict", "--model", str(variant), "--input", str(source), "--precision", "full", *args]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _assert_same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """The same fields in the same order, labels, ids and flags equal, probabilities and logits within 1e-6."""
    assert len(got) == len(want) > 0
    for a, b in zip(got, want, strict=True):
        assert list(a) == list(b)
        for key in a:
            if key in FLOATS and a[key] is not None:
                assert a[key] == pytest.approx(b[key], abs=1e-6), (a["index"], key)
            elif key == "logits":
                assert a[key] == pytest.approx(b[key], abs=1e-6), a["index"]
            else:
                assert a[key] == b[key], (a["index"], key)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "txt"])
def test_rows_match_local_predict(
    local_ray, variant: Path, texts: list[str], tmp_path: Path, kind: str
) -> None:
    """Two actors on batches of 7 rows give local predict's rows: in input order, ids kept with their types
    (CSV strings with leading zeros, JSONL ints, strings and null), blank rows flagged, the same labels, and
    probabilities and logits within 1e-6."""
    source = _write_input(tmp_path, kind, texts)
    out = tmp_path / "ray.jsonl"
    config = ScoreConfig(variant, str(source), out, workers=2, window=7, precision=None)
    result = score(config)
    assert (result.workers, result.threads_per_worker, result.cluster_cpus) == (2, 1, 2)
    assert result.summary.rows == len(texts) and result.summary.empty == 2
    local = _local_rows(variant, source)
    _assert_same_rows(_jsonl(out), local)
    assert [r["index"] for r in local] == list(range(len(texts)))
    if kind != "txt":
        assert "id" in local[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, out.name])  # no temporary file


def test_parquet_glob_in_parquet_out(local_ray, variant: Path, texts: list[str], tmp_path: Path) -> None:
    """Parquet parts matched by a glob are scored in path order into one Parquet file with local predict's
    fields: integer ids kept as integers, a null text scored as the empty text, logits as a list."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": 1000 + i, "text": t} for i, t in enumerate(texts)]
    rows[3]["text"] = None
    pq.write_table(
        pa.Table.from_pylist(rows[30:]), tmp_path / "part-1.parquet"
    )  # the later part written first
    pq.write_table(pa.Table.from_pylist(rows[:30]), tmp_path / "part-0.parquet")
    jsonl = tmp_path / "same.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "scored" / "out.parquet"
    score(
        ScoreConfig(variant, str(tmp_path / "part-*.parquet"), out, fmt="parquet", workers=1, precision=None)
    )
    table = pq.read_table(out)
    assert table.schema.field("id").type == pa.int64() and table.schema.field("logits").type == pa.list_(
        pa.float64()
    )
    _assert_same_rows(table.to_pylist(), _local_rows(variant, jsonl))


def test_cli_writes_what_local_predict_writes(
    local_ray, variant: Path, texts: list[str], tmp_path: Path
) -> None:
    """`edgefn predict --engine ray` on one CSV file writes the very bytes local predict writes (one batch of the
    same rows: the same length-sorted model batches), and says what it did on stderr."""
    source = _write_input(tmp_path, "csv", texts)
    outs = {engine: tmp_path / f"{engine}.csv" for engine in ("local", "ray")}
    for engine, out in outs.items():
        argv = [
            "predict",
            "--model",
            str(variant),
            "--input",
            str(source),
            "--format",
            "csv",
            "--output",
            str(out),
        ]
        result = CliRunner().invoke(main, [*argv, "--engine", engine])
        assert result.exit_code == 0, result.output
    assert f"{len(texts)} predictions" in result.stderr and "2 Ray workers x 1 threads" in result.stderr
    assert outs["ray"].read_bytes() == outs["local"].read_bytes()


def test_a_bad_row_found_in_a_ray_task_fails_in_one_line(
    local_ray, variant: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A malformed row deep in a file (found by a Ray task, not by the driver's first look) ends the run with
    predict's own one-line message, without the traceback Ray Data logs for a failed task; nothing is written at
    --output."""
    source = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": i, "text": f"text {i}"}) for i in range(40)]
    lines[33] = '{"id": 33, "text": 7}'
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = ["predict", "--engine", "ray", "--workers", "1", "--model", str(variant), "--input", str(source)]
    result = CliRunner().invoke(main, [*argv, "--output", str(out)])
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.stderr
    assert "in.jsonl line 34: 'text' is a number, not a string" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    logged = capfd.readouterr().err
    assert "Traceback" not in logged and "Full stack trace" not in logged, logged[-2000:]


def test_a_plan_beyond_the_cluster_is_refused(local_ray, variant: Path, tmp_path: Path) -> None:
    """More actors x threads than the cluster's CPUs, or more threads than a node has, is refused before any
    actor starts (Ray would wait for the CPUs forever)."""
    source = _write_input(tmp_path, "txt", ["a", "b"])
    with pytest.raises(ConfigError, match="3 x threads_per_worker 1 need 3 CPUs; the Ray cluster has 2"):
        score(ScoreConfig(variant, str(source), tmp_path / "out.jsonl", workers=3))
    with pytest.raises(ConfigError, match="3 is more than the 2 CPUs of the largest Ray node"):
        score(ScoreConfig(variant, str(source), tmp_path / "out.jsonl", threads_per_worker=3))


def test_each_actor_runs_with_its_share_of_threads(variant: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An actor's ONNX Runtime session and tokenizer pool get its threads, not the machine's cores."""
    from edgefn.runtime.predict_rows import RowFormat
    from edgefn.runtime.ray_io import ScoreInput

    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    source = ScoreInput((Path("in.txt"),), "lines", "text")
    scorer = _Scorer(str(variant), 1, {"batch_size": 8}, source, RowFormat())
    assert scorer.clf.session.get_session_options().intra_op_num_threads == 1
    assert os.environ["RAYON_NUM_THREADS"] == "1"


@pytest.mark.parametrize(
    ("files", "pattern", "message"),
    [
        ({"in.csv": "key,body\n1,a\n"}, "in.csv", "in.csv has no column 'text'; columns found: key, body"),
        ({"in.csv": "id,text\n1,a\n"}, "*.jsonl", "matches no files"),
        ({"a.parquet": "not parquet"}, "*.parquet", "cannot read"),
        ({"a.csv": "text\na\n", "b.txt": "b\n"}, "*", "holds files of kinds csv, lines; score one kind"),
        ({"a.csv": "text\n", "b.csv": "text\n"}, "*.csv", "no texts: --input"),
        ({"a.json": "{}"}, "a.json", "not .json"),
        ({}, "gone.csv", "input file not found"),
    ],
)
def test_bad_input_is_refused_before_ray_starts(tmp_path: Path, files, pattern, message) -> None:
    """A missing column, a glob that matches nothing, a file that cannot be read, mixed kinds, no rows at all, a
    kind not read, a missing file: one line each, before Ray or the model is touched, nothing written."""
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    out = tmp_path / "out" / "o.jsonl"
    with pytest.raises(EdgefnError) as caught:
        score(ScoreConfig(tmp_path / "no-model", str(tmp_path / pattern), out))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not out.parent.exists()


def test_a_dangling_link_in_a_glob_is_refused(tmp_path: Path) -> None:
    """A glob match that no longer points at a file is named as not found."""
    (tmp_path / "a.csv").write_text("text\na\n", encoding="utf-8")
    (tmp_path / "b.csv").symlink_to(tmp_path / "nowhere.csv")
    with pytest.raises(EdgefnError, match=r"input file not found: .*b\.csv"):
        score(ScoreConfig(tmp_path / "no-model", str(tmp_path / "*.csv"), tmp_path / "o.jsonl"))


def test_a_cluster_address_nobody_answers_is_refused_at_once() -> None:
    """An address where no process listens is refused in one line within seconds (Ray would retry it for
    minutes), a malformed one names the flag's field, and a listening one passes the check."""
    import socket
    import time

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        _check_reachable(f"127.0.0.1:{port}")
        _check_reachable(f"ray://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(EdgefnError, match=rf"cannot reach the Ray cluster at 127\.0\.0\.1:{port} \("):
        _check_reachable(f"127.0.0.1:{port}")  # closed now
    assert time.monotonic() - start < 5
    for bad in ("headnode", "headnode:port", ":6379", "host:0", "host:70000"):
        with pytest.raises(ConfigError, match="is not HOST:PORT, ray://HOST:PORT or auto"):
            _check_reachable(bad)
    _check_reachable("auto")  # left to Ray


def test_without_ray_the_error_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where Ray cannot be imported, scoring says so in one line with the command that installs it, from the
    Python API and from `edgefn predict --engine ray` (exit 2)."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    source = tmp_path / "in.txt"
    source.write_text("a text\n", encoding="utf-8")
    with pytest.raises(EdgefnError, match=r'not installed here: pip install "edgefn\[ray\]"'):
        score(ScoreConfig(tmp_path / "no-model", str(source), tmp_path / "o.jsonl"))
    model, out = tmp_path / "model", tmp_path / "o.jsonl"
    argv = ["--engine", "ray", "--model", str(model), "--input", str(source), "--output", str(out)]
    result = CliRunner().invoke(main, ["predict", *argv])
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0
    assert 'pip install "edgefn[ray]"' in result.stderr and not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "2", "a text"], "--workers needs --engine ray"),
        (["--format", "parquet", "a text"], "--format parquet is written by --engine ray"),
        (["--engine", "ray", "a text"], "--engine ray scores files: give --input"),
        (["--engine", "ray", "--input", "x.csv"], "--engine ray writes a file: give --output"),
        (["--engine", "ray", "--input", "x", "--output", "o", "--threads", "2"], "with --threads-per-worker"),
    ],
)
def test_options_of_the_other_engine_are_refused(tmp_path: Path, argv: list[str], message: str) -> None:
    """Ray's options without --engine ray, Parquet from the local engine, and what only the local engine reads
    (texts, stdin, --threads) with --engine ray: one Error line, exit 2."""
    result = CliRunner().invoke(main, ["predict", "--model", str(tmp_path), *argv])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
