"""OpenVINO's own runtime on the CPU: the runner, the IR export hook (ov-fp32, ov-bf16, ov-int8) and peers."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgefn.core.environment import cpu_flags
from edgefn.core.errors import EdgefnError
from edgefn.core.progress import on_terminal
from edgefn.runtime import engines
from edgefn.runtime.engines import Calibration, Engine, Exported, ExportRequest, LoadRequest, Peer
from edgefn.runtime.inference import MODEL_INPUTS

NAME = "openvino-cpu"  # the provider label of its bench rows and of `Classifier.providers`
IR_XML, IR_BIN = "openvino_model.xml", "openvino_model.bin"  # a variant's IR graph and weights
LENGTH_STEP = 16
# variant precision -> INFERENCE_PRECISION_HINT; "default" leaves OpenVINO's own choice (bf16 on AMX CPUs)
PRECISIONS: dict[str, str | None] = {"fp32": "f32", "bf16": "bf16", "default": None}
NNCF_SUBSET = 128  # calibration texts NNCF's statistics see (its default subset is 300)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# OpenVINO names the layers it creates from a process-wide counter: two conversions of one graph differ only there.
_LAYER_NAME = re.compile(r'(<layer id="\d+") name="[^"]*"')


def openvino_available() -> str | None:
    """None when the `openvino` package imports, else the install hint."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "the openvino package is not installed (pip install 'edgefn[openvino]')"
    return None


def bf16_unavailable() -> str | None:
    """None when this CPU computes bf16 natively (AVX512_BF16 or AMX), else why not."""
    if set(cpu_flags()) & set(BF16_FLAGS):
        return None
    return "this CPU has neither AVX512_BF16 nor AMX: OpenVINO would emulate bf16"


def _require_openvino() -> None:
    hint = openvino_available()
    if hint is not None:
        raise EdgefnError(hint)


class OvRunner:
    """Runs padded batches through an OpenVINO compiled model on the CPU (its own runtime, torch-free).

    The inference precision is set explicitly: OpenVINO's default on CPUs with AVX512_BF16 / AMX is bf16,
    which would silently turn an fp32 row into a bf16 one.

    Batches at the full length (`full_length`: fixed-shape inputs, or texts truncated to the token limit) run
    on a model compiled for their static shape, one per batch size, compiled on first use: OpenVINO's CPU
    plugin runs a static shape faster than its dynamic-shape model (AMX Xeon, 2 threads, batch 32 x 128
    tokens, int8: minilm 2.83 -> 2.44 ms/sample, distilbert 6.27 -> 5.20), and a compile (0.4-0.7 s for
    distilbert) pays for itself only on a shape that recurs. Shorter batches share the dynamic-shape model.
    """

    def __init__(
        self,
        model_xml: Path,
        threads: int | None = None,
        precision: str = "fp32",
        full_length: int | None = None,
        profile: bool = False,
        cpu_pinning: bool | None = None,
    ) -> None:
        import openvino as ov

        if precision not in PRECISIONS:
            raise EdgefnError(f"unknown OpenVINO precision {precision!r}; use {', '.join(PRECISIONS)}")
        self.core = ov.Core()
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if PRECISIONS[precision] is not None:
            self.config["INFERENCE_PRECISION_HINT"] = PRECISIONS[precision]
        if threads is not None:
            self.config["INFERENCE_NUM_THREADS"] = threads
        if profile:  # per-node times of each infer request (`request.profiling_info`)
            self.config["PERF_COUNT"] = True
        if cpu_pinning is not None:  # OpenVINO pins its threads to cores by default (Linux)
            self.config["ENABLE_CPU_PINNING"] = cpu_pinning
        try:
            self.ov_model = self.core.read_model(str(model_xml))
            self.compiled = self.core.compile_model(self.ov_model, "CPU", self.config)
        except Exception as e:  # openvino raises RuntimeError subclasses of its own for bad files
            raise EdgefnError(f"OpenVINO cannot load {model_xml}: {str(e).strip().splitlines()[0]}") from None
        value = self.compiled.get_property("INFERENCE_PRECISION_HINT")  # what it computes in
        hint = value.to_string() if hasattr(value, "to_string") else str(value)
        self.precision = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(hint, hint)
        self.input_names = [i.get_any_name() for i in self.compiled.inputs]
        missing = [n for n in self.input_names if n not in MODEL_INPUTS]
        if missing:
            raise EdgefnError(f"{model_xml} expects inputs this runtime does not build: {', '.join(missing)}")
        self.request = self.compiled.create_infer_request()
        self.full_length = full_length
        self.static: dict[int, Any] = {}  # batch size -> the request of its model compiled for full_length

    @property
    def providers(self) -> list[str]:
        return [NAME]

    def _request_for(self, batch: int, length: int, padded: int) -> Any:
        if length != self.full_length:
            return self.request
        if batch not in self.static:
            model = self.ov_model.clone()
            model.reshape({name: [batch, padded] for name in self.input_names})
            self.static[batch] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        return self.static[batch]

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        # OpenVINO prepares kernels per input shape: padding the length to a multiple of LENGTH_STEP
        # (masked positions, which change no logit) keeps real-length batches to a few shapes.
        batch, length = feed[self.input_names[0]].shape
        pad = -length % LENGTH_STEP
        inputs = {k: np.pad(feed[k], ((0, 0), (0, pad))) if pad else feed[k] for k in self.input_names}
        request = self._request_for(batch, length, length + pad)
        out = request.infer(inputs)
        return np.asarray(out.to_tuple()[0], dtype=np.float32)


