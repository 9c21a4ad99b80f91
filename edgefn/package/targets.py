"""The package target registry: each deployment (web, mobile) is one `PackageTarget` record."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.core.progress import Progress
from edgefn.runs import RunFolder
from edgefn.runtime.classifier import Classifier

# The built-in target modules, imported by name on the first lookup: one line per target.
BUILTIN = ("edgefn.package.web", "edgefn.package.mobile")


@dataclass
class PackageJob:
    """What a target's writer gets: the run, its hash-checked variants, the check texts, and what was asked."""

    run: RunFolder
    step: Progress
    manifests: dict[str, runs.VariantManifest]  # variant -> export.json (hash-checked)
    variants: tuple[str, ...] | None  # the variants asked for (None: the target's default choice)
    threads: int | None = None  # ONNX Runtime threads of the Python side of the checks
    browser_check: bool = False
    texts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def classifier(self, variant: str, batch_size: int = 1) -> Classifier:
        """The variant as `edgefn predict` serves it: its training cleaning applied to each text."""
        return Classifier.from_verified_folder(
            self.run.variant_dir(variant),
            self.manifests[variant],
            threads=self.threads,
            batch_size=batch_size,
            clean=True,
        )

    def cleaning(self, variants: list[str]) -> list[str]:
        """The cleaning rules the packaged `variants` record in export.json (none for an export.json of older
        edgefn), for the page or the app to apply; variants that record different ones are refused."""
        recorded = {n: self.manifests[n].cleaning or [] for n in variants}
        if len({tuple(r) for r in recorded.values()}) > 1:
            each = "; ".join(f"{n}: {', '.join(r) or 'none'}" for n, r in recorded.items())
            raise EdgefnError(
                f"the variants record different cleaning ({each}); export them again with `edgefn export`"
            )
        return recorded[variants[0]] if variants else []


def _no_tools_needed(browser_check: bool) -> None:
    return None


@dataclass(frozen=True)
class PackageTarget:
    """One deployment: how its folder is written and checked, and how the summary describes it."""

    name: str
    # fills the folder; returns its manifest (the packager adds the files' hashes)
    write: Callable[[PackageJob, Path], runs.PackageManifest]
    checked_against: str  # what each packaged model is checked against, as the summary says it
    usage: Callable[[Path], str]  # the summary's last line: how to use the folder
    prepare: Callable[[bool], None] = _no_tools_needed  # refuses early when a tool it needs is missing
    browser_check: bool = False  # whether --browser-check applies


_TARGETS: dict[str, PackageTarget] = {}
_loaded = False


def register_target(target: PackageTarget) -> PackageTarget:
    """Add a package target; a name already taken raises ValueError."""
    if target.name in _TARGETS:
        raise ValueError(f"package target {target.name!r} is already registered")
    _TARGETS[target.name] = target
    return target


def target_names() -> list[str]:
    """The registered targets' names."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN:
            importlib.import_module(module)
    return list(_TARGETS)


def get_target(name: str) -> PackageTarget:
    """A target by name, or a one-line error listing the known ones."""
    if name not in target_names():
        raise ConfigError("target", f"unknown {name!r}; choose one of {', '.join(target_names())}")
    return _TARGETS[name]


def run_record(run: RunFolder) -> dict[str, Any]:
    ft = run.read_finetune_config(required=False)
    metrics = run.read_metrics()
    test = metrics.get("test") or {}
    return {
        "run": run.name,
        "preset": ft.preset,
        "init": ft.init,
        "data": ft.data,
        "test_accuracy": test.get("accuracy"),
        "test_rows": test.get("n"),
        "parameters": metrics.get("parameters"),
        "warnings": metrics.get("warnings") or [],  # finetune's: a model that may not have learned
    }


def out_of_domain(run: RunFolder) -> list[dict[str, Any]]:
    """Accuracy on other datasets recorded by `edgefn eval` (RUN/eval/*/), [] when none was measured."""
    if not run.eval_root.is_dir():
        return []
    trained_on = run.read_finetune_config(required=False).data
    out = []
    for folder in sorted(p for p in run.eval_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        path = RunFolder.eval_file(folder, "metrics")
        record = runs.EvalManifest.read(path) if os.path.lexists(path) else runs.EvalManifest()
        data, metrics = record.data or {}, record.metrics or {}
        name = data.get("name") or folder.name
        if metrics.get("accuracy") is None or name == trained_on:
            continue
        rows = data.get("rows_scored", metrics.get("n"))
        out.append({"data": name, "model": record.model, "accuracy": metrics["accuracy"], "rows": rows})
    return out
