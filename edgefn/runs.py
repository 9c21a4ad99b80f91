"""The run-folder contract: `RunFolder` (every path, split reader, manifest and hash check), atomic writes."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn.errors import EdgefnError

ARTIFACTS_DIR = Path("artifacts")

# Names inside a run folder: no other module spells them.
RUN_MANIFEST = "run.json"  # marks a folder as edgefn's run and says whether its fine-tune finished
LOCK_FILE = ".edgefn.lock"  # held while a command writes to the run
CHECKPOINT = "checkpoint"
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
ONNX_FILE = "model.onnx"
OPENVINO_XML = "openvino_model.xml"  # OpenVINO variants (ov-*): IR graph and weights instead of model.onnx
OPENVINO_BIN = "openvino_model.bin"
MODEL_CONFIG = "config.json"
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


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(to_jsonable(obj), f, indent=2, sort_keys=False)
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


def model_files(folder: Path) -> tuple[str, ...]:
    """The model file(s) of a variant folder: OpenVINO IR (xml + bin) where present, else model.onnx."""
    return (OPENVINO_XML, OPENVINO_BIN) if (Path(folder) / OPENVINO_XML).is_file() else (ONNX_FILE,)


def model_file(folder: Path) -> Path:
    """The file a runtime loads: openvino_model.xml for OpenVINO variants, else model.onnx."""
    return Path(folder) / model_files(folder)[0]


def required_files(folder: Path) -> tuple[str, ...]:
    """Files whose hashes a variant's manifest must record: its model file(s), config and tokenizer."""
    return (*model_files(folder), MODEL_CONFIG, TOKENIZER_FILE)


