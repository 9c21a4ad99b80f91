"""The Hugging Face Trainer behind `finetune`: tokenised splits, training arguments, the epoch table, predictions."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core.errors import disk_faults
from edgefn.core.metrics import classification_metrics
from edgefn.data.catalog import DatasetBundle, Split
from edgefn.runtime.inference import softmax
from edgefn.train.config import FinetuneConfig

TRAINER_DIR = runs.TRAINER_DIR
TRAINER_STATE = "trainer_state.json"  # the Trainer writes it last: a checkpoint without it is incomplete


def subsample(split: Split, n: int | None, seed: int) -> Split:
    """A seeded random subset of `n` rows (in their order), or the split when it has no more."""
    if n is None or n >= len(split):
        return split
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


def train(cfg: FinetuneConfig, loaded: Any, data: DatasetBundle, build: Path) -> tuple[Any, dict[str, Any]]:
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    tok = loaded.tokenizer
    train = tokenize_split(subsample(data.train, cfg.max_train_samples, cfg.seed), tok, cfg)
    val = tokenize_split(subsample(data.validation, cfg.max_eval_samples, cfg.seed), tok, cfg)
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


def predict(trainer: Any, split: Split, cfg: FinetuneConfig) -> tuple[list[int], list[float]]:
    ds = tokenize_split(split, trainer.processing_class, cfg)
    # group_by_length also reorders evaluation batches; predictions must stay in the split's order.
    grouped, trainer.args.group_by_length = trainer.args.group_by_length, False
    try:
        logits = trainer.predict(ds).predictions
    finally:
        trainer.args.group_by_length = grouped
    return logits.argmax(-1).tolist(), softmax(logits)[:, 1].tolist()
