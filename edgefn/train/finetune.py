"""Fine-tune a preset on a fake-news dataset with the Hugging Face Trainer: finetune(cfg) -> FinetuneResult."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.environment import library_versions
from edgefn.core.errors import ConfigError, EdgefnError, disk_faults
from edgefn.core.metrics import (
    classification_metrics,
    metrics_by_group,
    plot_confusion_matrix,
    write_errors_csv,
)
from edgefn.core.presets import INIT_CHOICES, ModelPreset, count_parameters, get_preset, load_model
from edgefn.data import catalog as datasets_registry
from edgefn.data.catalog import DataOptions, DatasetBundle, Split
from edgefn.runs import RunFolder
from edgefn.runtime.inference import softmax

TRAINER_DIR = runs.TRAINER_DIR
TRAINER_STATE = "trainer_state.json"  # the Trainer writes it last: a checkpoint without it is incomplete
CALIBRATION_ROWS = 512
MIN_MAX_LENGTH = 8  # [CLS] ... [SEP] and a few word pieces


@dataclass
class FinetuneConfig:
    """Everything that determines a fine-tuning run; saved as finetune_config.json in the run folder."""

    preset: str
    data: str = "welfake"
    data_options: DataOptions = field(default_factory=DataOptions)
    epochs: int | None = None  # None: the preset's default
    batch_size: int | None = None
    lr: float | None = None
    warmup_steps: int | None = None
    weight_decay: float | None = None
    patience: int | None = None
    max_length: int | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    max_test_samples: int | None = None  # a seeded subset of the test split (quick runs); recorded in metrics
    max_steps: int | None = None
    seed: int = 42
    init: str = "pretrained"
    pad_to_max_length: bool = False  # the seeds' recipe (pad everything); for comparisons only
    run_dir: Path | None = None
    resume: bool = False
    overwrite: bool = False
    # Not settings of the run: how the caller wants refusals worded and what else the model must fit.
    resume_hint: bool = True  # False for `edgefn run`, which has no --resume
    check_model: Callable[[Any, int], object] | None = None  # (model config, max_length), before training

    def __post_init__(self) -> None:
        if self.init not in INIT_CHOICES:
            raise ConfigError("init", f"unknown {self.init!r}; choose one of {', '.join(INIT_CHOICES)}")
        for name in (
            "epochs",
            "batch_size",
            "max_length",
            "max_train_samples",
            "max_eval_samples",
            "max_test_samples",
            "max_steps",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(name, f"must be positive, got {value}")
        if self.max_length is not None and self.max_length < MIN_MAX_LENGTH:
            raise ConfigError(
                "max_length",
                f"{self.max_length} leaves no room for text after the model's special tokens; "
                f"use at least {MIN_MAX_LENGTH}",
            )
        if self.seed < 0:
            raise ConfigError("seed", f"must be a non-negative integer, got {self.seed}")
        if self.lr is not None and not 0 < self.lr < 1:
            raise ConfigError("lr", f"must be in (0, 1), got {self.lr}")
        if self.resume and self.overwrite:
            raise ConfigError(
                "resume", "excludes overwrite (continue the run, or replace it)", ("overwrite",)
            )

    def resolved(self, preset: ModelPreset) -> FinetuneConfig:
        """A copy with the preset's defaults filled in and the run folder decided."""
        hp = preset.hparams
        data_name = Path(self.data).name if "/" in self.data else self.data.split(":")[0]
        return dataclasses.replace(
            self,
            epochs=self.epochs or hp.epochs,
            batch_size=self.batch_size or hp.batch_size,
            lr=self.lr or hp.lr,
            warmup_steps=hp.warmup_steps if self.warmup_steps is None else self.warmup_steps,
            weight_decay=hp.weight_decay if self.weight_decay is None else self.weight_decay,
            patience=self.patience or hp.patience,
            max_length=self.max_length or hp.max_length,
            run_dir=Path(
                self.run_dir or runs.ARTIFACTS_DIR / outputs.safe_name(f"{preset.name}-{data_name}")
            ),
        )

    def identity(self) -> dict[str, Any]:
        """The settings that must match for a run folder to be resumed or reused."""
        d = runs.to_jsonable({k: v for k, v in vars(self).items() if k not in _NOT_IDENTITY})
        return dict(d)


