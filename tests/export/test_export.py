"""Export stage on every tiny preset: parity, quantized variants, architecture quirks, bad input, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.core.errors import EdgefnError
from edgefn.engines.onnxruntime import quantize_dynamic_default
from edgefn.export import exporter as export_mod
from edgefn.export import graph as graph_tools
from edgefn.export import quantize as q
from edgefn.export import schemes
from edgefn.export.exporter import ExportConfig, export
from edgefn.runs import RunFolder
from edgefn.runtime.inference import CPU
from tests.helpers import record_training_cleaning

PRESETS = ["test-tiny-bert", "test-tiny-mobilebert", "test-tiny-albert", "test-tiny-distilbert"]
SCHEMES = ("int8", "int8-static", "fp16")
# Required prediction agreement with fp32 on 200 real CONSTRAINT validation texts. Measured on the tiny
# presets: int8-dynamic 99.5-100%, int8-static 99.5-100%, fp16 100%.
# Presets whose export defaults to --optimize O2 (fused Attention / SkipLayerNormalization).
FUSED_BY_DEFAULT = ("test-tiny-bert", "test-tiny-distilbert")
MIN_AGREEMENT = {"int8-dynamic": 0.97, "int8-static": 0.97, "fp16": 0.99}


@pytest.fixture(scope="module")
def exported(tiny_run_factory, tmp_path_factory):
    """Export every scheme once per preset (module-wide); returns (run_dir, ExportResult)."""
    cache: dict[str, tuple[Path, export_mod.ExportResult]] = {}

    def get(preset: str) -> tuple[Path, export_mod.ExportResult]:
        if preset not in cache:
            run = tmp_path_factory.mktemp("export") / preset
            shutil.copytree(tiny_run_factory(preset), run)
            cache[preset] = run, export(ExportConfig(run, schemes=SCHEMES, threads=1))
        return cache[preset]

    return get


def copy_run(tiny_run_factory, tmp_path: Path, preset: str = "test-tiny-bert") -> Path:
    """A private copy of a shared tiny run."""
    run = tmp_path / preset
    shutil.copytree(tiny_run_factory(preset), run)
    return run


def ort_predictions(folder: Path, texts: list[str]) -> np.ndarray:
    """Predictions through Optimum's ORTModelForSequenceClassification, as a user would load the folder."""
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    model = ORTModelForSequenceClassification.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
    return model(**enc).logits.numpy().argmax(1)


@pytest.mark.parametrize("preset", PRESETS)
def test_fp32_matches_pytorch(exported, preset):
    """fp32 ONNX logits match PyTorch within 1e-4 with identical predictions, and the manifest is complete."""
    run, result = exported(preset)
    manifest = runs.verify_variant(RunFolder(run).variant_dir("fp32"))
    parity = manifest.parity or {}
    assert parity["reference"] == "pytorch" and parity["samples"] == 64
    assert parity["max_abs_logit_diff"] <= 1e-4 and parity["agreement"] == 1.0
    assert manifest.source_checkpoint_sha256 == runs.sha256_dir(RunFolder(run).checkpoint)
    assert manifest.preset == preset and (manifest.opset or 0) >= 14 and manifest.size_ratio_to_fp32 == 1.0
    assert [v.name for v in result.variants] == ["fp32", "int8-dynamic", "int8-static", "fp16"]
    assert [p.name for p in runs.list_variants(run)] == ["fp16", "fp32", "int8-dynamic", "int8-static"]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_scheme_loads_and_agrees_with_fp32(exported, preset):
    """Each variant loads with ORTModelForSequenceClassification and agrees with fp32 on real validation texts."""
    run, result = exported(preset)
    texts = RunFolder(run).read_split("validation").texts[:100]
    reference = ort_predictions(RunFolder(run).variant_dir("fp32"), texts)
    for v in result.variants[1:]:
        manifest = runs.verify_variant(v.folder)
        agreement = float((ort_predictions(v.folder, texts) == reference).mean())
        assert agreement >= MIN_AGREEMENT[v.name], (v.name, agreement)
        assert (manifest.parity or {})["agreement"] >= MIN_AGREEMENT[v.name]
        assert manifest.accuracy_delta_vs_fp32 == pytest.approx(
            manifest.validation_accuracy - result.variants[0].validation_accuracy
        )
        assert abs(manifest.accuracy_delta_vs_fp32) <= 0.03
        assert sorted(p.name for p in v.folder.glob("*.onnx")) == ["model.onnx"]


