"""ALBERT with its real kind of tokenizer: a SentencePiece model trained here, through every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.runs import RunFolder
from tests.helpers import constraint_split

spm = pytest.importorskip("sentencepiece", reason="the dev extra installs sentencepiece")


def make_albert_spm_folder(folder: Path, texts: list[str], vocab_size: int = 2000) -> Path:
    """A hub-style tiny ALBERT folder (config.json, model.safetensors, spiece.model, tokenizer.json) whose
    SentencePiece unigram model is trained on `texts` with ALBERT's special pieces and ids."""
    from transformers import AlbertConfig, AlbertForSequenceClassification, AlbertTokenizerFast

    folder.mkdir(parents=True)
    corpus = folder.parent / "spm-corpus.txt"
    corpus.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "spiece"),
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        pad_piece="<pad>",
        unk_piece="<unk>",
        bos_piece="[CLS]",
        eos_piece="[SEP]",
        user_defined_symbols=["[MASK]"],
        character_coverage=1.0,
        minloglevel=2,
    )
    (folder / "spiece.vocab").unlink()
    tok = AlbertTokenizerFast(vocab_file=str(folder / "spiece.model"))
    tok.save_pretrained(folder)
    config = AlbertConfig(
        vocab_size=tok.vocab_size,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
        pad_token_id=0,
    )
    AlbertForSequenceClassification(config).save_pretrained(folder)
    return folder


def _cli(argv: list[str]) -> str:
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    return result.output


def test_albert_with_sentencepiece_through_finetune_export_bench_predict(
    shared_data: Path, tmp_path: Path
) -> None:
    """finetune -> export -> bench -> predict on an ALBERT folder with a SentencePiece tokenizer: every
    variant tokenises exactly as SentencePiece does and fp32 predicts as the PyTorch checkpoint does."""
    from transformers import AlbertTokenizer, AutoTokenizer

    from edgefn.engines.pytorch import load_reference
    from edgefn.runtime.classifier import Classifier

    train = constraint_split(shared_data, "train", 1500)
    model_dir = make_albert_spm_folder(tmp_path / "tiny-albert-spm", train.texts)
    run = RunFolder(tmp_path / "run")
    _cli(
        ["finetune", str(model_dir), "--data", "constraint", "--run-dir", str(run.path), "--epochs", "1"]
        + ["--max-train-samples", "200", "--max-val-samples", "64", "--max-test-samples", "64"]
        + ["--max-length", "48"]
    )
    assert run.status() == "complete"
    assert run.read_metrics()["weights_source"] == "local"
    _cli(
        [
            "export",
            "--run-dir",
            str(run.path),
            "--quantize",
            "int8-dynamic,int8-static",
            "--max-val-samples",
            "64",
        ]
    )
    assert run.variant_names() == ["fp32", "int8-dynamic", "int8-static"]
    _cli(
        [
            "bench",
            "--run-dir",
            str(run.path),
            "--batch-sizes",
            "1,8",
            "--min-time",
            "0.02",
            "--max-test-samples",
            "16",
        ]
        + ["--peers", "none", "--rounds", "1"]
    )
    report = runs.read_json(run.bench_file("json"))
    assert {r["variant"]: r["status"] for r in report["results"]} == {
        "pytorch": "ok",
        "fp32": "ok",
        "int8-dynamic": "ok",
        "int8-static": "ok",
    }

    texts = run.read_split("test").texts
    training = AutoTokenizer.from_pretrained(str(run.checkpoint))  # what the fine-tune tokenised with
    slow = AlbertTokenizer(vocab_file=str(run.checkpoint / "spiece.model"))  # SentencePiece itself
    assert training.is_fast and not slow.is_fast
    for name in run.variant_names():
        tokenizer = json.loads((run.variant_dir(name) / runs.TOKENIZER_FILE).read_text(encoding="utf-8"))
        assert tokenizer["model"]["type"] == "Unigram"
        encodings = Classifier.from_folder(run.variant_dir(name), max_length=512).encoder.encode(texts)
        assert [e.ids for e in encodings] == [training(t, truncation=True)["input_ids"] for t in texts]
        # The fast tokenizer's conversion of the SentencePiece model differs from SentencePiece on some
        # emoji and replacement characters (measured here: about 4% of CONSTRAINT test texts).
        same = sum(e.ids == slow.encode(t, truncation=True) for e, t in zip(encodings, texts, strict=True))
        assert same / len(texts) >= 0.9, same
    texts = texts[:32]
    fp32 = Classifier.from_folder(run.variant_dir("fp32"), max_length=48)
    torch_reference = load_reference(run.checkpoint, max_length=48)
    onnx_logits, torch_logits = fp32.predict_logits(texts), torch_reference.predict_logits(texts)
    assert abs(onnx_logits - torch_logits).max() < 1e-4

    inputs = tmp_path / "texts.txt"
    inputs.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    _cli(
        [
            "predict",
            "--model",
            str(run.variant_dir("int8-static")),
            "--input",
            str(inputs),
            "--output",
            str(out),
        ]
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = Classifier.from_folder(run.variant_dir("int8-static")).predict(texts)
    assert [r["index"] for r in rows] == list(range(len(texts)))
    assert [r["label"] for r in rows] == [p.label for p in expected]
