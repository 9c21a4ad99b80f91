"""The engine registry: an engine registered from this module, with no edit anywhere else, is benchmarked (in bench's
fresh processes), ranked by the verdict and listed in `edgefn bench --help`."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgefn.bench.benchmark import BenchConfig, bench
from edgefn.cli.commands import main
from edgefn.core.errors import EdgefnError
from edgefn.runs import ONNX_FILE, RunFolder
from edgefn.runtime import engines, inference
from edgefn.runtime.engines import Engine, LoadRequest

TOY = "ort-toy"
FAST = dict(batch_sizes=(1, 4), seq_len=32, samples=32, min_time_s=0.02, min_iters=3, warmup=1, threads=1)


def load_toy(request: LoadRequest) -> inference.OrtRunner:
    """ONNX Runtime on the CPU with session options of its own: basic graph optimisations only, sequential."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = request.threads or 0
    session = ort.InferenceSession(str(request.model), sess_options=opts, providers=[inference.CPU])
    return inference.OrtRunner(session)


# What adding an engine takes: one record, registered when its module is imported (bench's measuring processes
# import this module by the record's `module` to find it).
engines.register(
    Engine(
        name=TOY,
        device="cpu",
        runtime="onnxruntime",
        module=__name__,
        load=load_toy,
        files=(ONNX_FILE,),
        suffixes=(".onnx",),
        versions=("onnxruntime",),
    )
)


def test_toy_engine_loads_with_its_own_session_options(exported_tiny_run: Path) -> None:
    """The toy's runner is an ONNX Runtime session on the CPU with the options it set, and it classifies."""
    import onnxruntime as ort

    variant = RunFolder(exported_tiny_run).variant_dir("fp32")
    runner = engines.get(TOY).load(LoadRequest(variant / ONNX_FILE, threads=1))
    options = runner.session.get_session_options()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert runner.providers == [inference.CPU]
    encoder = inference.Encoder.from_folder(variant, 32)
    assert runner(encoder.fixed_feed(["a text", "another"], 32)).shape == (2, 2)


def test_toy_engine_is_benchmarked_and_ranked(run: Path) -> None:
    """`bench --providers cpu,ort-toy` measures every ONNX variant on the toy engine in bench's fresh processes
    (the same texts, protocol and predictions as on ONNX Runtime's own CPU engine), writes its rows, and the
    verdict ranks them on the CPU (its record's device) against the other engine's."""
    report = bench(
        BenchConfig(
            run_dir=run,
            providers=("cpu", TOY),
            variants=("fp32",),
            include_pytorch=False,
            peers=(),
            max_drop=100.0,  # both rows stay candidates whatever a near-tie text does
            **FAST,
        )
    )
    toy, cpu = report.result("fp32", TOY), report.result("fp32", inference.CPU)
    assert toy.status == "ok" and toy.active_providers == [inference.CPU]
    assert len(toy.measurements) == 4  # fixed and real lengths at batch 1 and 4
    assert all(m.latency.count >= FAST["min_iters"] and m.latency.p50_ms > 0 for m in toy.measurements)
    assert toy.session_ms > 0 and toy.predictions and len(toy.predictions) == FAST["samples"]
    assert toy.accuracy is not None and toy.accuracy.agreement >= 0.95  # against fp32 on the CPU engine
    assert toy.model_fingerprint == cpu.model_fingerprint and toy.size_mb == cpu.size_mb  # the same file
    assert len(report.verdict) == 4
    for cell in report.verdict:  # the two rows are the only candidates: one wins, the other is runner-up
        assert cell["device"] == "cpu"
        assert {cell["winner"]["provider"], cell["runner_up"]["provider"]} == {TOY, inference.CPU}
    with open(RunFolder(run).bench_file("csv")) as f:
        assert {r["provider"] for r in csv.DictReader(f)} == {TOY, inference.CPU}


def test_toy_engine_is_listed_in_bench_help() -> None:
    """`edgefn bench --help` lists the registered engines, the toy included, when help is shown."""
    result = CliRunner().invoke(main, ["bench", "--help"], terminal_width=400, max_content_width=400)
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "--providers" in line)
    assert f"{TOY}," in line and "CPUExecutionProvider (cpu)" in line


def test_lookups_and_refusals() -> None:
    """Unknown names list the known engines; a taken name is refused; a folder's runtime picks the engine."""
    with pytest.raises(EdgefnError, match=rf"unknown provider 'gpu9'; known: .*{TOY}"):
        engines.get("gpu9")
    with pytest.raises(ValueError, match="already registered"):
        engines.register(engines.get(TOY))
    assert engines.get("cpu").name == inference.CPU and engines.find(TOY).device == "cpu"
    onnx = engines.get(TOY).runtime
    assert engines.engine_for(onnx, engines.get(TOY)).name == TOY  # asked for, it runs its runtime's models
    assert engines.engine_for(onnx, engines.get("cpu")).name == inference.CPU  # the device's default
