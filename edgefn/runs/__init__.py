"""The run-folder contract: `RunFolder` (every path, split reader, manifest and hash check), atomic writes."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn.core import outputs
from edgefn.core.errors import EdgefnError

ARTIFACTS_DIR = Path("artifacts")

# Names inside a run folder: no other module spells them.
RUN_MANIFEST = "run.json"  # marks a folder as edgefn's run and says whether its fine-tune finished
LOCK_FILE = ".edgefn.lock"  # held while a command writes to the run
STAGING_MARK = ".edgefn-staging"  # marks the folder a replacement run is built in (`replacing_run`)
CHECKPOINT = "checkpoint"
# run.json's record of every checkpoint file's SHA-256 (the fine-tune's last write), checked before each use
CHECKPOINT_HASHES = "checkpoint_sha256"
FINETUNE_CONFIG = "finetune_config.json"
METRICS = "metrics.json"
ERRORS_CSV = "errors.csv"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"
DATA_DIR = "data"
ONNX_DIR = "onnx"
PEERS_DIR = "peers"  # peers/<name>/: what users would pick instead, built by bench from the checkpoint
BENCH_DIR = "bench"
SPLIT_NAMES = ("validation", "test", "calibration")  # data/<name>.jsonl
# Names inside a variant folder (onnx/<variant>/) and a checkpoint.
EXPORT_MANIFEST = "export.json"
# the model file of ONNX variants; other engines' variants name theirs in export.json ("model_files")
ONNX_FILE = "model.onnx"
MODEL_CONFIG = "config.json"
SAFETENSORS_WEIGHTS = "model.safetensors"  # a checkpoint's weights (transformers' default)
PICKLE_WEIGHTS = "pytorch_model.bin"  # a checkpoint's weights, older transformers (torch.save pickle)
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
# Names inside bench/.
BENCH_FILES = {
    "json": "report.json",
    "csv": "report.csv",
    "markdown": "report.md",
    "latency_plot": "latency.png",
    "tradeoff_plot": "tradeoff.png",
}
# Names inside eval/<data>/ (`edgefn eval`): metrics.json, errors.csv and confusion_matrix.png as above.
EVAL_DIR = "eval"
RELIABILITY_PNG = "reliability.png"
EVAL_SCHEMA_KEY = "edgefn_eval"  # in an eval folder's metrics.json: the folder is edgefn's to replace
# The out-of-distribution thresholds of a run's models, calibrated on its validation split (`edgefn eval`).
OOD_FILE = "ood.json"
# package/<target>/ (`edgefn package`): a browser or phone deployment of the run's variants, with its manifest.
PACKAGE_DIR = "package"
PACKAGE_MANIFEST = "edgefn_package.json"


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def write_json(path: Path, obj: Any, follow_symlinks: bool = False) -> None:
    """Write JSON by the output policy (atomically for a regular file); a symlink is refused unless
    `follow_symlinks` (a path the user named), so no file inside a run is written through a link."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n"
    outputs.write_text(path, text, option="file", follow_symlinks=follow_symlinks)


def read_json(path: Path) -> Any:
    """Read a JSON file, with a one-line error when it is missing or broken."""
    return parse_json(read_text(path), path)


def atomic_dir(
    final: Path, overwrite: bool = False, owned: Callable[[Path], bool] | None = None, kind: str = "output"
) -> contextlib.AbstractContextManager[Path]:
    """A temporary folder beside `final`, renamed to `final` only if the block succeeds (`outputs.output_dir`):
    an existing `final` is replaced only with `overwrite` and when `owned` recognises it as edgefn's."""
    return outputs.output_dir(final, overwrite=overwrite, owned=owned, kind=kind)


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


def model_files_of(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The model file(s) a variant's export.json names (its engine's, the one it loads first): `model_files`; in
    a manifest written before that field, the recorded file whose hash is `model_sha256`; else model.onnx."""
    names = manifest.get("model_files")
    if isinstance(names, list) and names and all(isinstance(n, str) and _inside(n) for n in names):
        return tuple(names)
    files = manifest.get("files_sha256")
    if isinstance(files, dict):
        named = [n for n, digest in files.items() if digest == manifest.get("model_sha256")]
        if len(named) == 1 and isinstance(named[0], str):
            return (named[0],)
    return (ONNX_FILE,)


def required_files(manifest: dict[str, Any]) -> tuple[str, ...]:
    """Files whose hashes a variant's manifest must record: its model file(s), config and tokenizer."""
    return (*model_files_of(manifest), MODEL_CONFIG, TOKENIZER_FILE)


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


