"""Does OpenVINO run edgefn's int8-static file (QDQ ONNX) as int8, and how does it compare with ov-int8?

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/openvino_qdq.py --run RUN   # RUN exported with int8-static and ov-int8

OpenVINO reads ONNX directly, so the int8-static model.onnx could be deployed on OpenVINO as it is. Three rows,
same run, texts, threads and precision, interleaved rounds: the QDQ file in OpenVINO's runtime, the NNCF IR
(ov-int8) in OpenVINO's runtime, and the QDQ file in ONNX Runtime. For each OpenVINO row the compiled graph
tells whether the linear layers run as int8 kernels (the FullyConnected nodes' runtime precision and
primitive). Writes benchmarks/results/openvino_qdq.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from common import RESULTS, write_measurement
from openvino_paths import time_calls

from edgefn import runs
from edgefn.bench.noise import machine_state
from edgefn.bench.report import markdown_table
from edgefn.engines.openvino import IR_XML, OvRunner
from edgefn.runs import RunFolder
from edgefn.runtime.classifier import Classifier, id2label_of
from edgefn.runtime.inference import CPU, Encoder

SEQ_LEN = 128


def linear_kernels(runner: OvRunner) -> dict[str, int]:
    """FullyConnected nodes of the compiled graph by '<runtime precision> <primitive>'."""
    counts: Counter[str] = Counter()
    for op in runner.compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if str(info["layerType"].astype(str)).startswith("FullyConnected"):
            counts[f"{info['runtimePrecision'].astype(str)} {info['primitiveType'].astype(str)}"] += 1
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=None, help="test texts for accuracy (default: all)")
    parser.add_argument(
        "--results-dir", dest="results", type=Path, default=RESULTS, help="Where the JSON and Markdown go."
    )
    args = parser.parse_args()
    run = RunFolder(args.run)
    test = run.read_split("test")
    texts, labels = test.texts[: args.samples], test.labels[: args.samples]
    static_dir, ov_dir = run.variant_dir("int8-static"), run.variant_dir("ov-int8")
    precision = runs.read_variant_manifest(ov_dir).precision or "fp32"
    encoder = Encoder.from_folder(static_dir, SEQ_LEN)
    id2label = id2label_of(runs.read_json(static_dir / runs.MODEL_CONFIG))
    ov_qdq = OvRunner(static_dir / runs.ONNX_FILE, args.threads, precision, SEQ_LEN)
    ov_ir = OvRunner(ov_dir / IR_XML, args.threads, precision, SEQ_LEN)
    rows: dict[str, Classifier] = {
        f"int8-static QDQ ONNX in OpenVINO ({ov_qdq.precision})": Classifier(ov_qdq, encoder, id2label),
        f"ov-int8 NNCF IR in OpenVINO ({ov_ir.precision})": Classifier(ov_ir, encoder, id2label),
        "int8-static QDQ ONNX in ONNX Runtime": Classifier.from_folder(static_dir, CPU, args.threads),
    }
    reference = Classifier.from_folder(run.variant_dir("fp32"), CPU, args.threads).predict(texts)
    quality: dict[str, dict[str, Any]] = {}
    for name, clf in rows.items():
        predicted = [p.label_id for p in clf.predict(texts)]
        quality[name] = {
            "accuracy": sum(p == y for p, y in zip(predicted, labels)) / len(labels),
            "agreement_with_fp32": sum(p == r.label_id for p, r in zip(predicted, reference)) / len(texts),
            "linear_kernels": linear_kernels(clf.runner) if isinstance(clf.runner, OvRunner) else None,
        }
    before = machine_state()
    timings: dict[str, dict[int, list[float]]] = {name: {1: [], 32: []} for name in rows}
    for _ in range(args.rounds):
        for batch in (1, 32):
            feed = encoder.fixed_feed(texts[:batch], SEQ_LEN)
            for name, clf in rows.items():
                ms = time_calls(lambda c=clf, f=feed: c.run(f), args.seconds)
                timings[name][batch].append(ms / batch)
    after = machine_state()
    table = [
        [
            name,
            quality[name]["accuracy"],
            quality[name]["agreement_with_fp32"],
            *(statistics.median(timings[name][b]) for b in (1, 32)),
            ", ".join(f"{n} {k}" for k, n in (quality[name]["linear_kernels"] or {}).items()) or "-",
        ]
        for name in rows
    ]
    record = {
        "machine": {"before": before, "after": after},
        "test_texts": len(texts),
        "quality": quality,
        "ms_per_sample": {n: {str(b): v for b, v in r.items()} for n, r in timings.items()},
    }
    header = [
        "row",
        "accuracy",
        "agreement with fp32",
        "b1 ms/sample",
        "b32 ms/sample",
        "linear-layer kernels",
    ]
    setup = (
        f"{args.threads} threads; {len(texts)} CONSTRAINT test texts; fixed {SEQ_LEN} tokens, medians of "
        f"{args.rounds} interleaved rounds"
    )
    title = "edgefn's int8-static (QDQ ONNX) in OpenVINO"
    print(
        write_measurement(args.results, "openvino_qdq", record, title, setup, markdown_table(header, table))
    )


if __name__ == "__main__":
    main()
