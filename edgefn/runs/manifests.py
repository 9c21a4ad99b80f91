"""Typed manifests (export.json, run.json, finetune_config.json, eval and package records): JSON keys are fields."""

# Writers build these records and readers get attributes, never string keys; `runs.write_json` writes `to_dict()`.

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from edgefn.core.errors import EdgefnError
from edgefn.runs.jsonio import JsonType, check_json_object, read_json_object

_NULL = type(None)
M = TypeVar("M", bound="Manifest")


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What every record shares: `from_dict` checks the JSON type of each field present (an absent one is
    None, schema marks included; a key edgefn does not know is ignored, so older and newer files load),
    `to_dict` writes the fields that are set (and those in `ALWAYS`, null included)."""

    JSON_TYPES: ClassVar[Mapping[str, JsonType]]  # field -> its JSON type(s); one entry per field
    ALWAYS: ClassVar[tuple[str, ...]] = ()  # fields written even when None (as null)

    @classmethod
    def from_dict(cls: type[M], value: Any, where: str | Path, fix: str = "") -> M:
        """The record of a parsed JSON file; one line naming `where`, the field and `fix` when its shape
        or a field's type is wrong."""
        record = check_json_object(value, str(where), cls.JSON_TYPES, fix=fix)
        return cls(**{k: v for k, v in record.items() if k in cls.JSON_TYPES})

    @classmethod
    def read(cls: type[M], path: Path, fix: str = "", follow_symlinks: bool = True) -> M:
        """The record in a JSON file; any fault (missing, not a regular file, not JSON, of another shape)
        is one line naming the file."""
        return cls.from_dict(read_json_object(path, fix=fix, follow_symlinks=follow_symlinks), path, fix)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: each field set (or in `ALWAYS`) under its own name."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None or f.name in self.ALWAYS
        }


