"""Variant folders (onnx/<variant>/, peers/<name>/): listing them, reading export.json, checking their files."""

from __future__ import annotations

import os
from pathlib import Path

from edgefn.core.errors import EdgefnError
from edgefn.runs.hashing import files_fault, model_files_of, required_files, valid_hashes
from edgefn.runs.layout import EXPORT_MANIFEST, GUARDED_SUFFIX, ONNX_DIR, PEERS_DIR
from edgefn.runs.manifests import VariantManifest


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


def reexport_hint(folder: Path) -> str:
    """The command that writes a variant (or peer) folder again."""
    folder = Path(folder)
    run = folder.parent.parent
    if folder.parent.name == PEERS_DIR:
        return f"`edgefn bench --run-dir {run}` builds it again"
    if folder.parent.name == ONNX_DIR:
        scheme = "" if folder.name == "fp32" else f" --quantize {folder.name.removesuffix(GUARDED_SUFFIX)}"
        guard = " --max-drop PTS" if folder.name.endswith(GUARDED_SUFFIX) else ""
        return f"re-export it with `edgefn export --run-dir {run}{scheme}{guard} --overwrite`"
    return "re-export it with `edgefn export --run-dir RUN --overwrite` and use RUN/onnx/<variant>"


def read_variant_manifest(folder: Path) -> VariantManifest:
    """A variant's export.json, its shape checked; a missing one, a symlink, FIFO or folder in its place, or
    one of another shape is refused with the re-export command (nothing is served unverified)."""
    folder = Path(folder)
    path, fix = folder / EXPORT_MANIFEST, reexport_hint(folder)
    if not os.path.lexists(path):
        raise EdgefnError(
            f"{folder} has no {EXPORT_MANIFEST}, so its files cannot be checked against their hashes; {fix}"
        )
    return VariantManifest.read(path, fix, follow_symlinks=False)


def _variant_fault(folder: Path, manifest: VariantManifest) -> tuple[str, str] | None:
    """("MISSING" | "MISMATCH" | "UNRECORDED", one line) for the first fault of a variant's files, else None."""
    path, fix = folder / EXPORT_MANIFEST, reexport_hint(folder)
    names = model_files_of(manifest.model_files, manifest.files_sha256, manifest.model_sha256)
    model = folder / names[0]
    if not model.is_file():
        return "MISSING", f"{model} is missing; {fix}"
    files = dict(manifest.files_sha256 or {})
    if not valid_hashes(files):
        return "UNRECORDED", f"{path}: 'files_sha256' is not a record of file names and SHA-256 hashes; {fix}"
    unrecorded = [n for n in required_files(names) if n not in files]
    if unrecorded:
        return (
            "UNRECORDED",
            f"{path} records no hash of {', '.join(unrecorded)} (an export by an older edgefn, or edited); {fix}",
        )
    return files_fault(folder, files, path, fix, EXPORT_MANIFEST)


def hash_status(folder: Path, manifest: VariantManifest | None) -> str:
    """OK, MISMATCH, MISSING (a recorded file or model.onnx is gone) or UNRECORDED (no hashes, or no readable
    manifest) for a variant."""
    fault = _variant_fault(Path(folder), manifest or VariantManifest())
    return "OK" if fault is None else fault[0]


def verify_variant(folder: Path) -> VariantManifest:
    """Read a variant's export.json and check every file it needs (model, config, tokenizer) against the
    hashes recorded there; a manifest without them, or a file not recorded, is refused (a flipped id2label
    would invert labels)."""
    folder = Path(folder)
    manifest = read_variant_manifest(folder)
    fault = _variant_fault(folder, manifest)
    if fault is not None:
        raise EdgefnError(fault[1])
    return manifest


def incomplete_variants(run_dir: Path) -> list[str]:
    """Variant folders of a run without a manifest (an export that never finished), sorted by name."""
    root = Path(run_dir) / ONNX_DIR
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not (p / EXPORT_MANIFEST).is_file()
    )
