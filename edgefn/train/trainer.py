"""The Hugging Face Trainer behind `finetune`: tokenised splits, training arguments, the epoch table, predictions."""

from __future__ import annotations

import math
import random
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core.errors import disk_faults
from edgefn.core.metrics import classification_metrics
from edgefn.core.progress import Progress, Ticker, library_bars_off, on_terminal, silent
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

    library_bars_off()
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
        disable_tqdm=not on_terminal(),  # a redirected bar is carriage returns and escape codes
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


def _epoch_table(say: Progress, bars: bool) -> Any:
    """The Trainer's progress bars on a terminal (elsewhere a `training steps: n/total` line every few
    seconds), with one table row per epoch in place of its raw log dicts."""
    from transformers.trainer_callback import ProgressCallback
    from transformers.trainer_utils import has_length

    class EpochTable(ProgressCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.train_loss: float | None = None
            self.rows = 0
            self.start = time.perf_counter()
            self.ticker: Ticker | None = None
            self.scoring: tuple[Ticker, list[int]] | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if bars:
                super().on_train_begin(args, state, control, **kwargs)
            elif state.is_world_process_zero:
                self.ticker = Ticker(say, "training steps", state.max_steps)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if bars:
                super().on_step_end(args, state, control, **kwargs)
            elif self.ticker is not None:
                self.ticker.update(state.global_step)

        def on_prediction_step(
            self, args: Any, state: Any, control: Any, eval_dataloader: Any = None, **kwargs: Any
        ) -> None:
            if bars:
                super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)
                return
            if not state.is_world_process_zero or not has_length(eval_dataloader):
                return
            if self.scoring is None:
                self.scoring = (Ticker(say, "scoring batches", len(eval_dataloader)), [0])
            ticker, done = self.scoring
            done[0] += 1
            ticker.update(done[0])

        def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.scoring = None
            if bars:
                super().on_evaluate(args, state, control, **kwargs)

        def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
            self.scoring = None
            if bars:
                super().on_predict(args, state, control, metrics=metrics, **kwargs)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if bars:
                super().on_train_end(args, state, control, **kwargs)

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
                self.training_bar.write(line) if self.training_bar is not None else print(line, flush=True)
            self.rows += 1

    return EpochTable()


def training_steps(cfg: FinetuneConfig, train_rows: int, world_size: int = 1) -> int:
    """The optimizer steps the Trainer will take: --max-steps, else epochs x batches per epoch."""
    if cfg.max_steps:
        return cfg.max_steps
    batches = math.ceil(train_rows / ((cfg.batch_size or 16) * max(world_size, 1)))
    return math.ceil((cfg.epochs or 1) * batches)


def warmup_warning(cfg: FinetuneConfig, train_rows: int, world_size: int = 1) -> str | None:
    """A warning when warm-up lasts the whole training: the learning rate never reaches its set value."""
    steps = training_steps(cfg, train_rows, world_size)
    warmup = cfg.warmup_steps or 0
    if warmup < steps:
        return None
    if cfg.max_steps:
        how = f"--max-steps {steps}"
    else:
        epochs = cfg.epochs or 1
        how = f"{train_rows} rows / batch {cfg.batch_size or 16} x {epochs:g} epoch{'s' * (epochs != 1)}"
    return f"warm-up {warmup} steps >= training {steps} steps ({how}): lower --warmup-steps or train longer"


def chance_warning(accuracy: float | None, labels: list[int]) -> str | None:
    """A warning when the best validation accuracy is within two standard errors of always answering the
    majority class: the model may have learned nothing."""
    if accuracy is None or not labels:
        return None
    n = len(labels)
    majority = max(sum(labels), n - sum(labels)) / n
    margin = 2 * math.sqrt(majority * (1 - majority) / n)
    if accuracy > majority + max(margin, 1 / n):
        return None
    return (
        f"validation accuracy {accuracy:.3f} is within noise of the majority share "
        f"({majority:.3f} of {n} rows): the model may be at chance"
    )


def train(
    cfg: FinetuneConfig,
    loaded: Any,
    data: DatasetBundle,
    build: Path,
    say: Progress = silent,
    *,
    teacher: Any = None,
    extra: Split | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train with the Hugging Face Trainer; returns it and the training stats (with `warnings`, each also said).

    A student (`cfg.distill`) learns from `teacher`'s logits when one is given, and `extra` rows (texts the
    teacher labelled) join the training rows after their --max-train-samples subset is drawn."""
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from edgefn.core.progress import warn

    tok = loaded.tokenizer
    rows = subsample(data.train, cfg.max_train_samples, cfg.seed)
    if extra is not None and len(extra):
        sources = None if rows.sources is None else rows.sources + (extra.sources or [])
        rows = Split(rows.texts + extra.texts, rows.labels + extra.labels, sources)
    train = tokenize_split(rows, tok, cfg)
    val = tokenize_split(subsample(data.validation, cfg.max_eval_samples, cfg.seed), tok, cfg)
    trainer_class = Trainer
    if teacher is not None:
        from edgefn.train.student import distillation_trainer

        assert cfg.distill is not None
        trainer_class = distillation_trainer(teacher, cfg.distill)
    trainer = trainer_class(
        model=loaded.model,
        args=training_arguments(cfg, build / TRAINER_DIR),
        train_dataset=train,
        eval_dataset=val,
        data_collator=DataCollatorWithPadding(tok),
        processing_class=tok,
        compute_metrics=_compute_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=cfg.patience or 2)],
    )
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)  # without bars the Trainer prints its raw log dicts
    table = _epoch_table(say, bars=not trainer.args.disable_tqdm)
    trainer.add_callback(table)
    said: list[str] = []
    warmup = warmup_warning(cfg, len(train), trainer.args.world_size)
    if warmup and trainer.is_world_process_zero():
        said.append(warn(say, warmup))
    drop_incomplete_checkpoints(build / TRAINER_DIR)
    resume = cfg.resume and any((build / TRAINER_DIR).glob("checkpoint-*"))
    start = time.perf_counter()
    try:
        with disk_faults(build), warnings.catch_warnings():
            # checkpoint rotation on a coarse-mtime filesystem: the Trainer then orders by step, which is right
            warnings.filterwarnings("ignore", message="mtime may not be reliable", category=UserWarning)
            out = trainer.train(resume_from_checkpoint=True if resume else None)
    except BaseException:  # a checkpoint cut short (full disk, Ctrl-C while saving) must not be resumed from
        drop_incomplete_checkpoints(build / TRAINER_DIR)
        for bar in (table.prediction_bar, table.training_bar):  # the error then starts a line of its own
            if bar is not None:
                bar.close()
        raise
    seconds = time.perf_counter() - start
    accuracies = [e["eval_accuracy"] for e in trainer.state.log_history if "eval_accuracy" in e]
    chance = chance_warning(max(accuracies, default=None), list(val["label"]))
    if chance and trainer.is_world_process_zero():
        said.append(warn(say, chance))
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
        "warnings": said,
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
