"""CPU targets (each CPU family's integer formats) and the quantization steps the schemes share."""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn.core.environment import cpu_flags
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.export.graph import (
    activation_matmuls,
    basic_graph_pass,
    contrib_ops,
    float_linear_nodes,
    infer_shapes_symbolic,
)
from edgefn.export.schemes import SchemeContext
from edgefn.runs import ONNX_FILE

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


# --- hardware targets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetSettings:
    """Integer formats for one CPU family: u8 activations and u8 or s8 weights, 8- or 7-bit range."""

    name: str
    weights: str  # "u8" or "s8"
    reduce_range: bool
    why: str
    # int8-dynamic is ONNX Runtime's own recipe (quantize_dynamic with default arguments on the plain
    # graph) instead of edgefn's tuned one (fused graph, per-channel weights, compact storage)
    default_recipe: bool = False


# Why VNNI CPUs get ONNX Runtime's default dynamic recipe: on an AMX / AVX-512 VNNI Xeon (2 threads, batch 32,
# real lengths, interleaved with `ort-default` in one bench, benchmarks/peers.py) edgefn's tuned int8-dynamic
# ran at 1.02x the default's speed for minilm, 0.99x tinybert, 0.97x distilbert and 0.89x mobilebert, at the
# same accuracy: its passes bought nothing there and are not run. Without VNNI they are kept: 7-bit weights
# avoid saturation, and the O2 fusion made int8 pay (minilm on an AVX2 CPU: 2.4x PyTorch fp32, against 1.21x
# for the plain graph). arm64 keeps the tuned recipe: it has not been measured against the default.
TARGETS: dict[str, TargetSettings] = {
    t.name: t
    for t in (
        TargetSettings(
            "avx2",
            "s8",
            True,
            "AVX2 without VNNI: 7-bit weights (reduce_range) keep the int16 pair sums of VPMADDUBSW from "
            "saturating while keeping its fast u8*s8 kernel (u8/u8 also avoids saturation, with a slower kernel)",
        ),
        TargetSettings(
            "avx512",
            "s8",
            True,
            "AVX512 without VNNI: 7-bit weights (reduce_range) avoid VPMADDUBSW saturation",
        ),
        TargetSettings(
            "avx512_vnni",
            "s8",
            False,
            "VNNI accumulates u8*s8 in int32: full 8-bit range is safe; ONNX Runtime's default recipe, "
            "as edgefn's fused, per-channel graph measured no faster on VNNI",
            default_recipe=True,
        ),
        TargetSettings("arm64", "s8", False, "ARM64 dot-product kernels do not saturate: u8/s8 full range"),
    )
}
# The setting a naive export would use on x86 (u8/s8 full range), measured against the chosen one, and the
# other saturation-free setting (u8/u8), measured beside it so the choice is shown with numbers.
SATURATION_PRONE = TargetSettings("u8s8-full-range", "s8", False, "saturation-prone on x86 without VNNI")
SATURATION_FREE_ALTERNATIVE = TargetSettings("u8u8", "u8", False, "no saturation; widening (slower) kernel")


def detect_target(cpuinfo: str | None = None, machine: str | None = None) -> str:
    """The quantization target of this CPU (or a cpuinfo text) from its flags: avx2, avx512, avx512_vnni, arm64."""
    machine = (machine or platform.machine()).lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    flags = cpu_flags(cpuinfo)
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def get_target(name: str) -> TargetSettings:
    """Settings of a registered target, or a one-line error listing them."""
    if name not in TARGETS:
        raise ConfigError("target", f"unknown CPU target {name!r}; known targets: {', '.join(TARGETS)}")
    return TARGETS[name]


# Static int8 stores weights per tensor (one scale per matrix: the smallest QDQ file). Per tensor, 7-bit weights
# are too coarse: on targets that need reduce_range against saturation, static uses u8/u8 with the full 8 bits
# instead (minilm on ISOT, validation agreement with fp32: u8/s8 7-bit per tensor 98.2%, u8/u8 per tensor
# 99.4%). Per-channel static weights were as accurate (99.3%) but their scales push MobileBERT's file over 27%.
STATIC_WITHOUT_REDUCE_RANGE = TargetSettings(
    "static-per-tensor", "u8", False, "per-tensor weights keep all 8 bits; u8/u8 kernels do not saturate"
)


def static_settings(target: str) -> TargetSettings:
    """The weight format static int8 uses on `target` (see STATIC_WITHOUT_REDUCE_RANGE)."""
    settings = get_target(target)
    return STATIC_WITHOUT_REDUCE_RANGE if settings.reduce_range else settings


def quantization_config(target: str, is_static: bool, settings: TargetSettings | None = None) -> Any:
    """Optimum's AutoQuantizationConfig for `target`, with the weight type and range of `settings`:
    per-channel weights for dynamic int8, per-tensor for static."""
    from onnxruntime.quantization import QuantType
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    settings = settings or (static_settings(target) if is_static else get_target(target))
    qc = getattr(AutoQuantizationConfig, target)(is_static=is_static, per_channel=not is_static)
    qc.weights_dtype = QuantType.QUInt8 if settings.weights == "u8" else QuantType.QInt8
    qc.reduce_range = settings.reduce_range
    return qc


# --- shared steps ------------------------------------------------------------------------------------


