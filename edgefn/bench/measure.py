"""Measurement protocol: latency statistics, peak RSS, graph FLOPs, MatMul peak and CUDA node placement."""

from __future__ import annotations

import functools
import math
import os
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.runtime.inference import CPU, CUDA

RSS_METHOD = (
    "peak resident set (Linux VmHWM, else ru_maxrss) of a fresh spawned process that loads only "
    "this variant; it includes the Python interpreter and libraries (see rss_before_load_mb)"
)
MATMUL_OPS = ("MatMul", "MatMulInteger", "FusedMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")
QLINEAR_MATMUL = "QLinearMatMul"  # inputs: a, a_scale, a_zp, b, ...
# Fused by --optimize O2 (com.microsoft domain); inputs: the hidden states, the packed QKV weights, ...
ATTENTION_OPS = ("Attention", "QAttention")


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of an already sorted list."""
    pos = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class Latency:
    """Every measured call (its milliseconds and the samples it processed) and statistics derived from them.

    Per-sample figures divide each call's time by its samples; throughput is total samples over total time.
    """

    call_ms: list[float]
    items: list[int]
    count: int = field(init=False)
    p50_ms: float = field(init=False)
    p90_ms: float = field(init=False)
    p99_ms: float = field(init=False)
    mean_ms: float = field(init=False)
    stdev_ms: float = field(init=False)
    batch_p50_ms: float = field(init=False)
    throughput_samples_per_s: float = field(init=False)
    total_s: float = field(init=False)

    def __post_init__(self) -> None:
        if not self.call_ms or len(self.call_ms) != len(self.items):
            raise ValueError("Latency needs one item count per measured call, and at least one call")
        per_sample = sorted(ms / n for ms, n in zip(self.call_ms, self.items))
        self.count = len(self.call_ms)
        self.p50_ms, self.p90_ms, self.p99_ms = (_percentile(per_sample, q) for q in (50, 90, 99))
        self.mean_ms = statistics.fmean(per_sample)
        self.stdev_ms = statistics.stdev(per_sample) if len(per_sample) > 1 else 0.0
        self.batch_p50_ms = _percentile(sorted(self.call_ms), 50)
        self.total_s = sum(self.call_ms) / 1000
        self.throughput_samples_per_s = sum(self.items) / self.total_s if self.total_s > 0 else math.inf


def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Milliseconds one call takes, and what it returned."""
    start = time.perf_counter_ns()
    out = fn()
    return (time.perf_counter_ns() - start) / 1e6, out


def measure_latency(
    call: Callable[[int], int], warmup: int = 3, min_iters: int = 10, min_time_s: float = 1.0
) -> Latency:
    """Warm up, then time calls until both `min_iters` calls and `min_time_s` timed seconds are reached.

    Args:
        call: runs call number i and returns how many samples it processed.
        warmup: untimed calls first.
        min_iters: the least number of timed calls.
        min_time_s: the least total timed duration.

    Returns:
        Latency holding every timed call.
    """
    for i in range(warmup):
        call(i)
    call_ms: list[float] = []
    items: list[int] = []
    timed_ms = 0.0
    while len(call_ms) < min_iters or timed_ms < min_time_s * 1000:
        ms, n = time_call(functools.partial(call, warmup + len(call_ms)))
        call_ms.append(ms)
        items.append(int(n))
        timed_ms += ms
    return Latency(call_ms, items)


# --- memory ------------------------------------------------------------------------------------------------


def current_rss_mb() -> float:
    """Resident set size of this process now, in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def peak_rss_mb() -> float:
    """Peak resident set of this process in MB (VmHWM on Linux: not inherited across exec, unlike ru_maxrss)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


# --- size -------------------------------------------------------------------------------------------------


