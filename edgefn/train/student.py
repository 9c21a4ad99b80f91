"""A student from a teacher run: the teacher's layers copied, the distillation loss, and the Trainer that applies it."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core.cleaning import clean_texts, serving_rules
from edgefn.core.presets import get_preset, layer_stack
from edgefn.core.progress import Progress, silent
from edgefn.core.weights import LoadedModel, load_pretrained
from edgefn.data.catalog import DatasetBundle
from edgefn.runs import RunFolder, Split
from edgefn.train.config import DistillSettings

UNLABELLED_SOURCE = "unlabelled (teacher-labelled)"  # the rows' source in a union's per-source metrics


def spread_layers(teacher_layers: int, n: int) -> tuple[int, ...]:
    """`n` of the teacher's layers, evenly spaced from the first: every k-th where `n` divides the count
    (6 layers -> 3: 0, 2, 4; -> 2: 0, 3; -> 4: 0, 1, 3, 4)."""
    return tuple(i * teacher_layers // n for i in range(n))


def _layer_list(model: Any, path: str) -> tuple[Any, str]:
    """The module holding an architecture's layer list, and the list's attribute name."""
    *parents, name = path.split(".")
    owner = functools.reduce(getattr, parents, model.base_model)
    return owner, name


def load_student(settings: DistillSettings) -> tuple[LoadedModel, Any]:
    """The student: the teacher's embeddings, the layers `settings.layers` names (in that order), pooler and
    head, with the teacher's tokenizer; and the teacher itself (eval mode, frozen) for the distillation loss,
    or None when `settings.kd` is off (plain layer dropping needs no teacher while training)."""
    import torch

    teacher_run = RunFolder(Path(settings.teacher))
    teacher = load_pretrained(get_preset(str(teacher_run.checkpoint)))
    student = copy.deepcopy(teacher.model)
    stack = layer_stack(student.config.model_type)
    if stack.path is not None:
        owner, name = _layer_list(student, stack.path)
        kept = [getattr(owner, name)[i] for i in settings.layers]
        setattr(owner, name, torch.nn.ModuleList(kept))
    # ALBERT (no path): its one shared layer is applied num_hidden_layers times; the copy runs it fewer times.
    student.config.num_hidden_layers = len(settings.layers)
    what = "passes of the shared layer" if stack.path is None else f"layers {_listed(settings.layers)}"
    loaded = LoadedModel(
        student,
        teacher.tokenizer,
        source="teacher",
        location=str(teacher_run.path),
        init=teacher_run.read_finetune_config().init or "pretrained",
        notes=[
            f"student of {teacher_run.path}: {len(settings.layers)} {what} of its {settings.teacher_layers}"
        ],
    )
    if not settings.kd:
        return loaded, None
    model = teacher.model.eval()
    model.requires_grad_(False)
    return loaded, model


def _listed(layers: tuple[int, ...]) -> str:
    return ", ".join(map(str, layers))


def kd_loss(student_logits: Any, teacher_logits: Any, labels: Any, temperature: float, alpha: float) -> Any:
    """`alpha` x T^2 x KL(teacher || student), both softened by the temperature T, plus (1 - alpha) x the
    cross-entropy with the labels. T^2 keeps the soft term's gradients at the scale of the hard term's as T
    grows (Hinton et al., 2015), so `alpha` means the same at any temperature."""
    import torch.nn.functional as F

    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=-1),
        F.log_softmax(teacher_logits / t, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    hard = F.cross_entropy(student_logits, labels)
    return alpha * t * t * soft + (1 - alpha) * hard


def hidden_loss(student_states: Any, teacher_states: Any, layers: tuple[int, ...], mask: Any) -> Any:
    """Mean squared error between each student layer's output and the output of the teacher layer it was
    copied from (hidden_states[i + 1]), over the real tokens only (padding masked out)."""
    weights = mask.unsqueeze(-1).to(student_states[0].dtype)
    tokens = weights.sum() * student_states[0].shape[-1]
    errors = [
        (((student_states[j + 1] - teacher_states[i + 1]) ** 2) * weights).sum() / tokens
        for j, i in enumerate(layers)
    ]
    return sum(errors) / len(errors)


def distillation_trainer(teacher: Any, settings: DistillSettings) -> Any:
    """A Trainer class whose training loss is `kd_loss` on the teacher's logits (plus `hidden_loss` when
    weighted); validation keeps the plain loss on the labels, so that epochs and runs compare."""
    import torch
    from transformers import Trainer

    hidden = settings.hidden_weight > 0

    class DistillationTrainer(Trainer):  # type: ignore[misc]
        def compute_loss(
            self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            if not model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            outputs = model(**inputs, output_hidden_states=hidden)
            features = {k: v for k, v in inputs.items() if k != "labels"}
            with torch.no_grad():
                taught = teacher.to(outputs.logits.device)(**features, output_hidden_states=hidden)
            loss = kd_loss(
                outputs.logits, taught.logits, inputs["labels"], settings.temperature, settings.alpha
            )
            if hidden:
                loss = loss + settings.hidden_weight * hidden_loss(
                    outputs.hidden_states, taught.hidden_states, settings.layers, inputs["attention_mask"]
                )
            return (loss, outputs) if return_outputs else loss

    return DistillationTrainer


def teacher_labelled(
    settings: DistillSettings, data: DatasetBundle, max_length: int, say: Progress = silent
) -> tuple[Split, dict[str, Any]]:
    """The unlabelled texts, cleaned as the training texts were, without empty ones and those of the
    validation and test splits, each labelled with the teacher's answer; and a record of what was kept."""
    from edgefn.engines.pytorch import load_reference
    from edgefn.runtime.predict_io import read_texts

    assert settings.unlabelled is not None
    texts = read_texts((), settings.unlabelled, settings.column)
    cleaned = clean_texts(texts, serving_rules(data.info)[0])
    held_out = set(data.validation.texts) | set(data.test.texts)
    kept = list(dict.fromkeys(t for t in cleaned if t.strip() and t not in held_out))
    say(f"labelling {len(kept)} unlabelled texts of {settings.unlabelled} with the teacher")
    clf = load_reference(RunFolder(Path(settings.teacher)).checkpoint, max_length=max_length)
    labels = [int(k == clf.fake_id) for k in clf.predict_logits(kept).argmax(axis=-1)] if kept else []
    record = {
        "file": settings.unlabelled,
        "sha256": settings.unlabelled_sha256,
        "rows_read": len(texts),
        "rows_used": len(kept),
        "dropped": len(texts) - len(kept),  # empty, repeated, or a validation or test text
        "fake_share": sum(labels) / len(labels) if labels else None,
    }
    sources = [UNLABELLED_SOURCE] * len(kept) if data.train.sources is not None else None
    return Split(kept, labels, sources), record


def distillation_record(settings: DistillSettings) -> dict[str, Any]:
    """What metrics.json and finetune_config.json record of a student: its teacher, layers and loss, and the
    teacher's own test figures to read the student's beside."""
    teacher = RunFolder(Path(settings.teacher))
    metrics = teacher.read_metrics()
    record: dict[str, Any] = runs.to_jsonable(settings)
    record["student_layers"] = len(settings.layers)
    record["teacher_preset"] = teacher.read_finetune_config().preset
    record["teacher_test_accuracy"] = (metrics.get("test") or {}).get("accuracy")
    record["teacher_parameters"] = metrics.get("parameters")
    record["teacher_train_seconds"] = (metrics.get("training") or {}).get("train_seconds")
    return record