def _valid_hashes(value: Any) -> bool:
    """A {relative file name: hex SHA-256} record whose names stay inside their folder."""
    if not isinstance(value, dict):
        return False
    for name, digest in value.items():
        if not (_inside(name) and isinstance(digest, str) and _SHA256.fullmatch(digest)):
            return False
    return True


def _inside(name: str) -> bool:
    """Whether a recorded relative file name stays inside its folder."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def _unrecorded_file(folder: Path, files: dict[str, str], manifest_name: str | None) -> Path | None:
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
    extra = _unrecorded_file(folder, files, manifest_name)
    if extra is not None:
        return (
            "MISMATCH",
            f"{extra} is not recorded in {record} (added since it was written); remove it, or {fix}",
        )
    return None


def files_fingerprint(files: dict[str, str]) -> str:
    """One hash of a folder's recorded file hashes: what a calibration (ood.json) was made for."""
    return hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()


def reexport_hint(folder: Path) -> str:
    """The command that writes a variant (or peer) folder again."""
    folder = Path(folder)
    run = folder.parent.parent
    if folder.parent.name == PEERS_DIR:
        return f"`edgefn bench --run-dir {run}` builds it again"
    if folder.parent.name == ONNX_DIR:
        scheme = "" if folder.name == "fp32" else f" --quantize {folder.name}"
        return f"re-export it with `edgefn export --run-dir {run}{scheme} --overwrite`"
    return "re-export it with `edgefn export --run-dir RUN --overwrite` and use RUN/onnx/<variant>"


# The fields of export.json the loaders read, with their JSON types (every variant and peer records them).
VARIANT_FIELDS: dict[str, JsonType] = {
    "files_sha256": dict,
    "model_sha256": str,
    "model_files": list,
    "variant": str,
    "scheme": str,
    "precision": str,
    "runtime": str,
    "max_length": int,
    "execution_providers": list,
}


def read_variant_manifest(folder: Path) -> dict[str, Any]:
    """A variant's export.json, its shape checked; a missing one, a symlink, FIFO or folder in its place, or
    one of another shape is refused with the re-export command (nothing is served unverified)."""
    folder = Path(folder)
    path, fix = folder / EXPORT_MANIFEST, reexport_hint(folder)
    if not os.path.lexists(path):
        raise EdgefnError(
            f"{folder} has no {EXPORT_MANIFEST}, so its files cannot be checked against their hashes; {fix}"
        )
    manifest = read_json_object(path, VARIANT_FIELDS, fix=fix, follow_symlinks=False)
    providers = manifest.get("execution_providers", [])
    length = manifest.get("max_length", 2)
    if not all(isinstance(p, str) for p in providers) or length < 2:
        bad = "max_length" if length < 2 else "execution_providers"
        raise EdgefnError(f"{path}: {bad!r} holds an invalid value; {fix}")
    return manifest


def _variant_fault(folder: Path, manifest: dict[str, Any]) -> tuple[str, str] | None:
    """("MISSING" | "MISMATCH" | "UNRECORDED", one line) for the first fault of a variant's files, else None."""
    path, fix = folder / EXPORT_MANIFEST, reexport_hint(folder)
    model = folder / model_files_of(manifest)[0]
    if not model.is_file():
        return "MISSING", f"{model} is missing; {fix}"
    if not _valid_hashes(manifest.get("files_sha256") or {}):
        return "UNRECORDED", f"{path}: 'files_sha256' is not a record of file names and SHA-256 hashes; {fix}"
    files = dict(manifest.get("files_sha256") or {})
    unrecorded = [n for n in required_files(manifest) if n not in files]
    if unrecorded:
        return (
            "UNRECORDED",
            f"{path} records no hash of {', '.join(unrecorded)} (an export by an older edgefn, or edited); {fix}",
        )
    return files_fault(folder, files, path, fix, EXPORT_MANIFEST)


