"""File hashes and sizes: a variant's model files, its record of SHA-256s, and the check against them."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from edgefn.runs.layout import EXPORT_MANIFEST, MODEL_CONFIG, ONNX_FILE, TOKENIZER_FILE


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


def model_files_of(model_files: Any, files_sha256: Any, model_sha256: Any) -> tuple[str, ...]:
    """The model file(s) a variant's export.json names (its engine's, the one it loads first): `model_files`; in
    a manifest written before that field, the recorded file whose hash is `model_sha256`; else model.onnx."""
    if (
        isinstance(model_files, list)
        and model_files
        and all(isinstance(n, str) and inside(n) for n in model_files)
    ):
        return tuple(model_files)
    if isinstance(files_sha256, dict):
        named = [n for n, digest in files_sha256.items() if digest == model_sha256]
        if len(named) == 1 and isinstance(named[0], str):
            return (named[0],)
    return (ONNX_FILE,)


def required_files(model_files: tuple[str, ...]) -> tuple[str, ...]:
    """Files whose hashes a variant's manifest must record: its model file(s), config and tokenizer."""
    return (*model_files, MODEL_CONFIG, TOKENIZER_FILE)


def hash_files(folder: Path, manifest: str | None = EXPORT_MANIFEST) -> dict[str, str]:
    """SHA-256 of every file of a folder (a variant, a checkpoint) but its manifest, by relative name."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != manifest
    }


def model_record(folder: Path, model_files: tuple[str, ...] = (ONNX_FILE,)) -> dict[str, Any]:
    """The manifest fields every variant folder records: its model file(s) (its engine's `model_files`, the one it
    loads first), the model's hash, every file's hash and the model's size in MB (each file is hashed once)."""
    folder = Path(folder)
    files = hash_files(folder)
    return {
        "model_files": list(model_files),
        "model_sha256": files[model_files[0]],
        "files_sha256": files,
        "size_mb": sum(file_size_mb(folder / n) for n in model_files),
    }


_SHA256 = re.compile(r"[0-9a-f]{64}")


def valid_hashes(value: Any) -> bool:
    """A {relative file name: hex SHA-256} record whose names stay inside their folder."""
    if not isinstance(value, dict):
        return False
    for name, digest in value.items():
        if not (inside(name) and isinstance(digest, str) and _SHA256.fullmatch(digest)):
            return False
    return True


def inside(name: str) -> bool:
    """Whether a recorded relative file name stays inside its folder."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def unrecorded_file(folder: Path, files: dict[str, str], manifest_name: str | None) -> Path | None:
    """The first file (or FIFO, device, link) in `folder` that its record does not name; hidden ones aside."""
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or str(rel) in files or str(rel) == manifest_name:
            continue
        if p.is_symlink() or not p.is_dir():
            return p
    return None


def files_fault(
    folder: Path, files: dict[str, str], record: Path, fix: str, manifest_name: str | None = None
) -> tuple[str, str] | None:
    """("MISSING" | "MISMATCH", one line) for the first recorded file of `folder` that is gone, changed or not
    a regular file, or a file there that `record` does not name (added since); None when all match."""
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return "MISSING", f"{path} is missing (its hash is recorded in {record}); restore it, or {fix}"
        if sha256_file(path) != expected:
            return (
                "MISMATCH",
                f"{path} does not match the hash in {record} (corrupted or modified); restore it, or {fix}",
            )
    extra = unrecorded_file(folder, files, manifest_name)
    if extra is not None:
        return (
            "MISMATCH",
            f"{extra} is not recorded in {record} (added since it was written); remove it, or {fix}",
        )
    return None


def files_fingerprint(files: dict[str, str]) -> str:
    """One hash of a folder's recorded file hashes: what a calibration (ood.json) was made for."""
    return hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()
