"""OpenVINO deployments: the plain ONNX graph as OpenVINO IR (fp32 / bf16 at run time) and NNCF int8.

Registers the export schemes `ov-fp32`, `ov-bf16` and `ov-int8`; the runtime side is `inference.OvRunner`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefn.core.environment import cpu_flags
from edgefn.core.errors import EdgefnError
from edgefn.export import quantize as q
from edgefn.runs import OPENVINO_XML
from edgefn.runtime.inference import OPENVINO, openvino_available

NNCF_SUBSET = 128  # calibration texts NNCF's statistics see (its default subset is 300)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def bf16_unavailable() -> str | None:
    """None when this CPU computes bf16 natively (AVX512_BF16 or AMX), else why not."""
    flags = set(cpu_flags())
    if flags & set(BF16_FLAGS):
        return None
    return "this CPU has neither AVX512_BF16 nor AMX: OpenVINO would emulate bf16"


def convert_to_ir(onnx_model: Path, out_dir: Path) -> Path:
    """The ONNX graph as OpenVINO IR (openvino_model.xml + .bin) in `out_dir`, weights kept in fp32."""
    import openvino as ov

    _require_openvino()
    out_dir.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_model))
    ov.save_model(model, str(out_dir / OPENVINO_XML), compress_to_fp16=False)
    return out_dir / OPENVINO_XML


def quantize_nncf(
    onnx_model: Path, out_dir: Path, calibration: dict[str, list[list[int]]], subset: int = NNCF_SUBSET
) -> Path:
    """NNCF post-training int8 (transformer preset) of the ONNX graph, saved as OpenVINO IR.

    Args:
        onnx_model: the plain (unfused) fp32 graph.
        out_dir: where openvino_model.xml / .bin go.
        calibration: model inputs of the calibration texts (rows padded to the longest).
        subset: how many calibration rows NNCF collects statistics on.
    """
    import nncf
    import numpy as np
    import openvino as ov

    _require_openvino()
    rows = len(next(iter(calibration.values()), []))
    if rows == 0:
        raise EdgefnError("ov-int8 needs calibration texts (RUN/data/calibration.jsonl is empty)")
    model = ov.Core().read_model(str(onnx_model))
    names = [i.get_any_name() for i in model.inputs]
    items = [{n: np.asarray([calibration[n][i]], dtype=np.int64) for n in names} for i in range(rows)]
    quantized = nncf.quantize(
        model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER, subset_size=min(subset, rows)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_dir / OPENVINO_XML), compress_to_fp16=False)
    return out_dir / OPENVINO_XML


def _require_openvino() -> None:
    hint = openvino_available()
    if hint is not None:
        raise EdgefnError(hint)


def _plain(ctx: q.SchemeContext) -> Path:
    if ctx.plain_fp32 is None:
        raise EdgefnError("OpenVINO schemes need the plain fp32 graph")
    return ctx.plain_fp32()


def _export_ir(ctx: q.SchemeContext, precision: str) -> q.SchemeOutput:
    """The plain fp32 graph as IR; `precision` in the manifest is what the runtime computes it in."""
    convert_to_ir(_plain(ctx), ctx.out_dir)
    return q.SchemeOutput(settings=_settings(precision))


def _settings(precision: str, **extra: Any) -> dict[str, Any]:
    import openvino as ov

    return {"runtime": "openvino", "precision": precision, "openvino": ov.__version__, **extra}


@q.register_scheme(
    "ov-fp32",
    "OpenVINO IR of the plain graph, run by OpenVINO in fp32 (its bf16 default on AMX CPUs turned off)",
    execution_providers=(OPENVINO,),
)
def export_ov_fp32(ctx: q.SchemeContext) -> q.SchemeOutput:
    """The plain fp32 graph as OpenVINO IR; the manifest's precision makes the runtime compute in fp32."""
    return _export_ir(ctx, "fp32")


@q.register_scheme(
    "ov-bf16",
    "OpenVINO IR of the plain graph, run by OpenVINO in bf16 (AVX512_BF16 / AMX CPUs)",
    execution_providers=(OPENVINO,),
)
def export_ov_bf16(ctx: q.SchemeContext) -> q.SchemeOutput:
    """The fp32 IR; OpenVINO computes it in bf16 (what it does by default on such CPUs, here on purpose)."""
    reason = bf16_unavailable()
    if reason is not None:
        raise EdgefnError(f"ov-bf16: {reason}; use ov-fp32 or ov-int8")
    return _export_ir(ctx, "bf16")


@q.register_scheme(
    "ov-int8",
    "OpenVINO IR quantized by NNCF (post-training int8, transformer preset) on the calibration texts",
    execution_providers=(OPENVINO,),
)
def export_ov_int8(ctx: q.SchemeContext) -> q.SchemeOutput:
    """NNCF int8 of the plain graph, calibrated on the same training texts as int8-static. The ops NNCF
    leaves in float run in bf16 where the CPU computes it natively (OpenVINO's own default there, and its
    fastest setting), else in fp32; the manifest records which."""
    quantize_nncf(_plain(ctx), ctx.out_dir, ctx.calibration_inputs())
    precision = "fp32" if bf16_unavailable() else "bf16"
    return q.SchemeOutput(
        settings=_settings(precision, nncf_preset="transformer", nncf_subset=NNCF_SUBSET),
        notes=[f"int8 MatMuls by NNCF; the remaining float ops run in {precision}"],
    )