def load(request: LoadRequest) -> OvRunner:
    """An `OvRunner` of an IR file in the variant's precision, static shapes for batches at the token limit."""
    _require_openvino()
    pinning = request.options.get(engines.CPU_PINNING)
    return OvRunner(
        request.model, request.threads, request.precision, request.max_length, cpu_pinning=pinning
    )


def threading(request: LoadRequest) -> dict[str, Any]:
    """The compiled model's threading properties: one stream of `threads` threads, pinning; its TBB threads
    have no spinning setting."""
    pinning = request.options.get(engines.CPU_PINNING)
    return {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": request.threads or "default",
        "ENABLE_CPU_PINNING": "default (True on Linux)" if pinning is None else pinning,
        "spinning": "TBB's default (no setting)",
    }


def fingerprint(folder: Path) -> str:
    """The IR's graph and weights, OpenVINO's generated layer names left out."""
    xml = _LAYER_NAME.sub(r"\1", (folder / IR_XML).read_bytes().decode("utf-8"))
    return hashlib.sha256(xml.encode("utf-8") + (folder / IR_BIN).read_bytes()).hexdigest()


# --- export -------------------------------------------------------------------------------------------------


def convert_to_ir(onnx_model: Path, out_dir: Path) -> Path:
    """The ONNX graph as OpenVINO IR (openvino_model.xml + .bin) in `out_dir`, weights kept in fp32."""
    import openvino as ov

    _require_openvino()
    out_dir.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_model))
    ov.save_model(model, str(out_dir / IR_XML), compress_to_fp16=False)
    return out_dir / IR_XML


@contextlib.contextmanager
def _nncf_quiet() -> Iterator[None]:
    """NNCF logs INFO lines to stdout and draws rich progress bars there, inside edgefn's results: for the
    duration its log shows warnings only, on stderr, and its bars draw on stderr at a terminal, else nowhere."""
    import logging

    from nncf.common.logging.logger import nncf_logger

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nncf %(levelname)s: %(message)s"))
    saved = nncf_logger.handlers, nncf_logger.level
    nncf_logger.handlers, nncf_logger.level = [handler], logging.WARNING
    try:
        with contextlib.redirect_stdout(sys.stderr if on_terminal() else io.StringIO()):
            yield
    finally:
        nncf_logger.handlers, nncf_logger.level = saved


def _ops_of_nodes(model: Any, nodes: tuple[str, ...] | list[str]) -> dict[str, str]:
    """ONNX node name -> the MatMul op OpenVINO made of it (the node's name; a Gemm's MatMul is
    `<name>/WithoutBiases`); a name that matches none is refused (NNCF would quantize the layer)."""
    matmuls = [o.get_friendly_name() for o in model.get_ops() if o.get_type_name() == "MatMul"]
    found = {}
    for node in nodes:
        match = [m for m in matmuls if m == node or m.startswith(node + "/")]
        if len(match) != 1:
            raise EdgefnError(
                f"{node!r} is not one linear layer of the OpenVINO model ({len(match)} MatMul ops match)"
            )
        found[node] = match[0]
    return found


_WEIGHT_PATH = ("Convert", "Multiply", "Subtract", "Reshape", "Transpose", "FakeQuantize", "Constant")


def _int8_weight(op: Any) -> bool:
    """Whether a MatMul's weight input (its constant's path: Convert, scale Multiply, zero-point Subtract ...) holds
    int8 values or passes a FakeQuantize."""
    seen, todo = 0, [op.input(1).get_source_output().get_node()]
    while todo and seen < 16:
        node, seen = todo.pop(), seen + 1
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return True
        if kind == "Constant":
            if node.get_output_element_type(0).is_integral():
                return True
            continue
        if kind in _WEIGHT_PATH:
            todo.extend(i.get_source_output().get_node() for i in node.inputs())
    return False


def float_layers(folder: Path, nodes: tuple[str, ...]) -> set[str]:
    """Which of the linear layers `nodes` (ONNX node names) the IR in `folder` runs with float weights."""
    import openvino as ov

    model = ov.Core().read_model(str(folder / IR_XML))
    ops = {o.get_friendly_name(): o for o in model.get_ops() if o.get_type_name() == "MatMul"}
    out = set()
    for node in nodes:
        named = [op for name, op in ops.items() if name == node or name.startswith(node + "/")]
        if len(named) == 1 and not _int8_weight(named[0]):
            out.add(node)
    return out