def hash_status(folder: Path, manifest: dict[str, Any]) -> str:
    """OK, MISMATCH, MISSING (a recorded file or model.onnx is gone) or UNRECORDED (no hashes) for a variant."""
    fault = _variant_fault(Path(folder), manifest if isinstance(manifest, dict) else {})
    return "OK" if fault is None else fault[0]


def verify_variant(folder: Path) -> dict[str, Any]:
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


# --- reading JSON files ----------------------------------------------------------------------------------

# The Python types a manifest field may hold (str, int, float, bool, dict, list, NoneType), or a tuple of them.
JsonType = type | tuple[type, ...]
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "an object",
    list: "a list",
    type(None): "null",
}


def read_text(path: Path, follow_symlinks: bool = True) -> str:
    """A UTF-8 file's text; a missing file, anything but a regular file (a folder, FIFO or device, refused
    before reading: nothing blocks), a symlink when `follow_symlinks` is False, or bad bytes: one line."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    if not follow_symlinks:
        if path.is_symlink():
            raise EdgefnError(f"{path} is a symlink, not a regular file")
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise EdgefnError(f"missing file: {path}") from None
    except OSError as e:
        raise EdgefnError(f"cannot read {path} ({e.strerror or e})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise EdgefnError(f"{path} is {kind}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EdgefnError(f"{path} is not UTF-8 text (byte {e.start})") from None


def parse_json(text: str, path: Path) -> Any:
    """JSON text read from `path`, with a one-line error when it is broken or nested too deeply to parse."""
    try:
        return json.loads(text)
    except RecursionError:
        raise EdgefnError(f"{path} is not valid JSON (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, and integers over Python's digit limit
        raise EdgefnError(f"{path} is not valid JSON ({e})") from None


def _is_json_type(value: Any, expected: JsonType) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):  # JSON true/false is no number
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


def _type_name(expected: JsonType) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def check_json_object(
    value: Any,
    where: str,
    fields: Mapping[str, JsonType] | None = None,
    required: tuple[str, ...] = (),
    fix: str = "",
) -> dict[str, Any]:
    """`value` when it is a JSON object whose `fields` (where present; the `required` ones always) have the
    given types; else one line naming `where`, the field and `fix`."""
    hint = f"; {fix}" if fix else ""
    if not isinstance(value, dict):
        found = _TYPE_NAMES.get(type(value), type(value).__name__)
        raise EdgefnError(f"{where} is {found}, not a JSON object{hint}")
    missing = [k for k in required if k not in value]
    if missing:
        raise EdgefnError(f"{where} has no {', '.join(repr(k) for k in missing)}{hint}")
    for key, expected in (fields or {}).items():
        if key in value and not _is_json_type(value[key], expected):
            found = _TYPE_NAMES.get(type(value[key]), type(value[key]).__name__)
            raise EdgefnError(f"{where}: {key!r} is {found}, not {_type_name(expected)}{hint}")
    return value


def read_json_object(
    path: Path,
    fields: Mapping[str, JsonType] | None = None,
    required: tuple[str, ...] = (),
    fix: str = "",
    follow_symlinks: bool = True,
) -> dict[str, Any]:
    """A JSON object file checked by `check_json_object`; any fault (missing, a FIFO, not JSON, too deep, of
    another shape) is one line naming the file."""
    try:
        value = parse_json(read_text(path, follow_symlinks), path)
    except EdgefnError as e:
        raise EdgefnError(f"{e}; {fix}" if fix else str(e)) from None
    return check_json_object(value, str(path), fields, required, fix)


def read_optional_json(
    path: Path, fields: Mapping[str, JsonType] | None = None, fix: str = ""
) -> dict[str, Any]:
    """A JSON object file (checked like `read_json_object`), or {} when it is absent."""
    if not os.path.lexists(path):
        return {}
    return read_json_object(path, fields, fix=fix)


def json_field(path: Path, key: str) -> Any:
    """`key` of a JSON object file; None when the file is absent, damaged, special or of another shape."""
    try:
        value = parse_json(read_text(path), path)
    except EdgefnError:
        return None
    return value.get(key) if isinstance(value, dict) else None


# The fields of finetune_config.json the later stages read, with their JSON types.
FINETUNE_FIELDS: dict[str, JsonType] = {
    "preset": str,
    "init": str,
    "max_length": int,
    "data": str,
    "settings": dict,
}


# --- run manifest, lock, replacement ---------------------------------------------------------------------

RUN_COMPLETE = "complete"
RUN_TRAINING = "training"


def run_status(folder: Path) -> str | None:
    """ "complete", "unfinished" or None (no edgefn run) for a folder.

    Only a manifest of edgefn's schema counts (a JSON object with `edgefn_run` and a known `status`): any
    other run.json, or a fine-tune config alone, is a folder of the user's and is never replaced.
    """
    record = run_manifest(folder)
    if record is None:
        return None
    return "complete" if record["status"] == RUN_COMPLETE else "unfinished"


def run_manifest(folder: Path) -> dict[str, Any] | None:
    """The run.json of an edgefn run folder, or None when the folder holds no manifest of edgefn's schema."""
    path = Path(folder) / RUN_MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or value.get("edgefn_run") != 1:
        return None
    return value if value.get("status") in (RUN_COMPLETE, RUN_TRAINING) else None


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
    """Mark a run folder as edgefn's, training or complete (the fine-tune's first and last write)."""
    path = Path(folder) / RUN_MANIFEST
    record: dict[str, Any] = read_optional_json(path) if path.is_file() else {"edgefn_run": 1}
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    record.update(info, status=status, updated=now)
    record.setdefault("started", now)
    if status == RUN_COMPLETE:
        record["completed"] = now
    write_json(path, record)


