"""ONNX Runtime engines (CPU, CUDA, any other provider by name) and their int8 peers; torch-free."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgefn.runs import ONNX_FILE
from edgefn.runtime import engines, inference
from edgefn.runtime.engines import Engine, LoadRequest, Peer
from edgefn.runtime.inference import CPU, CUDA, Runner

RUNTIME = "onnxruntime"
EXTERNAL_DATA = ("*.onnx_data", "*.onnx.data")  # weights an .onnx file keeps beside it


def _loader(provider: str) -> Callable[[LoadRequest], Runner]:
    def load(request: LoadRequest) -> Runner:
        session = inference.create_session(
            request.model,
            inference.resolve_provider(provider),
            request.threads,
            spin=request.options.get(engines.SPIN),
        )
        return inference.OrtRunner(session)

    return load


def threading(request: LoadRequest) -> dict[str, Any]:
    """The session's threading settings: intra-op threads, one inter-op thread, spinning; ONNX Runtime pins no
    thread when the thread count is given."""
    spin = request.options.get(engines.SPIN)
    return {
        "intra_op_num_threads": request.threads or "default (physical cores)",
        "inter_op_num_threads": 1 if request.threads else "default",
        inference.SPIN_CONFIG: "default (1)" if spin is None else ("1" if spin else "0"),
        "thread pinning": "none" if request.threads else "default (affinitised)",
    }


def _availability(provider: str) -> Callable[[], str | None]:
    def unavailable() -> str | None:
        available = inference.available_providers()
        if provider not in available:
            hint = " (install onnxruntime-gpu)" if provider == CUDA else ""
            return f"{provider} is not in this onnxruntime build{hint}; available: {', '.join(available)}"
        if provider == CUDA and not engines.cuda_device_present():
            return "no CUDA GPU found"
        return None

    return unavailable


def _profiler(provider: str) -> Callable[[LoadRequest, dict[str, np.ndarray]], Path]:
    def profile(request: LoadRequest, feed: dict[str, np.ndarray]) -> Path:
        """One inference in a profiled session of its own: the file of its node events (where each node ran)."""
        session = inference.create_session(request.model, provider, request.threads, profile=True)
        inference.OrtRunner(session)(feed)
        return Path(session.end_profiling())

    return profile


def quantize_dynamic_default(model: Path, out_dir: Path, nodes_to_exclude: tuple[str, ...] = ()) -> Path:
    """ONNX Runtime's `quantize_dynamic` with default arguments (s8 per-tensor weights, u8 activations; the
    activation x activation MatMuls stay float), and the nodes named in `nodes_to_exclude` left in float;
    returns out_dir/model.onnx."""
    import logging

    from onnxruntime.quantization import quantize_dynamic

    out_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # its "consider pre-processing" advice: the recipe is as-is
    try:
        quantize_dynamic(str(model), str(out_dir / ONNX_FILE), nodes_to_exclude=list(nodes_to_exclude))
    finally:
        root.level = level
    return out_dir / ONNX_FILE


def _ort_default(plain: Path, out: Path, calibration: Any, target: str) -> dict[str, Any]:
    quantize_dynamic_default(plain, out)
    return {"recipe": "onnxruntime.quantization.quantize_dynamic(model, out) with default arguments"}


def _optimum_recipe(plain: Path, out: Path, calibration: Any, target: str) -> dict[str, Any]:
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    qc = getattr(AutoQuantizationConfig, target)(is_static=False, per_channel=False)
    with tempfile.TemporaryDirectory(prefix=".optimum-", dir=out.parent) as work:
        ORTQuantizer.from_pretrained(plain.parent, file_name=plain.name).quantize(qc, work)
        produced = next(Path(work).glob("*.onnx"))
        shutil.move(str(produced), out / ONNX_FILE)
    return {"recipe": f"ORTQuantizer + AutoQuantizationConfig.{target}(is_static=False, per_channel=False)"}


PEERS = (
    Peer(
        "ort-default",
        "ONNX Runtime's quantize_dynamic with default arguments on the plain Optimum graph",
        CPU,
        "int8",
        _ort_default,
    ),
    Peer(
        "optimum-recipe",
        "Optimum's documented dynamic recipe for this CPU (AutoQuantizationConfig, per-tensor)",
        CPU,
        "int8",
        _optimum_recipe,
    ),
)


def provider_engine(
    provider: str,
    device: str | None,
    aliases: tuple[str, ...] = (),
    peers: tuple[Peer, ...] = (),
    primary: bool = False,
) -> Engine:
    """The engine record of one ONNX Runtime execution provider (full name)."""
    return Engine(
        name=provider,
        device=device,
        runtime=RUNTIME,
        module=__name__,
        load=_loader(provider),
        files=(ONNX_FILE,),
        extra_files=EXTERNAL_DATA,
        suffixes=(".onnx", ".ort"),
        available=_availability(provider),
        versions=("onnxruntime", "onnxruntime-gpu"),
        profile=_profiler(provider) if device == "cuda" else None,
        peers=peers,
        threading=threading,
        aliases=aliases,
        default=primary,
        primary=primary,
    )


def _any_provider(name: str) -> Engine | None:
    """An engine for any other execution provider by its full name or alias (tensorrt, coreml): its rows are not
    ranked by the verdict, and it runs the exported ONNX variants only."""
    full = inference.PROVIDER_ALIASES.get(name.lower(), name)
    return provider_engine(full, None) if full.endswith("ExecutionProvider") else None


engines.register(provider_engine(CPU, "cpu", ("cpu",), PEERS, primary=True))
engines.register(provider_engine(CUDA, "cuda", ("cuda",), primary=True))
engines.register_resolver(_any_provider, "a full ONNX Runtime execution provider name")
