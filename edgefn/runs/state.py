"""run.json: whether a folder is edgefn's run and whether its fine-tune finished; where the runs are."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any

from edgefn.core import outputs
from edgefn.core.errors import EdgefnError
from edgefn.runs.jsonio import write_json
from edgefn.runs.layout import ARTIFACTS_DIR, CHECKPOINT, ONNX_DIR, RUN_COMPLETE, RUN_MANIFEST, RUN_TRAINING
from edgefn.runs.manifests import RunManifest


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


def run_status(folder: Path) -> str | None:
    """ "complete", "unfinished" or None (no edgefn run) for a folder.

    Only a manifest of edgefn's schema counts (a JSON object with `edgefn_run` and a known `status`): any
    other run.json, or a fine-tune config alone, is a folder of the user's and is never replaced.
    """
    record = run_manifest(folder)
    if record is None:
        return None
    return "complete" if record.status == RUN_COMPLETE else "unfinished"


def run_manifest(folder: Path) -> RunManifest | None:
    """The run.json of an edgefn run folder, or None when the folder holds no manifest of edgefn's schema."""
    path = Path(folder) / RUN_MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        record = RunManifest.from_dict(json.loads(path.read_text(encoding="utf-8")), path)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, EdgefnError):
        return None
    return record if record.edgefn_run == 1 and record.status in (RUN_COMPLETE, RUN_TRAINING) else None


def refuse_unfinished_run_of(variant: Path) -> None:
    """Refuse a variant folder inside a run whose fine-tune is not marked complete (its checkpoint may be
    half-trained); a lone variant folder outside a run passes."""
    variant = Path(variant)
    run = variant.parent.parent
    if variant.parent.name == ONNX_DIR and (run / RUN_MANIFEST).exists() and run_status(run) != "complete":
        raise EdgefnError(
            f"the fine-tune of {run} did not finish (its {RUN_MANIFEST} does not mark it complete); "
            "finish it with `edgefn finetune ... --resume`, then re-export"
        )


def enclosing_run(path: Path | str) -> Path | None:
    """The edgefn run folder that `path` (links resolved) is or lies inside, or None."""
    probe = Path(os.path.realpath(path))
    for folder in (probe, *probe.parents):
        if (folder / RUN_MANIFEST).exists() and is_run(folder):
            return folder
    return None


def refuse_output_in_run(output: Path | str | None, option: str = "--output", allowed: str = "") -> None:
    """Refuse a path the user named for an output inside an edgefn run folder (its files are edgefn's and
    hashed: only edgefn's commands write there), except under the run's `allowed` subfolder."""
    if output is None or str(output) == "-" or outputs.is_special(Path(output)):
        return
    run = enclosing_run(output)
    if run is None:
        return
    if allowed and outputs.is_inside(output, run / allowed) and not outputs.same_file(output, run / allowed):
        return
    where = f" (only {allowed}/ there takes this output)" if allowed else ""
    raise EdgefnError(f"{option} {output} is inside the edgefn run {run}{where}; write the output elsewhere")


def is_run(folder: Path) -> bool:
    """Whether `folder` is a real folder (no symlink) holding an edgefn run manifest."""
    folder = Path(folder)
    return folder.is_dir() and not folder.is_symlink() and run_manifest(folder) is not None


def write_run_manifest(folder: Path, status: str, **info: Any) -> None:
    """Mark a run folder as edgefn's, training or complete (the fine-tune's first and last write); `info`
    sets other fields of `RunManifest` (preset, data, checkpoint_sha256)."""
    path = Path(folder) / RUN_MANIFEST
    record = RunManifest.read(path) if path.is_file() else RunManifest(edgefn_run=1)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    completed = now if status == RUN_COMPLETE else record.completed
    record = dataclasses.replace(
        record, **info, status=status, updated=now, started=record.started or now, completed=completed
    )
    write_json(path, record)
