"""ONNX graph tools shared by export and bench: op counts, shape inference, basic pass, compact storage."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn.runtime.inference import CPU


def op_counts(model_path: Path) -> dict[str, int]:
    """Node count per op type, plus `MatMul_qdq` (MatMuls fed by DequantizeLinear, the static QDQ form)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    counts = Counter(n.op_type for n in graph.node)
    dq_outputs = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    counts["MatMul_qdq"] = sum(1 for n in graph.node if n.op_type == "MatMul" and dq_outputs & set(n.input))
    return dict(counts)


def float_matmul_weights(model_path: Path) -> int:
    """fp32 weight matrices that reach a MatMul (directly or through Identity): weights left unquantized."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) == 2}
    via_identity = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    consumers = (
        "MatMul",
        "DynamicQuantizeLinear",
    )  # an int8 graph quantizes Identity-fed weights at run time
    used = {via_identity.get(x, x) for n in graph.node if n.op_type in consumers for x in n.input}
    return len(floats & used)


def basic_graph_pass(src: Path, dst: Path) -> dict[str, Any]:
    """ONNX Runtime's basic (portable) graph pass: constant folding and Identity elimination."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), so, providers=[CPU])
    before, after = op_counts(src).get("Identity", 0), op_counts(dst).get("Identity", 0)
    return {"name": "ort-basic", "identity_nodes_before": before, "identity_nodes_after": after}


# Smallest 1-D float vector the compact-storage pass converts to fp16: below it, the Cast node costs more
# bytes than fp16 saves.
COMPACT_MIN_ELEMENTS = 64


def compact_storage(model_path: Path) -> dict[str, Any]:
    """Shrink the int8 file without touching its int8 weights; rewrites model_path in place.

    - drops `value_info`: intermediate shape annotations left by the quantizer's shape inference, which
      ONNX Runtime infers again when it loads the model;
    - stores the 1-D fp32 vectors that only feed elementwise Mul / Add (biases, per-channel weight scales,
      MobileBERT's NoNorm scales and shifts) as fp16 behind a Cast to fp32. ONNX Runtime folds the Cast when
      the session loads, so the graph computes in fp32 with the fp16-rounded values; vectors whose values do
      not fit fp16 stay fp32. The accuracy effect is part of every variant's measured parity.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    fp16 = np.finfo(np.float16)
    model = onnx.load(str(model_path))
    graph = model.graph
    size_before = model.ByteSize()
    consumers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    io_names = {v.name for v in graph.input} | {v.name for v in graph.output}
    value_info = len(graph.value_info)
    del graph.value_info[:]
    casts = []
    for init in graph.initializer:
        if (
            init.data_type != onnx.TensorProto.FLOAT
            or len(init.dims) != 1
            or init.dims[0] < COMPACT_MIN_ELEMENTS
            or init.name in io_names
            or not consumers.get(init.name)
            or not consumers[init.name] <= {"Mul", "Add"}
        ):
            continue
        values = numpy_helper.to_array(init)
        magnitudes = np.abs(values)
        if magnitudes.max() > fp16.max or (
            "Mul" in consumers[init.name]
            and magnitudes.any()
            and magnitudes[magnitudes > 0].min() < fp16.tiny
        ):
            continue  # overflows fp16, or a scale would lose precision as an fp16 subnormal
        half = values.astype(np.float16)
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, f"{name}_fp16"))
        casts.append(helper.make_node("Cast", [f"{name}_fp16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(graph.node)  # Casts first: the graph stays topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(model_path))
    return {
        "name": "compact-storage",
        "value_info_dropped": value_info,
        "vectors_stored_fp16": len(casts),
        "mb_saved": round((size_before - model.ByteSize()) / 1e6, 3),
    }


def contrib_ops(model_path: Path) -> dict[str, int]:
    """Nodes of ONNX Runtime's com.microsoft domain (the fused ops of --optimize O2/O3), by op type."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return dict(Counter(n.op_type for n in graph.node if n.domain == "com.microsoft"))


def infer_shapes_symbolic(model: Any) -> Any | None:
    """ONNX Runtime's symbolic shape inference (it knows contrib ops), or None where it cannot finish.

    It runs in a temporary folder: on failure it dumps the model with external data into the working
    directory, which must not be the user's.
    """
    import os

    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="edgefn-shapes-") as tmp:
        os.chdir(tmp)
        try:
            return SymbolicShapeInference.infer_shapes(model, auto_merge=True)
        except Exception:  # noqa: BLE001 - "Incomplete symbolic shape inference" and kin: the caller decides
            return None
        finally:
            os.chdir(cwd)