def hash_files(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a variant folder but its manifest, by relative name."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != EXPORT_MANIFEST
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


def _recorded_hashes(manifest: dict[str, Any]) -> dict[str, str]:
    files = dict(manifest.get("files_sha256") or {})
    if not files and manifest.get("model_sha256"):
        files = {ONNX_FILE: manifest["model_sha256"]}  # manifests of edgefn before per-file hashes
    return files


def _first_bad_file(folder: Path, files: dict[str, str]) -> tuple[str, Path] | None:
    """("MISSING" | "MISMATCH", path) of the first recorded file that is gone or changed, else None."""
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return "MISSING", path
        if sha256_file(path) != expected:
            return "MISMATCH", path
    return None


def hash_status(folder: Path, manifest: dict[str, Any]) -> str:
    """OK, MISMATCH, MISSING (a recorded file or model.onnx is gone) or UNRECORDED (no hashes) for a variant."""
    folder = Path(folder)
    files = _recorded_hashes(manifest)
    if not model_file(folder).is_file():
        return "MISSING"
    if not files:
        return "UNRECORDED"
    bad = _first_bad_file(folder, files)
    return "OK" if bad is None else bad[0]


def verify_variant(folder: Path) -> dict[str, Any]:
    """Read a variant's export.json and check every file it needs (model, config, tokenizer) against the
    hashes recorded there; a manifest without them is refused (a flipped id2label would invert labels)."""
    folder = Path(folder)
    manifest_path = folder / EXPORT_MANIFEST
    if not manifest_path.is_file():
        raise EdgefnError(f"{folder} is not an edgefn export (no {EXPORT_MANIFEST}); run `edgefn export`")
    manifest = dict(read_json(manifest_path))
    if not model_file(folder).is_file():
        raise EdgefnError(f"{model_file(folder)} is missing; re-run `edgefn export --overwrite`")
    files = dict(manifest.get("files_sha256") or {})
    unrecorded = [n for n in required_files(folder) if n not in files]
    if unrecorded:
        raise EdgefnError(
            f"{manifest_path} records no hash of {', '.join(unrecorded)} (an export by an older edgefn, or "
            "edited); re-run `edgefn export --overwrite`"
        )
    bad = _first_bad_file(folder, files)
    if bad is not None and bad[0] == "MISSING":
        raise EdgefnError(f"{bad[1]} is missing; re-run `edgefn export --overwrite`")
    if bad is not None:
        raise EdgefnError(
            f"{bad[1]} does not match the hash in {manifest_path} (corrupted or modified); "
            "re-run `edgefn export --overwrite`"
        )
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


def read_optional_json(path: Path) -> dict[str, Any]:
    """A JSON object file, or {} when it is absent."""
    return dict(read_json(path)) if Path(path).is_file() else {}


# --- run manifest, lock, replacement ---------------------------------------------------------------------

RUN_COMPLETE = "complete"
RUN_TRAINING = "training"


def run_status(folder: Path) -> str | None:
    """ "complete", "unfinished" or None (no edgefn run) for a folder.

    The manifest (run.json) decides; a run made before manifests existed counts as complete when its
    metrics.json (the fine-tune's last write) holds test metrics.
    """
    folder = Path(folder)
    manifest = folder / RUN_MANIFEST
    if manifest.is_file():
        return "complete" if _json_field(manifest, "status") == RUN_COMPLETE else "unfinished"
    if not (folder / FINETUNE_CONFIG).is_file():
        return None
    return "complete" if isinstance(_json_field(folder / METRICS, "test"), dict) else "unfinished"


def _json_field(path: Path, key: str) -> Any:
    """`key` of a JSON object file; None when the file is absent, damaged or of another shape."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value.get(key) if isinstance(value, dict) else None


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
    probe = folder
    while not probe.exists():  # the nearest existing ancestor decides
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == folder else f"is under {probe}, which is a file"
        raise EdgefnError(f"{option or 'folder'} {folder} {what}, not a folder; choose another")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        choose = f"; choose another {option}" if option else ""
        raise EdgefnError(f"cannot write to {probe} ({e.strerror or e}){choose}") from None


@contextlib.contextmanager
def run_lock(folder: Path, command: str) -> Iterator[None]:
    """Hold the run folder's lock file while `command` writes to it; a second writer is refused at once.

    The file is removed on release, so a folder looks as before once the command ends.
    """
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise EdgefnError(f"cannot write to {folder} ({e.strerror or e})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another edgefn process"
        os.close(fd)
        raise EdgefnError(f"{folder} is in use ({holder}); wait for it to finish") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: edgefn {command}".encode())
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # still ours (not a newer folder's lock)
                os.unlink(path)
        os.close(fd)


@contextlib.contextmanager
def replacing_run(final: Path) -> Iterator[Path]:
    """Yield a new folder beside the run `final` to build its replacement in; swap them only if the block
    succeeds. Until then the previous run stays whole: a failure or interruption removes only the new folder."""
    final = Path(final)
    staging = staging_dir(final)
    retired = final.parent / f".{final.name}.old"
    for leftover in (staging, retired):  # from a replacement killed outright (SIGKILL, power loss)
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(final, retired)
    os.replace(staging, final)
    shutil.rmtree(retired, ignore_errors=True)


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
        return self.eval_root / name

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
        if status is None:
            raise EdgefnError(
                f"{self.path} is not an edgefn run folder (no {RUN_MANIFEST}); run `edgefn finetune`"
            )
        if status != "complete":
            raise EdgefnError(
                f"the fine-tune of {self.path} did not finish (its {RUN_MANIFEST} does not mark it complete"
                + ("" if self.manifest.is_file() else f", nor are there test metrics in {METRICS}")
                + "); continue it with `edgefn finetune ... --resume` or train again with --overwrite"
            )

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
        """finetune_config.json (required)."""
        return dict(read_json(self.finetune_config))

    def read_metrics(self) -> dict[str, Any]:
        """metrics.json, or {} before the fine-tune finished."""
        return read_optional_json(self.metrics)

    def max_length(self, default: int) -> int:
        """The fine-tuning token limit recorded in finetune_config.json, else `default`."""
        return int(read_optional_json(self.finetune_config).get("max_length") or default)

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
