"""Score a run's checkpoint or an exported variant on any dataset: evaluate(cfg) -> EvalResult (RUN/eval/<data>/)."""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.core.metrics import (
    calibration,
    classification_metrics,
    metrics_by_group,
    plot_confusion_matrix,
    plot_reliability,
    roc_auc,
    write_errors_csv,
)
from edgefn.core.progress import Progress, Ticker, silent, wrap_line
from edgefn.data.catalog import DataOptions, Split, load_data
from edgefn.runs import RunFolder
from edgefn.runtime import engines
from edgefn.runtime.classifier import OOD_SCORES, Classifier, OodThreshold, ood_scores, write_ood
from edgefn.runtime.inference import softmax

EVAL_SPLITS = ("test", "all")
PYTORCH = "pytorch"  # the model name of a run's checkpoint (variants are named by their folder)
OOD_CALIBRATION_ROWS = 1000  # validation rows the OOD threshold is calibrated on, at most


@dataclass
class EvalConfig:
    """What to score on which data; the output folder defaults to RUN/eval/<data>/ (-<variant> for variants)."""

    model: Path  # a run folder (its PyTorch checkpoint) or an exported variant folder (torch-free)
    data: str
    data_options: DataOptions = field(default_factory=DataOptions)
    split: str = "test"  # "test" or "all" (train + validation + test)
    samples: int | None = None  # a seeded random subset of this many rows (and of the in-domain test split)
    in_domain: bool = True  # also score the run's own test split and calibrate the OOD threshold
    ood_score: str = "energy"
    batch_size: int = 32
    threads: int | None = None
    max_length: int | None = None
    output: Path | None = None
    seed: int = 42
    clean: bool = True  # the model's training cleaning applied to the texts (export.json's, or the run's)

    def __post_init__(self) -> None:
        self.model = Path(self.model)
        if self.split not in EVAL_SPLITS:
            raise ConfigError("split", f"must be one of {', '.join(EVAL_SPLITS)}, got {self.split!r}")
        if self.samples is not None and self.samples <= 0:
            raise ConfigError("samples", f"must be positive, got {self.samples}")
        if self.ood_score not in OOD_SCORES:
            raise ConfigError("ood_score", f"unknown score {self.ood_score!r}; use {' or '.join(OOD_SCORES)}")


@dataclass
class EvalResult:
    """The scores on the new data beside the run's in-domain ones, and where they were written."""

    output_dir: Path
    model: str
    run_dir: Path | None
    data: str
    manifest: runs.EvalManifest  # the whole metrics.json
    misclassified: int = 0  # rows in errors.csv


def _load_model(cfg: EvalConfig) -> tuple[Classifier, str, Path | None, str]:
    """The classifier, its name (variant or "pytorch"), its run folder (None for a lone variant) and where its
    cleaning rules come from."""
    path = cfg.model
    if engines.variant_runtime(path) or os.path.lexists(path / runs.EXPORT_MANIFEST):  # a variant
        clf = Classifier.from_folder(
            path, threads=cfg.threads, batch_size=cfg.batch_size, max_length=cfg.max_length, clean=cfg.clean
        )
        run_dir = path.parent.parent
        in_run = path.parent.name == runs.ONNX_DIR and RunFolder(run_dir).finetune_config.is_file()
        recorded = clf.manifest.cleaning is not None
        source = (
            str(path / runs.EXPORT_MANIFEST) if recorded else "none recorded (an export.json of older edgefn)"
        )
        return clf, path.name, run_dir if in_run else None, source
    run = RunFolder(path)
    if run.checkpoint.is_dir():
        from edgefn.engines.pytorch import load_reference

        hashes = run.verify_checkpoint()
        clf = load_reference(
            run.checkpoint, threads=cfg.threads, batch_size=cfg.batch_size, max_length=cfg.max_length
        )
        clf.fingerprint = runs.files_fingerprint(hashes)
        if cfg.clean:
            clf.cleaning = run.serving_cleaning()[0]
        return clf, PYTORCH, run.path, f"{run.metrics} (the fine-tune's data record)"
    if not path.exists():
        raise ConfigError("model", f"{path} does not exist")
    raise ConfigError(
        "model",
        f"{path} is neither a run folder (with {runs.CHECKPOINT}/) nor an exported variant "
        f"(with {runs.ONNX_FILE}); e.g. RUN or RUN/{runs.ONNX_DIR}/int8-dynamic",
    )


