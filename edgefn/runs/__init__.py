"""The run-folder contract: `RunFolder` and the file names, JSON I/O, hashes, lock and replacement rules behind it."""

# One module per job: `layout` (every name inside a run), `jsonio` (atomic JSON writes, strict readers),
# `hashing` (file hashes, a variant's model files), `variants` (export.json read and checked), `state` (run.json),
# `lock` (one writer at a time), `replace` (what edgefn may replace), `splits` (data/*.jsonl), `folder`
# (`RunFolder`), `manifests` (the typed records). `from edgefn import runs; runs.X` reaches every public name.

from edgefn.runs.folder import RunFolder
from edgefn.runs.hashing import (
    dir_size_mb,
    file_size_mb,
    files_fault,
    files_fingerprint,
    hash_files,
    model_files_of,
    model_record,
    required_files,
    sha256_dir,
    sha256_file,
)
from edgefn.runs.jsonio import (
    JsonType,
    check_json_object,
    json_field,
    parse_json,
    read_json,
    read_json_object,
    read_optional_json,
    read_text,
    to_jsonable,
    write_json,
)
from edgefn.runs.layout import (
    ARTIFACTS_DIR,
    BENCH_DIR,
    BENCH_FILES,
    CHECKPOINT,
    CHECKPOINT_HASHES,
    CONFUSION_MATRIX_PNG,
    DATA_DIR,
    ERRORS_CSV,
    EVAL_DIR,
    EVAL_SCHEMA_KEY,
    EXPORT_MANIFEST,
    FINETUNE_CONFIG,
    GUARDED_SUFFIX,
    LOCK_FILE,
    METRICS,
    MODEL_CONFIG,
    ONNX_DIR,
    ONNX_FILE,
    OOD_FILE,
    PACKAGE_DIR,
    PACKAGE_MANIFEST,
    PEERS_DIR,
    PICKLE_WEIGHTS,
    RELIABILITY_PNG,
    RUN_COMPLETE,
    RUN_FILES,
    RUN_MANIFEST,
    RUN_TRAINING,
    SAFETENSORS_WEIGHTS,
    SPLIT_NAMES,
    STAGING_MARK,
    TOKENIZER_CONFIG,
    TOKENIZER_FILE,
    TRAINER_DIR,
)
from edgefn.runs.lock import check_writable_dir, first_symlink, run_lock
from edgefn.runs.manifests import (
    EvalManifest,
    FinetuneManifest,
    Manifest,
    PackageManifest,
    RunManifest,
    VariantManifest,
)
from edgefn.runs.replace import (
    atomic_dir,
    foreign_entry,
    is_bench_dir,
    is_eval_dir,
    is_manifested_dir,
    is_temporary,
    replacing_run,
    staging_dir,
)
from edgefn.runs.splits import Split, read_split_jsonl, write_split_jsonl
from edgefn.runs.state import (
    enclosing_run,
    find_latest_run,
    is_run,
    refuse_output_in_run,
    refuse_unfinished_run_of,
    resolve_run_dir,
    run_manifest,
    run_status,
    write_run_manifest,
)
from edgefn.runs.variants import (
    hash_status,
    incomplete_variants,
    list_variants,
    read_variant_manifest,
    reexport_hint,
    verify_variant,
)

__all__ = [
    # layout
    "ARTIFACTS_DIR", "BENCH_DIR", "BENCH_FILES", "CHECKPOINT", "CHECKPOINT_HASHES", "CONFUSION_MATRIX_PNG",
    "DATA_DIR", "ERRORS_CSV", "EVAL_DIR", "EVAL_SCHEMA_KEY", "EXPORT_MANIFEST", "FINETUNE_CONFIG", "GUARDED_SUFFIX",
    "LOCK_FILE",
    "METRICS", "MODEL_CONFIG", "OOD_FILE", "ONNX_DIR", "ONNX_FILE",
    "PACKAGE_DIR", "PACKAGE_MANIFEST", "PEERS_DIR", "PICKLE_WEIGHTS", "RELIABILITY_PNG", "RUN_COMPLETE",
    "RUN_FILES", "RUN_MANIFEST", "RUN_TRAINING", "SAFETENSORS_WEIGHTS", "SPLIT_NAMES", "STAGING_MARK",
    "TOKENIZER_CONFIG", "TOKENIZER_FILE", "TRAINER_DIR",
    # jsonio
    "JsonType", "check_json_object", "json_field", "parse_json", "read_json", "read_json_object",
    "read_optional_json", "read_text", "to_jsonable", "write_json",
    # hashing
    "dir_size_mb", "file_size_mb", "files_fault", "files_fingerprint", "hash_files", "model_files_of",
    "model_record", "required_files", "sha256_dir", "sha256_file",
    # manifests
    "EvalManifest", "FinetuneManifest", "Manifest", "PackageManifest", "RunManifest", "VariantManifest",
    # variants
    "hash_status", "incomplete_variants", "list_variants", "read_variant_manifest",
    "reexport_hint", "verify_variant",
    # state, lock, replace
    "enclosing_run", "find_latest_run", "is_run", "refuse_output_in_run", "refuse_unfinished_run_of",
    "resolve_run_dir", "run_manifest", "run_status", "write_run_manifest",
    "check_writable_dir", "first_symlink", "run_lock",
    "atomic_dir", "foreign_entry", "is_bench_dir", "is_eval_dir", "is_manifested_dir", "is_temporary",
    "replacing_run", "staging_dir",
    # splits, folder
    "Split", "read_split_jsonl", "write_split_jsonl",
    "RunFolder",
]  # fmt: skip