def size_and_params(folder: Path, model_files: Sequence[str]) -> tuple[float, int | None]:
    """MB on disk of a model's files (its engine's `model_files`: model.onnx and any external data, an IR's graph
    and weights, a checkpoint's weights) and, where there is an ONNX graph, its parameter count as initializer
    elements (None otherwise: a checkpoint's count comes from the loaded model, an IR's is the fp32 row's)."""
    import onnx

    folder = Path(folder)
    size = sum((folder / name).stat().st_size for name in model_files) / 1e6
    if runs.ONNX_FILE not in model_files:
        return size, None
    graph = onnx.load(str(folder / runs.ONNX_FILE), load_external_data=False).graph  # dims, not data
    return size, int(sum(math.prod(t.dims) for t in graph.initializer))


# --- FLOPs from the ONNX graph -------------------------------------------------------------------------------


@dataclass
class FlopCount:
    """MatMul-family FLOPs (2*M*K*N per product) of a graph at one input shape."""

    total: int
    by_op: dict[str, int]
    uncounted: list[str]  # MatMul-like nodes whose shapes could not be resolved


def _fixed_input_model(path: Path, batch: int, seq_len: int) -> Any:
    """The graph (weights not loaded) with every symbolic input dim fixed and shapes inferred.

    ONNX Runtime's symbolic shape inference first (it knows contrib ops and resolves the Shape/Slice chains of
    exported transformers); ONNX's own inference with data propagation if that fails.
    """
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path), load_external_data=False)
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        for d, value in zip(dims, (batch, seq_len)):
            if not d.HasField("dim_value"):
                d.dim_value = value
    from edgefn.export.graph import infer_shapes_symbolic

    inferred = infer_shapes_symbolic(model)
    return inferred if inferred is not None else shape_inference.infer_shapes(model, data_prop=True)


