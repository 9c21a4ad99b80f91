"""The torch-free runtime and `edgefn predict` on bad and odd inputs."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.core.errors import EdgefnError
from edgefn.runs import RunFolder
from edgefn.runtime.classifier import Classifier, softmax
from tests.helpers import record_training_cleaning

LONG_TEXT = "breaking news " * 7143  # 100,002 characters
ODD_TEXTS = ["", "   \t  ", LONG_TEXT[:100_000], "Vaccine 💉😷 works? مرحبا 你好 Привет — ça va!"]
HEAVY_MODULES = ("torch", "transformers", "optimum")


SCHEMES = {"test-tiny-bert": ("int8-dynamic", "fp16"), "test-tiny-distilbert": ("none",)}


@pytest.fixture(scope="module")
def exported(tiny_run_factory, tmp_path_factory):
    """A private copy of a tiny run per preset, exported by `edgefn.export.exporter` (fp32 plus SCHEMES[preset])."""
    from edgefn.export.exporter import ExportConfig, export

    cache: dict[str, Path] = {}

    def factory(preset: str = "test-tiny-bert") -> Path:
        if preset not in cache:
            run = tmp_path_factory.mktemp("runtime") / preset
            shutil.copytree(tiny_run_factory(preset), run)
            export(ExportConfig(run_dir=run, schemes=SCHEMES[preset], threads=1))
            cache[preset] = run
        return cache[preset]

    return factory


@pytest.fixture(scope="module")
def variant(exported) -> Path:
    """The fp32 variant folder of the tiny BERT run."""
    return exported("test-tiny-bert") / runs.ONNX_DIR / "fp32"


@pytest.fixture(scope="module")
def clf(variant) -> Classifier:
    """A single-threaded classifier on the tiny BERT fp32 variant."""
    return Classifier.from_folder(variant, threads=1, batch_size=8)


def run_cli(*args: str, input: str | bytes | None = None):
    """Invoke the CLI in-process."""
    return CliRunner().invoke(main, list(args), input=input)


def parse_jsonl(text: str) -> list[dict]:
    """Parse JSONL output."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("preset", ["test-tiny-bert", "test-tiny-distilbert"])
