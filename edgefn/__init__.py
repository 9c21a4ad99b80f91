"""edgefn: fine-tune, export, quantize and benchmark small transformer text classifiers.

The public API, one entry point per stage (imported on first use, so `import edgefn` and `edgefn --help`
stay instant). The stage functions are re-exported as run_* because their modules own the plain names:

    run_finetune(FinetuneConfig(...)) -> FinetuneResult    edgefn.finetune.finetune
    run_export(ExportConfig(...)) -> ExportResult          edgefn.export.export
    run_bench(BenchConfig(...)) -> BenchReport             edgefn.bench.bench
    run_pipeline(PipelineConfig(...)) -> PipelineResult    edgefn.pipeline
    Classifier.from_folder(variant).predict(texts)         edgefn.runtime (torch-free)
    RunFolder(path)                                        edgefn.runs (the run-folder contract)
    load_data(spec, DataOptions(...)) -> DatasetBundle     edgefn.data
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, name there)
_API: dict[str, tuple[str, str]] = {
    "run_finetune": ("edgefn.finetune", "finetune"),
    "FinetuneConfig": ("edgefn.finetune", "FinetuneConfig"),
    "FinetuneResult": ("edgefn.finetune", "FinetuneResult"),
    "run_export": ("edgefn.export", "export"),
    "ExportConfig": ("edgefn.export", "ExportConfig"),
    "ExportResult": ("edgefn.export", "ExportResult"),
    "run_bench": ("edgefn.bench", "bench"),
    "BenchConfig": ("edgefn.bench", "BenchConfig"),
    "BenchReport": ("edgefn.report", "BenchReport"),
    "run_pipeline": ("edgefn.pipeline", "run_pipeline"),
    "PipelineConfig": ("edgefn.pipeline", "PipelineConfig"),
    "PipelineResult": ("edgefn.pipeline", "PipelineResult"),
    "Classifier": ("edgefn.runtime", "Classifier"),
    "Prediction": ("edgefn.runtime", "Prediction"),
    "RunFolder": ("edgefn.runs", "RunFolder"),
    "load_data": ("edgefn.data", "load_data"),
    "DataOptions": ("edgefn.data", "DataOptions"),
    "DatasetBundle": ("edgefn.data", "DatasetBundle"),
    "EdgefnError": ("edgefn.errors", "EdgefnError"),
}
__all__ = [
    "__version__",
    "run_finetune",
    "FinetuneConfig",
    "FinetuneResult",
    "run_export",
    "ExportConfig",
    "ExportResult",
    "run_bench",
    "BenchConfig",
    "BenchReport",
    "run_pipeline",
    "PipelineConfig",
    "PipelineResult",
    "Classifier",
    "Prediction",
    "RunFolder",
    "load_data",
    "DataOptions",
    "DatasetBundle",
    "EdgefnError",
]

if TYPE_CHECKING:
    from edgefn.bench import BenchConfig
    from edgefn.bench import bench as run_bench
    from edgefn.data import DataOptions, DatasetBundle, load_data
    from edgefn.errors import EdgefnError
    from edgefn.export import ExportConfig, ExportResult
    from edgefn.export import export as run_export
    from edgefn.finetune import FinetuneConfig, FinetuneResult
    from edgefn.finetune import finetune as run_finetune
    from edgefn.pipeline import PipelineConfig, PipelineResult, run_pipeline
    from edgefn.report import BenchReport
    from edgefn.runs import RunFolder
    from edgefn.runtime import Classifier, Prediction


def __getattr__(name: str) -> Any:
    """Import the module that defines a public name on first access."""
    if name not in _API:
        raise AttributeError(f"module 'edgefn' has no attribute {name!r}")
    module, attr = _API[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
