"""`edgefn eval`: a run or a variant scored on a second dataset, metrics recomputed, OOD threshold, CLI."""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.core.cleaning import clean_texts
from edgefn.core.metrics import calibration, classification_metrics
from edgefn.data.catalog import load_data
from edgefn.runs import RunFolder
from edgefn.runtime.classifier import Classifier, ood_scores, read_ood
from edgefn.train.evaluate import EvalConfig, evaluate, format_eval
from tests.helpers import record_training_cleaning

SAMPLES = 120


@pytest.fixture(scope="module")
def run(tiny_run_factory, tmp_path_factory) -> Path:
    """A private copy of the tiny BERT run (eval writes eval/ and ood.json into it), exported to fp32."""
    from edgefn.export.exporter import ExportConfig, export

    path = tmp_path_factory.mktemp("eval") / "tiny"
    shutil.copytree(tiny_run_factory("test-tiny-bert"), path)
    record_training_cleaning(path)  # as a fine-tune on CONSTRAINT: URLs and @handles deleted
    export(ExportConfig(run_dir=path, schemes=("none",), threads=1))
    return path


def test_classification_metrics_imbalance_and_calibration():
    """Balanced accuracy, macro F1, ROC-AUC and ECE match hand-computed values on a tiny imbalanced set."""
    labels, preds, prob = [1, 0, 1, 1], [1, 1, 1, 1], [0.9, 0.9, 0.6, 0.6]
    m = classification_metrics(labels, preds, prob)
    assert m["accuracy"] == 0.75 and m["balanced_accuracy"] == 0.5  # recall fake 1.0, real 0.0
    assert m["f1_macro"] == pytest.approx((0 + 6 / 7) / 2)
    assert m["roc_auc"] == pytest.approx(1 / 6)  # the real row (0.9) ties one fake row, outranks two
    # bins: conf 0.9 (acc 0.5) and conf 0.6 (acc 1.0), half the rows each -> 0.5*0.4 + 0.5*0.4
    assert m["ece"] == pytest.approx(0.4)
    assert [b["n"] for b in calibration(labels, prob)["bins"]] == [2, 2]
    constant = classification_metrics([0] * 9 + [1], [0] * 10)
    assert constant["accuracy"] == 0.9 and constant["balanced_accuracy"] == 0.5 and "roc_auc" not in constant


def test_eval_checkpoint_on_liar(run: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch):
    """The checkpoint scored on LIAR: metrics.json equals metrics recomputed from independent predictions,
    errors.csv holds the misclassified rows, the OOD threshold is the validation scores' 95% quantile, and
    both plots' titles name the run."""
    from edgefn.engines.pytorch import load_reference
    from edgefn.train import evaluate as evaluate_module

    titles = []

    def recording(plot):
        def draw(data, path, title):
            titles.append(title)
            plot(data, path, title)

        return draw

    for name in ("plot_confusion_matrix", "plot_reliability"):
        monkeypatch.setattr(evaluate_module, name, recording(getattr(evaluate_module, name)))
    result = evaluate(EvalConfig(model=run, data=f"liar:{shared_data / 'liar'}", samples=SAMPLES, threads=1))
    out = RunFolder(run).eval_dir("liar")
    assert result.output_dir == out and result.model == "pytorch"
    saved = json.loads(RunFolder.eval_file(out, "metrics").read_text())
    assert saved["trained_on"] is None or isinstance(saved["trained_on"], str)
    assert saved["data"]["rows_scored"] == SAMPLES and saved["in_domain"]["n"] == SAMPLES

    # recompute on the same seeded subset with a fresh reference classifier
    liar = load_data(f"liar:{shared_data / 'liar'}").test
    rows = sorted(random.Random(42).sample(range(len(liar)), SAMPLES))
    texts, labels = [liar.texts[i] for i in rows], [liar.labels[i] for i in rows]
    # the run's training cleaning (CONSTRAINT: URLs and @handles deleted) is applied and recorded
    assert saved["cleaning"] == {
        "applied": True,
        "rules": ["drop-urls", "drop-handles"],
        "from": f"{run / runs.METRICS} (the fine-tune's data record)",
    }
    texts = clean_texts(texts, saved["cleaning"]["rules"])
    clf = load_reference(run / runs.CHECKPOINT, threads=1)
    logits = clf.predict_logits(texts)
    prob = (np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)).tolist()
    expected = classification_metrics(labels, logits.argmax(axis=1).tolist(), prob)
    assert saved["metrics"]["confusion_matrix"] == expected["confusion_matrix"]
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "ece"):
        assert saved["metrics"][key] == pytest.approx(expected[key], abs=1e-6), key
    with open(RunFolder.eval_file(out, "errors"), encoding="utf-8") as f:
        n_errors = sum(1 for _ in csv.reader(f)) - 1
    cm = expected["confusion_matrix"]
    assert n_errors == cm[0][1] + cm[1][0] == result.misclassified
    assert RunFolder.eval_file(out, "reliability").stat().st_size > 1000
    assert titles == [f"{run.name}: pytorch on liar (test)"] * 2

    validation = RunFolder(run).read_split("validation")
    scores = ood_scores(
        clf.predict_logits(clean_texts(validation.texts, saved["cleaning"]["rules"])), "energy"
    )
    ood = read_ood(run, "pytorch", runs.files_fingerprint(RunFolder(run).verify_checkpoint()))
    assert ood is not None and ood.threshold == pytest.approx(float(np.quantile(scores, 0.95)), abs=1e-4)
    assert 0.0 <= saved["ood"]["auroc"] <= 1.0 and saved["ood"]["flagged_in_domain_test"] < 0.3
    text = format_eval(result)
    assert "balanced accuracy" in text and "in-domain" in text and "AUROC" in text


