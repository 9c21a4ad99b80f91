"""The package's shape: imports flow one way (no cycle, no upward import), and each job has one owner."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import edgefn

PACKAGE = Path(edgefn.__file__).parent
# The pipeline's layers, bottom first: a module may import modules of its own subpackage or of a lower layer,
# never of a higher one. Top-level modules are their own unit ("pipeline"; "__init__" names stages lazily).
LAYERS = {
    "core": 0,  # errors, output policy, environment, text files, metrics, presets
    "runs": 1,  # the run-folder contract
    "runtime": 2,  # tokenise + run + label; torch-free
    "data": 3,
    "engines": 4,  # the engine modules (ONNX Runtime, OpenVINO, PyTorch), registered into runtime.engines
    "train": 5,  # finetune, evaluate
    "export": 6,
    "bench": 7,
    "package": 7,
    "pipeline": 8,
    "cli": 9,
    "__init__": 10,
}
# The torch-free runtime rests on these units only.
RUNTIME_ALLOWED = {"core", "runs", "runtime"}


def _name(path: Path) -> str:
    """A module's dotted name below edgefn ("runs", "bench.measure", "pipeline", "__init__")."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if len(parts) > 1 and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _unit(module: str) -> str:
    """The layer unit of a module: its subpackage, or the module itself at the top."""
    return module.split(".")[0]


def _modules() -> dict[str, ast.Module]:
    return {_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))}


def _edgefn_imports(tree: ast.Module, names: set[str]) -> set[str]:
    """Every edgefn module a module imports, at the top or inside functions (TYPE_CHECKING blocks too)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgefn"):
            base = node.module.removeprefix("edgefn").lstrip(".")
            for a in node.names:  # `from edgefn.bench import measure` imports bench.measure
                sub = f"{base}.{a.name}" if base else a.name
                out.add(sub if sub in names else base)
        elif isinstance(node, ast.Import):
            out |= {a.name.removeprefix("edgefn.") for a in node.names if a.name.startswith("edgefn.")}
    return out - {""}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _edgefn_imports(tree, set(modules)) - {name} for name, tree in modules.items()}


def test_every_module_has_a_layer():
    """A new subpackage or top-level module must be placed in the layer table before it can be imported."""
    assert {_unit(m) for m in _modules()} == set(LAYERS)


def test_the_top_stays_small():
    """The top of edgefn/ holds the public API and the pipeline; everything else lives in a stage."""
    assert len(list(PACKAGE.glob("*.py"))) <= 8 and len(list(PACKAGE.glob("*/__init__.py"))) >= 5


def test_imports_never_go_up():
    """No module imports one of a higher layer (the bench stage never reaches into export, data never into
    finetune ...); `__init__` only names modules lazily (TYPE_CHECKING) and is exempt from nothing."""
    upward = sorted(
        f"{m} (layer {LAYERS[_unit(m)]}) imports {d} (layer {LAYERS[_unit(d)]})"
        for m, deps in _graph().items()
        for d in deps
        if LAYERS[_unit(d)] > LAYERS[_unit(m)]
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
    """runtime (what `edgefn predict` loads) imports only core, runs and itself."""
    graph = _graph()
    used = {_unit(d) for m, deps in graph.items() if _unit(m) == "runtime" for d in deps}
    assert used <= RUNTIME_ALLOWED


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
        ("InferenceSession", {"runtime.inference", "export.graph", "bench.measure"}),
        ("from_file", {"runtime.inference"}),  # the fast tokenizer is loaded in one place
        ("encode_batch", {"runtime.inference"}),  # ... and tokenises in one place
        ("precision_recall_fscore_support", {"core.metrics"}),  # one metrics function
        # models and tokenizers load in weights / the PyTorch engine / data; export and the ONNX Runtime engine
        # (its optimum-recipe peer) open Optimum's ORTOptimizer / ORTQuantizer on a graph folder
        (
            "from_pretrained",
            {"core.weights", "engines.pytorch", "data.catalog", "export.optimum", "engines.onnxruntime"},
        ),
    ],
)
def test_one_owner_per_job(call, owners):
    """Each low-level job is done by its owning modules only."""
    assert set(_calls(call)) <= owners


def test_one_cpuinfo_parser_and_one_softmax():
    """/proc/cpuinfo is read only by environment; softmax is defined only by inference."""
    sources = {_name(p): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}
    assert {m for m, s in sources.items() if "/proc/cpuinfo" in s} == {"core.environment"}
    assert {m for m, s in sources.items() if "def softmax" in s} == {"runtime.inference"}


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
        if _unit(module) != "runs"
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
    from edgefn.export.exporter import export
    from edgefn.runtime.classifier import Classifier

    assert edgefn.run_export is export and edgefn.Classifier is Classifier
    assert set(edgefn.__all__) >= {"run_finetune", "run_export", "run_bench", "RunFolder", "BenchReport"}
    assert set(edgefn.__all__) >= {"run_eval", "run_package", "audit_data", "EvalConfig", "PackageConfig"}
    assert all(getattr(edgefn, name) is not None for name in edgefn.__all__)
