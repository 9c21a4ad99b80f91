"""int8-dynamic (alias int8): ONNX Runtime's default recipe on VNNI CPUs, edgefn's tuned one elsewhere."""

from __future__ import annotations

from pathlib import Path

from edgefn.engines.onnxruntime import quantize_dynamic_default
from edgefn.export.graph import activation_matmuls, compact_storage, dynamic_exclusions
from edgefn.export.quantize import (
    check_float_nodes,
    get_target,
    prepare_for_quantization,
    quantize_dynamic_file,
    settings_record,
)
from edgefn.export.schemes import GuardHooks, Int8Layout, SchemeContext, SchemeOutput, register_scheme


def _prepared(ctx: SchemeContext) -> Path:
    """The graph the target's recipe quantizes (made once per context): the plain export for ONNX Runtime's
    default recipe, the fp32 variant's (fused) graph for the tuned one."""
    if "dynamic:model" not in ctx.memo:
        plain_because = (
            "ONNX Runtime's default recipe quantizes the graph as exported; the fused graph was no faster"
            if get_target(ctx.target).default_recipe
            else ""
        )
        ctx.memo["dynamic:model"] = prepare_for_quantization(ctx, plain_because)
    model, _ = ctx.memo["dynamic:model"]
    return Path(model)


def _layout(ctx: SchemeContext) -> Int8Layout:
    """ONNX Runtime's default recipe: one scale per weight matrix, 8 bits; the tuned one: per channel, 7-bit
    weights where the target reduces the range. Activations: one range per call."""
    target = get_target(ctx.target)
    return Int8Layout(per_channel=not target.default_recipe, weight_bits=7 if target.reduce_range else 8)


@register_scheme(
    "int8-dynamic",
    "dynamic int8 (weights int8, activations quantized at run time)",
    aliases=("int8",),
    guard=GuardHooks(_prepared, _layout),
)
def quantize_int8_dynamic(ctx: SchemeContext) -> SchemeOutput:
    """Dynamic int8: ONNX Runtime's default recipe on targets where edgefn's passes buy nothing (VNNI), else
    Optimum's ORTQuantizer with the target's AutoQuantizationConfig on the fused graph, compacted; the context's
    float nodes stay in float."""
    model = _prepared(ctx)
    passes = list(ctx.memo["dynamic:model"][1])
    excluded = tuple(dynamic_exclusions(model, ctx.float_nodes))
    if get_target(ctx.target).default_recipe:
        out = quantize_dynamic_default(model, ctx.out_dir, excluded)
        kept = activation_matmuls(model)
    else:
        out, kept = quantize_dynamic_file(model, ctx.out_dir, ctx.target, float_nodes=excluded)
        passes.append(compact_storage(out))
    check_float_nodes(out, ctx.float_nodes)
    settings = settings_record(ctx.target, False)
    settings["nodes_kept_float_by_op"] = {"MatMul (activation x activation)": len(kept)}
    if ctx.float_nodes:
        settings["float_layers"] = list(ctx.float_nodes)
        settings["nodes_kept_float_by_op"]["linear layers (guard)"] = len(ctx.float_nodes)
    return SchemeOutput(
        settings=settings,
        graph_passes=passes,
        nodes_kept_float=[*kept, *ctx.float_nodes],
        quantized_from=model,
    )
