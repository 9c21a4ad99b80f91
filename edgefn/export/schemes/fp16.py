"""fp16: float16 weights and compute for the CUDA provider; overflow-prone ops stay fp32."""

from __future__ import annotations

from edgefn.export.schemes import SchemeContext, SchemeOutput, register_scheme
from edgefn.runs import ONNX_FILE
from edgefn.runtime.inference import CUDA

# Ops kept in fp32 by the fp16 conversion: Pow overflows fp16 (x**3 in gelu_new, x**2 in unfused LayerNorm);
# the LayerNorm reductions need fp32 accumulation.
FP16_OP_BLOCK_LIST = ("Pow", "ReduceMean", "Sqrt")


@register_scheme(
    "fp16",
    "float16 weights and compute for the CUDA provider (inputs/outputs stay fp32)",
    execution_providers=(CUDA,),
)
def convert_fp16(ctx: SchemeContext) -> SchemeOutput:
    """fp16 via onnxruntime.transformers float16 conversion; overflow-prone ops stay fp32."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(FP16_OP_BLOCK_LIST))
    model = onnx.load(str(ctx.fp32_model))
    kept = [n.name for n in model.graph.node if n.op_type in FP16_OP_BLOCK_LIST]
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=block)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(ctx.out_dir / ONNX_FILE))
    return SchemeOutput(
        settings={"keep_io_types": True, "op_block_list_extra": list(FP16_OP_BLOCK_LIST)},
        nodes_kept_float=kept,
    )
