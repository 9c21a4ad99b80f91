"""`edgefn distill`: a student with fewer layers from a teacher run, trained on its data: distill(cfg) -> FinetuneResult."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.core.presets import LayerStack, layer_stack
from edgefn.core.progress import Progress
from edgefn.data.catalog import DataOptions
from edgefn.runs import RunFolder
from edgefn.train.config import DistillSettings, FinetuneConfig
from edgefn.train.finetune import FinetuneResult, finetune
from edgefn.train.student import spread_layers


@dataclass
class DistillConfig:
    """A student of `teacher`: how many (or which) of its layers, the loss, and training settings that
    override the teacher's (None: the teacher's own, so that the student sees the same rows)."""

    teacher: Path  # a complete run folder of `edgefn finetune` (or of an earlier `distill`)
    layers: int | None = None  # the student's layer count: evenly spaced teacher layers from the first
    layer_map: tuple[int, ...] | None = None  # or exactly these teacher layers, in order
    kd: bool = True  # False: the student is trained on the labels only (plain layer dropping)
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the soft (teacher) loss; 1 - alpha weighs the labels
    hidden_weight: float = 0.0  # weight of the hidden-state MSE to the teacher's matched layers
    unlabelled: Path | None = (
        None  # texts without labels, labelled by the teacher and added to the training rows
    )
    column: str = "text"  # the text column of a CSV / TSV / JSONL unlabelled file
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup_steps: int | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    run_dir: Path | None = None  # None: artifacts/<teacher>-student<N>[-nokd]
    resume: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.teacher = Path(self.teacher)
        if self.layers is None and self.layer_map is None:
            raise ConfigError(
                "layers",
                "is required: the student's number of layers (or layer_map, its layers)",
                ("layer_map",),
            )
        if self.layers is not None and self.layers <= 0:
            raise ConfigError("layers", f"must be positive, got {self.layers}")
        if self.layer_map is not None:
            self.layer_map = tuple(self.layer_map)
            chosen = self.layer_map
            if not chosen or any(i < 0 for i in chosen) or list(chosen) != sorted(set(chosen)):
                listed = ",".join(map(str, chosen))
                raise ConfigError("layer_map", f"must name teacher layers in increasing order, got {listed}")
            if self.layers is not None and self.layers != len(chosen):
                raise ConfigError(
                    "layer_map", f"names {len(chosen)} layers but layers is {self.layers}", ("layers",)
                )
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError("temperature", f"must be positive, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ConfigError("alpha", f"must be between 0 and 1, got {self.alpha}")
        if not (math.isfinite(self.hidden_weight) and self.hidden_weight >= 0):
            raise ConfigError("hidden_weight", f"must be 0 or more, got {self.hidden_weight}")
        if not self.kd and self.hidden_weight > 0:
            raise ConfigError(
                "hidden_weight", "is a distillation loss; leave it 0 to train on the labels only"
            )

    @property
    def count(self) -> int:
        """The student's number of layers."""
        return self.layers if self.layers is not None else len(self.layer_map or ())


def _teacher_run(cfg: DistillConfig) -> tuple[RunFolder, str]:
    """The teacher's run folder, refused unless it is a complete run with intact checkpoint; and its
    checkpoint's fingerprint."""
    run = RunFolder(cfg.teacher)
    if not run.path.is_dir():
        raise ConfigError("teacher", f"{run.path} is not a folder; give the run folder of a fine-tuned model")
    try:
        run.require_complete()
        return run, runs.files_fingerprint(run.verify_checkpoint())
    except ConfigError:
        raise
    except EdgefnError as e:
        raise ConfigError("teacher", str(e)) from None


def _layers(cfg: DistillConfig, stack: LayerStack, teacher_layers: int) -> tuple[int, ...]:
    """The teacher layers the student starts from."""
    if cfg.layer_map is not None:
        if stack.path is None:
            raise ConfigError("layer_map", f"{stack.shared_note}; give the layer count alone")
        if cfg.layer_map[-1] >= teacher_layers:
            raise ConfigError(
                "layer_map",
                f"names layer {cfg.layer_map[-1]}, but the teacher's layers are 0 to {teacher_layers - 1}",
            )
        return cfg.layer_map
    if cfg.count > teacher_layers:
        raise ConfigError("layers", f"{cfg.count} is more than the teacher's {teacher_layers} layers")
    return spread_layers(teacher_layers, cfg.count)


