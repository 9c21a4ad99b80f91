"""The package's shape: imports flow one way (no cycle, no upward import), and each job has one owner."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import edgefn

PACKAGE = Path(edgefn.__file__).parent
# The pipeline's layers, bottom first. A module may import modules of its own layer or below, never above.
LAYERS = {
    "errors": 0,
    "outputs": 0,
    "environment": 1,
    "runs": 1,
    "metrics": 1,
    "noise": 2,
    "presets": 1,
    "predict_io": 1,
    "textfiles": 1,
    "tables": 2,
    "webbuild": 1,
    "inference": 2,
    "graph": 3,
    "runtime": 3,
    "measure": 4,
    "reference": 4,
    "ortformat": 4,
    "dataset": 5,
    "dataprep": 6,
    "loaders": 7,
    "data": 8,
    "baseline": 9,
    "audit": 9,
    "evaluate": 9,
    "finetune": 9,
    "quantize": 10,
    "openvino_models": 10,
    "export": 11,
    "peers": 12,
    "bench_worker": 12,
    "package": 12,
    "report": 12,
    "verdict": 12,
    "bench": 13,
    "show": 14,
    "pipeline": 14,
    "cli_options": 15,
    "cli": 16,
    "__init__": 17,
}
# The torch-free runtime rests on the bottom layers only.
RUNTIME_ALLOWED = {"errors", "outputs", "environment", "runs", "inference"}


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.glob("*.py"))}


def _edgefn_imports(tree: ast.Module) -> set[str]:
    """Every edgefn module a module imports, at the top or inside functions (TYPE_CHECKING blocks too)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgefn"):
            if node.module == "edgefn":
                out |= {a.name for a in node.names if a.name in LAYERS}
            else:
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("edgefn.")}
    return out


def _graph() -> dict[str, set[str]]:
    return {name: _edgefn_imports(tree) - {name} for name, tree in _modules().items()}


def test_every_module_has_a_layer():
    """A new module must be placed in the layer table before it can be imported."""
    assert set(_modules()) == set(LAYERS)


def test_imports_never_go_up():
    """No module imports one of a higher layer (the bench stage never reaches into export, data never into
    finetune ...); `__init__` only names modules lazily (TYPE_CHECKING) and is exempt from nothing."""
    upward = sorted(
        f"{m} (layer {LAYERS[m]}) imports {d} (layer {LAYERS[d]})"
        for m, deps in _graph().items()
        for d in deps
        if LAYERS[d] > LAYERS[m]
    )
    assert upward == []


def test_no_import_cycle():
    """The module import graph (in-function imports included) is acyclic."""
    graph, state, cycles = _graph(), {}, []

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(" -> ".join(path[path.index(d) :] + [d]) if d in path else f"{m} -> {d}")
            elif d not in state:
                visit(d, [*path, d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_runtime_rests_on_the_bottom_layer():
    """runtime (what `edgefn predict` loads) imports only errors, environment, runs and inference."""
    assert _graph()["runtime"] <= RUNTIME_ALLOWED


def _calls(name: str) -> dict[str, int]:
    """Per module, how many calls of a function or method called `name` it makes."""
    out = {}
    for module, tree in _modules().items():
        n = sum(
            1
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) == name or getattr(node.func, "id", None) == name)
        )
        if n:
            out[module] = n
    return out


@pytest.mark.parametrize(
    "call, owners",
    [
        # sessions that run a model; graph (the offline basic pass) and measure (MatMul peak) keep their own
        ("InferenceSession", {"inference", "graph", "measure"}),
        ("from_file", {"inference"}),  # the fast tokenizer is loaded in one place
        ("encode_batch", {"inference"}),  # ... and tokenises in one place
        ("precision_recall_fscore_support", {"metrics"}),  # one metrics function
        # models and tokenizers load in presets / reference / data; export and peers open Optimum's
        # ORTOptimizer / ORTQuantizer on a graph folder
        ("from_pretrained", {"presets", "reference", "data", "export", "peers"}),
    ],
)
def test_one_owner_per_job(call, owners):
    """Each low-level job is done by its owning modules only."""
    assert set(_calls(call)) <= owners


def test_one_cpuinfo_parser_and_one_softmax():
    """/proc/cpuinfo is read only by environment; softmax is defined only by inference."""
    sources = {p.stem: p.read_text(encoding="utf-8") for p in PACKAGE.glob("*.py")}
    assert {m for m, s in sources.items() if "/proc/cpuinfo" in s} == {"environment"}
    assert {m for m, s in sources.items() if "def softmax" in s} == {"inference"}


RUN_FOLDER_NAMES = {
    "finetune_config.json",
    "metrics.json",
    "errors.csv",
    "confusion_matrix.png",
    "export.json",
    "model.onnx",
    "report.json",
    "report.csv",
    "report.md",
    "latency.png",
    "tradeoff.png",
    "validation.jsonl",
    "test.jsonl",
    "calibration.jsonl",
}


def test_run_folder_names_live_in_runs():
    """No module but runs spells a run-folder file name: the layout is one contract."""
    found = sorted(
        f"{module}: {node.value}"
        for module, tree in _modules().items()
        if module != "runs"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in RUN_FOLDER_NAMES
    )
    assert found == []


def test_public_api_is_lazy():
    """`import edgefn` imports no stage module; each public name resolves to its stage's object."""
    import subprocess
    import sys

    code = (
        "import sys, edgefn; print(sorted(m for m in sys.modules if m.startswith('edgefn.'))); "
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "False False"]
    from edgefn.export import export
    from edgefn.runtime import Classifier

    assert edgefn.run_export is export and edgefn.Classifier is Classifier
    assert set(edgefn.__all__) >= {"run_finetune", "run_export", "run_bench", "RunFolder", "BenchReport"}