@dataclass(frozen=True, kw_only=True)
class VariantManifest(Manifest):
    """export.json of a variant (onnx/<variant>/, by export) or a peer (peers/<name>/, by bench): its files'
    hashes, how it was made and, for export's variants, how it scored against fp32."""

    variant: str | None = None
    scheme: str | None = None
    peer: str | None = None  # a peer's name (peers only)
    description: str | None = None  # a peer's one-line description
    recipe: str | None = None  # how a peer was built
    preset: str | None = None
    init: str | None = None
    runtime: str | None = None  # "onnxruntime" unless recorded (OpenVINO variants and peers record theirs)
    precision: str | None = None  # what OpenVINO computes in; "fp32" unless recorded
    model_files: list[str] | None = (
        None  # its engine's model file(s), the one it loads first (none: model.onnx)
    )
    model_sha256: str | None = None
    files_sha256: dict[str, str] | None = None  # every file but export.json, by relative name
    source_checkpoint_sha256: str | None = None
    recipe_version: int | None = None  # a peer's build recipe; a peer of an older recipe is rebuilt
    request: dict[str, Any] | None = None  # everything that decided the file: the same request keeps it
    size_mb: float | None = None
    size_ratio_to_fp32: float | None = None
    opset: int | None = None
    target: str | None = None  # the int8 CPU target
    execution_providers: list[str] | None = None  # what the variant is meant to run on
    max_length: int | None = None  # the fine-tuning token limit (peers: the run's)
    parity: dict[str, Any] | None = None  # against PyTorch (fp32) or the fp32 ONNX model (the rest)
    validation_accuracy: float | None = None
    validation_samples: int | None = None
    accuracy_delta_vs_fp32: float | None = None
    optimize: Any = None  # fp32: {"requested", "applied", ...}; older exports wrote the requested level alone
    settings: dict[str, Any] | None = None  # the scheme's settings (recipe, calibration ...)
    graph_passes: list[Any] | None = None
    nodes_kept_float: list[Any] | None = None
    op_counts: dict[str, int] | None = None
    notes: list[str] | None = None
    measured_on: list[str] | None = None  # the providers the validation accuracy was measured on
    cleaning: list[str] | None = None  # the run's training cleaning, applied at serving (absent: none)
    guard: dict[str, Any] | None = None  # a guarded variant: its float layers, search trace and drops
    created: str | None = None
    versions: dict[str, Any] | None = None

    JSON_TYPES: ClassVar[Mapping[str, JsonType]] = {
        "variant": str,
        "scheme": str,
        "peer": str,
        "description": str,
        "recipe": str,
        "preset": str,
        "init": str,
        "runtime": str,
        "precision": str,
        "model_files": list,
        "model_sha256": str,
        "files_sha256": dict,
        "source_checkpoint_sha256": str,
        "recipe_version": int,
        "request": dict,
        "size_mb": float,
        "size_ratio_to_fp32": float,
        "opset": (int, _NULL),
        "target": str,
        "execution_providers": list,
        "max_length": int,
        "parity": dict,
        "validation_accuracy": (float, _NULL),
        "validation_samples": int,
        "accuracy_delta_vs_fp32": (float, _NULL),
        "optimize": (dict, str, _NULL),
        "settings": dict,
        "graph_passes": list,
        "nodes_kept_float": list,
        "op_counts": dict,
        "notes": list,
        "measured_on": list,
        "cleaning": list,
        "guard": dict,
        "created": str,
        "versions": dict,
    }

    @classmethod
    def from_dict(cls, value: Any, where: str | Path, fix: str = "") -> VariantManifest:
        """As `Manifest.from_dict`, and a token limit under 2, or an execution provider or cleaning rule that is no
        name, refused."""
        manifest = super().from_dict(value, where, fix)
        if manifest.max_length is not None and manifest.max_length < 2:
            raise EdgefnError(f"{where}: 'max_length' holds an invalid value; {fix}")
        for name in ("execution_providers", "cleaning"):
            if not all(isinstance(p, str) for p in getattr(manifest, name) or []):
                raise EdgefnError(f"{where}: {name!r} holds an invalid value; {fix}")
        return manifest

    def require(self, names: tuple[str, ...], where: str | Path, fix: str = "") -> None:
        """Refuse, in one line naming `where` and `fix`, a manifest that does not record each of `names`."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise EdgefnError(f"{where} has no {', '.join(repr(n) for n in missing)}; {fix}")


@dataclass(frozen=True, kw_only=True)
class RunManifest(Manifest):
    """run.json: marks a folder as edgefn's run, training or complete, with its checkpoint's file hashes."""

    edgefn_run: int | None = None  # the schema, 1 (absent from a run.json that is not edgefn's)
    status: str | None = None  # "training" or "complete"
    preset: str | None = None
    data: str | None = None
    started: str | None = None
    updated: str | None = None
    completed: str | None = None
    checkpoint_sha256: dict[str, str] | None = (
        None  # every checkpoint file's SHA-256 (the fine-tune's last write)
    )

    JSON_TYPES: ClassVar[Mapping[str, JsonType]] = {
        "edgefn_run": int,
        "status": str,
        "preset": str,
        "data": str,
        "started": str,
        "updated": str,
        "completed": str,
        "checkpoint_sha256": dict,
    }


@dataclass(frozen=True, kw_only=True)
class FinetuneManifest(Manifest):
    """finetune_config.json: what the later stages need of the fine-tune (preset, init, token limit, data)
    and every setting that must match for the run to be resumed."""

    preset: str | None = None
    init: str | None = None
    max_length: int | None = None
    data: str | None = None
    weights_source: str | None = None
    settings: dict[str, Any] | None = None  # `FinetuneConfig.identity()`
    distillation: dict[str, Any] | None = None  # a student's teacher, layers and loss (`edgefn distill`)

    JSON_TYPES: ClassVar[Mapping[str, JsonType]] = {
        "preset": str,
        "init": str,
        "max_length": int,
        "data": str,
        "weights_source": str,
        "settings": dict,
        "distillation": dict,
    }

    @classmethod
    def from_dict(cls, value: Any, where: str | Path, fix: str = "") -> FinetuneManifest:
        """As `Manifest.from_dict`, and a token limit under 2 refused."""
        manifest = super().from_dict(value, where, fix)
        if manifest.max_length is not None and manifest.max_length < 2:
            raise EdgefnError(f"{where}: 'max_length' must be at least 2; {fix}")
        return manifest


@dataclass(frozen=True, kw_only=True)
class EvalManifest(Manifest):
    """An eval folder's metrics.json (`edgefn eval`): the model, the data, its metrics beside the in-domain
    ones and the OOD check; `edgefn_eval` marks the folder as edgefn's to replace."""

    edgefn_eval: int | None = None  # the schema, 1
    model: str | None = None  # a variant's name, or "pytorch"
    model_path: str | None = None
    run_dir: str | None = None  # None for a lone variant
    trained_on: str | None = None
    data: dict[str, Any] | None = None  # the dataset record, split, rows scored, seed
    max_length: int | None = None
    cleaning: dict[str, Any] | None = None  # the model's serving cleaning applied to the texts: rules, source
    metrics: dict[str, Any] | None = None  # on the new data
    in_domain: dict[str, Any] | None = None  # the run's own test split, same model
    ood: dict[str, Any] | None = None  # threshold and AUROC
    guard: dict[str, Any] | None = None  # a guarded variant: fp32 and the full int8 variant on the same rows

    ALWAYS: ClassVar[tuple[str, ...]] = ("run_dir", "trained_on")
    JSON_TYPES: ClassVar[Mapping[str, JsonType]] = {
        "edgefn_eval": int,
        "model": str,
        "model_path": str,
        "run_dir": (str, _NULL),
        "trained_on": (str, _NULL),
        "data": dict,
        "max_length": int,
        "cleaning": dict,
        "metrics": dict,
        "in_domain": dict,
        "ood": dict,
        "guard": dict,
    }