def _sample(split: Split, n: int | None, seed: int) -> Split:
    if n is None or n >= len(split):
        return split
    return split.subset(sorted(random.Random(seed).sample(range(len(split)), n)))


def _rows(cfg: EvalConfig) -> tuple[str, Split, dict[str, Any]]:
    bundle = load_data(cfg.data, cfg.data_options)
    if cfg.split == "test":
        split = bundle.test
    else:
        parts = [bundle.train, bundle.validation, bundle.test]
        sources = [s for p in parts for s in (p.sources or [bundle.name] * len(p))]
        split = Split([t for p in parts for t in p.texts], [y for p in parts for y in p.labels], sources)
    return bundle.name, _sample(split, cfg.samples, cfg.seed), bundle.info


SCORE_CHUNK = 1024  # texts per predict call, so that a long scoring can say how far it got


def _logits(clf: Classifier, texts: list[str], say: Progress) -> np.ndarray:
    """The model's logits for `texts`, in chunks, with a `scored rows: n/total` line every few seconds."""
    if len(texts) <= SCORE_CHUNK:
        return clf.predict_logits(texts)
    ticker = Ticker(say, "scored rows", len(texts))
    parts = []
    for start in range(0, len(texts), SCORE_CHUNK):
        parts.append(clf.predict_logits(texts[start : start + SCORE_CHUNK]))
        ticker.update(start + len(parts[-1]))
    return np.concatenate(parts)


def _score(
    clf: Classifier, split: Split, say: Progress = silent
) -> tuple[dict[str, Any], np.ndarray, list[int], list[float]]:
    """Metrics (with the reliability bins and per-source metrics), logits, predictions (1 = fake), P(fake)."""
    logits = _logits(clf, split.texts, say)
    prob = softmax(logits)[:, clf.fake_id].tolist() if len(split) else []
    preds = [int(k == clf.fake_id) for k in logits.argmax(axis=-1)]
    m = classification_metrics(split.labels, preds, prob)
    m["calibration_bins"] = calibration(split.labels, prob)["bins"]
    if split.sources is not None and len(set(split.sources)) > 1:
        m["by_source"] = metrics_by_group(split.labels, preds, split.sources, prob)
    return m, logits, preds, prob


def folder_name(data: str, split: str) -> str:
    """A file-system-safe name for an eval folder."""
    name = outputs.safe_name(data)
    return name if split == "test" else f"{name}-{split}"


def _in_domain(
    cfg: EvalConfig, clf: Classifier, model: str, run: RunFolder, new_logits: np.ndarray, say: Progress
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's own test split scored by the same model, and the OOD threshold (calibrated on the run's
    validation split, recorded in RUN/ood.json) with its AUROC at telling that test split from the new data."""
    test = _sample(run.read_split("test"), cfg.samples, cfg.seed)
    metrics, test_logits, _, _ = _score(clf, test, say)
    validation = _sample(run.read_split("validation"), OOD_CALIBRATION_ROWS, cfg.seed)
    threshold = OodThreshold.calibrate(
        _logits(clf, validation.texts, say),
        f"{run.path.name} validation",
        cfg.ood_score,
        model_sha256=clf.fingerprint,
    )
    write_ood(run.path, model, threshold)
    clf.ood = threshold
    scores_in, scores_new = ood_scores(test_logits, cfg.ood_score), ood_scores(new_logits, cfg.ood_score)
    y = [0] * len(scores_in) + [1] * len(scores_new)
    other = "msp" if cfg.ood_score == "energy" else "energy"
    ood = {
        **threshold.to_dict(),
        "auroc": roc_auc(y, np.concatenate([scores_in, scores_new]).tolist()),
        f"auroc_{other}": roc_auc(
            y, np.concatenate([ood_scores(test_logits, other), ood_scores(new_logits, other)]).tolist()
        ),
        "flagged_in_domain_test": float((scores_in > threshold.threshold).mean()) if len(scores_in) else 0.0,
        "flagged_new_data": float((scores_new > threshold.threshold).mean()) if len(scores_new) else 0.0,
    }
    return metrics, ood


def evaluate(cfg: EvalConfig, progress: Progress | None = None) -> EvalResult:
    """Score `cfg.model` on `cfg.data` and write metrics.json, errors.csv and the two plots.

    Args:
        cfg: the model (run folder or variant folder), the data and how to read it, the split, a row cap.
        progress: called with a one-line description of each step (the CLI prints them).

    Returns:
        The eval folder and metrics.json's content: `metrics` on the new data, `in_domain` (the run's test
        split, same model, same cap), `ood` (threshold and AUROC), the model and data records.
    """
    say = progress or silent  # called after the checks: a refused input stays one line
    clf, model, run_dir, source = _load_model(cfg)
    cleaning = {
        "applied": bool(clf.cleaning),
        "rules": list(clf.cleaning),
        "from": source if cfg.clean else "off",
    }
    if cfg.output is None and run_dir is None:
        raise EdgefnError(f"{cfg.model} is not inside a run folder; pass --output DIR for the results")
    if run_dir is None:
        return _evaluate(cfg, clf, model, None, say, cleaning)
    run = RunFolder(run_dir)
    run.require_complete()
    with run.lock("eval"):  # eval writes RUN/ood.json (and RUN/eval/ by default)
        return _evaluate(cfg, clf, model, run, say, cleaning)


def _output_dir(cfg: EvalConfig, data_name: str, model: str, run: RunFolder | None) -> Path:
    """Where the results go, checked before any scoring: a new folder, or an eval folder of edgefn's."""
    if cfg.output is not None:
        output = Path(cfg.output)
    else:
        assert run is not None
        output = run.eval_dir(folder_name(data_name, cfg.split), None if model == PYTORCH else model)
    if run is not None:
        outputs.refuse_symlinks(output, run.path)
    option = "--output" if cfg.output is not None else None
    if option is not None:
        _refuse_output_in_model(output, cfg.model)
    outputs.check_output_dir(
        output, overwrite=True, owned=RunFolder.is_eval_dir, kind="eval folder", option=option
    )
    return output


