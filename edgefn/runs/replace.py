"""What edgefn may replace: its own variant, bench, eval and package folders and whole runs, never a user's file."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from edgefn.core import outputs
from edgefn.core.errors import EdgefnError
from edgefn.runs.hashing import sha256_file, unrecorded_file
from edgefn.runs.layout import (
    BENCH_DIR,
    BENCH_FILES,
    CHECKPOINT,
    CONFUSION_MATRIX_PNG,
    DATA_DIR,
    ERRORS_CSV,
    EVAL_DIR,
    EVAL_SCHEMA_KEY,
    EXPORT_MANIFEST,
    METRICS,
    ONNX_DIR,
    PACKAGE_DIR,
    PACKAGE_MANIFEST,
    PEERS_DIR,
    RELIABILITY_PNG,
    RUN_FILES,
    SPLIT_NAMES,
    STAGING_MARK,
    TRAINER_DIR,
)
from edgefn.runs.state import is_run, run_manifest


def atomic_dir(
    final: Path, overwrite: bool = False, owned: Callable[[Path], bool] | None = None, kind: str = "output"
) -> contextlib.AbstractContextManager[Path]:
    """A temporary folder beside `final`, renamed to `final` only if the block succeeds (`outputs.output_dir`):
    an existing `final` is replaced only with `overwrite` and when `owned` recognises it as edgefn's."""
    return outputs.output_dir(final, overwrite=overwrite, owned=owned, kind=kind)


def is_manifested_dir(folder: Path, manifest: str = EXPORT_MANIFEST) -> bool:
    """Whether `folder` is a variant, peer or package folder edgefn wrote: its manifest a JSON object with
    `files_sha256`, no file in it but the manifest and the files recorded there, each with its recorded hash
    (replacing it deletes nothing of the user's)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir() or not (folder / manifest).is_file():
        return False
    try:
        record = json.loads((folder / manifest).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    files = record.get("files_sha256") if isinstance(record, dict) else None
    if not isinstance(files, dict):
        return False
    known = {*files, manifest}
    present = [p for p in folder.rglob("*") if not p.is_dir() or p.is_symlink()]
    if not all(str(p.relative_to(folder)) in known for p in present):
        return False
    # a hand-written manifest listing a user's file does not make it edgefn's: every listed file holds its bytes
    return all(
        p.name == manifest
        or (p.is_file() and not p.is_symlink() and sha256_file(p) == files[str(p.relative_to(folder))])
        for p in present
    )


def is_bench_dir(folder: Path) -> bool:
    """Whether `folder` is a bench folder edgefn wrote: report.json a JSON object and nothing but bench files."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    if any(p.name not in BENCH_FILES.values() or not p.is_file() or p.is_symlink() for p in folder.iterdir()):
        return False
    try:
        record = json.loads((folder / BENCH_FILES["json"]).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(record, dict) and "results" in record


def is_eval_dir(folder: Path) -> bool:
    """Whether `folder` is an eval folder edgefn wrote: its metrics.json of edgefn's eval schema and nothing
    but the eval files (so replacing it deletes nothing of the user's)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    known = {METRICS, ERRORS_CSV, CONFUSION_MATRIX_PNG, RELIABILITY_PNG}
    if any(p.name not in known or not p.is_file() or p.is_symlink() for p in folder.iterdir()):
        return False
    try:
        record = json.loads((folder / METRICS).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(record, dict) and record.get(EVAL_SCHEMA_KEY) == 1


# The temporary folders edgefn makes inside a run (`outputs.output_dir`'s, export's and the peers' work folders)
_TEMPORARY = re.compile(r"\.(plain|work|optimum|guard)-[a-z0-9_]{8}|\.[^/]+\.(tmp|old)-[a-z0-9_]{8}")


def foreign_entry(run_dir: Path) -> Path | None:
    """The first thing in a run folder that edgefn did not write (a user's notes, a folder of the user's in
    onnx/ or eval/, a file added to a variant), or None when replacing the run deletes nothing of the user's."""
    run_dir = Path(run_dir)
    record = run_manifest(run_dir)
    recorded = record.checkpoint_sha256 if record else None
    splits = {f"{n}.jsonl" for n in SPLIT_NAMES}
    own: dict[str, Callable[[Path], Path | None]] = {
        ONNX_DIR: lambda p: _first_foreign(p, is_manifested_dir),
        PEERS_DIR: lambda p: _first_foreign(p, is_manifested_dir),
        EVAL_DIR: lambda p: _first_foreign(p, is_eval_dir),
        PACKAGE_DIR: lambda p: _first_foreign(p, lambda f: is_manifested_dir(f, PACKAGE_MANIFEST)),
        BENCH_DIR: lambda p: None if is_bench_dir(p) else p,
        DATA_DIR: lambda p: next(
            (q for q in sorted(p.iterdir()) if q.name not in splits or q.is_symlink()), None
        ),
        CHECKPOINT: lambda p: unrecorded_file(p, recorded, None) if isinstance(recorded, dict) else None,
        TRAINER_DIR: lambda p: None,
    }
    for entry in sorted(run_dir.iterdir()):
        if entry.is_symlink():
            return entry
        if entry.name in RUN_FILES and entry.is_file() or is_temporary(entry):
            continue
        check = own.get(entry.name)
        if check is None or not entry.is_dir():
            return entry
        foreign = check(entry)
        if foreign is not None:
            return foreign
    return None


def _first_foreign(folder: Path, own: Callable[[Path], bool]) -> Path | None:
    """The first entry of `folder` that `own` does not recognise (edgefn's temporary folders aside)."""
    return next((p for p in sorted(folder.iterdir()) if not (is_temporary(p) or own(p))), None)


def is_temporary(path: Path) -> bool:
    """Whether `path` is a temporary folder of edgefn's (left by an interrupted write)."""
    return bool(_TEMPORARY.fullmatch(path.name)) and path.is_dir() and not path.is_symlink()


@contextlib.contextmanager
def replacing_run(final: Path) -> Iterator[Path]:
    """Yield a new folder beside the run `final` to build its replacement in; swap them only if the block
    succeeds. Until then the previous run stays whole: a failure or interruption removes only the new folder.
    Leftovers of a replacement killed outright are removed only when they are recognisably edgefn's."""
    final = Path(final)
    staging = staging_dir(final)
    retired = final.parent / f".{final.name}.old"
    for leftover in (staging, retired):  # from a replacement killed outright (SIGKILL, power loss)
        _remove_leftover(leftover)
    staging.mkdir(mode=outputs.dir_mode())
    (staging / STAGING_MARK).touch()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / STAGING_MARK).unlink()
    os.replace(final, retired)
    os.replace(staging, final)
    shutil.rmtree(retired, ignore_errors=True)


def _remove_leftover(folder: Path) -> None:
    """Remove a staging or retired folder of an earlier replacement; refuse one edgefn did not make."""
    if not (folder.exists() or folder.is_symlink()):
        return
    marked = (folder / STAGING_MARK).is_file() or is_run(folder)
    if folder.is_symlink() or not folder.is_dir() or not marked:
        raise EdgefnError(
            f"{folder} exists and is not a leftover of edgefn's; move it away (edgefn builds the new run there)"
        )
    shutil.rmtree(folder)


def staging_dir(final: Path) -> Path:
    """Where `replacing_run` builds the replacement of `final` (every process of a multi-process run agrees)."""
    final = Path(final)
    return final.parent / f".{final.name}.new"
