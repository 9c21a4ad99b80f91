"""Fine-tune a preset on a fake-news dataset with the Hugging Face Trainer: finetune(cfg) -> FinetuneResult."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.errors import ConfigError, EdgefnError, disk_faults
from edgefn.core.metrics import (
    classification_metrics,
    metrics_by_group,
    plot_confusion_matrix,
    write_errors_csv,
)
from edgefn.core.presets import count_parameters, get_preset
from edgefn.core.progress import Progress, silent, wrap_line
from edgefn.core.weights import load_model
from edgefn.data import catalog as datasets_registry
from edgefn.data.catalog import DatasetBundle, Split
from edgefn.runs import RunFolder
from edgefn.runtime import engines
from edgefn.train.config import FinetuneConfig
from edgefn.train.trainer import TRAINER_DIR, predict, subsample, train

CALIBRATION_ROWS = 512
# A caller's extra check of the model before training: (its config, max_length); raises to refuse it.
ModelCheck = Callable[[Any, int], object]


@dataclass
class FinetuneResult:
    """Where the run went and its headline numbers."""

    run_dir: Path
    metrics: dict[str, Any]
    config: FinetuneConfig
    finished: bool = False  # --resume found the run already complete: nothing was trained


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def prepare_run_dir(cfg: FinetuneConfig, resume_hint: bool = True) -> str:
    """What to do with the run folder: "new", "resume", "replace" (--overwrite of a run) or "finished"
    (--resume of a run that ended). Refuses a folder that is no run, and a run made with other settings
    unless --overwrite (suggesting --resume for an unfinished one if `resume_hint`). Only a folder whose
    manifest marks it as edgefn's run is ever replaced."""
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
    saved = run.read_finetune_config(required=False).settings or {}
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
    resume = "--resume to continue it, " if resume_hint and status != "complete" else ""
    raise EdgefnError(
        f"{run.path} already holds {kind} with {what}; use {resume}--overwrite to replace it "
        "(the old run is kept until the new one finishes), or --run-dir for a new folder"
    )


def _check_model(model: Any, cfg: FinetuneConfig, check: ModelCheck | None) -> None:
    assert cfg.max_length is not None
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and cfg.max_length > positions:
        raise ConfigError("max_length", f"{cfg.max_length} is over the model's {positions} positions")
    if check is not None:
        check(model.config, cfg.max_length)


def _write_outputs(
    cfg: FinetuneConfig,
    run: RunFolder,
    trainer: Any,
    loaded: Any,
    data: DatasetBundle,
    stats: dict[str, Any],
    preds: list[int],
    prob_fake: list[float],
    distillation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    assert cfg.run_dir is not None
    with runs.atomic_dir(run.checkpoint, overwrite=True) as tmp, disk_faults(run.checkpoint):
        trainer.model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
    for name in ("validation", "test"):
        run.write_split(name, data.split(name))
    run.write_split("calibration", subsample(data.train, CALIBRATION_ROWS, cfg.seed))
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
        "warnings": stats.get("warnings", []),  # the run may not have learned: show and package repeat them
        "data": {**data.info, "fingerprint": data.fingerprint()},
        "versions": engines.library_versions(),
    }
    if distillation is not None:  # a student: its teacher, layers and loss, and the teacher's test figures
        metrics["distillation"] = distillation
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


def _refuse_run_dir_in_run(cfg: FinetuneConfig) -> None:
    """A run is never written inside another run (its files are that run's, and hashed), and a student never
    into its teacher's folder (--overwrite would replace the teacher) or a folder that holds the teacher."""
    assert cfg.run_dir is not None
    outer = runs.enclosing_run(Path(cfg.run_dir).parent)
    if outer is not None:
        raise ConfigError(
            "run_dir", f"{cfg.run_dir} is inside the edgefn run {outer}; give the run a folder of its own"
        )
    if cfg.distill is not None and outputs.is_inside(cfg.distill.teacher, cfg.run_dir):
        raise ConfigError(
            "run_dir",
            f"{cfg.run_dir} is or holds the teacher's run folder {cfg.distill.teacher}; give the student a "
            "folder of its own",
        )


