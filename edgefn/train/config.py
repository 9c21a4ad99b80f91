"""`FinetuneConfig`: everything that determines a fine-tuning run, checked on creation, resolved against its preset."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.errors import ConfigError
from edgefn.core.presets import INIT_CHOICES, ModelPreset
from edgefn.data.catalog import DataOptions

MIN_MAX_LENGTH = 8  # [CLS] ... [SEP] and a few word pieces


@dataclass(frozen=True)
class DistillSettings:
    """What makes a fine-tune a distillation: the teacher run, the layers its student keeps, the loss mix.

    Resolved by `train.distill` (which checks the user's values); part of the student's identity, so a
    changed teacher checkpoint or setting refuses `--resume`."""

    teacher: str  # the teacher's run folder
    teacher_sha256: str  # the fingerprint of its checkpoint's files
    teacher_layers: int
    layers: tuple[int, ...]  # the teacher layers the student starts from (ALBERT: the passes matched)
    kd: bool = True  # False: plain layer dropping + fine-tuning on the labels
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the soft (teacher) loss; 1 - alpha weighs the hard labels
    hidden_weight: float = 0.0  # weight of the hidden-state MSE to the teacher's matched layers (0: off)
    unlabelled: str | None = None  # extra texts, labelled by the teacher
    unlabelled_sha256: str | None = None
    column: str = "text"  # the text column of a CSV / TSV / JSONL unlabelled file


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
    distill: DistillSettings | None = None  # a student of a teacher run (`edgefn distill`)

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
        if self.distill is None:  # a plain fine-tune's identity is as before distill existed
            del d["distill"]
        return dict(d)


_NOT_IDENTITY = ("resume", "overwrite", "run_dir")