@dataclass(frozen=True, kw_only=True)
class PackageManifest(Manifest):
    """edgefn_package.json of RUN/package/<target>/: the packaged models with their checks, the run they
    come from and every file's hash (the web page reads it too)."""

    edgefn_package: int | None = None  # the schema, 1
    target: str | None = None  # "web" or "mobile"
    created: str | None = None
    model: dict[str, Any] | None = None  # the run: preset, init, data, test accuracy
    max_length: int | None = None  # web: the token limit the page truncates at
    cleaning: list[str] | None = None  # the rules the page (or the app) applies before tokenizing
    default_dtype: str | None = None  # web: the dtype the page loads first
    wasm: str | None = None  # web: the gzipped ONNX Runtime WASM file
    ort_format: dict[str, Any] | None = None  # mobile: the .ort conversion settings and why
    models: list[dict[str, Any]] | None = None  # one record per packaged model, with its check
    out_of_domain: list[dict[str, Any]] | None = None  # accuracy on other data (`edgefn eval`)
    notes: list[str] | None = None
    build: dict[str, Any] | None = None  # web: how the page's scripts were built
    versions: dict[str, Any] | None = None
    download_mb: dict[str, float] | None = None  # web: what the page fetches, per dtype
    browser_check: dict[str, Any] | None = None  # web: the page in headless Chromium
    files_sha256: dict[str, str] | None = None  # every file but this manifest

    JSON_TYPES: ClassVar[Mapping[str, JsonType]] = {
        "edgefn_package": int,
        "target": str,
        "created": str,
        "model": dict,
        "max_length": int,
        "cleaning": list,
        "default_dtype": str,
        "wasm": str,
        "ort_format": dict,
        "models": list,
        "out_of_domain": list,
        "notes": list,
        "build": dict,
        "versions": dict,
        "download_mb": dict,
        "browser_check": dict,
        "files_sha256": dict,
    }