@pytest.mark.parametrize("preset", PRESETS)
def test_quantized_matmul_counts(exported, preset):
    """int8-dynamic turns every weight product into MatMulInteger and keeps the two activation x activation
    MatMuls of each unfused layer (scores, context) in float: edgefn's tuned recipe on the fused graph (fused
    Attention into QAttention), ONNX Runtime's default recipe (VNNI targets) on the plain graph. int8-static
    feeds every MatMul from DequantizeLinear."""
    import json

    run, _ = exported(preset)
    counts = {
        n: graph_tools.op_counts(RunFolder(run).variant_dir(n) / runs.ONNX_FILE)
        for n in ("fp32", "int8-dynamic", "int8-static")
    }
    config = json.loads((RunFolder(run).variant_dir("fp32") / runs.MODEL_CONFIG).read_text())
    layers = config.get("num_hidden_layers", config.get("n_layers"))
    fp32, dyn, static = counts["fp32"], counts["int8-dynamic"], counts["int8-static"]
    fused = fp32.get("Attention", 0)
    assert fused == (layers if preset in FUSED_BY_DEFAULT else 0)
    matmuls = fp32["MatMul"]
    assert matmuls > 0 and fp32["MatMul_qdq"] == 0
    manifest = runs.read_json(RunFolder(run).variant_dir("int8-dynamic") / runs.EXPORT_MANIFEST)
    tuned = manifest["settings"]["recipe"] == "edgefn-tuned"
    assert tuned == (not q.get_target(manifest["target"]).default_recipe)
    # A fused layer is 5 MatMuls of the plain graph (Q, K, V, scores, context) in one Attention node.
    dyn_fused, dyn_matmuls = (fused, matmuls) if tuned else (0, matmuls + 5 * fused)
    kept = manifest["nodes_kept_float"]
    assert dyn.get("MatMul", 0) == len(kept) == 2 * (layers - dyn_fused)
    weight_products = dyn_matmuls - len(kept) + fp32.get("Gemm", 0)  # pooler / classifier are Gemm
    assert dyn["MatMulInteger"] == weight_products and dyn["DynamicQuantizeLinear"] > 0
    assert dyn.get("QAttention", 0) == dyn_fused and dyn.get("Attention", 0) == 0
    # Static QDQ cannot quantize a fused Attention: it quantizes the plain graph (5 MatMuls per fused layer).
    passes = [
        g["name"]
        for g in runs.read_json(RunFolder(run).variant_dir("int8-static") / runs.EXPORT_MANIFEST)[
            "graph_passes"
        ]
    ]
    assert ("plain-graph" in passes) == (fused > 0)
    assert static["MatMul"] == static["MatMul_qdq"] == matmuls + 5 * fused and static["QuantizeLinear"] > 0
    assert static.get("Attention", 0) == 0


