"""int8-dynamic (alias int8): ONNX Runtime's default recipe on VNNI CPUs, edgefn's tuned one elsewhere."""

from __future__ import annotations

from edgefn.engines.onnxruntime import quantize_dynamic_default
from edgefn.export.graph import activation_matmuls, compact_storage
from edgefn.export.quantize import (
    get_target,
    prepare_for_quantization,
    quantize_dynamic_file,
    settings_record,
)
from edgefn.export.schemes import SchemeContext, SchemeOutput, register_scheme


@register_scheme(
    "int8-dynamic", "dynamic int8 (weights int8, activations quantized at run time)", aliases=("int8",)
)
def quantize_int8_dynamic(ctx: SchemeContext) -> SchemeOutput:
    """Dynamic int8: ONNX Runtime's default recipe on targets where edgefn's passes buy nothing (VNNI), else
    Optimum's ORTQuantizer with the target's AutoQuantizationConfig on the fused graph, compacted."""
    if get_target(ctx.target).default_recipe:
        model, passes = prepare_for_quantization(
            ctx,
            "ONNX Runtime's default recipe quantizes the graph as exported; the fused graph was no faster",
        )
        out, kept = quantize_dynamic_default(model, ctx.out_dir), activation_matmuls(model)
    else:
        model, passes = prepare_for_quantization(ctx)
        out, kept = quantize_dynamic_file(model, ctx.out_dir, ctx.target)
        passes.append(compact_storage(out))
    settings = settings_record(ctx.target, False)
    settings["nodes_kept_float_by_op"] = {"MatMul (activation x activation)": len(kept)}
    return SchemeOutput(settings=settings, graph_passes=passes, nodes_kept_float=kept, quantized_from=model)