_NOT_IDENTITY = ("resume", "overwrite", "run_dir", "resume_hint", "check_model")


@dataclass
class FinetuneResult:
    """Where the run went and its headline numbers."""

    run_dir: Path
    metrics: dict[str, Any]
    config: FinetuneConfig
    finished: bool = False  # --resume found the run already complete: nothing was trained


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def prepare_run_dir(cfg: FinetuneConfig) -> str:
    """What to do with the run folder: "new", "resume", "replace" (--overwrite of a run) or "finished"
    (--resume of a run that ended). Refuses a folder that is no run, and a run made with other settings
    unless --overwrite. Only a folder whose manifest marks it as edgefn's run is ever replaced."""
    assert cfg.run_dir is not None
    run = RunFolder(cfg.run_dir)
    if not run.path.exists():
        return "new"
    if not run.path.is_dir():
        raise EdgefnError(f"--run-dir {run.path} is a file, not a folder; choose another --run-dir")
    status = run.status()
    if status is None:
        if any(p.name != runs.LOCK_FILE for p in run.path.iterdir()):  # never replaced: the user's files
            raise EdgefnError(
                f"{run.path} exists and is not an edgefn run folder (no {runs.RUN_MANIFEST} of edgefn's); "
                "choose another --run-dir"
            )
        return "new"
    if cfg.overwrite:
        foreign = runs.foreign_entry(run.path)
        if foreign is not None:
            raise EdgefnError(
                f"{foreign} in the run {run.path} holds files edgefn did not write, which --overwrite "
                "would delete; move them out of the run, or choose another --run-dir"
            )
        return "replace"
    saved = runs.read_optional_json(run.finetune_config).get("settings", {})
    if cfg.resume:
        if saved != cfg.identity():
            diff = sorted(
                k for k in set(saved) | set(cfg.identity()) if saved.get(k) != cfg.identity().get(k)
            )
            raise EdgefnError(
                f"cannot resume {run.path}: settings differ ({', '.join(diff)}); "
                "use --overwrite or another --run-dir"
            )
        return "finished" if status == "complete" else "resume"
    what = "different settings" if saved != cfg.identity() else "the same settings"
    kind = "a finished run" if status == "complete" else "an unfinished run"
    resume = "--resume to continue it, " if cfg.resume_hint and status != "complete" else ""
    raise EdgefnError(
        f"{run.path} already holds {kind} with {what}; use {resume}--overwrite to replace it "
        "(the old run is kept until the new one finishes), or --run-dir for a new folder"
    )


def _check_model(model: Any, cfg: FinetuneConfig) -> None:
    assert cfg.max_length is not None
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and cfg.max_length > positions:
        raise ConfigError("max_length", f"{cfg.max_length} is over the model's {positions} positions")
    if cfg.check_model is not None:
        cfg.check_model(model.config, cfg.max_length)


def _subsample(split: Split, n: int | None, seed: int) -> Split:
    if n is None or n >= len(split):
        return split
    import random

    idx = sorted(random.Random(seed).sample(range(len(split)), n))
    return split.subset(idx)


def tokenize_split(split: Split, tokenizer: Any, cfg: FinetuneConfig) -> Any:
    from datasets import Dataset

    ds = Dataset.from_dict({"text": split.texts, "label": split.labels})
    padding = "max_length" if cfg.pad_to_max_length else False

    def encode(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["text"], truncation=True, max_length=cfg.max_length, padding=padding)

    return ds.map(encode, batched=True, remove_columns=["text"], desc="tokenizing")


