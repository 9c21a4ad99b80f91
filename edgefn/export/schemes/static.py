"""int8-static: QDQ int8 calibrated on training texts; LayerNorm, GELU and residual Adds stay in float."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from edgefn.core.errors import EdgefnError
from edgefn.export.graph import compact_storage
from edgefn.export.quantize import (
    move_quantized,
    prepare_for_quantization,
    quantization_config,
    settings_record,
)
from edgefn.export.schemes import SchemeContext, SchemeOutput, register_scheme
from edgefn.runs import ONNX_FILE

# Ops excluded on top of Optimum's LayerNorm / GELU / residual-Add passes. Opset >= 17 exports LayerNorm as one
# LayerNormalization op, which the QDQ quantizer would otherwise quantize.
STATIC_EXCLUDED_OP_TYPES = ("LayerNormalization", "SkipLayerNormalization")


def _static_preprocessor() -> Any:
    from optimum.onnxruntime.preprocessors import PreprocessorPass, QuantizationPreprocessor
    from optimum.onnxruntime.preprocessors.passes import (
        ExcludeGeLUNodes,
        ExcludeLayerNormNodes,
        ExcludeNodeAfter,
        ExcludeNodeFollowedBy,
    )

    class ExcludeOpTypes(PreprocessorPass):  # fused LayerNormalization ops (opset >= 17)
        def __call__(self, graph: Any, model: Any) -> tuple[set[str], set[str]]:
            return set(), {n.name for n in graph.graph.node if n.op_type in STATIC_EXCLUDED_OP_TYPES}

    pre = QuantizationPreprocessor()
    for p in (
        ExcludeLayerNormNodes(),
        ExcludeGeLUNodes(),
        ExcludeNodeAfter("Add", "Add"),
        ExcludeNodeAfter("Gather", "Add"),
        ExcludeNodeFollowedBy("Add", "Softmax"),
        ExcludeOpTypes(),
    ):
        pre.register_pass(p)
    return pre


def _calibration_config(method: str, dataset: Any) -> Any:
    from optimum.onnxruntime.configuration import AutoCalibrationConfig

    factories = {
        "minmax": AutoCalibrationConfig.minmax,
        "entropy": AutoCalibrationConfig.entropy,
        "percentile": AutoCalibrationConfig.percentiles,
    }
    return factories[method](dataset)


@register_scheme(
    "int8-static", "static int8 (QDQ) calibrated on training texts; LayerNorm/GELU/residual Add in float"
)
def quantize_int8_static(ctx: SchemeContext) -> SchemeOutput:
    """Static int8: calibrate activation ranges on training texts, keep LayerNorm / GELU / residual Adds in float."""
    from datasets import Dataset
    from optimum.onnxruntime import ORTQuantizer

    model, passes = prepare_for_quantization(
        ctx, "static QDQ does not quantize fused Attention: its packed weights would stay fp32"
    )
    inputs = ctx.calibration_inputs()
    if not inputs or not next(iter(inputs.values())):
        raise EdgefnError("int8-static needs calibration texts (RUN/data/calibration.jsonl is empty)")
    dataset = Dataset.from_dict(inputs)
    qc = quantization_config(ctx.target, is_static=True)
    quantizer = ORTQuantizer(model, config=None)
    quantizer.config = None
    ranges = quantizer.fit(
        dataset,
        _calibration_config(ctx.calibration_method, dataset),
        onnx_augmented_model_name=str(ctx.work_dir / "augmented.onnx"),
        operators_to_quantize=qc.operators_to_quantize,
    )
    save_dir = ctx.work_dir / "static"
    quantizer.quantize(qc, save_dir, calibration_tensors_range=ranges, preprocessor=_static_preprocessor())
    move_quantized(save_dir, ctx.out_dir)
    passes.append(compact_storage(ctx.out_dir / ONNX_FILE))
    kept = sorted(qc.nodes_to_exclude)
    settings = settings_record(ctx.target, True)
    settings.update(
        calibration_method=ctx.calibration_method,
        calibration_samples=len(dataset),
        nodes_kept_float_by_op=_ops_of(model, kept),
    )
    return SchemeOutput(settings=settings, graph_passes=passes, nodes_kept_float=kept)


def _ops_of(model: Path, names: list[str]) -> dict[str, int]:
    import onnx

    wanted = set(names)
    nodes = onnx.load(str(model), load_external_data=False).graph.node
    return dict(Counter(n.op_type for n in nodes if n.name in wanted))