def test_fp32_matches_pytorch_checkpoint(exported, preset):
    """On real validation texts, runtime logits match the PyTorch checkpoint within 1e-4 with the same argmax."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = exported(preset)
    texts = RunFolder(run).read_split("validation").texts[:48]
    model = AutoModelForSequenceClassification.from_pretrained(run / runs.CHECKPOINT).eval()
    tok = AutoTokenizer.from_pretrained(run / runs.CHECKPOINT)
    with torch.no_grad():
        ref = model(
            **tok(texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
        ).logits.numpy()
    runtime = Classifier.from_folder(run / runs.ONNX_DIR / "fp32", threads=1, batch_size=16)
    assert runtime.max_length == 128  # from the run's finetune_config.json
    got = runtime.predict_logits(texts)
    assert np.abs(got - ref).max() <= 1e-4
    preds = runtime.predict(texts)
    assert [p.label_id for p in preds] == ref.argmax(-1).tolist()
    assert [p.label for p in preds] == [{0: "real", 1: "fake"}[k] for k in ref.argmax(-1).tolist()]
    np.testing.assert_allclose([p.prob_fake for p in preds], softmax(ref)[:, 1], atol=1e-5)
    no_types = preset == "test-tiny-distilbert"  # DistilBERT's graph declares no token_type_ids
    assert set(runtime.input_names) == {"input_ids", "attention_mask"} | (
        set() if no_types else {"token_type_ids"}
    )


def _probe(code: str) -> list[str]:
    """Run `code` in a fresh interpreter and return the heavy modules it left imported."""
    script = (
        code + f"\nimport sys, json; print(json.dumps([m for m in {HEAVY_MODULES + ('pandas', 'sklearn')!r}"
    )
    script += " if m in sys.modules]))"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_runtime_and_predict_command_do_not_import_torch(variant):
    """A prediction through edgefn.runtime.classifier, and through `edgefn predict`, imports no torch/transformers/optimum."""
    api = f"from edgefn.runtime.classifier import Classifier\nc = Classifier.from_folder({str(variant)!r}, threads=1)\n"
    api += "p = c.predict(['hello', ''])\nassert len(p) == 2 and 0 <= p[0].prob_fake <= 1"
    assert _probe(api) == []
    cli = (
        "from edgefn.cli.commands import main\n"
        f"try:\n    main(['predict', '--model', {str(variant)!r}, '--threads', '1', 'hello'])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code"
    )
    assert _probe(cli) == []


def test_length_batching_keeps_input_order_and_values(variant, clf):
    """Length-sorted batches return results in input order, equal to batch size 1, with less padding."""
    texts = RunFolder(variant.parents[1]).read_split("test").texts[:40] + ODD_TEXTS
    one = Classifier.from_folder(variant, threads=1, batch_size=1)
    np.testing.assert_allclose(clf.predict_logits(texts), one.predict_logits(texts), atol=1e-5)
    assert [p.label_id for p in clf.predict(texts)] == [p.label_id for p in one.predict(texts)]
    singles = np.stack([one.predict_logits([t])[0] for t in texts[::7]])
    np.testing.assert_allclose(clf.predict_logits(texts)[::7], singles, atol=1e-5)

    widths: list[int] = []
    run = clf.session.run
    clf.session.run = lambda names, feed: (widths.append(feed["input_ids"].shape[1]), run(names, feed))[1]
    try:
        clf.predict_logits(texts)
    finally:
        del clf.session.run
    assert widths == sorted(widths) and len(widths) == -(-len(texts) // 8)
    assert widths[0] < widths[-1] == 128


def test_odd_texts_through_cli(variant, clf):
    """Empty, whitespace-only, 100k-character (flagged truncated) and emoji/mixed-script texts all predict."""
    result = run_cli("predict", "--model", str(variant), "--threads", "1", *ODD_TEXTS)
    assert result.exit_code == 0, result.output
    rows = parse_jsonl(result.stdout)
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert [r["truncated"] for r in rows] == [False, False, True, False]
    assert "1 of 4 texts truncated to 128 tokens" in result.stderr
    assert rows[0]["logits"] == rows[1]["logits"]  # both are just [CLS] [SEP]
    direct = clf.predict(ODD_TEXTS)
    for row, pred in zip(rows, direct, strict=True):
        assert row["label"] == pred.label and row["label_id"] == pred.label_id
        np.testing.assert_allclose(row["logits"], pred.logits, atol=5e-5)  # written to 4 decimals
        assert row["prob_fake"] == pytest.approx(float(softmax(np.array([row["logits"]]))[0, 1]), abs=1e-4)
    assert clf.tokenizer.encode(ODD_TEXTS[0]).ids == [101, 102]


def test_variant_older_than_its_runs_cleaning_is_named(variant, tmp_path):
    """A run's variant exported before export.json recorded the serving cleaning, from a run whose training
    cleaned its texts: served raw (nothing guessed), with one note naming the rules and the re-export command;
    none when cleaning is turned off or the training cleaned nothing."""
    run_dir = tmp_path / "run"
    shutil.copytree(variant.parent.parent, run_dir)
    folder = run_dir / runs.ONNX_DIR / variant.name
    record = runs.read_json(folder / runs.EXPORT_MANIFEST)
    runs.write_json(folder / runs.EXPORT_MANIFEST, {k: v for k, v in record.items() if k != "cleaning"})
    assert (
        Classifier.from_folder(folder, threads=1).cleaning_note is None
    )  # the run's training cleaned nothing
    record_training_cleaning(run_dir)
    clf = Classifier.from_folder(folder, threads=1)
    assert clf.cleaning == ()
    assert (
        "drop-urls, drop-handles" in clf.cleaning_note
        and f"edgefn export --run-dir {run_dir}" in clf.cleaning_note
    )
    assert Classifier.from_folder(folder, threads=1, clean=False).cleaning_note is None
    result = run_cli("predict", "--model", str(folder), "--threads", "1", "a text https://t.co/x")
    assert result.exit_code == 0 and result.stderr.count("predates serving cleaning") == 1
    assert "predates" not in result.stdout


def test_training_cleaning_is_applied_at_serving(variant, tmp_path):
    """A variant whose export.json records that training deleted URLs and @handles (CONSTRAINT): a text with
    them gets the same answer as without from Classifier and predict; clean=False / --no-clean feed the raw text
    (other tokens, other logits); an export.json of older edgefn, without the field, loads uncleaned."""
    assert runs.read_variant_manifest(variant).cleaning == []  # the tiny run records no training cleaning
    folder = tmp_path / "fp32"
    shutil.copytree(variant, folder)
    record = runs.read_json(folder / runs.EXPORT_MANIFEST)
    runs.write_json(folder / runs.EXPORT_MANIFEST, {**record, "cleaning": ["drop-urls", "drop-handles"]})
    plain = "Vaccines are safe, the health ministry says."
    noisy = "Vaccines are safe, @MoHFW_INDIA the health ministry says. https://t.co/Ab12cD www.mohfw.gov.in"
    clf = Classifier.from_folder(folder, threads=1)
    assert clf.cleaning == ("drop-urls", "drop-handles") and clf.clean([noisy]) == [plain]
    with_url, without = clf.predict([noisy, plain])
    assert with_url.logits == without.logits and with_url.prob_fake == without.prob_fake
    raw = Classifier.from_folder(folder, threads=1, clean=False)
    assert raw.cleaning == () and raw.clean([noisy]) == [noisy]
    assert raw.predict([noisy])[0].logits != with_url.logits
    np.testing.assert_allclose(raw.predict([plain])[0].logits, without.logits, atol=1e-6)

    full = ("--precision", "full")
    rows = parse_jsonl(
        run_cli("predict", "--model", str(folder), "--threads", "1", *full, noisy, plain).stdout
    )
    assert rows[0]["prob_fake"] == rows[1]["prob_fake"] == pytest.approx(without.prob_fake, abs=1e-6)
    result = run_cli("predict", "--model", str(folder), "--threads", "1", *full, "--no-clean", noisy)
    assert result.exit_code == 0, result.output
    expected = list(raw.predict([noisy])[0].logits)
    assert parse_jsonl(result.stdout)[0]["logits"] == pytest.approx(expected, abs=1e-6)

    del record["cleaning"]  # as export.json of older edgefn
    runs.write_json(folder / runs.EXPORT_MANIFEST, record)
    assert runs.verify_variant(folder).cleaning is None  # export.json is not among the hashed files
    assert Classifier.from_folder(folder, threads=1).cleaning == ()
    record["cleaning"] = ["drop-urls", "rot13"]  # a rule of a newer edgefn is refused, never skipped
    runs.write_json(folder / runs.EXPORT_MANIFEST, record)
    with pytest.raises(EdgefnError, match=r"export.json: unknown cleaning rule\(s\) 'rot13'"):
        Classifier.from_folder(folder, threads=1)


def test_text_file_stdin_and_csv_output(variant, clf, tmp_path):
    """A .txt file (blank line kept), stdin and "-" give the same predictions; CSV output parses back."""
    texts = ["covid vaccine causes magnetism", "", "WHO publishes new guidance on masks"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    from_file = run_cli("predict", "--model", str(variant), "--input", str(tmp_path / "in.txt"))
    from_stdin = run_cli("predict", "--model", str(variant), input="\n".join(texts) + "\n")
    from_dash = run_cli("predict", "--model", str(variant), "-", input="\n".join(texts))
    assert from_file.exit_code == from_stdin.exit_code == from_dash.exit_code == 0, from_file.output
    expected = [p.label_id for p in clf.predict(texts)]
    for result in (from_file, from_stdin, from_dash):
        assert [r["label_id"] for r in parse_jsonl(result.stdout)] == expected
    out = tmp_path / "out" / "preds.csv"
    result = run_cli(
        "predict",
        "--model",
        str(variant),
        "--input",
        str(tmp_path / "in.txt"),
        "--format",
        "csv",
        "--precision",
        "full",
        "--output",
        str(out),
    )
    assert result.exit_code == 0 and "3 predictions" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [int(r["index"]) for r in rows] == [0, 1, 2]
    assert [int(r["label_id"]) for r in rows] == expected
    assert float(rows[0]["logit_fake"]) == pytest.approx(clf.predict(texts)[0].logits[1], abs=1e-6)
    assert float(rows[0]["ood_score"]) == pytest.approx(clf.predict(texts)[0].ood_score, abs=1e-6)


def test_csv_and_jsonl_columns(variant, clf, tmp_path):
    """--column picks a CSV/JSONL column; a missing column exits 2 listing the columns found, writing nothing."""
    texts = ["masks stop the spread, says CDC", "5G towers spread the virus 😷"]
    with open(tmp_path / "in.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "tweet"], [1, texts[0]], [2, texts[1]]])
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"tweet": t}) + "\n" for t in texts), encoding="utf-8"
    )
    expected = [p.label_id for p in clf.predict(texts)]
    for name in ("in.csv", "in.jsonl"):
        result = run_cli(
            "predict", "--model", str(variant), "--input", str(tmp_path / name), "--column", "tweet"
        )
        assert result.exit_code == 0, result.output
        assert [r["label_id"] for r in parse_jsonl(result.stdout)] == expected
    out = tmp_path / "never.jsonl"
    result = run_cli(
        "predict", "--model", str(variant), "--input", str(tmp_path / "in.csv"), "--output", str(out)
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {tmp_path / 'in.csv'} has no column 'text'; columns found: id, tweet; pick one with --column"
    )
    assert not out.exists() and list(tmp_path.glob(".never*")) == []


def test_non_utf8_input_names_the_line(variant, tmp_path):
    """Non-UTF-8 bytes exit 2 naming the line and --encoding; with --encoding latin-1 the file predicts."""
    path = tmp_path / "latin.txt"
    path.write_bytes("first text\nsecond text\ncaf\xe9 au lait\n".encode("latin-1"))
    result = run_cli("predict", "--model", str(variant), "--input", str(path))
    assert result.exit_code == 2
    assert f"{path} line 3: byte 0xe9 is not valid utf-8" in result.stderr
    assert "--encoding" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    ok = run_cli("predict", "--model", str(variant), "--input", str(path), "--encoding", "latin-1")
    assert ok.exit_code == 0 and len(parse_jsonl(ok.stdout)) == 3


@pytest.mark.parametrize("scheme", ["int8-dynamic", "fp16"])
def test_quantised_variants_match_export_figures(variant, clf, scheme):
    """int8-dynamic and fp16 folders reproduce the validation accuracy export.json records and agree with fp32."""
    folder = variant.parent / scheme
    val = RunFolder(variant.parents[1]).read_split("validation")
    runtime = Classifier.from_folder(folder, threads=1)
    got = runtime.predict_logits(val.texts)
    ref = clf.predict_logits(val.texts)
    accuracy = float((got.argmax(-1) == np.array(val.labels)).mean())
    manifest = runtime.manifest
    assert abs(accuracy - manifest.validation_accuracy) <= 1 / len(val) + 1e-9  # at most one text differs
    assert 0.05 < ref.argmax(-1).mean() < 0.95  # the tiny model does not predict one class only
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.97
    assert got.dtype == np.float32 and np.abs(got - ref).max() <= 0.5
    expected_note = "fp16 is meant for CUDAExecutionProvider; running on CPUExecutionProvider"
    assert runtime.provider_note == (expected_note if scheme == "fp16" else None)


def test_run_folder_as_model_lists_its_variants(variant):
    """Passing the run folder instead of a variant exits 2 and names the variant folders to use."""
    run = variant.parents[1]
    result = run_cli("predict", "--model", str(run), "text")
    assert result.exit_code == 2
    listed = ", ".join(str(RunFolder(run).variant_dir(v)) for v in ("fp16", "fp32", "int8-dynamic"))
    assert f"this is a run folder; pass one of its variants: {listed}" in result.stderr


def test_hash_mismatch_is_refused(variant, tmp_path):
    """A model.onnx that no longer matches export.json is refused by the API and by `edgefn predict`."""
    copy = tmp_path / "fp32"
    shutil.copytree(variant, copy)
    with open(copy / runs.ONNX_FILE, "ab") as f:
        f.write(b"\0")
    with pytest.raises(EdgefnError, match="does not match the hash"):
        Classifier.from_folder(copy)
    result = run_cli("predict", "--model", str(copy), "some text")
    assert result.exit_code == 2 and "does not match the hash" in result.stderr and result.stdout == ""


def test_unavailable_provider_lists_available(variant):
    """Asking for CUDA without it names the providers this onnxruntime build has."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here")
    with pytest.raises(EdgefnError, match="CUDAExecutionProvider is not available.*CPUExecutionProvider"):
        Classifier.from_folder(variant, provider="cuda")


def test_lines_split_at_newlines_only(variant, clf):
    """U+2028, U+0085 and form feeds stay inside their line: one prediction per input line, from stdin, a .txt
    file and JSONL with a raw U+2028 inside a string."""
    texts = ["a\u2028b\x85c\x0cd", "second line"]
    raw = (texts[0] + "\n" + texts[1] + "\r\n").encode("utf-8")
    expected = [p.label_id for p in clf.predict(texts)]
    result = run_cli("predict", "--model", str(variant), input=raw)
    assert result.exit_code == 0, result.output
    assert [r["label_id"] for r in parse_jsonl(result.stdout)] == expected
    jsonl = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    assert "\u2028" in jsonl
    for name, content in (("in.txt", raw), ("in.jsonl", jsonl.encode("utf-8"))):
        path = variant.parents[2] / name
        path.write_bytes(content)
        out = run_cli("predict", "--model", str(variant), "--input", str(path))
        assert out.exit_code == 0, out.output
        assert [r["index"] for r in parse_jsonl(out.stdout)] == [0, 1]
        assert [r["label_id"] for r in parse_jsonl(out.stdout)] == expected