def _compute_metrics(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred
    m = classification_metrics(labels.tolist(), logits.argmax(-1).tolist())
    return {"accuracy": m["accuracy"], "f1": m["f1_weighted"]}


def training_arguments(cfg: FinetuneConfig, trainer_dir: Path) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(trainer_dir),
        num_train_epochs=cfg.epochs or 1,
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size or 16,
        per_device_eval_batch_size=2 * (cfg.batch_size or 16),
        learning_rate=cfg.lr or 5e-5,
        weight_decay=cfg.weight_decay or 0.0,
        warmup_steps=cfg.warmup_steps or 0,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="f1",
        greater_is_better=True,
        group_by_length=not cfg.pad_to_max_length,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_strategy="epoch",
        report_to=[],
        dataloader_num_workers=0,
        save_safetensors=True,
        disable_tqdm=False,
        dataloader_pin_memory=_cuda_available(),
        use_cpu=not _cuda_available(),  # also makes torchrun on CPU use DDP with gloo
        ddp_find_unused_parameters=False,
    )


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


EPOCH_TABLE_HEADER = (
    f"{'epoch':>5}  {'train loss':>10}  {'val loss':>8}  {'val acc':>7}  {'val F1':>6}  {'elapsed':>8}"
)


def _epoch_table() -> Any:
    """The Trainer's progress bars, with one table row per epoch in place of its raw log dicts."""
    from transformers.trainer_callback import ProgressCallback

    class EpochTable(ProgressCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.train_loss: float | None = None
            self.rows = 0
            self.start = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            if "loss" in logs:
                self.train_loss = float(logs["loss"])
            if "eval_loss" not in logs:
                return
            loss = "-" if self.train_loss is None else f"{self.train_loss:.4f}"
            row = (
                f"{logs.get('epoch', 0):>5.2f}  {loss:>10}  {logs['eval_loss']:>8.4f}  "
                f"{logs.get('eval_accuracy', float('nan')):>7.4f}  {logs.get('eval_f1', float('nan')):>6.4f}  "
                f"{time.perf_counter() - self.start:>7.0f}s"
            )
            for line in ([] if self.rows else [EPOCH_TABLE_HEADER]) + [row]:
                self.training_bar.write(line) if self.training_bar is not None else print(line)
            self.rows += 1

    return EpochTable()


def _train(cfg: FinetuneConfig, loaded: Any, data: DatasetBundle, build: Path) -> tuple[Any, dict[str, Any]]:
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    tok = loaded.tokenizer
    train = tokenize_split(_subsample(data.train, cfg.max_train_samples, cfg.seed), tok, cfg)
    val = tokenize_split(_subsample(data.validation, cfg.max_eval_samples, cfg.seed), tok, cfg)
    trainer = Trainer(
        model=loaded.model,
        args=training_arguments(cfg, build / TRAINER_DIR),
        train_dataset=train,
        eval_dataset=val,
        data_collator=DataCollatorWithPadding(tok),
        processing_class=tok,
        compute_metrics=_compute_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=cfg.patience or 2)],
    )
    from transformers.trainer_callback import ProgressCallback

    trainer.remove_callback(ProgressCallback)
    table = _epoch_table()
    trainer.add_callback(table)
    drop_incomplete_checkpoints(build / TRAINER_DIR)
    resume = cfg.resume and any((build / TRAINER_DIR).glob("checkpoint-*"))
    start = time.perf_counter()
    try:
        with disk_faults(build):
            out = trainer.train(resume_from_checkpoint=True if resume else None)
    except BaseException:  # a checkpoint cut short (full disk, Ctrl-C while saving) must not be resumed from
        drop_incomplete_checkpoints(build / TRAINER_DIR)
        for bar in (table.prediction_bar, table.training_bar):  # the error then starts a line of its own
            if bar is not None:
                bar.close()
        raise
    seconds = time.perf_counter() - start
    stats = {
        "train_seconds": seconds,
        "train_samples": len(train),
        "epochs_run": trainer.state.epoch,
        "train_samples_per_s": out.metrics.get("train_samples_per_second"),
        "best_validation_f1": trainer.state.best_metric,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "resumed": bool(resume),
        "world_size": trainer.args.world_size,
        "log_history": trainer.state.log_history,
    }
    return trainer, stats


def drop_incomplete_checkpoints(trainer_dir: Path) -> None:
    """Remove the Trainer checkpoints whose trainer_state.json is missing or unreadable (cut short)."""
    import json

    for checkpoint in trainer_dir.glob("checkpoint-*"):
        try:
            json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            shutil.rmtree(checkpoint, ignore_errors=True)


