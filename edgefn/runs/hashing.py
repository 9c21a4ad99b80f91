"""File hashes and sizes: a variant's model files, its record of SHA-256s, and the check against them."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from edgefn.runs.layout import (
    EXPORT_MANIFEST,
    MODEL_CONFIG,
    ONNX_FILE,
    OPENVINO_BIN,
    OPENVINO_XML,
    TOKENIZER_FILE,
)


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


def model_files(folder: Path) -> tuple[str, ...]:
    """The model file(s) of a variant folder: OpenVINO IR (xml + bin) where present, else model.onnx."""
    return (OPENVINO_XML, OPENVINO_BIN) if (Path(folder) / OPENVINO_XML).is_file() else (ONNX_FILE,)


def model_file(folder: Path) -> Path:
    """The file a runtime loads: openvino_model.xml for OpenVINO variants, else model.onnx."""
    return Path(folder) / model_files(folder)[0]


def required_files(folder: Path) -> tuple[str, ...]:
    """Files whose hashes a variant's manifest must record: its model file(s), config and tokenizer."""
    return (*model_files(folder), MODEL_CONFIG, TOKENIZER_FILE)


def hash_files(folder: Path, manifest: str | None = EXPORT_MANIFEST) -> dict[str, str]:
    """SHA-256 of every file of a folder (a variant, a checkpoint) but its manifest, by relative name."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != manifest
    }


def model_record(folder: Path) -> dict[str, Any]:
    """The manifest fields every variant folder records: its model's hash, every file's hash and the model's
    size in MB (each file is hashed once)."""
    folder = Path(folder)
    files = hash_files(folder)
    names = model_files(folder)
    return {
        "model_sha256": files[names[0]],
        "files_sha256": files,
        "size_mb": sum(file_size_mb(folder / n) for n in names),
    }


# OpenVINO names the layers it creates from a process-wide counter: two conversions of one graph differ only there.
_OV_LAYER_NAME = re.compile(r'(<layer id="\d+") name="[^"]*"')


def model_fingerprint(folder: Path) -> str:
    """A hash of what a variant or peer computes: its model file(s), OpenVINO's generated layer names left out.
    Two rows with the same fingerprint run the same model (e.g. int8-dynamic on VNNI and `ort-default`)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in model_files(folder):
        data = (folder / name).read_bytes()
        if name == OPENVINO_XML:
            data = _OV_LAYER_NAME.sub(r"\1", data.decode("utf-8")).encode("utf-8")
        digest.update(data)
    return digest.hexdigest()


_SHA256 = re.compile(r"[0-9a-f]{64}")


def valid_hashes(value: Any) -> bool:
    """A {relative file name: hex SHA-256} record whose names stay inside their folder."""
    if not isinstance(value, dict):
        return False
    for name, digest in value.items():
        parts = Path(name).parts
        inside = bool(parts) and not Path(name).is_absolute() and ".." not in parts
        if not (inside and isinstance(digest, str) and _SHA256.fullmatch(digest)):
            return False
    return True


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