def test_dynamic_recipe_follows_the_target(tiny_run_factory, tmp_path: Path) -> None:
    """On a VNNI target int8-dynamic is exactly ONNX Runtime's quantize_dynamic with default arguments on the
    plain export (the tuned passes measured no faster there); on AVX2 it is the tuned recipe (fused
    QAttention, 7-bit per-channel weights, compacted). The recipe is part of the request: a variant made
    with the other one is refused without --overwrite."""
    run = copy_run(tiny_run_factory, tmp_path)
    cfg = dict(schemes=("int8-dynamic",), eval_samples=32, parity_samples=8, threads=1)
    export(ExportConfig(run, target="avx512_vnni", **cfg))
    folder = RunFolder(run).variant_dir("int8-dynamic")
    manifest = runs.read_json(folder / runs.EXPORT_MANIFEST)
    assert manifest["settings"]["recipe"] == "onnxruntime-default"
    assert (manifest["settings"]["per_channel"], manifest["settings"]["weights"]) == (False, "s8")
    assert [g["name"] for g in manifest["graph_passes"]] == ["plain-graph"]
    export_mod.export_plain_onnx(RunFolder(run).checkpoint, tmp_path / "plain")
    default = quantize_dynamic_default(tmp_path / "plain" / runs.ONNX_FILE, tmp_path / "default")
    ours, theirs = (onnx.load(str(p)).graph for p in (folder / runs.ONNX_FILE, default))
    assert [n.op_type for n in ours.node] == [n.op_type for n in theirs.node]
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in theirs.initializer}
    assert len(weights) == len(ours.initializer) > 0
    for init in ours.initializer:
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(init), weights[init.name])
    assert not any(p.name.startswith(".") for p in RunFolder(run).onnx_dir.iterdir())  # work folders gone

    with pytest.raises(EdgefnError, match="with other settings"):
        export(ExportConfig(run, target="avx2", **cfg))
    export(ExportConfig(run, target="avx2", overwrite=True, **cfg))
    manifest = runs.read_json(folder / runs.EXPORT_MANIFEST)
    assert manifest["settings"]["recipe"] == "edgefn-tuned" and manifest["settings"]["per_channel"]
    assert [g["name"] for g in manifest["graph_passes"]] == ["symbolic-shape-inference", "compact-storage"]
    ops = graph_tools.op_counts(folder / runs.ONNX_FILE)
    assert ops.get("QAttention", 0) == 2 and ops.get("Attention", 0) == 0  # the tiny BERT's two layers


@pytest.mark.parametrize("preset", PRESETS)
def test_static_keeps_layernorm_in_float(exported, preset):
    """int8-static records the nodes it kept in float; every LayerNormalization is among them and reads
    float inputs (no DequantizeLinear in front of it)."""
    run, _ = exported(preset)
    manifest = runs.read_json(RunFolder(run).variant_dir("int8-static") / runs.EXPORT_MANIFEST)
    graph = onnx.load(str(RunFolder(run).variant_dir("int8-static") / runs.ONNX_FILE)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    layer_norms = {n.name for n in graph.node if n.op_type == "LayerNormalization"}
    assert not any(dequantized & set(n.input) for n in graph.node if n.name in layer_norms)
    assert layer_norms <= set(manifest["nodes_kept_float"])
    assert manifest["settings"]["nodes_kept_float_by_op"].get("LayerNormalization", 0) == len(layer_norms)
    assert manifest["settings"]["calibration_samples"] == 128  # the tiny run's calibration.jsonl


@pytest.mark.parametrize("preset", PRESETS)
def test_avx2_setting_avoids_saturation(exported, preset):
    """On AVX2 the chosen u8/s8 7-bit weights stay >= 10x closer to fp32 than saturation-prone u8/s8 full
    range, and within 3x of u8/u8 (the other saturation-free setting, one bit more precise)."""
    run, _ = exported(preset)
    manifest = runs.read_json(RunFolder(run).variant_dir("int8-dynamic") / runs.EXPORT_MANIFEST)
    if manifest["target"] != "avx2":
        pytest.skip(f"this CPU's target is {manifest['target']}")
    check = manifest["settings"]["saturation_check"]
    assert (manifest["settings"]["weights"], manifest["settings"]["reduce_range"]) == ("s8", True)
    # Measured on the tiny presets: chosen mean |logit diff| 0.0007-0.0033; u8/u8 0.0009-0.0031;
    # u8/s8 full range 0.06-0.15.
    chosen = check["chosen"]["mean_abs_logit_diff"]
    assert chosen * 10 <= check["u8s8-full-range"]["mean_abs_logit_diff"]
    assert chosen <= 3 * check["u8u8"]["mean_abs_logit_diff"]
    assert check["chosen"]["agreement"] >= check["u8s8-full-range"]["agreement"]


def test_fp16_is_marked_for_cuda(exported):
    """fp16 keeps fp32 inputs/outputs, is meant for CUDA and says so when CUDA is absent."""
    import onnxruntime as ort

    run, result = exported("test-tiny-bert")
    manifest = runs.read_json(RunFolder(run).variant_dir("fp16") / runs.EXPORT_MANIFEST)
    assert manifest["execution_providers"] == ["CUDAExecutionProvider"]
    model = onnx.load(str(RunFolder(run).variant_dir("fp16") / runs.ONNX_FILE))
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.INT64 for i in model.graph.input)
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert 0.45 <= manifest["size_ratio_to_fp32"] <= 0.56
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert any("benchmark it on a CUDA machine" in n for n in result.variants[-1].notes)