def finetune(
    cfg: FinetuneConfig,
    progress: Progress | None = None,
    *,
    check_model: ModelCheck | None = None,
    resume_hint: bool = True,
) -> FinetuneResult:
    """Fine-tune `cfg.preset` on `cfg.data` and write checkpoint, metrics and reports to the run folder.

    Args:
        cfg: the run's settings; unset hyperparameters come from the preset.
        progress: called with a one-line description of each step (the epoch table prints on its own).
        check_model: called with the model's config and max_length before training; raises to refuse
            (`edgefn run` checks that its bench will fit).
        resume_hint: whether refusing an unfinished run suggests --resume (False for `edgefn run`, which has none).

    Returns:
        The run folder, the test metrics written to metrics.json and the resolved config.
    """
    preset = get_preset(cfg.preset)
    cfg = cfg.resolved(preset)
    assert cfg.run_dir is not None and cfg.max_length is not None
    _refuse_run_dir_in_run(cfg)
    runs.check_writable_dir(cfg.run_dir)
    if cfg.overwrite:  # the replacement is built beside the run and swapped in
        runs.check_writable_dir(cfg.run_dir.parent)
    data = datasets_registry.load_data(cfg.data, cfg.data_options)
    if cfg.max_test_samples is not None and cfg.max_test_samples < len(data.test):
        data.test = subsample(data.test, cfg.max_test_samples, cfg.seed)
        data.info["test_subset"] = (
            f"{len(data.test)} seeded random rows of the test split (--max-test-samples)"
        )
    if cfg.distill is None:
        loaded, teacher = load_model(preset, init=cfg.init, seed=cfg.seed), None
    else:  # `edgefn distill`: the teacher's layers, and the teacher for the loss
        from edgefn.train.student import load_student

        loaded, teacher = load_student(cfg.distill)
    _check_model(loaded.model, cfg, check_model)
    say = progress or silent
    if not _is_main_process():  # the main process checked and holds the lock; follow its choice
        replacing = cfg.overwrite and runs.run_status(cfg.run_dir) is not None
        build = runs.staging_dir(cfg.run_dir) if replacing else cfg.run_dir
        return _finetune_into(cfg, build, loaded, data, say, teacher)
    created = not cfg.run_dir.exists()
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with RunFolder(cfg.run_dir).lock("finetune"):
            mode = prepare_run_dir(cfg, resume_hint)
            if mode == "finished":
                return FinetuneResult(cfg.run_dir, RunFolder(cfg.run_dir).read_metrics(), cfg, finished=True)
            if mode == "replace":
                with runs.replacing_run(cfg.run_dir) as staging:
                    return _finetune_into(cfg, staging, loaded, data, say, teacher)
            return _finetune_into(cfg, cfg.run_dir, loaded, data, say, teacher)
    except EdgefnError:
        if created and not any(cfg.run_dir.iterdir()):  # refused before anything was written
            cfg.run_dir.rmdir()
        raise
    except OSError:  # a full disk: a folder this call created goes, unless it holds a checkpoint to resume
        if created and not any((cfg.run_dir / TRAINER_DIR).glob("checkpoint-*")):
            shutil.rmtree(cfg.run_dir, ignore_errors=True)
        raise


def _finetune_into(
    cfg: FinetuneConfig, build: Path, loaded: Any, data: DatasetBundle, say: Progress, teacher: Any = None
) -> FinetuneResult:
    """Train into `build` (the run folder, or the replacement being built beside it) and write its outputs;
    a student (`cfg.distill`) learns from `teacher` (None: from the labels only)."""
    assert cfg.run_dir is not None and cfg.max_length is not None
    what = cfg.preset if cfg.distill is None else f"a {len(cfg.distill.layers)}-layer student of {cfg.preset}"
    say(  # after every check: a refused input stays one line
        f"training {what} ({loaded.init}) on {len(data.train)} rows of {cfg.data} into {cfg.run_dir}, "
        f"then scoring {len(data.test)} test rows"
    )
    distillation, extra = None, None
    if cfg.distill is not None:
        from edgefn.train.student import distillation_record, teacher_labelled

        distillation = distillation_record(cfg.distill)
        if cfg.distill.unlabelled is not None:
            extra, distillation["unlabelled"] = teacher_labelled(cfg.distill, data, cfg.max_length, say)
    run = RunFolder(build)
    if _is_main_process():
        runs.write_run_manifest(
            run.path, runs.RUN_TRAINING, preset=get_preset(cfg.preset).name, data=cfg.data
        )
        config = runs.FinetuneManifest(
            preset=get_preset(cfg.preset).name,
            init=loaded.init,
            max_length=cfg.max_length,
            data=cfg.data,
            weights_source=loaded.source,
            settings=cfg.identity(),
            distillation=distillation,
        )
        runs.write_json(run.finetune_config, config)
    trainer, stats = train(cfg, loaded, data, build, say, teacher=teacher, extra=extra)
    say(f"scoring {len(data.test)} test rows with the best checkpoint")
    preds, prob_fake = predict(trainer, data.test, cfg)  # a collective call under DDP: every process runs it
    metrics = {}
    if trainer.is_world_process_zero():
        with disk_faults(run.path):
            metrics = _write_outputs(cfg, run, trainer, loaded, data, stats, preds, prob_fake, distillation)
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
    rows += _teacher_rows(m.get("distillation"), t["accuracy"])
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    if m["init"] != "pretrained":
        lines.append(f"NOTE: {m['init']}: these numbers come from randomly initialised weights")
    for source, s in (m.get("test_by_source") or {}).items():
        lines.append(f"test on {source}: {s['n']} rows, balanced accuracy {s['balanced_accuracy']:.4f}")
    lines += [f"shortcut: {v}" for v in m.get("shortcut_verdicts") or []]
    lines += [f"warning: {w}" for w in m.get("warnings") or []]
    return "\n".join(wrap_line(line) for line in lines)


def _teacher_rows(d: dict[str, Any] | None, accuracy: float) -> list[tuple[str, str]]:
    """A student's teacher and the teacher's test accuracy beside the student's (none for a plain fine-tune)."""
    if not d:
        return []
    loss = f"KD T={d['temperature']:g} alpha={d['alpha']:g}" if d["kd"] else "no KD (labels only)"
    if d["kd"] and d.get("hidden_weight"):
        loss += f" + hidden {d['hidden_weight']:g}"
    rows = [
        ("teacher", str(d["teacher"])),
        (
            "student layers",
            f"{d['student_layers']} of {d['teacher_layers']} ({', '.join(map(str, d['layers']))}); {loss}",
        ),
    ]
    teacher = d.get("teacher_test_accuracy")
    if teacher is not None:
        rows.append(
            ("teacher test accuracy", f"{teacher:.4f} (student {100 * (accuracy - teacher):+.2f} pts)")
        )
    return rows
