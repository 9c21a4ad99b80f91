"""`RunFolder`: one run folder's paths, and the readers and checks every stage, `show` and the tests use."""

from __future__ import annotations

import contextlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn.core import outputs
from edgefn.core.cleaning import serving_rules
from edgefn.core.errors import EdgefnError
from edgefn.runs.hashing import files_fault, hash_files, valid_hashes
from edgefn.runs.jsonio import json_field, read_optional_json
from edgefn.runs.layout import (
    BENCH_DIR,
    BENCH_FILES,
    CHECKPOINT,
    CHECKPOINT_HASHES,
    CONFUSION_MATRIX_PNG,
    DATA_DIR,
    ERRORS_CSV,
    EVAL_DIR,
    FINETUNE_CONFIG,
    METRICS,
    ONNX_DIR,
    OOD_FILE,
    PACKAGE_DIR,
    PEERS_DIR,
    RELIABILITY_PNG,
    RUN_COMPLETE,
    RUN_MANIFEST,
    SPLIT_NAMES,
)
from edgefn.runs.lock import run_lock
from edgefn.runs.manifests import FinetuneManifest, RunManifest, VariantManifest
from edgefn.runs.replace import is_eval_dir
from edgefn.runs.splits import Split, read_split_jsonl, write_split_jsonl
from edgefn.runs.state import resolve_run_dir, run_status, write_run_manifest
from edgefn.runs.variants import incomplete_variants, list_variants, verify_variant


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

    is_eval_dir = staticmethod(is_eval_dir)  # whether a folder is an eval folder edgefn wrote

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
        write_run_manifest(self.path, RUN_COMPLETE, **info, checkpoint_sha256=hashes)

    def verify_checkpoint(self) -> dict[str, str]:
        """The checkpoint's file hashes recorded in run.json by the fine-tune, after checking every file of
        checkpoint/ against them: a changed id2label or weight file, or a run without hashes, is refused."""
        fix = self.retrain_hint()
        if not self.checkpoint.is_dir():
            raise EdgefnError(f"no checkpoint folder {self.checkpoint}; run `edgefn finetune` first")
        files = self.read_manifest(fix).checkpoint_sha256
        if not files:
            raise EdgefnError(
                f"{self.path} records no hashes of its {CHECKPOINT}/ in {RUN_MANIFEST} (a run made by an older "
                f"edgefn, or a fine-tune that did not finish), so its weights and labels cannot be checked; {fix}"
            )
        if not valid_hashes(files):
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

    def read_manifest(self, fix: str = "") -> RunManifest:
        """run.json, its fields' types checked; an empty record when the folder has none."""
        if not os.path.lexists(self.manifest):
            return RunManifest()
        return RunManifest.read(self.manifest, fix)

    def read_finetune_config(self, required: bool = True) -> FinetuneManifest:
        """finetune_config.json, its fields' types checked; when absent, refused, or an empty record when
        not `required`."""
        if not required and not os.path.lexists(self.finetune_config):
            return FinetuneManifest()
        return FinetuneManifest.read(self.finetune_config, self.retrain_hint())

    def read_metrics(self) -> dict[str, Any]:
        """metrics.json, or {} before the fine-tune finished."""
        return read_optional_json(self.metrics)

    def serving_cleaning(self) -> tuple[tuple[str, ...], str | None]:
        """The cleaning rules the fine-tune applied to its texts (metrics.json's data record), to apply at serving,
        and a note where a union's sources differed (`core.cleaning.serving_rules`); none before the fine-tune."""
        data = self.read_metrics().get("data")
        return serving_rules(data) if isinstance(data, dict) else ((), None)

    def max_length(self, default: int) -> int:
        """The fine-tuning token limit recorded in finetune_config.json, else `default`."""
        return self.read_finetune_config(required=False).max_length or default

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

    def verify_variant(self, name: str) -> VariantManifest:
        """A variant's manifest, after checking its files against the recorded hashes."""
        return verify_variant(self.variant_dir(name))