def _known_shapes(graph: Any) -> dict[str, list[int]]:
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    for vi in (*graph.input, *graph.value_info, *graph.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    return shapes


def matmul_flops(a: list[int], b: list[int]) -> int:
    """2*M*K*N times the broadcast batch size for numpy-style matmul of shapes `a` and `b`."""
    import numpy as np

    a2 = [1, *a] if len(a) == 1 else a
    b2 = [*b, 1] if len(b) == 1 else b
    batch = np.broadcast_shapes(tuple(a2[:-2]), tuple(b2[:-2]))
    return 2 * math.prod(batch) * a2[-2] * a2[-1] * b2[-1]


def attention_flops(x: list[int], w: list[int], qkv_sizes: list[int] | None = None) -> int:
    """A fused (Q)Attention node on input x = [B, S, H] with packed weights w = [H, q + k + v]: the QKV
    projection (2*B*S*H*(q+k+v)) plus the score and context products (2*B*S*S*q + 2*B*S*S*v)."""
    b, s, h = x
    q, _, v = qkv_sizes or [w[1] // 3] * 3
    return 2 * b * s * h * w[1] + 2 * b * s * s * (q + v)


def _node_flops(node: Any, shapes: dict[str, list[int]]) -> int | None:
    names = list(node.input)
    if node.op_type in ATTENTION_OPS:
        x, w = (shapes.get(n) for n in names[:2])
        sizes = next((list(a.ints) for a in node.attribute if a.name == "qkv_hidden_sizes"), None)
        return attention_flops(x, w, sizes) if x is not None and w is not None and len(x) == 3 else None
    if node.op_type == QLINEAR_MATMUL:
        names = [names[0], names[3]]
    a, b = (shapes.get(n) for n in names[:2])
    if not a or not b:  # unknown, or rank 0 where shape inference gave up
        return None
    if node.op_type == "Gemm":
        attrs = {at.name: at.i for at in node.attribute}
        m, k = (a[1], a[0]) if attrs.get("transA") else (a[0], a[1])
        n = b[0] if attrs.get("transB") else b[1]
        return 2 * m * k * n
    return matmul_flops(a, b)


def count_graph_flops(path: Path, batch: int, seq_len: int) -> FlopCount:
    """Count MatMul / Gemm / MatMulInteger / QLinearMatMul / (Q)Attention FLOPs of an ONNX model at
    (batch, seq_len)."""
    inferred = _fixed_input_model(Path(path), batch, seq_len)
    shapes = _known_shapes(inferred.graph)
    by_op: Counter[str] = Counter()
    uncounted = []
    for node in inferred.graph.node:
        if node.op_type not in (*MATMUL_OPS, QLINEAR_MATMUL, "Gemm", *ATTENTION_OPS):
            continue
        flops = _node_flops(node, shapes)
        if flops is None:
            uncounted.append(f"{node.op_type}:{node.name}")
        else:
            by_op[node.op_type] += flops
    return FlopCount(total=sum(by_op.values()), by_op=dict(by_op), uncounted=uncounted)


@dataclass
class FlopsModel:
    """Per-sample FLOPs as a function of sequence length: const + linear*L + quadratic*L^2 (exact for
    transformer encoders: projections grow with L, attention products with L^2)."""

    const: float
    linear: float
    quadratic: float
    uncounted: list[str]

    def per_sample(self, seq_len: float) -> float:
        """FLOPs for one sample of length `seq_len`."""
        return self.const + self.linear * seq_len + self.quadratic * seq_len**2


def fit_flops_model(path: Path, lengths: tuple[int, int, int] = (8, 16, 32)) -> FlopsModel:
    """Count the graph at batch 1 and three lengths, and solve for the quadratic in sequence length."""
    import numpy as np

    counts = [count_graph_flops(path, 1, n) for n in lengths]
    coeffs = np.linalg.solve(
        np.array([[1, n, n * n] for n in lengths], dtype=np.float64),
        np.array([c.total for c in counts], dtype=np.float64),
    )
    const, linear, quadratic = (float(c) for c in coeffs)
    return FlopsModel(const, linear, quadratic, uncounted=counts[0].uncounted)


# --- MatMul peak -------------------------------------------------------------------------------------------


def _best_gflops(fn: Callable[[], Any], flops: float, min_iters: int = 5, min_time_s: float = 0.3) -> float:
    """Best observed GFLOP/s of a call: the machine's peak is its fastest sustained product."""
    fn()

    def call(_: int) -> int:
        fn()
        return 1

    lat = measure_latency(call, warmup=1, min_iters=min_iters, min_time_s=min_time_s)
    return flops / (min(lat.call_ms) / 1000) / 1e9


def _ort_matmul_session(size: int, int8: bool, threads: int) -> tuple[Any, dict[str, Any]]:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a: Any
    if int8:
        b = numpy_helper.from_array(rng.integers(-127, 127, (size, size), dtype=np.int8), "B")
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
        a_type, y_type, a = (
            TensorProto.UINT8,
            TensorProto.INT32,
            rng.integers(0, 255, (size, size), dtype=np.uint8),
        )
    else:
        b = numpy_helper.from_array(rng.standard_normal((size, size), dtype=np.float32), "B")
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        a_type, y_type, a = (
            TensorProto.FLOAT,
            TensorProto.FLOAT,
            rng.standard_normal((size, size), dtype=np.float32),
        )
    graph = helper.make_graph(
        [node],
        "peak",
        [helper.make_tensor_value_info("A", a_type, [size, size])],
        [helper.make_tensor_value_info("Y", y_type, [size, size])],
        [b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), so, providers=[CPU])
    return session, {"A": a}


def measure_matmul_peak(threads: int, size: int = 1024, cuda: bool = False) -> dict[str, Any]:
    """This machine's MatMul peak with `threads` threads: fp32 (ONNX Runtime and torch, best of both) and
    int8 (ONNX Runtime MatMulInteger, uint8 x int8), plus fp32/fp16 on CUDA when asked and present."""
    import torch

    torch.set_num_threads(threads)
    flops = 2.0 * size**3
    out: dict[str, Any] = {
        "size": size,
        "threads": threads,
        "method": (
            f"best call of >= 5 timed {size}x{size}x{size} products after a warm-up; fp32: the better of ONNX Runtime "
            "MatMul and torch.mm; int8: ONNX Runtime MatMulInteger uint8 x int8"
        ),
    }
    for key, int8 in (("ort_fp32_gflops", False), ("ort_int8_gops", True)):
        session, feed = _ort_matmul_session(size, int8, threads)
        out[key] = _best_gflops(functools.partial(session.run, None, feed), flops)
    a, b = torch.randn(size, size), torch.randn(size, size)
    with torch.inference_mode():
        out["torch_fp32_gflops"] = _best_gflops(lambda: torch.mm(a, b), flops)
    out["fp32_gflops"] = max(out["ort_fp32_gflops"], out["torch_fp32_gflops"])
    out["int8_gops"] = out["ort_int8_gops"]
    if cuda and torch.cuda.is_available():
        out.update(_cuda_peaks())
    return out


def _cuda_peaks(size: int = 8192) -> dict[str, Any]:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    out: dict[str, Any] = {"cuda_device": torch.cuda.get_device_name(0), "cuda_size": size}
    for key, dtype in (("cuda_fp32_gflops", torch.float32), ("cuda_fp16_gflops", torch.float16)):
        a = torch.randn(size, size, device="cuda", dtype=dtype)
        b = torch.randn(size, size, device="cuda", dtype=dtype)

        def run(a: Any = a, b: Any = b) -> None:
            torch.mm(a, b)
            torch.cuda.synchronize()

        out[key] = _best_gflops(run, 2.0 * size**3)
    return out


# --- where nodes ran (CUDA fallback) -------------------------------------------------------------------------


@dataclass
class Placement:
    """Which execution provider ran each node type, read from an ONNX Runtime profile."""

    by_provider: dict[str, dict[str, int]]
    fallback_ops: dict[str, int]  # op type -> nodes that ran on CPU in a CUDA session (copies excluded)
    copies: int  # Memcpy nodes between host and device
    warning: str | None


def summarize_placement(events: Iterable[dict[str, Any]], requested: str = CUDA) -> Placement:
    """Count node kernels per provider in profile events; flag nodes that fell back from `requested` to CPU."""
    by_provider: dict[str, Counter[str]] = {}
    for ev in events:
        args = ev.get("args") or {}
        if (
            ev.get("cat") != "Node"
            or not str(ev.get("name", "")).endswith("_kernel_time")
            or "provider" not in args
        ):
            continue
        by_provider.setdefault(args["provider"], Counter())[args.get("op_name", "?")] += 1
    cpu = by_provider.get(CPU, Counter()) if requested != CPU else Counter()
    copies = sum(n for p in by_provider.values() for op, n in p.items() if op.startswith("Memcpy"))
    fallback = {op: n for op, n in sorted(cpu.items()) if not op.startswith("Memcpy")}
    warning = None
    if fallback:
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(fallback.items(), key=lambda kv: -kv[1]))
        warning = (
            f"{sum(fallback.values())} nodes did not run on {requested} but on CPU ({ops}), with {copies} "
            "host/device copies; int8 dynamic ops have no CUDA kernels: use the fp16 variant on CUDA"
        )
    return Placement({p: dict(c) for p, c in by_provider.items()}, fallback, copies, warning)


def read_profile(path: Path) -> list[dict[str, Any]]:
    """Node events of an ONNX Runtime profile file (the file is removed afterwards)."""
    import json

    events = json.loads(Path(path).read_text())
    os.remove(path)
    return [
        {
            "cat": e.get("cat"),
            "name": e.get("name"),
            "args": {k: e["args"][k] for k in ("op_name", "provider") if k in e.get("args", {})},
        }
        for e in events
        if e.get("cat") == "Node"
    ]
