"""The names inside a run folder, a variant folder and a checkpoint: no other module spells them."""

from __future__ import annotations

from pathlib import Path

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
GUARDED_SUFFIX = (
    "-guarded"  # onnx/<scheme>-guarded/: the scheme's int8 with its most sensitive layers in float
)
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

# run.json's status while the fine-tune runs, and once it finished.
RUN_COMPLETE = "complete"
RUN_TRAINING = "training"

# What a run folder may hold besides its subfolders, and the fine-tune's own working folder.
RUN_FILES = {RUN_MANIFEST, LOCK_FILE, FINETUNE_CONFIG, METRICS, ERRORS_CSV, CONFUSION_MATRIX_PNG, OOD_FILE}
TRAINER_DIR = "trainer"  # the fine-tune's Trainer checkpoints (resume), removed when it finishes