def _refuse_output_in_model(output: Path, model: Path) -> None:
    """Refuse an --output inside the model's folder, or inside any run anywhere but RUN/eval/ (an added
    folder there would fail the next hash check of a variant or checkpoint)."""
    if runs.enclosing_run(model) is None:  # a lone variant; one inside a run is covered by the next line
        outputs.refuse_output_inside(output, model, "--output", "the model's folder")
    runs.refuse_output_in_run(output, allowed=runs.EVAL_DIR)


def _evaluate(
    cfg: EvalConfig,
    clf: Classifier,
    model: str,
    run: RunFolder | None,
    say: Progress,
    cleaning: dict[str, Any],
) -> EvalResult:
    data_name, split, data_info = _rows(cfg)
    output = _output_dir(cfg, data_name, model, run)
    with contextlib.ExitStack() as stack:
        host = runs.enclosing_run(output)  # an --output under another run's RUN/eval/ writes to that run too
        if host is not None and (run is None or not outputs.same_file(host, run.path)):
            stack.enter_context(RunFolder(host).lock("eval"))
        say(f"scoring {len(split)} rows of {data_name} ({cfg.split}) with {model}")
        metrics, logits, preds, prob = _score(clf, split, say)
        if cfg.in_domain and run:
            say("scoring the run's own test split (in-domain twin) and calibrating the OOD threshold")
        in_domain, ood = (
            _in_domain(cfg, clf, model, run, logits, say) if cfg.in_domain and run else (None, None)
        )
        guard = _guard_twin(cfg, clf, run, split, logits, say) if clf.manifest.guard and run else None
        record = runs.EvalManifest(
            edgefn_eval=1,
            model=model,
            model_path=str(cfg.model),
            run_dir=str(run.path) if run else None,
            trained_on=run.read_finetune_config().data if run else None,
            data={**data_info, "split": cfg.split, "rows_scored": len(split), "seed": cfg.seed},
            max_length=clf.max_length,
            cleaning=cleaning,
            metrics=metrics,
            in_domain=in_domain,
            ood=ood,
            guard=guard,
        )
        with outputs.output_dir(
            output, overwrite=True, owned=RunFolder.is_eval_dir, kind="eval folder"
        ) as tmp:
            runs.write_json(RunFolder.eval_file(tmp, "metrics"), record)
            n_errors = write_errors_csv(
                RunFolder.eval_file(tmp, "errors"), split.texts, split.labels, preds, prob
            )
            title = f"{run.path.name + ': ' if run else ''}{model} on {data_name} ({cfg.split})"
            plot_confusion_matrix(
                metrics["confusion_matrix"], RunFolder.eval_file(tmp, "confusion_matrix"), title
            )
            plot_reliability(calibration(split.labels, prob), RunFolder.eval_file(tmp, "reliability"), title)
        return EvalResult(output, model, run.path if run else None, data_name, record, n_errors)


