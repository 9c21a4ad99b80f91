"""int8-static: QDQ int8 calibrated on training texts; LayerNorm, GELU and residual Adds stay in float."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from edgefn.core.errors import EdgefnError
from edgefn.export.graph import compact_storage, feeding_moves
from edgefn.export.quantize import (
    CALIBRATION_METHODS,
    check_float_nodes,
    move_quantized,
    prepare_for_quantization,
    quantization_config,
    settings_record,
)
from edgefn.export.schemes import GuardHooks, Int8Layout, SchemeContext, SchemeOutput, register_scheme
from edgefn.runs import ONNX_FILE

# Ops excluded on top of Optimum's LayerNorm / GELU / residual-Add passes. Opset >= 17 exports LayerNorm as one
# LayerNormalization op, which the QDQ quantizer would otherwise quantize.
STATIC_EXCLUDED_OP_TYPES = ("LayerNormalization", "SkipLayerNormalization")
CALIBRATION_CHUNK = 32  # calibration rows whose activations are held at once (histograms merge across chunks)
CALIBRATION_BATCH = 8  # rows per calibration inference


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


def _finite_histogram_collector(calibrator: Any) -> Any:
    """ONNX Runtime's histogram collector (entropy, percentile) for `calibrator`, fed in two passes over the
    calibration rows, and with the tensors no finite histogram can bin given their min / max range.

    - BERT-family graphs fill the attention mask with the float32 minimum (-3.4e38): a constant and a Where output
      that the quantizer leaves in float anyway. Binning them needs a bin width beyond float32, and numpy stops the
      whole calibration with "Too many bins for data range. Cannot create 128 finite-sized bins". They get the
      range minmax gives them.
    - The first pass (`scanning`) records each tensor's range; the second bins each tensor over its range on all
      rows, as one collection over every row at once would, without holding every activation at once. (Merged chunk
      by chunk instead, a histogram whose range grows keeps its first chunk's bin width and can grow to thousands
      of bins, which the entropy search then crawls through.)"""
    import numpy as np
    from onnxruntime.quantization.calibrate import HistogramCollector

    class FiniteHistogramCollector(HistogramCollector):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(
                method=calibrator.method,
                symmetric=calibrator.symmetric,
                num_bins=calibrator.num_bins,
                num_quantized_bins=calibrator.num_quantized_bins,
                percentile=calibrator.percentile,
                scenario=calibrator.scenario,
            )
            self.scanning = True
            self.extremes: dict[str, tuple[Any, Any]] = {}  # each tensor's (min, max) over every row
            self.ranges: dict[str, tuple[Any, Any]] = {}  # the unbinnable tensors' (min, max)

        def _binnable(self, low: Any, high: Any) -> bool:
            bound = np.float32(max(abs(low), abs(high)))
            with np.errstate(all="ignore"):
                try:
                    # float32 bounds, as ONNX Runtime passes them: float64 ones would bin what it cannot
                    np.histogram(np.array([low, high], np.float32), self.num_bins, range=(-bound, bound))  # type: ignore[arg-type]
                except ValueError:
                    return False
            return bool(np.isfinite(bound))

        def collect(self, name_to_arr: dict[str, Any]) -> None:
            if not self.scanning:
                super().collect({k: v for k, v in name_to_arr.items() if k in self.histogram_dict})
                return
            for name, arrays in name_to_arr.items():
                flat = np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])
                if flat.size:
                    low, high = np.nanmin(flat), np.nanmax(flat)
                    old = self.extremes.get(name, (low, high))
                    self.extremes[name] = (min(old[0], low), max(old[1], high))

        def start_histograms(self) -> None:
            """End the scanning pass: an empty histogram over each binnable tensor's whole range."""
            self.scanning = False
            for name, (low, high) in self.extremes.items():
                if not self._binnable(low, high):
                    self.ranges[name] = (np.float32(low), np.float32(high))
                    continue
                bound = np.array(max(abs(low), abs(high)), dtype=np.float32)
                hist, edges = np.histogram(np.zeros(0, np.float32), self.num_bins, range=(-bound, bound))  # type: ignore[arg-type]
                self.histogram_dict[name] = (hist, edges, np.float32(low), np.float32(high), bound)

        def compute_collection_result(self) -> dict[str, Any]:
            out = dict(super().compute_collection_result()) if self.histogram_dict else {}
            for name, (low, high) in self.ranges.items():
                out[name] = (np.array(low), np.array(high), np.zeros(1, np.int64), np.array([low, high]))
            return out

    return FiniteHistogramCollector()


class _Rows:
    """Rows `start:stop` of the calibration inputs as ONNX Runtime's calibration data reader."""

    def __init__(self, inputs: dict[str, list[list[int]]], start: int, stop: int) -> None:
        import numpy as np

        self.batches = [
            {
                k: np.asarray(v[i : min(i + CALIBRATION_BATCH, stop)], dtype=np.int64)
                for k, v in inputs.items()
            }
            for i in range(start, stop, CALIBRATION_BATCH)
        ]

    def get_next(self) -> dict[str, Any] | None:
        return self.batches.pop(0) if self.batches else None


