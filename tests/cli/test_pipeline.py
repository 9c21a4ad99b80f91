"""`edgefn run` end to end on a tiny preset, and the demo's settings."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.pipeline import demo_config
from edgefn.runs import RunFolder


def test_run_writes_every_stage_into_one_folder(tmp_path: Path) -> None:
    """finetune -> export -> bench in one command: checkpoint, variants and a report covering all of them."""
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "test-tiny-bert",
            "--data",
            "sample",
            "--epochs",
            "1",
            "--max-length",
            "64",
            "--run-dir",
            str(run),
            "--quantize",
            "int8-dynamic",
            "--batch-sizes",
            "1,4",
            "--min-time",
            "0.05",
            "--max-test-samples",
            "40",
            "--peers",
            "ort-default",
            "--rounds",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "what to ship" in result.output
    assert any(line.startswith("real b4 ") for line in result.output.splitlines())  # the verdict table's row
    variants = [p.name for p in runs.list_variants(run)]
    assert variants == ["fp32", "int8-dynamic"]
    report = json.loads((RunFolder(run).bench_file("json")).read_text())
    rows = {(r["variant"], r["provider"]) for r in report["results"]}
    assert {
        ("pytorch", "torch-cpu"),
        ("fp32", "CPUExecutionProvider"),
        ("int8-dynamic", "CPUExecutionProvider"),
        ("ort-default", "CPUExecutionProvider"),
    } <= rows
    metrics = json.loads((run / runs.METRICS).read_text())
    assert f"{metrics['test']['accuracy']:.4f}" in result.output
    assert "tradeoff_plot" in result.output and str(run) in result.output


def test_run_refuses_bad_batch_sizes_before_training(tmp_path: Path) -> None:
    """A bad bench option fails at once with exit code 2 and no run folder."""
    result = CliRunner().invoke(
        main,
        [
            "run",
            "test-tiny-bert",
            "--data",
            "sample",
            "--batch-sizes",
            "1,x",
            "--run-dir",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 2 and "--batch-sizes" in result.output
    assert not (tmp_path / "run").exists()


def test_demo_is_offline_minilm_on_sample_with_both_int8_schemes() -> None:
    """The demo uses the bundled minilm, the embedded corpus, fp32 + both int8 schemes, batches 1/8/32 on CPU."""
    cfg = demo_config()
    assert (cfg.finetune.preset, cfg.finetune.data, cfg.finetune.init) == ("minilm", "sample", "pretrained")
    assert set(cfg.export.schemes) == {"int8-dynamic", "int8-static"}
    assert cfg.bench.batch_sizes == (1, 8, 32) and cfg.bench.providers == ("CPUExecutionProvider",)


def test_predict_matches_bench_predictions_for_every_variant(tiny_run_factory, tmp_path: Path) -> None:
    """The torch-free runtime gives, text for text, the predictions `edgefn bench` recorded for each variant."""
    import shutil

    from edgefn.bench.benchmark import BenchConfig, bench
    from edgefn.export.exporter import ExportConfig, export
    from edgefn.runtime.classifier import Classifier

    run = tmp_path / "run"
    shutil.copytree(tiny_run_factory("test-tiny-bert"), run)
    export(
        ExportConfig(run_dir=run, schemes=("int8-dynamic", "int8-static"), eval_samples=32, parity_samples=16)
    )
    report = bench(
        BenchConfig(
            run_dir=run,
            batch_sizes=(8,),
            fixed_shape=False,
            samples=120,
            min_time_s=0.01,
            min_iters=1,
            warmup=0,
            peers=(),
            rounds=1,
        )
    )
    texts = RunFolder(run).read_split("test").texts[:120]
    checked = 0
    for result in report.results:
        if result.variant == "pytorch" or result.status != "ok":
            continue
        preds = [
            p.label_id
            for p in Classifier.from_folder(RunFolder(run).variant_dir(result.variant)).predict(texts)
        ]
        assert preds == result.predictions, result.variant
        assert 0 < sum(preds) < len(preds)  # both classes predicted, so the comparison means something
        checked += 1
    assert checked == 3