def test_albert_basic_pass_shrinks_int8(exported, tmp_path):
    """ALBERT: the basic pass folds the shared-layer Identity nodes so no fp32 weight copy survives int8."""
    run, _ = exported("test-tiny-albert")
    fp32, int8 = (
        RunFolder(run).variant_dir("fp32") / runs.ONNX_FILE,
        RunFolder(run).variant_dir("int8-dynamic") / runs.ONNX_FILE,
    )
    manifest = runs.read_json(int8.parent / "export.json")
    assert manifest["graph_passes"][0]["identity_nodes_before"] > 0
    assert manifest["graph_passes"][0]["identity_nodes_after"] == 0
    assert graph_tools.float_matmul_weights(fp32) > 0 and graph_tools.float_matmul_weights(int8) == 0
    without_pass, _ = q.quantize_dynamic_file(fp32, tmp_path / "no-pass", "avx2")
    assert graph_tools.float_matmul_weights(without_pass) > 0  # the quirk: Identity-fed weights stay fp32
    assert int8.stat().st_size < without_pass.stat().st_size
    # Weights shrink 4x; the whole file 3.1x on this 2 MB model, whose graph definition (~0.16 MB of node
    # names and shapes) does not shrink. On albert-base-v2 (47 MB) that fixed part is negligible.
    assert _initializer_bytes(int8) <= 0.26 * _initializer_bytes(fp32)
    assert manifest["size_ratio_to_fp32"] <= 0.33


def _initializer_bytes(path: Path) -> int:
    """Bytes of all initializers (the weights) of an ONNX file."""
    return sum(len(i.raw_data) for i in onnx.load(str(path)).graph.initializer)


