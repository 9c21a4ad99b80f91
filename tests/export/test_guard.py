"""The guard search: sensitivity ranking, layers kept in float, the budget, the time budget, calibration methods."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.export import guard as guard_module
from edgefn.export import schemes
from edgefn.export.config import ExportConfig
from edgefn.export.exporter import export
from edgefn.export.graph import linear_layers
from edgefn.export.schemes import Int8Layout, SchemeContext
from edgefn.export.sensitivity import rank_layers
from edgefn.runs import RunFolder
from edgefn.runtime.inference import Encoder, length_sorted_batches
from tests.helpers import make_outlier_run

CLASSIFIER = "/classifier/Gemm"  # the layer make_outlier_run breaks
VNNI = "avx512_vnni"  # ONNX Runtime's default dynamic recipe: the same graph and file on every test machine
FAST = dict(target=VNNI, parity_samples=8, saturation_check=False, threads=1)


@pytest.fixture(scope="module")
def outlier_run(tiny_run_factory, tmp_path_factory) -> Path:
    """The tiny BERT run with an outlier classifier weight, fp32 exported (no int8 variant yet)."""
    run = make_outlier_run(tiny_run_factory("test-tiny-bert"), tmp_path_factory.mktemp("guard") / "run")
    export(ExportConfig(run_dir=run, schemes=("none",), **FAST))
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture(scope="module")
def guarded(outlier_run, tmp_path_factory) -> tuple[Path, object]:
    """The outlier run exported with int8-dynamic and int8-static under --max-drop 0.5."""
    run = tmp_path_factory.mktemp("guarded") / "run"
    shutil.copytree(outlier_run, run)
    result = export(ExportConfig(run_dir=run, schemes=("int8-dynamic", "int8-static"), max_drop=0.5, **FAST))
    return run, result


def _plain_model(run: Path, tmp_path: Path) -> Path:
    from edgefn.export.optimum import export_plain_onnx

    export_plain_onnx(RunFolder(run).checkpoint, tmp_path / "plain")
    return tmp_path / "plain" / runs.ONNX_FILE


def _feeds(run: Path, texts: int = 64) -> list[dict[str, np.ndarray]]:
    folder = RunFolder(run)
    encoder = Encoder.from_folder(folder.checkpoint, 128)
    tokens = encoder.encode_compact(folder.read_split("calibration").texts[:texts])
    batches = length_sorted_batches([len(t.ids) for t in tokens], 16)
    return [encoder.feed([tokens[i] for i in b]) for b in batches]


def test_sensitivity_ranks_the_broken_layer_first(outlier_run, tmp_path):
    """The layer whose int8 weights lose its output ranks first, far above the rest, under every int8 layout."""
    model = _plain_model(outlier_run, tmp_path)
    layers = linear_layers(model)
    assert len(layers) == 14  # 2 layers x (q, k, v, attention output, FFN in, FFN out) + pooler + classifier
    for layout in (Int8Layout(False), Int8Layout(True, 8, True), Int8Layout(False, 7)):
        ranked = rank_layers(model, layers, _feeds(outlier_run), layout, tmp_path / "work")
        assert ranked[0].layer.node == CLASSIFIER
        assert ranked[0].error > 0.5  # every weight but the outlier rounds to zero
        assert ranked[1].error < ranked[0].error / 100


def _weight_is_float(graph: onnx.GraphProto, node_name: str) -> bool:
    """The node exists under its name, and its second input is a float initializer (not int8, not dequantized)."""
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    node = next((n for n in graph.node if n.name == node_name), None)
    return node is not None and node.op_type in ("MatMul", "Gemm") and node.input[1] in floats


@pytest.mark.parametrize(
    ("scheme", "target", "gemm_name"),
    [
        ("int8-dynamic", VNNI, CLASSIFIER + "_MatMul"),  # ONNX Runtime's default recipe, the plain graph
        ("int8-dynamic", "avx2", CLASSIFIER + "_MatMul"),  # edgefn's tuned recipe, the fused graph
        ("int8-static", VNNI, CLASSIFIER),
    ],
)
def test_exclusion_leaves_the_named_layers_float(outlier_run, tmp_path, scheme, target, gemm_name):
    """Layers named in float_nodes keep float weights in the written graph (a Gemm under the name ONNX Runtime gives
    its MatMul); every other linear layer is quantized."""
    fp32 = RunFolder(outlier_run).variant_dir("fp32") / runs.ONNX_FILE
    plain = _plain_model(outlier_run, tmp_path)
    ffn = "/bert/encoder/layer.1/output/dense/MatMul"
    ctx = SchemeContext(
        fp32,
        tmp_path / "out",
        tmp_path / "work",
        target,
        _quirks(),
        lambda: _calibration(outlier_run, fp32),
        "minmax",
        lambda: plain,
        float_nodes=(CLASSIFIER, ffn),
    )
    scheme_record = schemes.get_scheme(scheme)
    assert scheme_record.apply is not None
    out = scheme_record.apply(ctx)
    graph = onnx.load(str(tmp_path / "out" / runs.ONNX_FILE)).graph
    assert _weight_is_float(graph, ffn)
    assert _weight_is_float(graph, gemm_name)
    quantized = [
        n for n in graph.node if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention")
    ]
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    qdq = [n for n in graph.node if n.op_type == "MatMul" and set(n.input) & dequantized]
    assert len(quantized) + len(qdq) >= 8  # the other layers are int8
    assert set(out.nodes_kept_float) >= {CLASSIFIER, ffn}
    assert out.settings["float_layers"] == [CLASSIFIER, ffn]


def _quirks():
    from edgefn.core.presets import quirks_for

    return quirks_for("test-tiny-bert", "bert")


def _calibration(run: Path, fp32: Path) -> dict[str, list[list[int]]]:
    from edgefn.export.graph import graph_input_names
    from edgefn.export.variants import calibration_inputs

    folder = RunFolder(run)
    return calibration_inputs(
        folder, Encoder.from_folder(folder.checkpoint, 128), 64, graph_input_names(fp32)
    )


def test_tuned_recipe_keeps_a_fused_attention_float(outlier_run, tmp_path):
    """On the fused graph (edgefn's tuned dynamic recipe), a fused Attention named in float_nodes keeps its packed
    query / key / value weights in float while the other becomes QAttention; it counts as three projections."""
    fp32 = RunFolder(outlier_run).variant_dir("fp32") / runs.ONNX_FILE
    layers = {layer.node: layer for layer in linear_layers(fp32)}
    assert layers["Attention_1"].projections == 3 and layers["Attention_1"].module.endswith(
        "(query, key, value)"
    )
    ctx = SchemeContext(
        fp32, tmp_path / "out", tmp_path / "work", "avx2", _quirks(), float_nodes=("Attention_1",)
    )
    apply = schemes.get_scheme("int8-dynamic").apply
    assert apply is not None
    apply(ctx)
    graph = onnx.load(str(tmp_path / "out" / runs.ONNX_FILE)).graph
    ops = {n.name: n.op_type for n in graph.node}
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    attention = next(n for n in graph.node if n.name == "Attention_1")
    assert ops["Attention_1"] == "Attention" and attention.input[1] in floats
    assert list(ops.values()).count("QAttention") == 1


def test_a_module_name_is_refused_not_ignored(outlier_run, tmp_path):
    """A name that is no node of the quantized graph (a PyTorch module name) stops the export: ONNX Runtime alone
    would quantize the layer without a word."""
    fp32 = RunFolder(outlier_run).variant_dir("fp32") / runs.ONNX_FILE
    plain = _plain_model(outlier_run, tmp_path)
    ctx = SchemeContext(
        fp32,
        tmp_path / "out",
        tmp_path / "work",
        VNNI,
        _quirks(),
        dict,
        "minmax",
        lambda: plain,
        float_nodes=("classifier",),
    )
    apply = schemes.get_scheme("int8-dynamic").apply
    assert apply is not None
    with pytest.raises(EdgefnError, match="asked to stay in float were quantized"):
        apply(ctx)


def test_search_stops_at_the_first_step_inside_the_budget(guarded):
    """Each scheme misses 0.5 points by a wide margin; its guarded twin keeps the classifier in float, is inside,
    and the search stopped there (static: after trying the other calibrations first)."""
    run, result = guarded
    names = [v.name for v in result.variants]
    assert names == ["fp32", "int8-dynamic", "int8-dynamic-guarded", "int8-static", "int8-static-guarded"]
    for scheme in ("int8-dynamic", "int8-static"):
        manifest = runs.verify_variant(RunFolder(run).variant_dir(scheme + runs.GUARDED_SUFFIX))
        record = manifest.guard
        assert record is not None
        assert record["full"]["validation"]["drop_pts"] > 10
        assert record["inside_budget"] and record["stopped"] == "inside the budget"
        assert record["float_layers"] == [CLASSIFIER]
        assert record["guarded"]["validation"]["drop_pts"] <= 0.5
        assert record["trace"][-1]["float_layers"] == [CLASSIFIER]
        assert all(not step["inside"] for step in record["trace"][:-1])
        assert record["int8_layers"] == record["int8_layers_full"] - 1
        assert record["int8_layer_fraction"] == pytest.approx(13 / 14)
        assert record["binding"] == {
            "sample": "validation",
            "measure": "accuracy",
            "lost_pts": {
                "full": record["full"]["validation"]["drop_pts"],
                "guarded": record["guarded"]["validation"]["drop_pts"],
            },
        }
        assert record["recovered_fraction"] > 0.95
        assert record["sensitivity"]["layers"][0]["node"] == CLASSIFIER
        assert manifest.scheme == scheme and manifest.variant == scheme + runs.GUARDED_SUFFIX
        assert CLASSIFIER in (manifest.nodes_kept_float or [])
        assert manifest.validation_accuracy == pytest.approx(record["guarded"]["validation"]["accuracy"])
    static = runs.read_variant_manifest(RunFolder(run).variant_dir("int8-static-guarded")).guard or {}
    tried = {(s["calibration_method"], s["per_channel"]) for s in static["trace"]}
    assert tried == {(m, pc) for m in ("minmax", "entropy", "percentile") for pc in (False, True)}


def test_same_export_again_keeps_the_guarded_variant(guarded, tmp_path):
    """Re-running the same export keeps the guarded variant (same request) without searching again."""
    run = _copy(guarded[0], tmp_path)
    before = runs.read_variant_manifest(RunFolder(run).variant_dir("int8-dynamic-guarded")).created
    lines: list[str] = []
    export(ExportConfig(run_dir=run, schemes=("int8-dynamic",), max_drop=0.5, **FAST), progress=lines.append)
    assert not any("ranking" in line for line in lines)
    assert runs.read_variant_manifest(RunFolder(run).variant_dir("int8-dynamic-guarded")).created == before


def test_no_search_inside_the_budget(outlier_run, tmp_path):
    """A variant inside --max-drop gets no guarded twin."""
    run = _copy(outlier_run, tmp_path)
    result = export(ExportConfig(run_dir=run, schemes=("int8-dynamic",), max_drop=60.0, **FAST))
    assert [v.name for v in result.variants] == ["fp32", "int8-dynamic"]


def test_best_is_saved_when_no_step_is_inside(outlier_run, tmp_path, monkeypatch):
    """With the ranking reversed (the broken layer last) and few float layers allowed, no step gets inside: the
    best one found is still saved, with its numbers and the reason the search ended."""
    monkeypatch.setattr(guard_module, "rank_layers", _reversed_ranking)
    monkeypatch.setattr(guard_module, "MAX_FLOAT_SHARE", 0.25)
    run = _copy(outlier_run, tmp_path)
    result = export(ExportConfig(run_dir=run, schemes=("int8-dynamic",), max_drop=0.5, **FAST))
    record = result.variants[-1].guard
    assert record is not None and result.variants[-1].name == "int8-dynamic-guarded"
    assert not record["inside_budget"] and record["stopped"] == "no candidates left"
    assert len(record["trace"]) == 1 + 3  # the full variant, then 1, 2, 3 of 14 layers in float (a quarter)
    best = min(step["validation"]["drop_pts"] for step in record["trace"])
    assert record["guarded"]["validation"]["drop_pts"] == best
    assert (RunFolder(run).variant_dir("int8-dynamic-guarded") / runs.ONNX_FILE).is_file()


def test_time_budget_is_respected(outlier_run, tmp_path, monkeypatch):
    """A step that would end past --time-budget (judged by the longest step so far) is not started: with steps of
    100 s on a fake clock and 250 s allowed, two steps run and the best found is saved."""
    clock = [0.0]
    monkeypatch.setattr(guard_module.time, "monotonic", lambda: clock[0])
    real = guard_module.score_variant

    def slow(*args, **kwargs):
        clock[0] += 100.0
        return real(*args, **kwargs)

    monkeypatch.setattr(guard_module, "score_variant", slow)
    monkeypatch.setattr(guard_module, "rank_layers", _reversed_ranking)  # no step gets inside
    run = _copy(outlier_run, tmp_path)
    result = export(
        ExportConfig(run_dir=run, schemes=("int8-dynamic",), max_drop=0.5, time_budget_s=250, **FAST)
    )
    record = result.variants[-1].guard
    assert record is not None
    assert record["stopped"] == "time budget" and not record["inside_budget"]
    assert len(record["trace"]) == 1 + 2
    assert record["search_seconds"] <= 250


def _reversed_ranking(*args, **kwargs):
    return list(reversed(rank_layers(*args, **kwargs)))


def test_zero_time_budget_saves_the_full_variant_as_best(outlier_run, tmp_path):
    """No time at all: no step runs, and the full int8 variant is saved as the best found, marked outside."""
    run = _copy(outlier_run, tmp_path)
    result = export(
        ExportConfig(run_dir=run, schemes=("int8-dynamic",), max_drop=0.5, time_budget_s=0, **FAST)
    )
    record = result.variants[-1].guard
    assert record is not None and record["stopped"] == "time budget"
    assert record["float_layers"] == [] and len(record["trace"]) == 1 and not record["inside_budget"]


def test_guard_data_is_held_to_the_budget_too(outlier_run, tmp_path):
    """--guard-data scores every step on a second dataset as well; the record holds both drops, before and after."""
    run = _copy(outlier_run, tmp_path)
    result = export(
        ExportConfig(run_dir=run, schemes=("int8-dynamic",), max_drop=2.0, guard_data="sample", **FAST)
    )
    record = result.variants[-1].guard
    assert record is not None and record["guard_data"] == "sample"
    assert set(record["full"]) == set(record["guarded"]) == {"validation", "guard:sample"}
    assert record["guarded"]["guard:sample"]["samples"] == 60
    assert record["inside_budget"] == all(s["inside"] for s in record["guarded"].values())
    assert all("guard:sample" in step for step in record["trace"])


def test_guard_data_needs_max_drop():
    """--guard-data without a budget is refused, naming both fields."""
    with pytest.raises(ConfigError, match="guard_data: needs max_drop"):
        ExportConfig(guard_data="sample")


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -5.0])
def test_a_time_budget_that_is_no_number_of_seconds_is_refused(seconds: float):
    with pytest.raises(ConfigError, match="time_budget_s: must be zero or more seconds"):
        ExportConfig(max_drop=0.5, time_budget_s=seconds)


def test_guard_data_is_read_before_any_variant_is_written(outlier_run, tmp_path):
    """An unknown --guard-data name or a malformed file is refused in one line before the export writes anything:
    the run's files are as they were."""
    run = _copy(outlier_run, tmp_path)
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    (tmp_path / "bad.csv").write_text('text,label\n"a,1\nb,0\n', encoding="utf-8")
    for data, message in (
        ("nosuchdata", "unknown dataset 'nosuchdata'"),
        (str(tmp_path / "bad.csv"), "bad.csv"),
    ):
        args = ["export", "--run-dir", str(run), "--quantize", "int8", "--isa", VNNI, "--overwrite"]
        out = CliRunner().invoke(main, [*args, "--max-drop", "0.5", "--guard-data", data])
        errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
        assert out.exit_code == 2 and len(errors) == 1 and message in errors[0], out.output
        assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before


def test_agreement_is_the_trigger_when_one_text_outweighs_the_budget():
    """On 60 texts (1.67 points each) accuracy cannot resolve a 0.5 budget: a variant that loses no text (or gains
    some) is judged by its disagreement with fp32; a lost text, or a sample of 1,000 texts, by the drop."""
    from edgefn.export.budget import Sample, Score

    def sample(n: int) -> Sample:
        labels = np.array([0, 1] * (n // 2))
        return Sample("validation", ["t"] * n, labels, np.eye(2, dtype=np.float32)[labels])

    def wrong(s: Sample, k: int) -> np.ndarray:  # fp32 is always right here: k texts made wrong
        logits = s.fp32_logits.copy()
        logits[:k] = logits[:k, ::-1]
        return logits

    small, big = sample(60), sample(1000)
    assert Score.of(wrong(small, 0), small, 0.5).trigger == "agreement"
    assert Score.of(wrong(small, 0), small, 0.5).excess_pts <= 0
    one = Score.of(wrong(small, 1), small, 0.5)
    assert one.trigger == "accuracy" and one.excess_pts > 0  # 1.67 points lost
    fp32_wrong = wrong(small, 4)  # fp32 wrong on 4 texts; the model right on 2 of them and wrong on another
    mixed = Sample("validation", small.texts, small.labels, fp32_wrong)
    lucky = fp32_wrong.copy()
    lucky[[0, 1, 4]] = lucky[[0, 1, 4], ::-1]
    score = Score.of(lucky, mixed, 0.5)
    assert score.drop_pts == pytest.approx(-100 / 60)  # a gain of one text...
    assert score.trigger == "agreement" and score.excess_pts > 0  # ...with 3 of 60 predictions changed
    four = Score.of(wrong(big, 4), big, 0.5)
    assert four.trigger == "accuracy" and four.excess_pts <= 0  # 0.4 points


def test_cli_export_prints_the_sensitivity_table(outlier_run, tmp_path):
    """`edgefn export --max-drop` prints the guarded row and the sensitivity table with the float layer marked."""
    run = _copy(outlier_run, tmp_path)
    args = ["export", "--run-dir", str(run), "--quantize", "int8", "--isa", VNNI, "--max-drop", "0.5"]
    out = CliRunner().invoke(main, [*args, "--parity-samples", "8"])
    assert out.exit_code == 0, out.output
    assert "int8-dynamic-guarded" in out.stdout
    table = out.stdout.split("rank")[1].splitlines()
    assert table[1].split()[:2] == ["1", "classifier"] and table[1].split()[-1] == "yes"
    bad = CliRunner().invoke(main, ["export", "--run-dir", str(run), "--guard-data", "sample"])
    assert bad.exit_code == 2 and "--guard-data: needs --max-drop" in bad.output


def test_bench_measures_the_guarded_variant(guarded, tmp_path):
    """bench plans, scores and ranks the guarded variant as any other: a row with its accuracy, in the verdict."""
    from edgefn.bench.benchmark import BenchConfig, bench

    run = _copy(guarded[0], tmp_path)
    report = bench(
        BenchConfig.quick(
            run_dir=run,
            variants=("pytorch", "int8-dynamic", "int8-dynamic-guarded"),
            batch_sizes=(4,),
            seq_len=32,
            samples=48,
            min_time_s=0.02,
            min_iters=3,
            warmup=1,
            threads=1,
        )
    )
    rows = {r.variant: r for r in report.results}
    assert (
        rows["int8-dynamic-guarded"].status == "ok" and rows["int8-dynamic-guarded"].scheme == "int8-dynamic"
    )
    full = rows["int8-dynamic"].accuracy
    guarded_acc = rows["int8-dynamic-guarded"].accuracy
    assert full is not None and guarded_acc is not None and guarded_acc.accuracy > full.accuracy
    for cell in report.verdict:  # the full int8 file is out of the budget; the guarded one may ship
        assert any(v.startswith("int8-dynamic (") for v in cell["excluded_for_accuracy"])
        ranked = [c["variant"] for c in (cell["winner"], cell["runner_up"]) if c]
        assert "int8-dynamic-guarded" in ranked


def test_ov_int8_ignored_scope_keeps_the_named_layers_float(outlier_run, tmp_path):
    """NNCF's ignored scope, from ONNX node names: the IR runs those MatMuls on float weights, the rest on int8."""
    pytest.importorskip("openvino")
    from edgefn.runtime import engines

    plain = _plain_model(outlier_run, tmp_path)
    fp32 = RunFolder(outlier_run).variant_dir("fp32") / runs.ONNX_FILE
    ffn = "/bert/encoder/layer.0/intermediate/dense/MatMul"
    ctx = SchemeContext(
        fp32,
        tmp_path / "ov",
        tmp_path / "work",
        VNNI,
        _quirks(),
        lambda: _calibration(outlier_run, plain),
        "minmax",
        lambda: plain,
        float_nodes=(CLASSIFIER, ffn),
    )
    scheme = schemes.get_scheme("ov-int8")
    assert scheme.apply is not None and scheme.guard is not None
    scheme.apply(ctx)
    nodes = tuple(layer.node for layer in linear_layers(plain))
    floats = engines.get("openvino-cpu").float_layers["ov-int8"](tmp_path / "ov", nodes)
    assert floats == {CLASSIFIER, ffn}
    with pytest.raises(EdgefnError, match="not one linear layer"):
        scheme.apply(
            SchemeContext(
                fp32,
                tmp_path / "ov2",
                tmp_path / "work2",
                VNNI,
                _quirks(),
                lambda: _calibration(outlier_run, plain),
                "minmax",
                lambda: plain,
                float_nodes=("classifier",),
            )
        )


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_calibration_methods_run_on_a_constant_activation(tmp_path, method):
    """Each calibration method runs on a graph holding a constant float32-minimum tensor (BERT's attention mask
    fill, which ONNX Runtime's histogram calibrator cannot bin), and gives it its min / max range."""
    from edgefn.export.schemes.static import calibrate  # here: importing a family first reorders the registry

    model = _masked_graph(tmp_path / "masked.onnx")
    rng = np.random.default_rng(0)
    inputs = {"input_ids": rng.integers(0, 5, size=(40, 6)).tolist()}
    ranges = calibrate(model, inputs, method, tmp_path / "work", ["MatMul", "Where"])
    low, high = (float(np.min(v)) for v in ranges["masked"].range_value)  # minmax keeps (1,)-shaped ranges
    assert low == np.finfo(np.float32).min and high == 0.0
    low, high = (float(np.min(v)) for v in ranges["hidden"].range_value)
    assert np.isfinite(low) and np.isfinite(high) and high > low


def _masked_graph(path: Path) -> Path:
    """input_ids -> float -> MatMul (hidden); a Where filling masked positions with float32's minimum (masked)."""
    from onnx import TensorProto, helper, numpy_helper

    minimum = np.array(np.finfo(np.float32).min, dtype=np.float32)
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["ids", "w"], ["hidden"]),
        helper.make_node("Equal", ["input_ids", "zero"], ["is_pad"]),
        helper.make_node("Where", ["is_pad", "minimum", "fzero"], ["masked"]),
        helper.make_node("Add", ["hidden", "bias"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "masked",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", 6])],
        [
            helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 4]),
            helper.make_tensor_value_info("masked", TensorProto.FLOAT, ["b", 6]),
        ],
        [
            numpy_helper.from_array(np.linspace(-1, 1, 24, dtype=np.float32).reshape(6, 4), "w"),
            numpy_helper.from_array(np.zeros(4, np.float32), "bias"),
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(minimum, "minimum"),
            numpy_helper.from_array(np.array(0, np.float32), "fzero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_eval_reports_guarded_beside_full_int8(guarded, tmp_path):
    """`edgefn eval` of a guarded variant scores fp32 and the full int8 variant on the same rows too."""
    from edgefn.train.evaluate import EvalConfig, evaluate, format_eval

    run = _copy(guarded[0], tmp_path)
    result = evaluate(EvalConfig(model=RunFolder(run).variant_dir("int8-dynamic-guarded"), data="sample"))
    record = result.manifest.guard
    assert record is not None and record["full_variant"] == "int8-dynamic"
    assert record["accuracy"]["guarded"] == pytest.approx((result.manifest.metrics or {})["accuracy"])
    assert record["drop_pts"]["full_int8"] > record["drop_pts"]["guarded"]
    assert record["agreement_with_fp32"]["guarded"] > record["agreement_with_fp32"]["full_int8"]
    assert "guarded vs full int8 on sample: int8-dynamic-guarded" in format_eval(result)