def activation_matmuls(model_path: Path) -> list[str]:
    """MatMul nodes whose second input is not a weight (attention scores and context: activation x activation).

    Dynamic quantization would quantize both operands at run time on every call; ONNX Runtime's own
    `quantize_dynamic` leaves them in float by default (MatMulConstBOnly), and so does edgefn.
    """
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    constants = {i.name for i in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    via_identity = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}

    def is_constant(name: str) -> bool:
        while name in via_identity:
            name = via_identity[name]
        return name in constants

    return [n.name for n in graph.node if n.op_type == "MatMul" and not is_constant(n.input[1])]


def graph_input_names(model_path: Path) -> list[str]:
    """The names of a model's graph inputs (weights not loaded)."""
    import onnx

    return [i.name for i in onnx.load(str(model_path), load_external_data=False).graph.input]


# Ops whose second input is a weight matrix when it is a constant: the linear layers int8 quantizes. A fused
# Attention (ONNX Runtime's O2) holds the query, key and value projections packed in one matrix.
LINEAR_OPS = ("MatMul", "Gemm", "Attention")


@dataclass(frozen=True)
class LinearLayer:
    """One linear layer of a graph: its node, op, weight initializer and how many projections it holds."""

    node: str
    op_type: str
    weight: str
    transposed: bool = False  # Gemm with transB: the weight is stored (out, in)
    projections: int = 1  # a fused Attention packs three

    @property
    def module(self) -> str:
        """The layer's readable name: the node name without its leading slash and op suffix."""
        name = self.node.strip("/")
        for suffix in ("/MatMul", "/Gemm"):
            name = name.removesuffix(suffix)
        return f"{name} (query, key, value)" if self.op_type == "Attention" else name


def linear_layers(model_path: Path) -> list[LinearLayer]:
    """The named MatMul / Gemm / Attention nodes whose weight input is a constant 2-D float matrix, in graph order
    (attention's activation x activation MatMuls are not layers)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    weights = {
        i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) == 2
    }
    via_identity = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    layers = []
    for n in graph.node:
        if n.op_type not in LINEAR_OPS or len(n.input) < 2 or not n.name:
            continue
        weight = n.input[1]
        while weight in via_identity:
            weight = via_identity[weight]
        if weight not in weights:
            continue
        trans_b = any(a.name == "transB" and a.i for a in n.attribute)
        layers.append(LinearLayer(n.name, n.op_type, weight, trans_b, 3 if n.op_type == "Attention" else 1))
    return layers


def float_linear_nodes(model_path: Path) -> set[str]:
    """Names of the linear nodes of a (quantized) graph that compute in float: a float weight matrix, and an input
    not read through DequantizeLinear. A quantized layer is renamed (`..._quant`, QOperator) or reads its weight,
    or its input, through DequantizeLinear (QDQ)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    first_input = {n.name: n.input[0] for n in graph.node if n.input}
    names = {layer.node for layer in linear_layers(model_path) if first_input[layer.node] not in dequantized}
    return names | {n.removesuffix(GEMM_AS_MATMUL) for n in names if n.endswith(GEMM_AS_MATMUL)}


# ONNX Runtime's dynamic quantizer turns each Gemm into `<name>_MatMul` + `<name>_Add` before it reads its
# exclusions: a Gemm is excluded under that name, and found under it in the result.
GEMM_AS_MATMUL = "_MatMul"


def dynamic_exclusions(model_path: Path, nodes: tuple[str, ...]) -> list[str]:
    """The names that keep `nodes` in float through ONNX Runtime's dynamic quantizer (a Gemm's MatMul name too)."""
    gemms = {layer.node for layer in linear_layers(model_path) if layer.op_type == "Gemm"}
    return [*nodes, *(n + GEMM_AS_MATMUL for n in nodes if n in gemms)]


# Ops that only move values: QDQ quantizes their output when their consumer is quantized or when they are.
DATA_MOVEMENT_OPS = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten")


def feeding_moves(model_path: Path, nodes: tuple[str, ...]) -> list[str]:
    """The data-movement nodes whose output reaches only one of `nodes`'s input (through more of them): the static
    quantizer would put their output through Q/DQ, and the float layer would read int8 values."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    producer = {o: n for n in graph.node for o in n.output}
    readers = Counter(i for n in graph.node for i in n.input)
    by_name = {n.name: n for n in graph.node}
    out: list[str] = []
    for name in nodes:
        tensor = by_name[name].input[0]
        while tensor in producer and producer[tensor].op_type in DATA_MOVEMENT_OPS and readers[tensor] == 1:
            out.append(producer[tensor].name)
            tensor = producer[tensor].input[0]
    return out