def quantize_nncf(
    onnx_model: Path,
    out_dir: Path,
    calibration: dict[str, list[list[int]]],
    subset: int = NNCF_SUBSET,
    float_nodes: tuple[str, ...] = (),
) -> Path:
    """NNCF post-training int8 (transformer preset) of the ONNX graph, saved as OpenVINO IR.

    Args:
        onnx_model: the plain (unfused) fp32 graph.
        out_dir: where openvino_model.xml / .bin go.
        calibration: model inputs of the calibration texts (rows padded to the longest).
        subset: how many calibration rows NNCF collects statistics on.
        float_nodes: ONNX node names of linear layers NNCF leaves in float (its ignored scope).
    """
    import nncf
    import openvino as ov

    _require_openvino()
    rows = len(next(iter(calibration.values()), []))
    if rows == 0:
        raise EdgefnError("ov-int8 needs calibration texts (RUN/data/calibration.jsonl is empty)")
    model = ov.Core().read_model(str(onnx_model))
    names = [i.get_any_name() for i in model.inputs]
    items = [{n: np.asarray([calibration[n][i]], dtype=np.int64) for n in names} for i in range(rows)]
    ignored = nncf.IgnoredScope(names=sorted(_ops_of_nodes(model, float_nodes).values()))
    with _nncf_quiet():
        quantized = nncf.quantize(
            model,
            nncf.Dataset(items),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=min(subset, rows),
            ignored_scope=ignored,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_dir / IR_XML), compress_to_fp16=False)
    return out_dir / IR_XML


SCHEMES = (
    (
        "ov-fp32",
        "OpenVINO IR of the plain graph, run by OpenVINO in fp32 (its bf16 default on AMX CPUs turned off)",
    ),
    ("ov-bf16", "OpenVINO IR of the plain graph, run by OpenVINO in bf16 (AVX512_BF16 / AMX CPUs)"),
    (
        "ov-int8",
        "OpenVINO IR quantized by NNCF (post-training int8, transformer preset) on the calibration texts",
    ),
)


def export(request: ExportRequest) -> Exported:
    """The plain fp32 graph as IR; "precision" in the manifest is what the runtime computes it in. ov-int8: NNCF
    int8, calibrated on the same training texts as int8-static; the ops NNCF leaves in float run in bf16 where the
    CPU computes it natively (OpenVINO's own default there, and its fastest setting), else in fp32."""
    import openvino as ov

    if request.scheme == "ov-int8":
        quantize_nncf(
            request.onnx_model, request.out_dir, request.calibration(), float_nodes=request.float_nodes
        )
        precision = "fp32" if bf16_unavailable() else "bf16"
        settings = {
            "precision": precision,
            "openvino": ov.__version__,
            "nncf_preset": "transformer",
            "nncf_subset": NNCF_SUBSET,
        }
        if request.float_nodes:
            settings["float_layers"] = list(request.float_nodes)
        return Exported(settings, [f"int8 MatMuls by NNCF; the remaining float ops run in {precision}"])
    precision = "bf16" if request.scheme == "ov-bf16" else "fp32"
    reason = bf16_unavailable() if precision == "bf16" else None
    if reason is not None:
        raise EdgefnError(f"ov-bf16: {reason}; use ov-fp32 or ov-int8")
    convert_to_ir(request.onnx_model, request.out_dir)
    return Exported({"precision": precision, "openvino": ov.__version__})


# --- peers --------------------------------------------------------------------------------------------------


def _converted(precision: str) -> Any:
    def build(plain: Path, out: Path, calibration: Calibration, target: str) -> dict[str, Any]:
        convert_to_ir(plain, out)
        return {"recipe": f"openvino.convert_model(model.onnx), compiled with precision {precision}"}

    return build


def _nncf_int8(plain: Path, out: Path, calibration: Calibration, target: str) -> dict[str, Any]:
    quantize_nncf(plain, out, calibration())
    return {
        "recipe": "nncf.quantize(openvino model, calibration texts, model_type=TRANSFORMER), "
        f"{NNCF_SUBSET}-text subset of the run's calibration split"
    }


def _bf16_peer_unavailable() -> str | None:
    return openvino_available() or bf16_unavailable()


PEERS = (
    Peer(
        "openvino-fp32",
        "OpenVINO, fp32 inference precision",
        NAME,
        "fp32",
        _converted("fp32"),
        openvino_available,
    ),
    Peer(
        "openvino-bf16",
        "OpenVINO with its default precision on this CPU: bf16 (AVX512_BF16 / AMX)",
        NAME,
        "bf16",
        _converted("bf16"),
        _bf16_peer_unavailable,
        precision="bf16",
    ),
    Peer(
        "openvino-int8",
        "OpenVINO + NNCF post-training int8 (transformer preset), calibrated like int8-static; "
        "OpenVINO's default precision for the float ops",
        NAME,
        "int8",
        _nncf_int8,
        openvino_available,
        precision="default",
    ),
)

engines.register(
    Engine(
        name=NAME,
        device="cpu",
        runtime="openvino",
        module=__name__,
        load=load,
        files=(IR_XML, IR_BIN),
        suffixes=(".xml",),
        available=openvino_available,
        versions=("openvino", "nncf"),
        fingerprint=fingerprint,
        export=export,
        schemes=SCHEMES,
        float_layers={"ov-int8": float_layers},
        peers=PEERS,
        threading=threading,
        aliases=("openvino",),
    )
)
