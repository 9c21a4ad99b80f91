"""Run-folder layout, atomic writes, hashes and environment/version records."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgefn.errors import EdgefnError

ARTIFACTS_DIR = Path("artifacts")

# Names inside a run folder.
CHECKPOINT = "checkpoint"
FINETUNE_CONFIG = "finetune_config.json"
METRICS = "metrics.json"
DATA_DIR = "data"
ONNX_DIR = "onnx"
BENCH_DIR = "bench"


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_to_jsonable(obj), f, indent=2, sort_keys=False)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Any:
    """Read a JSON file, with a one-line error when it is missing or broken."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgefnError(f"missing file: {path}") from None
    except json.JSONDecodeError as e:
        raise EdgefnError(f"{path} is not valid JSON ({e})") from None


@contextlib.contextmanager
def atomic_dir(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `final`, renamed to `final` only if the block succeeds.

    An interrupted or failed block leaves nothing at `final` (and removes the temporary folder).
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise EdgefnError(f"{final} already exists (use --overwrite to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp creates 0700
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_dir(folder: Path) -> str:
    """A stable hash over every file (relative name and bytes) in a folder."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(sha256_file(p).encode())
    return h.hexdigest()


def dir_size_mb(folder: Path, pattern: str = "*") -> float:
    """Total size in MB (10^6 bytes) of the files matching `pattern` in a folder."""
    return sum(p.stat().st_size for p in Path(folder).rglob(pattern) if p.is_file()) / 1e6


def file_size_mb(path: Path) -> float:
    """Size in MB (10^6 bytes)."""
    return Path(path).stat().st_size / 1e6


def find_latest_run(root: Path = ARTIFACTS_DIR) -> Path:
    """The most recently modified run folder (one holding a checkpoint) under `root`."""
    root = Path(root)
    runs = [p for p in root.glob("*") if p.is_dir() and (p / CHECKPOINT).is_dir()] if root.is_dir() else []
    if not runs:
        raise EdgefnError(
            f"no run folder with a {CHECKPOINT}/ under {root}/; run `edgefn finetune` or pass --run-dir"
        )
    return max(runs, key=lambda p: (p / CHECKPOINT).stat().st_mtime)


def resolve_run_dir(run_dir: Path | None) -> tuple[Path, bool]:
    """The run folder to use and whether it was picked automatically."""
    if run_dir is None:
        return find_latest_run(), True
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EdgefnError(f"run folder not found: {run_dir}")
    return run_dir, False


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape results."""
    from importlib import metadata

    names = [
        "edgefn",
        "torch",
        "transformers",
        "optimum",
        "optimum-onnx",
        "onnx",
        "onnxruntime",
        "onnxruntime-gpu",
        "tokenizers",
        "datasets",
        "scikit-learn",
        "numpy",
    ]
    out = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


EXPORT_MANIFEST = "export.json"
ONNX_FILE = "model.onnx"


def list_variants(run_dir: Path) -> list[Path]:
    """Complete ONNX variant folders of a run (those with a manifest), sorted by name."""
    root = Path(run_dir) / ONNX_DIR
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / EXPORT_MANIFEST).is_file()
    )


def verify_variant(folder: Path) -> dict[str, Any]:
    """Read a variant's export.json and check that model.onnx still matches its recorded hash."""
    folder = Path(folder)
    manifest_path = folder / EXPORT_MANIFEST
    if not manifest_path.is_file():
        raise EdgefnError(f"{folder} is not an edgefn export (no {EXPORT_MANIFEST}); run `edgefn export`")
    manifest = read_json(manifest_path)
    model = folder / ONNX_FILE
    if not model.is_file():
        raise EdgefnError(f"{model} is missing; re-run `edgefn export --overwrite`")
    expected = manifest.get("model_sha256")
    if expected and sha256_file(model) != expected:
        raise EdgefnError(
            f"{model} does not match the hash in {manifest_path} (corrupted or modified); "
            "re-run `edgefn export --overwrite`"
        )
    return manifest