def test_eval_variant_is_torch_free_and_feeds_predict_ood(run: Path, shared_data: Path):
    """A variant is scored without importing torch; afterwards its Classifier flags `ood` by the saved
    threshold, and the variant's files still match their hashes (nothing was written into it)."""
    code = (
        "import sys; from edgefn.train.evaluate import EvalConfig, evaluate; "
        f"r = evaluate(EvalConfig(model={str(run / 'onnx' / 'fp32')!r}, "
        f"data={'constraint:' + str(shared_data / 'covid19-constraint')!r}, samples=80, threads=1)); "
        "print(r.output_dir.name, 'torch' in sys.modules, r.manifest.metrics['n'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["constraint-fp32", "False", "80"]
    runs.verify_variant(run / runs.ONNX_DIR / "fp32")
    clf = Classifier.from_folder(run / runs.ONNX_DIR / "fp32", threads=1)
    assert clf.ood is not None and clf.ood.score == "energy"
    preds = clf.predict(["5G towers spread the virus", "The WHO published new case numbers today."])
    for p in preds:
        assert p.ood == (p.ood_score > clf.ood.threshold)
        assert p.ood_score == pytest.approx(-float(np.log(np.exp(np.array(p.logits)).sum())), abs=1e-5)


def test_cli_eval_and_bad_model(run: Path, shared_data: Path, tmp_path: Path):
    """`edgefn eval` prints in-domain beside new figures and writes the folder; a bad --model exits 2."""
    res = CliRunner().invoke(
        main,
        ["eval", "--model", str(run), "--data", str(shared_data / "isot" / "titles"), "--max-samples", "60"],
    )
    assert res.exit_code == 0, res.output
    assert "isot (test)" in res.output and "balanced accuracy" in res.output
    saved = json.loads((run / "eval" / "isot" / "metrics.json").read_text())
    assert saved["metrics"]["n"] == 60 and saved["data"]["cleaning"]["applied"] is True
    assert (
        saved["cleaning"]["rules"] == ["drop-urls", "drop-handles"] and "cleaning   drop-urls" in res.output
    )
    res = CliRunner().invoke(
        main,
        ["eval", "--model", str(run), "--data", str(shared_data / "isot" / "titles"), "--max-samples", "20"]
        + ["--no-clean"],
    )
    saved = json.loads((run / "eval" / "isot" / "metrics.json").read_text())
    assert res.exit_code == 0 and saved["cleaning"] == {"applied": False, "rules": [], "from": "off"}
    assert saved["data"]["cleaning"]["applied"] is False and "cleaning   off" in res.output
    res = CliRunner().invoke(main, ["eval", "--model", str(tmp_path), "--data", "liar"])
    assert res.exit_code == 2 and "neither a run folder" in res.output and res.output.count("\n") == 1


def test_bench_accuracy_carries_balanced_accuracy_and_macro_f1():
    """bench's Accuracy (and its CSV row) carries balanced accuracy and macro F1 from classification_metrics."""
    from edgefn.bench.benchmark import score
    from edgefn.bench.report import CSV_COLUMNS, Accuracy

    acc = score([0] * 9 + [1], [0] * 10)
    assert acc.accuracy == 0.9 and acc.balanced_accuracy == 0.5
    assert acc.f1_macro == pytest.approx((18 / 19 + 0) / 2)
    assert {"balanced_accuracy", "f1_macro"} <= set(CSV_COLUMNS)
    old = {k: v for k, v in vars(acc).items() if k not in ("balanced_accuracy", "f1_macro")}
    assert Accuracy(**old).balanced_accuracy is None  # reports written before these fields still load