def test_compact_storage_keeps_outputs_and_shrinks(tmp_path):
    """fp16 storage for 1-D vectors that feed Mul / Add; a vector out of fp16 range, a scale with fp16-subnormal
    entries, a matrix and a short vector stay fp32; value_info is dropped; outputs move by no more than fp16 rounding of the vectors."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    n = 256
    scale, shift = rng.normal(1, 0.5, n).astype(np.float32), rng.normal(0, 2, n).astype(np.float32)
    huge = np.full(n, 1e-3, np.float32)
    huge[0] = 1e6  # overflows fp16
    subnormal = np.full(n, 1.0, np.float32)
    subnormal[0] = 1e-6  # an fp16 subnormal: a scale that would lose precision
    short = rng.normal(0, 1, 8).astype(np.float32)
    weight = rng.normal(0, 1, (n, 8)).astype(np.float32)
    nodes = [
        helper.make_node("Mul", ["x", "scale"], ["a"]),
        helper.make_node("Add", ["a", "shift"], ["b"]),
        helper.make_node("Mul", ["b", "huge"], ["b2"]),
        helper.make_node("Mul", ["b2", "subnormal"], ["c"]),
        helper.make_node("MatMul", ["c", "weight"], ["d"]),
        helper.make_node("Add", ["d", "short"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(v, k)
        for k, v in dict(
            scale=scale, shift=shift, huge=huge, subnormal=subnormal, short=short, weight=weight
        ).items()
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
        inits,
        value_info=[helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, n])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = {"x": rng.normal(0, 1, (2, n)).astype(np.float32)}
    before = ort.InferenceSession(str(path), providers=[CPU]).run(None, x)[0]
    size = path.stat().st_size

    record = graph_tools.compact_storage(path)

    model = onnx.load(str(path))
    dtypes = {i.name: i.data_type for i in model.graph.initializer}
    assert dtypes == {
        "scale_fp16": TensorProto.FLOAT16,
        "shift_fp16": TensorProto.FLOAT16,
        "huge": TensorProto.FLOAT,
        "subnormal": TensorProto.FLOAT,
        "short": TensorProto.FLOAT,
        "weight": TensorProto.FLOAT,
    }
    assert record["vectors_stored_fp16"] == 2 and record["value_info_dropped"] == 1
    assert len(model.graph.value_info) == 0 and path.stat().st_size < size
    onnx.checker.check_model(model)
    after = ort.InferenceSession(str(path), providers=[CPU]).run(None, x)[0]
    reference = (
        x["x"] * scale.astype(np.float16) + shift.astype(np.float16)
    ) * huge * subnormal @ weight + short
    np.testing.assert_allclose(after, reference, rtol=1e-4, atol=1e-4)
    assert 0 < np.abs(after - before).max() < 1e-2 * np.abs(before).max()


def test_mobilebert_optimize_is_skipped(tiny_run_factory, tmp_path):
    """--optimize on MobileBERT is reported as skipped; the export still succeeds with parity."""
    run = copy_run(tiny_run_factory, tmp_path, "test-tiny-mobilebert")
    result = export(ExportConfig(run, schemes=("none",), optimize="O2", threads=1))
    manifest = runs.read_json(RunFolder(run).variant_dir("fp32") / runs.EXPORT_MANIFEST)
    assert manifest["optimize"]["requested"] == "O2" and manifest["optimize"]["applied"] is None
    assert "not support" in manifest["optimize"]["skipped"]
    assert any("skipped" in n for n in result.variants[0].notes)
    assert manifest["parity"]["max_abs_logit_diff"] <= 1e-4


def test_bert_optimize_o2_fuses_attention(tiny_run_factory, tmp_path):
    """O2 on a BERT-family preset fuses attention and still passes parity."""
    run = copy_run(tiny_run_factory, tmp_path, "test-tiny-distilbert")
    export(ExportConfig(run, schemes=("none",), optimize="O2", threads=1))
    manifest = runs.read_json(RunFolder(run).variant_dir("fp32") / runs.EXPORT_MANIFEST)
    assert manifest["optimize"]["applied"] == "O2"
    assert manifest["op_counts"].get("Attention", 0) == 2 and manifest["op_counts"]["MatMul"] < 16
    assert manifest["parity"]["max_abs_logit_diff"] <= 1e-4


def test_detect_target_from_cpu_flags():
    """The target comes from CPU flags: VNNI > AVX512 > AVX2, and arm64 from the machine."""
    assert q.detect_target("flags\t: fpu sse avx2 fma", "x86_64") == "avx2"
    assert q.detect_target("flags\t: avx2 avx512f avx512bw", "x86_64") == "avx512"
    assert q.detect_target("flags\t: avx2 avx512f avx512_vnni", "x86_64") == "avx512_vnni"
    assert q.detect_target("", "aarch64") == "arm64"
    # Static int8 keeps per-tensor weights at 8 bits: u8/u8 where dynamic uses 7-bit s8.
    assert [(q.static_settings(t).weights, q.static_settings(t).reduce_range) for t in ("avx2", "arm64")] == [
        ("u8", False),
        ("s8", False),
    ]
    static_avx2 = q.quantization_config("avx2", is_static=True)
    assert (static_avx2.per_channel, static_avx2.reduce_range) == (False, False)
    dynamic_avx2 = q.quantization_config("avx2", is_static=False)
    assert (dynamic_avx2.per_channel, dynamic_avx2.reduce_range) == (True, True)
    # x86 without VNNI: 7-bit weights (no VPMADDUBSW saturation); VNNI and arm64: full 8-bit range.
    assert [q.get_target(t).reduce_range for t in ("avx2", "avx512", "avx512_vnni", "arm64")] == [
        True,
        True,
        False,
        False,
    ]


def test_scheme_registry_aliases_and_unknown():
    """int8 is an alias of int8-dynamic; unknown names list the known ones."""
    assert schemes.resolve_schemes(["int8", "int8-dynamic", "fp16"]) == ("int8-dynamic", "fp16")
    assert ExportConfig(schemes="int8,none").schemes == ("int8-dynamic", "none")
    with pytest.raises(EdgefnError, match="known schemes: none, int8-dynamic, int8-static, fp16"):
        ExportConfig(schemes=("int4",))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"optimize": "O9"}, "optimize: unknown level 'O9'"),
        ({"target": "sse"}, "target: unknown CPU target 'sse'; known targets: avx2"),
        ({"calibration_method": "kl"}, "calibration_method: unknown method 'kl'"),
        ({"calibration_samples": 0}, "calibration_samples: must be a positive integer"),
    ],
)
def test_bad_config_values(kwargs, message):
    """Bad option values raise a one-line error naming the option."""
    with pytest.raises(EdgefnError, match=message):
        ExportConfig(**kwargs)


@pytest.mark.parametrize(
    "remove, message",
    [
        ("model.safetensors", "missing model weights"),
        ("config.json", "missing config.json"),
        ("vocab+tokenizer", "missing tokenizer files"),
    ],
)
def test_incomplete_checkpoint_says_what_is_missing(tiny_run_factory, tmp_path, remove, message):
    """A checkpoint missing a file names it and no variant folder is created."""
    run = copy_run(tiny_run_factory, tmp_path)
    names = ["vocab.txt", "tokenizer.json"] if remove == "vocab+tokenizer" else [remove]
    for name in names:
        (RunFolder(run).checkpoint / name).unlink()
    with pytest.raises(EdgefnError, match=message):
        export(ExportConfig(run, threads=1))
    assert not (run / "onnx").exists()


def test_existing_variant_is_kept_refused_or_overwritten(exported, tiny_run_factory, tmp_path):
    """An existing variant made with the same settings is kept (the same command re-run carries on); one made
    with other settings is refused (untouched) unless overwrite; the fp32 folder is reused for new schemes."""
    run = copy_run(tiny_run_factory, tmp_path)
    record_training_cleaning(run)
    export(ExportConfig(run, schemes=("int8",), threads=1))
    before = runs.sha256_file(RunFolder(run).variant_dir("int8-dynamic") / runs.ONNX_FILE)
    manifest = RunFolder(run).variant_dir("int8-dynamic") / runs.EXPORT_MANIFEST
    assert runs.read_json(manifest)["cleaning"] == ["drop-urls", "drop-handles"]  # the CONSTRAINT run's
    runs.write_json(manifest, {k: v for k, v in runs.read_json(manifest).items() if k != "cleaning"})
    steps: list[str] = []
    again = export(ExportConfig(run, schemes=("int8",), threads=1), progress=steps.append)
    assert [v.name for v in again.variants] == ["fp32", "int8-dynamic"]
    assert sum(": kept " in s for s in steps) == 2, steps
    assert "serving cleaning, as in training: drop-urls, drop-handles" in steps
    assert runs.verify_variant(manifest.parent).cleaning == [
        "drop-urls",
        "drop-handles",
    ]  # an old one gets it
    mtime = (RunFolder(run).variant_dir("int8-dynamic")).stat().st_mtime
    with pytest.raises(EdgefnError, match="int8-dynamic already exist.*other settings.*--overwrite"):
        export(ExportConfig(run, schemes=("int8",), eval_samples=16, threads=1))
    assert (RunFolder(run).variant_dir("int8-dynamic")).stat().st_mtime == mtime
    result = export(ExportConfig(run, schemes=("int8",), overwrite=True, threads=1))
    assert runs.verify_variant(result.variants[1].folder).model_sha256 == before  # deterministic
    result = export(ExportConfig(run, schemes=("fp16",), threads=1))  # fp32 reused, fp16 added
    assert [v.name for v in result.variants] == ["fp32", "fp16"]


def test_corrupted_model_is_refused(tiny_run_factory, tmp_path):
    """A model.onnx that no longer matches export.json is refused by verify_variant and by a later export."""
    run = copy_run(tiny_run_factory, tmp_path)
    export(ExportConfig(run, schemes=("none",), threads=1))
    model = RunFolder(run).variant_dir("fp32") / runs.ONNX_FILE
    model.write_bytes(model.read_bytes()[:-100] + b"\0" * 100)
    with pytest.raises(EdgefnError, match="does not match the hash"):
        runs.verify_variant(model.parent)
    with pytest.raises(EdgefnError, match="does not match the hash"):
        export(ExportConfig(run, schemes=("int8",), threads=1))
    assert not (RunFolder(run).variant_dir("int8-dynamic")).exists()


def test_parity_failure_stops_with_numbers(tiny_run_factory, tmp_path, monkeypatch):
    """When ONNX and PyTorch disagree beyond 1e-4 the export stops with the numbers and writes nothing."""
    run = copy_run(tiny_run_factory, tmp_path)
    real = export_mod._torch_logits
    monkeypatch.setattr(export_mod, "_torch_logits", lambda *a: real(*a) + 1e-3)
    with pytest.raises(EdgefnError, match=r"max \|logit diff\| 0\.001.*allowed 0\.0001.*nothing was written"):
        export(ExportConfig(run, threads=1))
    assert runs.list_variants(run) == [] and not (run / "onnx").exists()  # the folder it made goes too


@pytest.mark.parametrize("where", ["fp32", "int8-dynamic"])
def test_interrupted_export_leaves_no_variant(tiny_run_factory, tmp_path, monkeypatch, where):
    """An interruption inside a variant's atomic block leaves no folder for it (and no temp folder)."""
    run = copy_run(tiny_run_factory, tmp_path)
    real = export_mod.build_manifest

    def interrupted(job, folder, variant, *args, **kwargs):
        if variant == where:
            raise KeyboardInterrupt
        return real(job, folder, variant, *args, **kwargs)

    monkeypatch.setattr(export_mod, "build_manifest", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export(ExportConfig(run, schemes=("int8",), threads=1))
    onnx = run / "onnx"
    left = sorted(p.name for p in onnx.iterdir()) if onnx.exists() else None  # None: the folder it made went
    assert left == (None if where == "fp32" else ["fp32"])


def test_cli_export_prints_table(tiny_run_factory, tmp_path):
    """`edgefn export` writes the variants and ends with a table of size, ratio and accuracy delta."""
    run = copy_run(tiny_run_factory, tmp_path, "test-tiny-distilbert")
    res = CliRunner().invoke(main, ["export", "--run-dir", str(run), "--quantize", "int8", "--threads", "1"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split() == [
        "variant",
        "MB",
        "x",
        "fp32",
        "parity",
        "/",
        "agreement",
        "val",
        "acc",
        "Δacc",
        "pts",
    ]
    assert lines[1].startswith("fp32") and lines[2].startswith("int8-dynamic")
    manifest = runs.read_json(RunFolder(run).variant_dir("int8-dynamic") / runs.EXPORT_MANIFEST)
    assert f"{manifest['size_ratio_to_fp32']:.2f}" in lines[2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--quantize", "int4"], "unknown quantization scheme 'int4'"),
        (["--optimize", "O7"], "'O7' is not one of 'O1', 'O2', 'O3', 'none'"),
    ],
)
def test_cli_bad_input_exit_code_2(tiny_run_factory, tmp_path, args, message):
    """Bad CLI input prints one line and exits with code 2, leaving no variant folder."""
    run = copy_run(tiny_run_factory, tmp_path)
    res = CliRunner().invoke(main, ["export", "--run-dir", str(run), *args])
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1
    assert not (run / "onnx").exists()