def calibrate(
    model: Path, inputs: dict[str, list[list[int]]], method: str, work_dir: Path, operators: list[str]
) -> Any:
    """Activation ranges of `model`'s inputs and outputs of `operators` on the calibration inputs by `method`
    (Optimum's settings for it: entropy 128 bins, percentile 99.999 of 2048 bins), collected CALIBRATION_CHUNK
    rows at a time."""
    from datasets import Dataset

    if method not in CALIBRATION_METHODS:
        raise EdgefnError(
            f"unknown calibration method {method!r}; choose one of {', '.join(CALIBRATION_METHODS)}"
        )
    rows = len(next(iter(inputs.values()), []))
    if rows == 0:
        raise EdgefnError("int8-static needs calibration texts (RUN/data/calibration.jsonl is empty)")
    work_dir.mkdir(parents=True, exist_ok=True)
    calibrator = _calibration_config(method, Dataset.from_dict(inputs)).create_calibrator(
        onnx_model_path=str(model),
        operators_to_quantize=operators,
        augmented_model_name=str(work_dir / f"augmented-{method}.onnx"),
    )
    chunks = [(start, min(start + CALIBRATION_CHUNK, rows)) for start in range(0, rows, CALIBRATION_CHUNK)]
    if method != "minmax":
        calibrator.collector = _finite_histogram_collector(calibrator)
        for start, stop in chunks:  # the scanning pass
            calibrator.collect_data(_Rows(inputs, start, stop))
        calibrator.collector.start_histograms()
    for start, stop in chunks:
        calibrator.collect_data(_Rows(inputs, start, stop))
    return calibrator.compute_data()


def _prepared(ctx: SchemeContext) -> Path:
    """The graph static int8 quantizes (the plain one; see prepare_for_quantization), made once per context."""
    if "static:model" not in ctx.memo:
        ctx.memo["static:model"] = prepare_for_quantization(
            ctx, "static QDQ does not quantize fused Attention: its packed weights would stay fp32"
        )
    model, _ = ctx.memo["static:model"]
    return Path(model)


def _ranges(ctx: SchemeContext, model: Path) -> tuple[Any, int]:
    """The calibration ranges by the context's method, computed once per method and context."""
    key = f"static:ranges:{ctx.calibration_method}"
    if key not in ctx.memo:
        inputs = ctx.calibration_inputs()
        work = ctx.work_dir / f"calibration-{ctx.calibration_method}"
        operators = quantization_config(ctx.target, is_static=True).operators_to_quantize
        ranges = calibrate(model, inputs, ctx.calibration_method, work, operators)
        ctx.memo[key] = (ranges, len(next(iter(inputs.values()), [])))
    ranges, rows = ctx.memo[key]
    return ranges, int(rows)


def _layout(ctx: SchemeContext) -> Int8Layout:
    return Int8Layout(per_channel=bool(ctx.per_channel), weight_bits=8, static=True)


@register_scheme(
    "int8-static",
    "static int8 (QDQ) calibrated on training texts; LayerNorm/GELU/residual Add in float",
    guard=GuardHooks(_prepared, _layout, calibration_methods=CALIBRATION_METHODS, per_channel=(False, True)),
)
def quantize_int8_static(ctx: SchemeContext) -> SchemeOutput:
    """Static int8: calibrate activation ranges on training texts, keep LayerNorm / GELU / residual Adds in float
    (and the context's float nodes); weights per tensor unless the context asks for per channel."""
    from optimum.onnxruntime import ORTQuantizer

    model = _prepared(ctx)
    passes = list(ctx.memo["static:model"][1])
    ranges, rows = _ranges(ctx, model)
    qc = quantization_config(ctx.target, is_static=True)
    qc.per_channel = bool(ctx.per_channel)
    qc.nodes_to_exclude = [*ctx.float_nodes, *feeding_moves(model, ctx.float_nodes)]
    quantizer = ORTQuantizer(model, config=None)
    quantizer.config = None
    save_dir = ctx.work_dir / "static"
    quantizer.quantize(qc, save_dir, calibration_tensors_range=ranges, preprocessor=_static_preprocessor())
    move_quantized(save_dir, ctx.out_dir)
    check_float_nodes(ctx.out_dir / ONNX_FILE, ctx.float_nodes)
    passes.append(compact_storage(ctx.out_dir / ONNX_FILE))
    kept = sorted(qc.nodes_to_exclude)
    settings = settings_record(ctx.target, True)
    settings.update(
        per_channel=bool(ctx.per_channel),
        calibration_method=ctx.calibration_method,
        calibration_samples=rows,
        nodes_kept_float_by_op=_ops_of(model, kept),
    )
    if ctx.float_nodes:
        settings["float_layers"] = list(ctx.float_nodes)
    return SchemeOutput(settings=settings, graph_passes=passes, nodes_kept_float=kept, quantized_from=model)


def _ops_of(model: Path, names: list[str]) -> dict[str, int]:
    import onnx

    wanted = set(names)
    nodes = onnx.load(str(model), load_external_data=False).graph.node
    return dict(Counter(n.op_type for n in nodes if n.name in wanted))