def _predict(trainer: Any, split: Split, cfg: FinetuneConfig) -> tuple[list[int], list[float]]:
    ds = tokenize_split(split, trainer.processing_class, cfg)
    # group_by_length also reorders evaluation batches; predictions must stay in the split's order.
    grouped, trainer.args.group_by_length = trainer.args.group_by_length, False
    try:
        logits = trainer.predict(ds).predictions
    finally:
        trainer.args.group_by_length = grouped
    return logits.argmax(-1).tolist(), softmax(logits)[:, 1].tolist()


def _write_outputs(
    cfg: FinetuneConfig,
    run: RunFolder,
    trainer: Any,
    loaded: Any,
    data: DatasetBundle,
    stats: dict[str, Any],
    preds: list[int],
    prob_fake: list[float],
) -> dict[str, Any]:
    assert cfg.run_dir is not None
    with runs.atomic_dir(run.checkpoint, overwrite=True) as tmp, disk_faults(run.checkpoint):
        trainer.model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
    for name in ("validation", "test"):
        run.write_split(name, data.split(name))
    run.write_split("calibration", _subsample(data.train, CALIBRATION_ROWS, cfg.seed))
    test = classification_metrics(data.test.labels, preds, prob_fake)
    n_errors = write_errors_csv(run.errors_csv, data.test.texts, data.test.labels, preds, prob_fake)
    init_label = loaded.init
    plot_confusion_matrix(
        test["confusion_matrix"], run.confusion_matrix_png, f"{cfg.run_dir.name} test ({init_label})"
    )
    metrics = {
        "preset": get_preset(cfg.preset).name,
        "init": init_label,
        "weights_source": loaded.source,
        "weights_location": loaded.location,
        "notes": loaded.notes,
        "test": test,
        "test_by_source": _by_source(data.test, preds, prob_fake),
        "shortcut_verdicts": _shortcut_verdicts(data),
        "misclassified": n_errors,
        "parameters": count_parameters(trainer.model),
        "checkpoint_mb": runs.dir_size_mb(run.checkpoint, "model.safetensors"),
        "training": stats,
        "data": {**data.info, "fingerprint": data.fingerprint()},
        "versions": library_versions(),
    }
    runs.write_json(run.metrics, metrics)
    shutil.rmtree(run.path / TRAINER_DIR, ignore_errors=True)  # optimizer states are only needed to resume
    run.mark_complete()  # the last write: the checkpoint's hashes, and the run is whole
    return metrics


def _by_source(test: Split, preds: list[int], prob_fake: list[float]) -> dict[str, Any] | None:
    """Test metrics per source of a union of datasets (None for one dataset)."""
    if test.sources is None:
        return None
    return metrics_by_group(test.labels, preds, test.sources, prob_fake)


def _shortcut_verdicts(data: DatasetBundle) -> list[str]:
    """`edgefn data audit`'s verdict lines for the cues (the cheap part of the audit)."""
    from edgefn.data.audit import audit_data, verdicts

    return verdicts(audit_data(data, ngrams=0, duplicates=False))