def check_writable_dir(folder: Path, option: str | None = "--run-dir") -> None:
    """Refuse, before any work, a folder that cannot be created or written: a file on its path or no permission."""
    folder = Path(folder)
    named = f"{option or 'folder'} {folder}"
    choose = f"choose another {option}" if option else "choose another folder"
    if folder.exists() and not folder.is_dir():
        raise EdgefnError(f"{named} is a file, not a folder; {choose}")
    outputs.check_writable(folder, named, choose)


@contextlib.contextmanager
def run_lock(folder: Path, command: str) -> Iterator[None]:
    """Hold the run folder's lock file while `command` writes to it; a second writer is refused at once.

    The file is removed on release, so a folder looks as before once the command ends.
    """
    path = Path(folder) / LOCK_FILE
    try:  # never through a symlink, never onto a file that is not a plain one
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, outputs.file_mode())
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise EdgefnError(
                f"{path} is a symlink; remove it (edgefn's lock file is a plain file)"
            ) from None
        raise EdgefnError(f"cannot write to {folder} ({e.strerror or e})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise EdgefnError(f"{path} is not a plain file; remove it (edgefn's lock file is a plain file)")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another edgefn process"
        os.close(fd)
        raise EdgefnError(f"{folder} is in use ({holder}); wait for it to finish") from None
    link = first_symlink(Path(folder))
    if link is not None:
        os.unlink(path)
        os.close(fd)
        raise EdgefnError(
            f"{link} is a symlink inside the run folder {folder}; edgefn writes only real files there (remove the link)"
        )
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: edgefn {command}".encode())
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # still ours (not a newer folder's lock)
                os.unlink(path)
        os.close(fd)


def first_symlink(folder: Path) -> Path | None:
    """The first symlink inside `folder` (the folder itself may be one), or None."""
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            if os.path.islink(os.path.join(root, name)):
                return Path(root) / name
    return None


def is_manifested_dir(folder: Path, manifest: str = EXPORT_MANIFEST) -> bool:
    """Whether `folder` is a variant, peer or package folder edgefn wrote: its manifest a JSON object with
    `files_sha256`, and no file in it but the manifest and the files recorded there (replacing it deletes
    nothing of the user's)."""
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
    return all(
        str(p.relative_to(folder)) in known for p in folder.rglob("*") if not p.is_dir() or p.is_symlink()
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


# What a run folder may hold besides its subfolders, and the fine-tune's own working folder.
RUN_FILES = {RUN_MANIFEST, LOCK_FILE, FINETUNE_CONFIG, METRICS, ERRORS_CSV, CONFUSION_MATRIX_PNG, OOD_FILE}
TRAINER_DIR = "trainer"  # the fine-tune's Trainer checkpoints (resume), removed when it finishes
# The temporary folders edgefn makes inside a run (`outputs.output_dir`'s, export's and the peers' work folders)
_TEMPORARY = re.compile(r"\.(plain|work|optimum)-[a-z0-9_]{8}|\.[^/]+\.(tmp|old)-[a-z0-9_]{8}")


def foreign_entry(run_dir: Path) -> Path | None:
    """The first thing in a run folder that edgefn did not write (a user's notes, a folder of the user's in
    onnx/ or eval/, a file added to a variant), or None when replacing the run deletes nothing of the user's."""
    run = RunFolder(run_dir)
    recorded = (run_manifest(run.path) or {}).get(CHECKPOINT_HASHES)
    splits = {f"{n}.jsonl" for n in SPLIT_NAMES}
    own: dict[str, Callable[[Path], Path | None]] = {
        ONNX_DIR: lambda p: _first_foreign(p, is_manifested_dir),
        PEERS_DIR: lambda p: _first_foreign(p, is_manifested_dir),
        EVAL_DIR: lambda p: _first_foreign(p, RunFolder.is_eval_dir),
        PACKAGE_DIR: lambda p: _first_foreign(p, lambda f: is_manifested_dir(f, PACKAGE_MANIFEST)),
        BENCH_DIR: lambda p: None if is_bench_dir(p) else p,
        DATA_DIR: lambda p: next(
            (q for q in sorted(p.iterdir()) if q.name not in splits or q.is_symlink()), None
        ),
        CHECKPOINT: lambda p: _unrecorded_file(p, recorded, None) if isinstance(recorded, dict) else None,
        TRAINER_DIR: lambda p: None,
    }
    for entry in sorted(run.path.iterdir()):
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


# --- splits -------------------------------------------------------------------------------------------------


@dataclass
class Split:
    """Texts and labels of one split (label 1 = fake, 0 = real)."""

    texts: list[str]
    labels: list[int]
    sources: list[str] | None = None  # each row's dataset, for a union of datasets

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if self.sources is not None and len(self.sources) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.sources)} sources")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: list[int]) -> Split:
        """The rows at `idx`, sources kept."""
        sources = None if self.sources is None else [self.sources[i] for i in idx]
        return Split([self.texts[i] for i in idx], [self.labels[i] for i in idx], sources)


def write_split_jsonl(split: Split, path: Path) -> None:
    """Save a split as JSON lines {"text", "label"} (used for run folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, (text, label) in enumerate(zip(split.texts, split.labels, strict=True)):
            row: dict[str, Any] = {"text": text, "label": int(label)}
            if split.sources is not None:
                row["source"] = split.sources[i]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_split_jsonl(path: Path) -> Split:
    """Read a split written by `write_split_jsonl`."""
    if not Path(path).is_file():
        raise EdgefnError(f"missing data file {path}")
    texts, labels, sources = [], [], []
    with open(path, encoding="utf-8", errors="strict") as f:
        for number, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                text, label = row["text"], row["label"]
            except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError included
                raise EdgefnError(
                    f"{path} line {number} is damaged ({type(e).__name__}: {e}); "
                    "re-run `edgefn finetune --overwrite` to write the run's data again"
                ) from None
            if isinstance(label, bool) or not isinstance(label, (int, float)) or label not in (0, 1):
                raise EdgefnError(  # 1.0 and 0.0 are 1 and 0; 2, 0.5, NaN, "fake" or true would mislead
                    f"{path} line {number}: label {label!r} is not 0 or 1 (1 = fake, 0 = real); "
                    "correct it, or re-run `edgefn finetune --overwrite` to write the run's data again"
                )
            texts.append(str(text))
            labels.append(int(label))
            sources.append(row.get("source"))
    return Split(texts, labels, sources if sources and all(s is not None for s in sources) else None)


# --- the run folder -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFolder:
    """One run folder: where each stage writes, and the readers every stage, `show` and the tests use.

    Layout (the contract):
        run.json                           the manifest: an edgefn run, training or complete
        finetune_config.json, metrics.json, errors.csv, confusion_matrix.png   finetune
        checkpoint/                        the fine-tuned model and tokenizer
        data/{validation,test,calibration}.jsonl
        onnx/<variant>/{model.onnx, config.json, tokenizer files, export.json}   export
        bench/{report.json, report.csv, report.md, latency.png, tradeoff.png}    bench
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def resolve(cls, run_dir: Path | None) -> tuple[RunFolder, bool]:
        """The run folder to use (None: the most recent under artifacts/) and whether it was picked."""
        path, picked = resolve_run_dir(run_dir)
        return cls(path), picked

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def manifest(self) -> Path:
        return self.path / RUN_MANIFEST

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def finetune_config(self) -> Path:
        return self.path / FINETUNE_CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def errors_csv(self) -> Path:
        return self.path / ERRORS_CSV

    @property
    def confusion_matrix_png(self) -> Path:
        return self.path / CONFUSION_MATRIX_PNG

    @property
    def data_dir(self) -> Path:
        return self.path / DATA_DIR

    @property
    def onnx_dir(self) -> Path:
        return self.path / ONNX_DIR

    @property
    def bench_dir(self) -> Path:
        return self.path / BENCH_DIR

    @property
    def peers_dir(self) -> Path:
        return self.path / PEERS_DIR

    def peer_dir(self, name: str) -> Path:
        """peers/<name>/: a peer's model, config, tokenizer and export.json (hashes, recipe)."""
        return self.peers_dir / name

    def bench_file(self, kind: str) -> Path:
        """bench/report.json (kind "json"), report.csv, report.md, latency.png, tradeoff.png."""
        return self.bench_dir / BENCH_FILES[kind]

    # --- eval ---

    @property
    def eval_root(self) -> Path:
        return self.path / EVAL_DIR

    def eval_dir(self, data: str, model: str | None = None) -> Path:
        """eval/<data>/ for the checkpoint, eval/<data>-<variant>/ for an exported variant."""
        name = data if model is None else f"{data}-{model}"
        return self.eval_root / outputs.safe_name(name)

    @staticmethod
    def is_eval_dir(folder: Path) -> bool:
        """Whether `folder` is an eval folder edgefn wrote: its metrics.json of edgefn's eval schema and
        nothing but the eval files (so replacing it deletes nothing of the user's)."""
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

    @staticmethod
    def eval_file(folder: Path, kind: str) -> Path:
        """metrics.json (kind "metrics"), errors.csv, confusion_matrix.png, reliability.png in an eval folder."""
        names = {
            "metrics": METRICS,
            "errors": ERRORS_CSV,
            "confusion_matrix": CONFUSION_MATRIX_PNG,
            "reliability": RELIABILITY_PNG,
        }
        return Path(folder) / names[kind]

    @property
    def ood_file(self) -> Path:
        return self.path / OOD_FILE

    def package_dir(self, target: str) -> Path:
        """package/<target>/ (web, mobile), written by `edgefn package`."""
        return self.path / PACKAGE_DIR / target

    # --- state ---

    def status(self) -> str | None:
        """ "complete", "unfinished" (a fine-tune that did not end) or None (not an edgefn run)."""
        return run_status(self.path)

    def require_complete(self) -> None:
        """Refuse a run whose fine-tune did not finish (killed after its checkpoint, before its metrics)."""
        status = self.status()
        if status is None and os.path.lexists(self.manifest):
            raise EdgefnError(
                f"{self.manifest} is not an edgefn run manifest (a foreign or damaged file); "
                "run `edgefn finetune` into a new --run-dir"
            )
        if status is None:
            raise EdgefnError(
                f"{self.path} is not an edgefn run folder (no {RUN_MANIFEST}); run `edgefn finetune`"
            )
        if status != "complete":
            raise EdgefnError(
                f"the fine-tune of {self.path} did not finish (its {RUN_MANIFEST} does not mark it complete); "
                "continue it with `edgefn finetune ... --resume` or train again with --overwrite"
            )

    # --- checkpoint ---

    def retrain_hint(self) -> str:
        """The command that trains this run again (its preset and data from finetune_config.json)."""
        preset, data = json_field(self.finetune_config, "preset"), json_field(self.finetune_config, "data")
        words = [
            preset if isinstance(preset, str) else "PRESET",
            shlex.quote(data) if isinstance(data, str) else "DATA",
        ]
        run_dir = shlex.quote(str(self.path))
        return f"train it again with `edgefn finetune {words[0]} --data {words[1]} --run-dir {run_dir} --overwrite`"

    def mark_complete(self, **info: Any) -> None:
        """The fine-tune's last write: every checkpoint file's SHA-256 into run.json, the run marked complete."""
        hashes = hash_files(self.checkpoint, manifest=None)
        write_run_manifest(self.path, RUN_COMPLETE, **info, **{CHECKPOINT_HASHES: hashes})

    def verify_checkpoint(self) -> dict[str, str]:
        """The checkpoint's file hashes recorded in run.json by the fine-tune, after checking every file of
        checkpoint/ against them: a changed id2label or weight file, or a run without hashes, is refused."""
        fix = self.retrain_hint()
        if not self.checkpoint.is_dir():
            raise EdgefnError(f"no checkpoint folder {self.checkpoint}; run `edgefn finetune` first")
        fields: dict[str, JsonType] = {CHECKPOINT_HASHES: dict}
        files = read_optional_json(self.manifest, fields, fix).get(CHECKPOINT_HASHES)
        if not files:
            raise EdgefnError(
                f"{self.path} records no hashes of its {CHECKPOINT}/ in {RUN_MANIFEST} (a run made by an older "
                f"edgefn, or a fine-tune that did not finish), so its weights and labels cannot be checked; {fix}"
            )
        if not _valid_hashes(files):
            raise EdgefnError(
                f"{self.manifest}: {CHECKPOINT_HASHES!r} is not a record of file names and SHA-256 hashes; {fix}"
            )
        fault = files_fault(self.checkpoint, files, self.manifest, fix)
        if fault is not None:
            raise EdgefnError(fault[1])
        return dict(files)

    def lock(self, command: str) -> contextlib.AbstractContextManager[None]:
        """The run's lock for a command that writes to it (concurrent writers are refused)."""
        return run_lock(self.path, command)

    # --- data ---

    def split_file(self, name: str) -> Path:
        """data/<name>.jsonl for name in validation, test, calibration."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; a run folder holds {', '.join(SPLIT_NAMES)}")
        return self.data_dir / f"{name}.jsonl"

    def read_split(self, name: str) -> Split:
        """A split the fine-tune stage saved."""
        return read_split_jsonl(self.split_file(name))

    def write_split(self, name: str, split: Split) -> None:
        """Save a split for the later stages."""
        write_split_jsonl(split, self.split_file(name))

    # --- records ---

    def read_finetune_config(self) -> dict[str, Any]:
        """finetune_config.json (required), its fields' types checked."""
        config = read_json_object(self.finetune_config, FINETUNE_FIELDS, fix=self.retrain_hint())
        if config.get("max_length", 2) < 2:
            raise EdgefnError(
                f"{self.finetune_config}: 'max_length' must be at least 2; {self.retrain_hint()}"
            )
        return config

    def read_metrics(self) -> dict[str, Any]:
        """metrics.json, or {} before the fine-tune finished."""
        return read_optional_json(self.metrics)

    def max_length(self, default: int) -> int:
        """The fine-tuning token limit recorded in finetune_config.json, else `default`."""
        if not os.path.lexists(self.finetune_config):
            return default
        return int(self.read_finetune_config().get("max_length") or default)

    # --- variants ---

    def variant_dir(self, name: str) -> Path:
        return self.onnx_dir / name

    def variants(self) -> list[Path]:
        """Complete variant folders (those with a manifest), sorted by name."""
        return list_variants(self.path)

    def variant_names(self) -> list[str]:
        return [p.name for p in self.variants()]

    def incomplete_variants(self) -> list[str]:
        return incomplete_variants(self.path)

    def verify_variant(self, name: str) -> dict[str, Any]:
        """A variant's manifest, after checking its files against the recorded hashes."""
        return verify_variant(self.variant_dir(name))
