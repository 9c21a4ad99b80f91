"""Tests for `edgefn bench`: report grid, latency statistics, providers, accuracy deltas, FLOPs, errors."""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.bench.benchmark import BenchConfig, bench, score
from edgefn.bench.measure import count_graph_flops, fit_flops_model, matmul_flops, summarize_placement
from edgefn.bench.targets import plan_targets
from edgefn.cli.commands import main
from edgefn.core.errors import EdgefnError
from edgefn.runs import RunFolder
from edgefn.runtime import engines, inference
from edgefn.runtime.inference import CPU, CUDA

QUICK = dict(
    batch_sizes=(1, 4),
    seq_len=32,
    samples=48,
    min_time_s=0.02,
    min_iters=3,
    warmup=1,
    threads=1,
    peers=(),
    rounds=1,
)


def export_for_tests(run_dir: Path) -> None:
    """`edgefn export --quantize int8` on the run, with small parity and validation checks."""
    from edgefn.export.exporter import ExportConfig, export

    export(
        ExportConfig(
            run_dir=run_dir,
            schemes=("int8-dynamic",),
            parity_samples=8,
            eval_samples=16,
            saturation_check=False,
            threads=1,
        )
    )


@pytest.fixture(scope="module")
def exported_run(tiny_run_factory, tmp_path_factory) -> Path:
    """A copy of the tiny BERT run with fp32 and int8-dynamic ONNX variants."""
    run_dir = tmp_path_factory.mktemp("bench") / "run"
    shutil.copytree(tiny_run_factory("test-tiny-bert"), run_dir)
    export_for_tests(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def report(exported_run):
    """One quick bench of the tiny run on CPU plus a requested CUDA provider (absent here)."""
    return bench(BenchConfig(run_dir=exported_run, providers=("cpu", "cuda"), **QUICK))


def test_report_has_every_row_and_column(report, exported_run):
    """report.csv holds variants x providers x batch sizes x input modes, with every promised column."""
    with open(RunFolder(exported_run).bench_file("csv")) as f:
        rows = list(csv.DictReader(f))
    keys = {(r["variant"], r["provider"], r["batch_size"], r["input_mode"]) for r in rows}
    expected = {
        (v, p, str(b), m)
        for v, p in [
            ("pytorch", "torch-cpu"),
            ("pytorch", "torch-cuda"),
            ("fp32", CPU),
            ("fp32", CUDA),
            ("int8-dynamic", CPU),
            ("int8-dynamic", CUDA),
        ]
        for b in (1, 4)
        for m in ("fixed", "real")
    }
    assert keys == expected and len(rows) == len(expected)
    for col in (
        "latency_p50_ms",
        "throughput_samples_per_s",
        "size_mb",
        "params",
        "accuracy",
        "accuracy_delta",
        "flops_per_sample",
        "achieved_gflops",
        "peak_fraction",
    ):
        assert col in rows[0]
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 12 and all(float(r["latency_p50_ms"]) > 0 and float(r["peak_fraction"]) > 0 for r in ok)
    fp32 = next(r for r in ok if r["variant"] == "fp32")
    int8 = next(r for r in ok if r["variant"] == "int8-dynamic")
    assert float(int8["size_mb"]) < 0.5 * float(fp32["size_mb"])
    assert int(fp32["params"]) > 0
    md = (exported_run / "bench" / "report.md").read_text()
    assert "| int8-dynamic | CPUExecutionProvider |" in md
    for name in ("latency.png", "tradeoff.png"):
        assert (exported_run / "bench" / name).read_bytes()[:4] == b"\x89PNG"


def test_latency_statistics_come_from_samples(report, exported_run):
    """p50/p90/p99/mean/stdev/throughput in report.json recompute from the raw per-call samples."""
    data = json.loads((RunFolder(exported_run).bench_file("json")).read_text())
    checked = 0
    for result in data["results"]:
        for m in result["measurements"]:
            lat = m["latency"]
            per_sample = [ms / n for ms, n in zip(lat["call_ms"], lat["items"])]
            assert lat["count"] == len(per_sample) >= QUICK["min_iters"]
            assert lat["p50_ms"] == pytest.approx(np.percentile(per_sample, 50))
            assert lat["p90_ms"] == pytest.approx(np.percentile(per_sample, 90))
            assert lat["p99_ms"] == pytest.approx(np.percentile(per_sample, 99))
            assert lat["mean_ms"] == pytest.approx(statistics.fmean(per_sample))
            assert lat["stdev_ms"] == pytest.approx(statistics.stdev(per_sample))
            assert lat["throughput_samples_per_s"] == pytest.approx(
                1000 * sum(lat["items"]) / sum(lat["call_ms"])
            )
            assert sum(lat["call_ms"]) / 1000 >= QUICK["min_time_s"]
            if m["mode"] == "fixed":
                assert set(lat["items"]) == {m["batch_size"]} and set(m["seq_lens"]) == {QUICK["seq_len"]}
            else:
                assert max(lat["items"]) == m["batch_size"] and len(m["seq_lens"]) == lat["count"]
            checked += 1
    assert checked == 3 * 2 * 2


def test_unavailable_provider_is_reported(report):
    """A requested CUDA provider that is absent appears as unavailable with a reason, for every variant."""
    for variant, provider in [("pytorch", "torch-cuda"), ("fp32", CUDA), ("int8-dynamic", CUDA)]:
        r = report.result(variant, provider)
        assert r.status == "unavailable" and r.reason and not r.measurements


def test_accuracy_deltas_against_reference(report, exported_run):
    """Accuracy, agreement and deltas recompute from the stored predictions against PyTorch on CPU."""

    labels = RunFolder(exported_run).read_split("test").labels[: QUICK["samples"]]
    ref = report.result("pytorch", "torch-cpu")
    assert report.reference == "pytorch on torch-cpu" and len(ref.predictions) == QUICK["samples"]
    ref_acc = np.mean(np.array(ref.predictions) == labels)
    for variant in ("pytorch", "fp32", "int8-dynamic"):
        r = report.result(variant, "torch-cpu" if variant == "pytorch" else CPU)
        acc = np.mean(np.array(r.predictions) == labels)
        assert r.accuracy.accuracy == pytest.approx(acc)
        assert r.accuracy.delta["accuracy"] == pytest.approx(acc - ref_acc)
        assert r.accuracy.agreement == pytest.approx(np.mean(np.array(r.predictions) == ref.predictions))
    assert report.result("fp32", CPU).accuracy.agreement == 1.0  # same model, same predictions


def test_flops_of_a_matmul_graph(tmp_path):
    """A graph with one MatMul [B,S,K]x[K,N] and one Gemm counts 2*M*K*N each, at any batch and length."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k, n = 24, 40
    w = numpy_helper.from_array(np.ones((k, n), np.float32), "W")
    g = numpy_helper.from_array(np.ones((7, n), np.float32), "G")  # Gemm with transB: [rows, n] x [7, n]^T
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["y"]),
            helper.make_node("Reshape", ["y", "shape"], ["y2"]),
            helper.make_node("Gemm", ["y2", "G"], ["z"], transB=1),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", k])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [w, g, numpy_helper.from_array(np.array([-1, n], np.int64), "shape")],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    count = count_graph_flops(path, 3, 5)
    assert count.by_op == {"MatMul": 2 * 15 * k * n, "Gemm": 2 * 15 * n * 7} and not count.uncounted
    assert matmul_flops([2, 4, 8, 16], [16, 3]) == 2 * 2 * 4 * 8 * 16 * 3


def test_flops_model_matches_bert_arithmetic(exported_run, tiny_run_factory, tmp_path):
    """The fitted FLOPs of the tiny BERT graph, fused (O2 default: Attention ops) or plain (--optimize none),
    equal the analytic count (hidden 32, ffn 64, 2 layers); the bench uses the fp32 count for every variant."""
    from edgefn.bench.benchmark import _flops_models
    from edgefn.export.exporter import ExportConfig, export
    from edgefn.export.graph import op_counts

    shutil.copytree(tiny_run_factory("test-tiny-bert"), tmp_path / "run")
    export(
        ExportConfig(tmp_path / "run", schemes=("none",), optimize="none", parity_samples=8, eval_samples=16)
    )
    plain = tmp_path / "run" / "onnx" / "fp32" / "model.onnx"
    assert op_counts(plain).get("Attention", 0) == 0
    assert op_counts(RunFolder(exported_run).variant_dir("fp32") / runs.ONNX_FILE)["Attention"] == 2
    models = {v: (RunFolder(exported_run).variant_dir(v), {}) for v in ("fp32", "int8-dynamic")}
    models["pytorch"] = (RunFolder(exported_run).checkpoint, {})
    fitted = _flops_models(models, say=print)
    assert fitted["int8-dynamic"] is fitted["fp32"] is fitted["pytorch"]
    for path in (RunFolder(exported_run).variant_dir("fp32") / runs.ONNX_FILE, plain):
        fm = fit_flops_model(path)
        h, ffn, layers, seq = 32, 64, 2, 50
        analytic = (
            layers * (seq * (4 * 2 * h * h + 2 * 2 * h * ffn) + 2 * 2 * seq * seq * h) + 2 * h * h + 2 * h * 2
        )
        assert fm.per_sample(seq) == pytest.approx(analytic)
        assert count_graph_flops(path, 2, seq).total == 2 * analytic


def test_shape_inference_leaves_no_files_behind(exported_run, tmp_path, monkeypatch):
    """ONNX Runtime's symbolic shape inference dumps the model into the working directory when it cannot
    finish (as on the quantized fused graph of the tuned int8 recipe); edgefn runs it elsewhere, so the
    user's folder stays clean."""
    from edgefn.export.exporter import ExportConfig, export
    from edgefn.export.graph import infer_shapes_symbolic

    run = tmp_path / "run"
    shutil.copytree(exported_run, run, ignore=shutil.ignore_patterns("onnx", "bench"))
    export(ExportConfig(run, schemes=("int8-dynamic",), target="avx2", eval_samples=16, parity_samples=8))
    model = RunFolder(run).variant_dir("int8-dynamic") / runs.ONNX_FILE
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert (
        infer_shapes_symbolic(onnx.load(str(model))) is None
    )  # incomplete: the case that used to write files
    count_graph_flops(model, 1, 8)
    assert list(work.iterdir()) == []


def test_cuda_fallback_detected_from_profile():
    """Int8 nodes that ran on CPU inside a CUDA session are counted and flagged with the fp16 advice."""

    def node(op, provider):
        return {"cat": "Node", "name": f"{op}_kernel_time", "args": {"op_name": op, "provider": provider}}

    events = (
        [node("MatMulInteger", CPU)] * 3
        + [node("DynamicQuantizeLinear", CPU)] * 3
        + [node("MemcpyToHost", CUDA)] * 2
        + [node("LayerNormalization", CUDA)] * 4
        + [{"cat": "Session", "name": "model_run", "args": {}}]
    )
    p = summarize_placement(events, CUDA)
    assert p.fallback_ops == {"DynamicQuantizeLinear": 3, "MatMulInteger": 3} and p.copies == 2
    assert p.by_provider[CUDA] == {"MemcpyToHost": 2, "LayerNormalization": 4}
    assert "fp16" in p.warning and "6 nodes" in p.warning
    clean = summarize_placement([node("MatMul", CUDA)] * 5, CUDA)
    assert clean.warning is None and clean.fallback_ops == {}


def test_provider_planning_with_gpu_present(exported_run, monkeypatch):
    """With CUDA in onnxruntime and a GPU, every variant runs on both; fp16 is refused on CPU only."""
    variants = {
        "pytorch": (RunFolder(exported_run).checkpoint, runs.VariantManifest()),
        "int8-dynamic": (exported_run / "onnx/int8-dynamic", runs.VariantManifest(scheme="int8-dynamic")),
        "fp16": (exported_run / "onnx/fp32", runs.VariantManifest(scheme="fp16", execution_providers=[CUDA])),
    }

    def plan(providers, available, gpu):  # what the engines' availability reads: the build's providers, a GPU
        monkeypatch.setattr(inference, "available_providers", lambda: available)
        monkeypatch.setattr(engines, "cuda_device_present", lambda: gpu)
        return plan_targets(variants, providers)

    targets = plan((CPU, CUDA), [CUDA, CPU], gpu=True)
    status = {(t.variant, t.provider): (t.status, t.reason) for t in targets}
    assert status[("pytorch", "torch-cuda")] == ("pending", None)
    assert status[("int8-dynamic", CUDA)] == ("pending", None)
    assert status[("fp16", CPU)] == ("unavailable", f"fp16 needs {CUDA}")
    assert status[("fp16", CUDA)] == ("pending", None)
    no_gpu = {(t.variant, t.provider): t.reason for t in plan((CPU, CUDA), [CUDA, CPU], False)}
    assert no_gpu[("fp16", CUDA)] == "no CUDA GPU found" and no_gpu[("pytorch", "torch-cuda")]
    cpu_build = {(t.variant, t.provider): t.reason for t in plan((CUDA,), [CPU], True)}
    assert "install onnxruntime-gpu" in cpu_build[("int8-dynamic", CUDA)]


def test_score_per_class_and_weighted():
    """Weighted and per-class metrics match hand counts on a small example."""
    acc = score([0, 0, 1, 1], [0, 1, 1, 1], reference=[0, 0, 1, 1])
    assert acc.accuracy == 0.75 and acc.agreement == 0.75
    assert (
        acc.per_class["fake"]["precision"] == pytest.approx(2 / 3) and acc.per_class["real"]["recall"] == 0.5
    )


def test_hash_mismatch_is_refused(exported_run, tmp_path):
    """A model.onnx changed after export is refused with a one-line error naming the file."""
    run_dir = tmp_path / "run"
    shutil.copytree(exported_run, run_dir, ignore=shutil.ignore_patterns("bench"))
    with open(RunFolder(run_dir).variant_dir("int8-dynamic") / runs.ONNX_FILE, "ab") as f:
        f.write(b"\0")
    with pytest.raises(EdgefnError, match="int8-dynamic/model.onnx does not match the hash"):
        bench(BenchConfig(run_dir=run_dir, **QUICK))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-sizes", "1,x"], "--batch-sizes takes a comma list of positive integers"),
        (["--batch-sizes", "0"], "--batch-sizes takes a comma list of positive integers"),
        (["--providers", "gpu9"], "unknown provider 'gpu9'"),
        (["--variants", "int4"], "unknown variant(s) int4"),
        (["--max-length", "1024"], "--max-length: 1024 exceeds the model's 512 positions"),
    ],
)
def test_cli_bad_input(exported_run, args, message):
    """Bad options give a one-line error and exit code 2."""
    result = CliRunner().invoke(main, ["bench", "--run-dir", str(exported_run), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_missing_run_and_no_variants(tiny_run_factory, tmp_path):
    """No run folder, or a run without ONNX variants, gives a one-line error that says what to do."""
    result = CliRunner().invoke(main, ["bench", "--run-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "run folder not found" in result.output
    result = CliRunner().invoke(main, ["bench", "--run-dir", str(tiny_run_factory("test-tiny-bert"))])
    assert result.exit_code == 2 and "run `edgefn export` first" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_bench_prints_summary(exported_run, tmp_path):
    """The CLI benches one variant quickly, prints progress, the summary table and the output paths."""
    run_dir = tmp_path / "run"
    shutil.copytree(exported_run, run_dir, ignore=shutil.ignore_patterns("bench"))
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "--run-dir",
            str(run_dir),
            "--variants",
            "int8-dynamic",
            "--batch-sizes",
            "2",
            "--no-real-lengths",
            "--max-test-samples",
            "16",
            "--min-time",
            "0.01",
            "--threads",
            "1",
            "--max-length",
            "16",
            "--peers",
            "none",
            "--rounds",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "int8-dynamic on CPUExecutionProvider: ok" in result.output
    assert "fixed b2" in result.output and str(RunFolder(run_dir).bench_file("csv")) in result.output
    with open(RunFolder(run_dir).bench_file("csv")) as f:
        rows = list(csv.DictReader(f))
    assert [(r["variant"], r["batch_size"], r["input_mode"]) for r in rows] == [
        ("int8-dynamic", "2", "fixed")
    ]
    assert rows[0]["accuracy_delta"] == "0.0"  # the only row is its own reference


def test_real_lengths_time_classifier_predict(report, exported_run, monkeypatch):
    """Bench's real-lengths rows time `Classifier.predict` itself (one call per timed batch, same texts), and
    bench's predictions are exactly those of `Classifier.predict` on the test texts."""
    from edgefn.bench import worker as bench_worker
    from edgefn.runtime.classifier import Classifier

    texts = RunFolder(exported_run).read_split("test").texts[: QUICK["samples"]]
    variant = RunFolder(exported_run).variant_dir("int8-dynamic")
    expected = [p.label_id for p in Classifier.from_folder(variant, threads=1).predict(texts)]
    assert report.result("int8-dynamic", CPU).predictions == expected

    calls: list[list[str]] = []
    real_predict = Classifier.predict

    def spy(self, batch_texts, batch_size=None):
        calls.append(list(batch_texts))
        return real_predict(self, batch_texts, batch_size)

    monkeypatch.setattr(Classifier, "predict", spy)
    job = bench_worker.Job("int8-dynamic", CPU, str(variant), texts, (4,), 32, 128, ("real",), 1, 1, 3, 0.0)
    out = bench_worker.run_job(job)
    (measured,) = out.measurements
    timed = measured["latency"].count
    assert len(calls) == 1 + timed + 1  # warm-up, every timed call, then the prediction pass
    assert all(len(c) == 4 for c in calls[: 1 + timed]) and calls[-1] == texts
    assert all(set(c) <= set(texts) for c in calls)
    assert out.predictions == expected


def test_accuracy_metrics_recomputed_from_recorded_predictions(report, exported_run):
    """Every row's balanced accuracy, macro F1, ROC-AUC and calibration error equal sklearn's on the labels,
    predictions and probabilities the report recorded."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    from edgefn.core.metrics import calibration

    labels = RunFolder(exported_run).read_split("test").labels[: report.config["samples_used"]]
    checked = 0
    for r in report.results:
        if r.status != "ok":
            continue
        acc = r.accuracy
        assert len(r.prob_fake) == len(r.predictions) == len(labels)
        assert acc.balanced_accuracy == pytest.approx(balanced_accuracy_score(labels, r.predictions))
        assert acc.f1_macro == pytest.approx(f1_score(labels, r.predictions, average="macro"))
        assert acc.roc_auc == pytest.approx(roc_auc_score(labels, r.prob_fake))
        assert acc.ece == pytest.approx(calibration(labels, r.prob_fake)["ece"])
        assert all((p > 0.5) == (k == 1) for p, k in zip(r.prob_fake, r.predictions) if abs(p - 0.5) > 1e-6)
        checked += 1
    assert checked >= 3


def test_cli_quick_bench_skips_peers_peak_and_rounds(exported_run, tmp_path):
    """`bench --quick` measures the run's variants and PyTorch only, in one measuring process per target,
    without the MatMul peak probe; with 16 test texts it warns on stderr (one line) that one text outweighs
    --max-drop."""
    run_dir = tmp_path / "run"
    shutil.copytree(exported_run, run_dir, ignore=shutil.ignore_patterns("bench"))
    argv = ["bench", "--run-dir", str(run_dir), "--quick", "--batch-sizes", "2", "--no-real-lengths"]
    argv += ["--max-test-samples", "16", "--min-time", "0.01", "--threads", "1", "--max-length", "16"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "one text of 16 is 6.25 accuracy points" in warnings[0]
    assert "warning" not in result.stdout and "MatMul peak" not in result.stderr
    assert "process 1/1" in result.stderr and "process 2" not in result.stderr
    saved = json.loads(RunFolder(run_dir).bench_file("json").read_text())
    assert saved["peak"] == {} and saved["config"]["processes"] == 1 and not saved["config"]["peak_probe"]
    assert {r["variant"] for r in saved["results"]} == {"pytorch", "fp32", "int8-dynamic"}
    assert not any(r.get("peer") for r in saved["results"])