def finetune(cfg: FinetuneConfig) -> FinetuneResult:
    """Fine-tune `cfg.preset` on `cfg.data` and write checkpoint, metrics and reports to the run folder.

    Args:
        cfg: the run's settings; unset hyperparameters come from the preset.

    Returns:
        The run folder, the test metrics written to metrics.json and the resolved config.
    """
    preset = get_preset(cfg.preset)
    cfg = cfg.resolved(preset)
    assert cfg.run_dir is not None and cfg.max_length is not None
    runs.check_writable_dir(cfg.run_dir)
    if cfg.overwrite:  # the replacement is built beside the run and swapped in
        runs.check_writable_dir(cfg.run_dir.parent)
    data = datasets_registry.load_data(cfg.data, cfg.data_options)
    if cfg.max_test_samples is not None and cfg.max_test_samples < len(data.test):
        data.test = _subsample(data.test, cfg.max_test_samples, cfg.seed)
        data.info["test_subset"] = (
            f"{len(data.test)} seeded random rows of the test split (--max-test-samples)"
        )
    loaded = load_model(preset, init=cfg.init, seed=cfg.seed)
    _check_model(loaded.model, cfg)
    if not _is_main_process():  # the main process checked and holds the lock; follow its choice
        replacing = cfg.overwrite and runs.run_status(cfg.run_dir) is not None
        return _finetune_into(cfg, runs.staging_dir(cfg.run_dir) if replacing else cfg.run_dir, loaded, data)
    created = not cfg.run_dir.exists()
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with RunFolder(cfg.run_dir).lock("finetune"):
            mode = prepare_run_dir(cfg)
            if mode == "finished":
                return FinetuneResult(cfg.run_dir, RunFolder(cfg.run_dir).read_metrics(), cfg, finished=True)
            if mode == "replace":
                with runs.replacing_run(cfg.run_dir) as staging:
                    return _finetune_into(cfg, staging, loaded, data)
            return _finetune_into(cfg, cfg.run_dir, loaded, data)
    except EdgefnError:
        if created and not any(cfg.run_dir.iterdir()):  # refused before anything was written
            cfg.run_dir.rmdir()
        raise
    except OSError:  # a full disk: a folder this call created goes, unless it holds a checkpoint to resume
        if created and not any((cfg.run_dir / TRAINER_DIR).glob("checkpoint-*")):
            shutil.rmtree(cfg.run_dir, ignore_errors=True)
        raise


def _finetune_into(cfg: FinetuneConfig, build: Path, loaded: Any, data: DatasetBundle) -> FinetuneResult:
    """Train into `build` (the run folder, or the replacement being built beside it) and write its outputs."""
    assert cfg.run_dir is not None
    run = RunFolder(build)
    if _is_main_process():
        runs.write_run_manifest(
            run.path, runs.RUN_TRAINING, preset=get_preset(cfg.preset).name, data=cfg.data
        )
        runs.write_json(
            run.finetune_config,
            {
                "preset": get_preset(cfg.preset).name,
                "init": loaded.init,
                "max_length": cfg.max_length,
                "data": cfg.data,
                "weights_source": loaded.source,
                "settings": cfg.identity(),
            },
        )
    trainer, stats = _train(cfg, loaded, data, build)
    preds, prob_fake = _predict(trainer, data.test, cfg)  # a collective call under DDP: every process runs it
    metrics = {}
    if trainer.is_world_process_zero():
        with disk_faults(run.path):
            metrics = _write_outputs(cfg, run, trainer, loaded, data, stats, preds, prob_fake)
    return FinetuneResult(run_dir=cfg.run_dir, metrics=metrics, config=cfg)


def format_summary(result: FinetuneResult) -> str:
    """A short table of the run's test metrics."""
    m = result.metrics
    t = m["test"]
    rows = [
        ("run folder", str(result.run_dir)),
        ("preset / init", f"{m['preset']} / {m['init']} ({m['weights_source']})"),
        ("data", f"{m['data'].get('name', '?')}: {t['n']} test rows"),
        ("test accuracy", f"{t['accuracy']:.4f}"),
        ("test F1 (weighted)", f"{t['f1_weighted']:.4f}"),
        ("balanced acc. / macro F1", f"{t.get('balanced_accuracy', 0):.4f} / {t.get('f1_macro', 0):.4f}"),
        ("F1 fake / real", f"{t['per_class']['fake']['f1']:.4f} / {t['per_class']['real']['f1']:.4f}"),
        ("parameters", f"{m['parameters']:,}"),
        ("checkpoint MB", f"{m['checkpoint_mb']:.1f}"),
        ("train time", f"{m['training']['train_seconds']:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    if m["init"] != "pretrained":
        lines.append(f"NOTE: {m['init']}: these numbers come from randomly initialised weights")
    for source, s in (m.get("test_by_source") or {}).items():
        lines.append(f"test on {source}: {s['n']} rows, balanced accuracy {s['balanced_accuracy']:.4f}")
    lines += [f"shortcut: {v}" for v in m.get("shortcut_verdicts") or []]
    return "\n".join(lines)