def symbolic_shape_pass(src: Path, dst: Path, fused_ops: dict[str, int]) -> dict[str, Any]:
    """Types for the outputs of fused ops, which the ONNX shape inference run inside the quantizer cannot
    infer (it then stops with "Unable to find data type")."""
    import onnx

    model = infer_shapes_symbolic(onnx.load(str(src)))
    if model is None:
        raise EdgefnError(
            f"cannot infer the shapes of the fused graph {src}; export with --optimize none to quantize it"
        )
    onnx.save(model, str(dst))
    return {"name": "symbolic-shape-inference", "fused_ops": fused_ops}


def _pass_destination(ctx: SchemeContext, name: str, src: Path) -> Path:
    """work_dir/name/model.onnx, with the config.json Optimum's quantizer looks for beside the model."""
    dst = ctx.work_dir / name / ONNX_FILE
    dst.parent.mkdir(parents=True, exist_ok=True)
    if (src.parent / "config.json").is_file():
        shutil.copy(src.parent / "config.json", dst.parent / "config.json")
    return dst


def prepare_for_quantization(
    ctx: SchemeContext, plain_because: str = ""
) -> tuple[Path, list[dict[str, Any]]]:
    """The model to quantize: the fp32 graph (its plain, unfused export when `plain_because` gives a reason
    and the fp32 graph is fused), after the architecture's basic pass where its quirks ask for it, and with
    symbolic shape inference when it holds fused (com.microsoft) ops."""
    model, passes = ctx.fp32_model, []
    fused_ops = contrib_ops(model)
    if fused_ops and plain_because and ctx.plain_fp32 is not None:
        model, fused_ops = ctx.plain_fp32(), {}
        passes.append({"name": "plain-graph", "why": plain_because})
    if ctx.quirks.basic_pass_before_quantize:  # constant folding and Identity removal: fuses nothing
        dst = _pass_destination(ctx, "basic", model)
        passes.append(basic_graph_pass(model, dst))
        model = dst
    if fused_ops:
        dst = _pass_destination(ctx, "shapes", model)
        passes.append(symbolic_shape_pass(model, dst, fused_ops))
        model = dst
    return model, passes


def move_quantized(save_dir: Path, out_dir: Path) -> None:
    """Optimum writes `model_quantized.onnx` and `ort_config.json`: keep them as model.onnx + ort_config."""
    produced = sorted(save_dir.glob("*.onnx"))
    if len(produced) != 1:
        raise EdgefnError(f"expected one quantized model in {save_dir}, found {[p.name for p in produced]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.move(str(produced[0]), out_dir / ONNX_FILE)
    if (save_dir / "ort_config.json").is_file():
        shutil.move(str(save_dir / "ort_config.json"), out_dir / "ort_config.json")


def check_float_nodes(model: Path, names: tuple[str, ...] | list[str]) -> None:
    """Refuse a quantized graph in which a node asked to stay in float was quantized: ONNX Runtime's quantizer
    ignores, without a word, an exclusion that names no node of the graph it quantizes (a module name, a node
    of another graph)."""
    if not names:
        return
    left = float_linear_nodes(model)
    lost = [n for n in names if n not in left]
    if lost:
        raise EdgefnError(
            f"{len(lost)} layer(s) asked to stay in float were quantized in {model} ({', '.join(lost[:3])}"
            f"{', ...' if len(lost) > 3 else ''}): not linear nodes of the graph quantized"
        )


def quantize_dynamic_file(
    model: Path,
    out_dir: Path,
    target: str,
    settings: TargetSettings | None = None,
    float_nodes: tuple[str, ...] = (),
) -> tuple[Path, list[str]]:
    """Dynamic int8 quantization of one ONNX file with Optimum's ORTQuantizer, weight MatMuls only; the nodes named
    in `float_nodes` stay in float (as ONNX Runtime names them: see `graph.dynamic_exclusions`).

    Returns out_dir/model.onnx and the activation x activation MatMuls kept in float.
    """
    from optimum.onnxruntime import ORTQuantizer

    save_dir = out_dir.parent / f".{out_dir.name}.optimum"
    qc = quantization_config(target, is_static=False, settings=settings)
    kept = activation_matmuls(model)
    qc.nodes_to_exclude = sorted(set(qc.nodes_to_exclude) | set(kept) | set(float_nodes))
    quantizer = ORTQuantizer(model, config=None)
    quantizer.config = None  # config and tokenizer are copied by the export stage
    quantizer.quantize(qc, save_dir)
    move_quantized(save_dir, out_dir)
    shutil.rmtree(save_dir, ignore_errors=True)
    return out_dir / ONNX_FILE, kept


def dynamic_recipe(target: str) -> str:
    """Which int8-dynamic recipe `target` gets: "onnxruntime-default" or "edgefn-tuned"."""
    return "onnxruntime-default" if get_target(target).default_recipe else "edgefn-tuned"


def settings_record(target: str, is_static: bool) -> dict[str, Any]:
    settings = static_settings(target) if is_static else get_target(target)
    record = {
        "target": target,
        "activations": "u8",
        "weights": settings.weights,
        "reduce_range": settings.reduce_range,
        "per_channel": not is_static and not settings.default_recipe,
        "format": "QDQ" if is_static else "QOperator",
        "why": settings.why,
    }
    if not is_static:
        record["recipe"] = dynamic_recipe(target)
    return record
