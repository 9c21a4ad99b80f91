"""edgefn: fine-tune, export, quantize and benchmark small transformer text classifiers.

The public API, one entry point per stage (imported on first use, so `import edgefn` and `edgefn --help`
stay instant). The stage functions are re-exported as run_* because their modules own the plain names; each
takes `progress`, a callable given one line per step:

    run_finetune(FinetuneConfig(...)) -> FinetuneResult    edgefn.train.finetune.finetune
    run_distill(DistillConfig(...)) -> FinetuneResult      edgefn.train.distill.distill (a student of a run)
    run_export(ExportConfig(...)) -> ExportResult          edgefn.export.exporter.export
    run_bench(BenchConfig(...)) -> BenchReport             edgefn.bench.benchmark.bench
    run_eval(EvalConfig(...)) -> EvalResult                edgefn.train.evaluate.evaluate
    run_package(PackageConfig(...)) -> PackageResult       edgefn.package.packager.package
    audit_data(load_data(spec)) -> dict                    edgefn.data.audit (shortcut cues of a dataset)
    run_pipeline(PipelineConfig(...)) -> PipelineResult    edgefn.pipeline
    Classifier.from_folder(variant).predict(texts)         edgefn.runtime.classifier (torch-free)
    score(ScoreConfig(...)) -> ScoreResult                 edgefn.runtime.ray_scoring (predict on Ray Data)
    RunFolder(path)                                        edgefn.runs (the run-folder contract)
    load_data(spec, DataOptions(...)) -> DatasetBundle     edgefn.data.catalog
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, name there)
_API: dict[str, tuple[str, str]] = {
    "run_finetune": ("edgefn.train.finetune", "finetune"),
    "FinetuneConfig": ("edgefn.train.config", "FinetuneConfig"),
    "FinetuneResult": ("edgefn.train.finetune", "FinetuneResult"),
    "run_distill": ("edgefn.train.distill", "distill"),
    "DistillConfig": ("edgefn.train.distill", "DistillConfig"),
    "run_export": ("edgefn.export.exporter", "export"),
    "ExportConfig": ("edgefn.export.config", "ExportConfig"),
    "ExportResult": ("edgefn.export.exporter", "ExportResult"),
    "run_bench": ("edgefn.bench.benchmark", "bench"),
    "BenchConfig": ("edgefn.bench.benchmark", "BenchConfig"),
    "BenchReport": ("edgefn.bench.report", "BenchReport"),
    "run_eval": ("edgefn.train.evaluate", "evaluate"),
    "EvalConfig": ("edgefn.train.evaluate", "EvalConfig"),
    "EvalResult": ("edgefn.train.evaluate", "EvalResult"),
    "run_package": ("edgefn.package.packager", "package"),
    "PackageConfig": ("edgefn.package.packager", "PackageConfig"),
    "PackageResult": ("edgefn.package.packager", "PackageResult"),
    "audit_data": ("edgefn.data.audit", "audit_data"),
    "run_pipeline": ("edgefn.pipeline", "run_pipeline"),
    "PipelineConfig": ("edgefn.pipeline", "PipelineConfig"),
    "PipelineResult": ("edgefn.pipeline", "PipelineResult"),
    "Classifier": ("edgefn.runtime.classifier", "Classifier"),
    "Prediction": ("edgefn.runtime.classifier", "Prediction"),
    "score": ("edgefn.runtime.ray_scoring", "score"),
    "ScoreConfig": ("edgefn.runtime.ray_scoring", "ScoreConfig"),
    "ScoreResult": ("edgefn.runtime.ray_scoring", "ScoreResult"),
    "RunFolder": ("edgefn.runs", "RunFolder"),
    "load_data": ("edgefn.data.catalog", "load_data"),
    "DataOptions": ("edgefn.data.catalog", "DataOptions"),
    "DatasetBundle": ("edgefn.data.catalog", "DatasetBundle"),
    "EdgefnError": ("edgefn.core.errors", "EdgefnError"),
}
__all__ = [
    "__version__",
    "run_finetune",
    "FinetuneConfig",
    "FinetuneResult",
    "run_distill",
    "DistillConfig",
    "run_export",
    "ExportConfig",
    "ExportResult",
    "run_bench",
    "BenchConfig",
    "BenchReport",
    "run_eval",
    "EvalConfig",
    "EvalResult",
    "run_package",
    "PackageConfig",
    "PackageResult",
    "audit_data",
    "run_pipeline",
    "PipelineConfig",
    "PipelineResult",
    "Classifier",
    "Prediction",
    "score",
    "ScoreConfig",
    "ScoreResult",
    "RunFolder",
    "load_data",
    "DataOptions",
    "DatasetBundle",
    "EdgefnError",
]

if TYPE_CHECKING:
    from edgefn.bench.benchmark import BenchConfig
    from edgefn.bench.benchmark import bench as run_bench
    from edgefn.bench.report import BenchReport
    from edgefn.core.errors import EdgefnError
    from edgefn.data.audit import audit_data
    from edgefn.data.catalog import DataOptions, DatasetBundle, load_data
    from edgefn.export.exporter import ExportConfig, ExportResult
    from edgefn.export.exporter import export as run_export
    from edgefn.package.packager import PackageConfig, PackageResult
    from edgefn.package.packager import package as run_package
    from edgefn.pipeline import PipelineConfig, PipelineResult, run_pipeline
    from edgefn.runs import RunFolder
    from edgefn.runtime.classifier import Classifier, Prediction
    from edgefn.runtime.ray_scoring import ScoreConfig, ScoreResult, score
    from edgefn.train.distill import DistillConfig
    from edgefn.train.distill import distill as run_distill
    from edgefn.train.evaluate import EvalConfig, EvalResult
    from edgefn.train.evaluate import evaluate as run_eval
    from edgefn.train.finetune import FinetuneConfig, FinetuneResult
    from edgefn.train.finetune import finetune as run_finetune


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
