"""Sensitivity of each linear layer to int8: its own output error against fp32, simulated on calibration texts."""

# Why this measure. The guard needs an order in which to keep layers in float. The ground truth, the validation
# drop with each layer alone quantized, costs one quantization and one validation scoring per layer (38 for
# minilm: minutes each time), and on a validation set of a few thousand texts most single layers flip no
# prediction, so those drops tie at zero. Each layer's output error, with only that layer quantized and its fp32
# input fed (so the errors of the layers before it do not pile up into it), separates every layer in one fp32
# pass over the calibration texts plus two matrix products per layer. It is a proxy: the search re-scores every
# step on validation with the real quantizer, so a proxy mistake costs a step, never a wrong verdict.

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefn.export.graph import LinearLayer
from edgefn.export.schemes import Int8Layout
from edgefn.runtime.inference import CPU, create_session

MEASURE = (
    "relative output error (||Y_int8 - Y_fp32||^2 / ||Y_fp32||^2) of each linear layer quantized alone, "
    "on its fp32 input from the calibration texts"
)


@dataclass(frozen=True)
class LayerSensitivity:
    """One layer and its relative output error when it alone is quantized (larger: more sensitive)."""

    layer: LinearLayer
    error: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.layer.node,
            "module": self.layer.module,
            "op_type": self.layer.op_type,
            "projections": self.layer.projections,
            "relative_error": self.error,
        }


def quantize_activations(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """`x` through u8 asymmetric quantization of the range [low, high] (widened to hold 0), dequantized."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    scale = (high - low) / 255 or 1.0
    zero = np.round(-low / scale)
    return ((np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale).astype(np.float32)


def quantize_weights(w: np.ndarray, bits: int, per_channel: bool) -> np.ndarray:
    """A (in, out) weight matrix through symmetric signed quantization at `bits` bits, one scale per output
    column or per matrix, dequantized."""
    qmax = 2 ** (bits - 1) - 1
    peak = np.abs(w).max(axis=0, keepdims=True) if per_channel else np.abs(w).max()
    scale = np.where(peak > 0, peak / qmax, 1.0)
    return (np.clip(np.round(w / scale), -qmax, qmax) * scale).astype(np.float32)


def _weight(layer: LinearLayer, weights: dict[str, np.ndarray]) -> np.ndarray:
    w = weights[layer.weight]
    return w.T if layer.transposed else w


def _capture_model(model: Path, inputs: list[str], work_dir: Path) -> Path:
    """`model` with the layers' input tensors added as graph outputs."""
    import onnx

    proto = onnx.load(str(model))
    outputs = {o.name for o in proto.graph.output}
    for name in inputs:
        if name not in outputs:
            proto.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "sensitivity.onnx"
    onnx.save(proto, str(path))
    return path


def _rows(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The rows of a layer input that hold real tokens: (batch, length, k) masked by the attention mask, or
    (batch, k) as it is."""
    return x[mask.astype(bool)] if x.ndim == 3 and x.shape[:2] == mask.shape else x.reshape(-1, x.shape[-1])


def rank_layers(
    model: Path,
    layers: list[LinearLayer],
    feeds: Iterable[dict[str, np.ndarray]],
    layout: Int8Layout,
    work_dir: Path,
    threads: int | None = None,
) -> list[LayerSensitivity]:
    """The layers of `model` ordered from the most to the least sensitive to `layout`'s int8 (see MEASURE).

    Args:
        model: the fp32 graph the scheme quantizes; `layers` are its linear layers to rank.
        feeds: model inputs (length-sorted batches of calibration texts, with their attention masks).
        layout: per-channel or per-matrix weights, their bits, and activation ranges per batch (dynamic) or over
            every batch (static, a first pass).
        work_dir: where the graph with the layers' inputs as outputs is written.
        threads: ONNX Runtime intra-op threads.
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model))
    names = {layer.weight for layer in layers}
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer if i.name in names}
    node_inputs = {n.name: n.input[0] for n in proto.graph.node if n.input}
    del proto
    tensors = sorted({node_inputs[layer.node] for layer in layers})
    session = create_session(_capture_model(model, tensors, work_dir), CPU, threads)
    inputs = {i.name for i in session.get_inputs()}
    batches = [dict(f) for f in feeds]

    def activations() -> Iterable[tuple[dict[str, np.ndarray], np.ndarray]]:
        for feed in batches:
            values = session.run(tensors, {k: v for k, v in feed.items() if k in inputs})
            yield dict(zip(tensors, values, strict=True)), feed["attention_mask"]

    ranges: dict[str, tuple[float, float]] = {}
    if layout.static:  # calibrated ranges: one (min, max) per tensor over every batch
        for values, _ in activations():
            for name, x in values.items():
                low, high = ranges.get(name, (np.inf, -np.inf))
                ranges[name] = (min(low, float(x.min())), max(high, float(x.max())))
    quantized = {
        layer.node: quantize_weights(_weight(layer, weights), layout.weight_bits, layout.per_channel)
        for layer in layers
    }
    noise = dict.fromkeys(quantized, 0.0)
    signal = dict.fromkeys(quantized, 0.0)
    for values, mask in activations():
        for layer in layers:
            x = values[node_inputs[layer.node]]
            low, high = ranges.get(node_inputs[layer.node]) or (float(x.min()), float(x.max()))
            rows = _rows(x, mask)
            reference = rows @ _weight(layer, weights)
            error = quantize_activations(rows, low, high) @ quantized[layer.node] - reference
            noise[layer.node] += float(np.square(error, dtype=np.float64).sum())
            signal[layer.node] += float(np.square(reference, dtype=np.float64).sum())
    ranked = [LayerSensitivity(layer, noise[layer.node] / (signal[layer.node] or 1.0)) for layer in layers]
    return sorted(ranked, key=lambda s: -s.error)