def _default_run_dir(teacher: RunFolder, cfg: DistillConfig, layers: tuple[int, ...]) -> Path:
    name = f"{teacher.name}-student{len(layers)}"
    if cfg.layer_map is not None:
        name += "-layers" + "-".join(map(str, layers))
    return runs.ARTIFACTS_DIR / outputs.safe_name(name + ("" if cfg.kd else "-nokd"))


def _data_options(saved: Any) -> DataOptions:
    """The teacher's DataOptions from its JSON record (lists back to tuples, unknown keys left out)."""
    known = {f.name for f in dataclasses.fields(DataOptions)}
    record = saved if isinstance(saved, dict) else {}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in known
    }
    return DataOptions(**values)


def student_config(cfg: DistillConfig) -> FinetuneConfig:
    """The fine-tune that makes the student: the teacher's data, splits, token limit and settings, the
    student's layers and loss, and `cfg`'s overrides; every input checked before anything is written."""
    teacher, fingerprint = _teacher_run(cfg)
    model_config = runs.read_json_object(teacher.checkpoint / runs.MODEL_CONFIG)
    try:
        stack = layer_stack(str(model_config.get("model_type")))
    except EdgefnError as e:
        raise ConfigError("teacher", str(e)) from None
    teacher_layers = int(model_config.get("num_hidden_layers") or model_config.get("n_layers") or 0)
    layers = _layers(cfg, stack, teacher_layers)
    recorded = teacher.read_finetune_config()
    saved = recorded.settings
    if not saved or "data" not in saved or "preset" not in saved:
        raise ConfigError(
            "teacher",
            f"{teacher.path} records no fine-tune settings in its {runs.FINETUNE_CONFIG} (the student trains on "
            "the teacher's data with them); fine-tune the teacher with `edgefn finetune`",
        )
    unlabelled, digest = None, None
    if cfg.unlabelled is not None:
        unlabelled, digest = _check_unlabelled(cfg.unlabelled, cfg.column)
    settings = DistillSettings(
        teacher=str(teacher.path.resolve()),
        teacher_sha256=fingerprint,
        teacher_layers=teacher_layers,
        layers=layers,
        kd=cfg.kd,
        temperature=cfg.temperature,
        alpha=cfg.alpha,
        hidden_weight=cfg.hidden_weight,
        unlabelled=unlabelled,
        unlabelled_sha256=digest,
        column=cfg.column,
    )
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    inherited = {k: v for k, v in saved.items() if k in fields and k not in _NOT_INHERITED}
    overrides = {
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "warmup_steps": cfg.warmup_steps,
        "max_train_samples": cfg.max_train_samples,
        "max_eval_samples": cfg.max_eval_samples,
    }
    return FinetuneConfig(
        **{**inherited, **{k: v for k, v in overrides.items() if v is not None}},
        data_options=_data_options(saved.get("data_options")),
        max_length=recorded.max_length or saved.get("max_length"),
        run_dir=cfg.run_dir or _default_run_dir(teacher, cfg, layers),
        resume=cfg.resume,
        overwrite=cfg.overwrite,
        distill=settings,
    )


# The student sets these itself: the data options are rebuilt as a record, the token limit is the teacher's
# resolved one, the folder and replacement are the student's, and a teacher that is a student has its own.
_NOT_INHERITED = ("data_options", "max_length", "run_dir", "resume", "overwrite", "distill")


def _check_unlabelled(path: Path, column: str) -> tuple[str, str]:
    """The unlabelled file read through once (a malformed row or an empty file refused in one line, before
    anything is written) and its SHA-256."""
    from edgefn.runtime.predict_io import open_input

    if not Path(path).is_file():
        raise ConfigError("unlabelled", f"{path} is not a file")
    try:
        open_input((), str(path), column, id_column="")
    except EdgefnError as e:
        raise ConfigError("unlabelled", str(e)) from None
    return str(path), runs.sha256_file(Path(path))


def distill(cfg: DistillConfig, progress: Progress | None = None) -> FinetuneResult:
    """Train a student of `cfg.teacher` and write it as an ordinary run folder (export, bench, eval, package
    and predict take it as they take any run); its metrics.json and finetune_config.json record the teacher.

    Args:
        cfg: the teacher, the student's layers, the loss, overrides of the teacher's training settings.
        progress: called with a one-line description of each step.

    Returns:
        The student's run folder, its test metrics (with `distillation`: the teacher and its test accuracy)
        and the fine-tune config it was trained with.
    """
    return finetune(student_config(cfg), progress)
