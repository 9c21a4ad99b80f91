"""Two ways to run OpenVINO from edgefn: ONNX Runtime's OpenVINO EP plugin vs OpenVINO's own runtime.

Usage (the EP plugin is not an edgefn dependency; install it beside, e.g. into a folder on PYTHONPATH):
    pip install --no-deps --target /tmp/ovep onnxruntime-ep-openvino
    PYTHONPATH=/tmp/ovep HF_HUB_OFFLINE=1 python benchmarks/openvino_paths.py --run RUN

Same plain Optimum graph of the run's checkpoint, same texts (fixed batch x 128 tokens), same threads, in
interleaved rounds; fp32 and bf16 inference precision each way. Writes benchmarks/results/openvino_paths.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import RESULTS, write_measurement

from edgefn.bench.noise import machine_state
from edgefn.bench.report import markdown_table
from edgefn.engines.openvino import OvRunner
from edgefn.runs import ONNX_FILE, RunFolder
from edgefn.runtime.inference import Encoder


def ep_session(model: Path, threads: int, precision: str) -> Any:
    """An ONNX Runtime session on the OpenVINO EP plugin's CPU device, or None when it lists no device."""
    import onnxruntime as ort
    import onnxruntime_ep_openvino as plugin

    if plugin.get_ep_name() not in [d.ep_name for d in ort.get_ep_devices()]:
        ort.register_execution_provider_library(plugin.get_ep_name(), plugin.get_library_path())
    devices = [d for d in ort.get_ep_devices() if d.ep_name == plugin.get_ep_name()]
    if not devices:
        return None
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    hint = {"fp32": "f32", "bf16": "bf16"}[precision]
    config = json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": str(threads)}})
    so.add_provider_for_devices(devices, {"device_type": "CPU", "load_config": config})
    return ort.InferenceSession(str(model), sess_options=so)


def time_calls(call: Any, seconds: float) -> float:
    """Median milliseconds of one call over `seconds` (after two warm-up calls)."""
    call()
    call()
    out = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(out) < 5:
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def main() -> None:
    from edgefn.export.exporter import export_plain_onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument(
        "--results-dir", dest="results", type=Path, default=RESULTS, help="Where the JSON and Markdown go."
    )
    args = parser.parse_args()
    run = RunFolder(args.run)
    texts = run.read_split("test").texts
    encoder = Encoder.from_folder(run.checkpoint, 128)
    with tempfile.TemporaryDirectory() as tmp:
        export_plain_onnx(run.checkpoint, Path(tmp) / "plain")
        model = Path(tmp) / "plain" / ONNX_FILE
        paths: dict[str, Any] = {}
        for precision in ("fp32", "bf16"):
            session = ep_session(model, args.threads, precision)
            if session is not None:
                names = [i.name for i in session.get_inputs()]
                paths[f"ORT OpenVINO EP {precision}"] = lambda feed, s=session, n=names: s.run(
                    None, {k: feed[k] for k in n}
                )
            runner = OvRunner(model, args.threads, precision)
            paths[f"OpenVINO runtime {precision}"] = runner
        before = machine_state()
        results: dict[str, dict[int, list[float]]] = {name: {1: [], 32: []} for name in paths}
        for _ in range(args.rounds):
            for batch in (1, 32):
                feed = encoder.fixed_feed(texts[:batch], 128)
                for name, call in paths.items():
                    results[name][batch].append(time_calls(lambda c=call, f=feed: c(f), args.seconds) / batch)
        after = machine_state()
    rows = [
        [
            name,
            *(statistics.median(results[name][b]) for b in (1, 32)),
            *(max(results[name][b]) / min(results[name][b]) - 1 for b in (1, 32)),
        ]
        for name in paths
    ]
    record = {
        "machine": {"before": before, "after": after},
        "ms_per_sample": {n: {str(b): v for b, v in r.items()} for n, r in results.items()},
        "ep_listed_a_device": any(n.startswith("ORT") for n in paths),
    }
    header = ["path", "b1 ms/sample", "b32 ms/sample", "b1 spread", "b32 spread"]
    print(
        write_measurement(
            args.results,
            "openvino_paths",
            record,
            "OpenVINO through ONNX Runtime's EP plugin vs OpenVINO's own runtime",
            f"{args.threads} threads",
            markdown_table(header, rows),
        )
    )


if __name__ == "__main__":
    main()