def _guard_twin(
    cfg: EvalConfig, clf: Classifier, run: RunFolder, split: Split, logits: np.ndarray, say: Progress
) -> dict[str, Any] | None:
    """A guarded variant beside fp32 and its full int8 variant on the same rows: accuracy and the points each loses
    against fp32 (None when either variant is not in the run)."""
    full = str((clf.manifest.guard or {}).get("full_variant") or "")
    folders = {"fp32": run.variant_dir("fp32"), full: run.variant_dir(full)}
    if not full or not all((f / runs.EXPORT_MANIFEST).is_file() for f in folders.values()):
        return None
    say(f"scoring fp32 and {full} on the same rows (guarded vs full int8)")
    scored = {"guarded": logits}
    for name, folder in folders.items():
        other = Classifier.from_folder(
            folder, threads=cfg.threads, batch_size=cfg.batch_size, clean=cfg.clean
        )
        scored["fp32" if name == "fp32" else "full_int8"] = _logits(other, split.texts, say)
    labels = np.asarray(split.labels)  # 1 = fake
    accuracy = {
        k: float(((v.argmax(1) == clf.fake_id).astype(int) == labels).mean()) for k, v in scored.items()
    }
    return {
        "full_variant": full,
        "accuracy": accuracy,
        "drop_pts": {k: 100 * (accuracy["fp32"] - accuracy[k]) for k in ("guarded", "full_int8")},
        "agreement_with_fp32": {
            k: float((scored[k].argmax(1) == scored["fp32"].argmax(1)).mean())
            for k in ("guarded", "full_int8")
        },
    }


ROWS = (
    ("rows", "n", "d"),
    ("fake share", "fake_share", ".3f"),
    ("accuracy", "accuracy", ".4f"),
    ("balanced accuracy", "balanced_accuracy", ".4f"),
    ("macro F1", "f1_macro", ".4f"),
    ("ROC-AUC", "roc_auc", ".4f"),
    ("ECE", "ece", ".4f"),
)


def _cell(m: dict[str, Any] | None, key: str, spec: str) -> str:
    value = None if m is None else m.get(key)
    return "-" if value is None else format(value, spec)


def format_eval(result: EvalResult) -> str:
    """The in-domain figures beside the new data's, the OOD line and the per-source rows."""
    r = result.manifest
    new, home = r.metrics or {}, r.in_domain
    trained = r.trained_on or "?"
    head = (
        "",
        f"in-domain ({trained} test)" if home else "in-domain",
        f"{result.data} ({(r.data or {}).get('split')})",
    )
    rows = [head] + [(label, _cell(home, key, spec), _cell(new, key, spec)) for label, key, spec in ROWS]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"model      {result.model} ({r.model_path})"]
    if r.cleaning is not None:
        rules = ", ".join(r.cleaning.get("rules") or [])
        off = r.cleaning.get("from") == "off"
        lines.append(
            f"cleaning   {'off (texts as loaded)' if off else (rules or 'none') + ' (as in training)'}"
        )
    lines += [
        "  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2])]) for row in rows
    ]
    ood = r.ood
    if ood:
        lines.append(
            f"OOD ({ood['score']}, threshold at the validation {ood['quantile']:.0%} quantile): flags "
            f"{ood['flagged_new_data']:.1%} of {result.data} and {ood['flagged_in_domain_test']:.1%} of the "
            f"in-domain test split; AUROC {_cell(ood, 'auroc', '.3f')}"
        )
    if r.guard:
        drops = r.guard["drop_pts"]
        lines.append(
            f"guarded vs full int8 on {result.data}: {result.model} {-drops['guarded']:+.2f} pts against fp32, "
            f"{r.guard['full_variant']} {-drops['full_int8']:+.2f} pts"
        )
    for source, m in (new.get("by_source") or {}).items():
        lines.append(
            f"  {source}: {m['n']} rows, balanced accuracy {m['balanced_accuracy']:.4f}, macro F1 {m['f1_macro']:.4f}"
        )
    lines.append(f"written to {result.output_dir}")
    return "\n".join(wrap_line(line) for line in lines)
