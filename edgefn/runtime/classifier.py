"""`Classifier`: a variant folder (or any runner) that classifies texts, run by its engine."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.core.cleaning import check_rules, clean_texts
from edgefn.core.environment import check_threads
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.runtime import engines
from edgefn.runtime.engines import Engine, LoadRequest
from edgefn.runtime.inference import CPU, Encoder, Runner, batched_logits, softmax

DEFAULT_MAX_LENGTH = 512
OOD_QUANTILE = 0.95  # the threshold lets 5% of in-domain validation texts through as "ood"


@dataclass(frozen=True)
class Prediction:
    """One text's prediction: label name and id, probability of fake, raw logits, and whether it was cut."""

    label: str
    label_id: int
    prob_fake: float
    logits: tuple[float, ...]
    truncated: bool
    ood_score: float | None = None  # higher: less like the training data (see `ood_scores`)
    ood: bool | None = None  # the score is over the threshold calibrated on validation (None: uncalibrated)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the prediction."""
        return {
            "label": self.label,
            "label_id": self.label_id,
            "prob_fake": self.prob_fake,
            "logits": list(self.logits),
            "truncated": self.truncated,
            "ood_score": self.ood_score,
            "ood": self.ood,
        }


def ood_scores(logits: np.ndarray, kind: str = "energy") -> np.ndarray:
    """Out-of-distribution scores, higher for texts less like the training data.

    `energy`: -logsumexp(logits) (Liu et al., 2020); `msp`: 1 - the largest softmax probability.
    """
    z = np.asarray(logits, dtype=np.float64)
    if kind == "energy":
        top = z.max(axis=-1)
        return -(top + np.log(np.exp(z - top[:, None]).sum(axis=-1)))
    if kind == "msp":
        return 1.0 - softmax(z).max(axis=-1)
    raise EdgefnError(f"unknown OOD score {kind!r}; use energy or msp")


OOD_THRESHOLD_LIMIT = 1e6  # |threshold| beyond this is no calibration (energy is -logsumexp of the logits)
OOD_SCORES = ("energy", "msp")


@dataclass(frozen=True)
class OodThreshold:
    """An OOD score and the threshold over which a text counts as out of distribution, for one model."""

    score: str
    threshold: float
    quantile: float
    calibrated_on: str
    rows: int
    model_sha256: str | None = None  # `runs.files_fingerprint` of the model it was calibrated for

    @classmethod
    def calibrate(
        cls,
        logits: np.ndarray,
        calibrated_on: str,
        score: str = "energy",
        quantile: float = OOD_QUANTILE,
        model_sha256: str | None = None,
    ) -> OodThreshold:
        """The `quantile` of the in-domain (validation) scores: that share of in-domain texts is not flagged."""
        values = ood_scores(logits, score)
        threshold = float(np.quantile(values, quantile))
        return cls(score, threshold, quantile, calibrated_on, len(values), model_sha256)

    @classmethod
    def from_dict(cls, entry: Any, where: str) -> OodThreshold:
        """An entry of ood.json, its types and values checked (one line naming `where` otherwise)."""
        fields: dict[str, runs.JsonType] = {
            "score": str,
            "threshold": float,
            "quantile": float,
            "calibrated_on": str,
            "rows": int,
            "model_sha256": str,
        }
        d = runs.check_json_object(entry, where, fields, required=tuple(fields))
        threshold, quantile = float(d["threshold"]), float(d["quantile"])
        if d["score"] not in OOD_SCORES:
            raise EdgefnError(f"{where}: unknown score {d['score']!r} (known: {', '.join(OOD_SCORES)})")
        if not (np.isfinite(threshold) and abs(threshold) < OOD_THRESHOLD_LIMIT):
            raise EdgefnError(f"{where}: threshold {d['threshold']!r} is not a finite score under 1e6")
        if not 0.0 < quantile < 1.0:
            raise EdgefnError(f"{where}: quantile {quantile!r} is not in (0, 1)")
        if d["rows"] < 1:
            raise EdgefnError(f"{where}: rows {d['rows']!r} is not a count of calibration texts")
        return cls(d["score"], threshold, quantile, d["calibrated_on"], d["rows"], d["model_sha256"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "quantile": self.quantile,
            "calibrated_on": self.calibrated_on,
            "rows": self.rows,
            "model_sha256": self.model_sha256,
        }


def warn(message: str) -> None:
    """One line on standard error: something was ignored, and why."""
    print(f"warning: {message}", file=sys.stderr)


_OOD_FIX = "delete it; `edgefn eval` calibrates the thresholds again"


def read_ood(run_dir: Path, model: str, fingerprint: str | None) -> OodThreshold | None:
    """The OOD threshold recorded for `model` (a variant name or "pytorch") in a run's ood.json, if it was
    calibrated for this very model (`fingerprint`); an entry for another model, or with values out of range,
    is ignored with a warning (`ood` is then null). An unreadable ood.json is refused."""
    path = Path(run_dir) / runs.OOD_FILE
    entry = runs.read_optional_json(path, fix=_OOD_FIX).get(model)
    if entry is None:
        return None
    try:
        ood = OodThreshold.from_dict(entry, f"{path} entry {model!r}")
    except EdgefnError as e:
        warn(f"{e}; OOD flags are off (ood: null) until `edgefn eval` calibrates {model} again")
        return None
    if fingerprint is None or ood.model_sha256 != fingerprint:
        warn(
            f"{path} entry {model!r} was calibrated for another model (its hash differs); ignored, OOD flags "
            f"are off (ood: null) until `edgefn eval` calibrates {model} again"
        )
        return None
    return ood


def write_ood(run_dir: Path, model: str, ood: OodThreshold) -> None:
    """Record `model`'s OOD threshold in the run's ood.json (other models' entries kept)."""
    path = Path(run_dir) / runs.OOD_FILE
    record = runs.read_optional_json(path, fix=_OOD_FIX)
    record[model] = ood.to_dict()
    runs.write_json(path, record)


def resolve_max_length(
    folder: Path, manifest: runs.VariantManifest, config: dict[str, Any], max_length: int | None
) -> int:
    """Token limit: explicit value, else the export's or the run's fine-tuning max_length, else 512.

    The result never exceeds the model's `max_position_embeddings`.
    """
    limit = config.get("max_position_embeddings")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 2):
        raise EdgefnError(
            f"{folder / runs.MODEL_CONFIG}: max_position_embeddings {limit!r} is no token count"
        )
    if max_length is not None:
        if max_length < 2:
            raise ConfigError("max_length", f"must be at least 2, got {max_length}")
        if limit and max_length > limit:
            raise ConfigError(
                "max_length", f"{max_length} exceeds the model's max_position_embeddings ({limit})"
            )
        return max_length
    chosen = manifest.max_length
    if not chosen and folder.parent.name == runs.ONNX_DIR:  # a variant of a run: the fine-tune's limit
        chosen = runs.RunFolder(folder.parent.parent).max_length(DEFAULT_MAX_LENGTH)
    chosen = chosen or DEFAULT_MAX_LENGTH
    return min(int(chosen), int(limit)) if limit else int(chosen)


def _variant_hint(folder: Path) -> str:
    """What to pass instead of a folder without model.onnx (a run folder lists its variants)."""
    variants = [p.name for p in runs.list_variants(folder)]
    if variants:
        return f"this is a run folder; pass one of its variants: {', '.join(str(folder / runs.ONNX_DIR / v) for v in variants)}"
    return "pass a variant folder such as RUN/onnx/int8-dynamic (made by `edgefn export`)"


def id2label_of(config: dict[str, Any], where: str = runs.MODEL_CONFIG) -> dict[int, str]:
    """Label names by id from a config.json dict (real / fake when it has none)."""
    raw = config.get("id2label") or {"0": "real", "1": "fake"}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and k.isdigit() for k in raw):
        raise EdgefnError(f"{where}: id2label must map label ids (0, 1, ...) to names")
    return {int(k): str(v) for k, v in raw.items()}


def check_variant_folder(path: str | Path) -> tuple[Path, runs.VariantManifest]:
    """A variant folder checked as `Classifier.from_folder` checks it before loading it: the folder exists, its
    run is complete, it holds an exported model, and every file matches its hash in export.json."""
    folder = Path(path)
    if not folder.is_dir():
        raise EdgefnError(f"model folder not found: {folder}")
    runs.refuse_unfinished_run_of(folder)
    if engines.variant_runtime(folder) is None and not os.path.lexists(folder / runs.EXPORT_MANIFEST):
        raise EdgefnError(f"{folder} holds no exported model: {_variant_hint(folder)}")
    return folder, runs.verify_variant(folder)


def cleaning_note(folder: Path, manifest: runs.VariantManifest, clean: bool) -> str | None:
    """A note for a run's variant exported before export.json recorded the serving cleaning, when the run's
    training cleaned its texts: the variant is served raw until it is exported again."""
    if not clean or manifest.cleaning is not None or folder.parent.name != runs.ONNX_DIR:
        return None
    rules, _ = runs.RunFolder(folder.parent.parent).serving_cleaning()
    if not rules:
        return None
    return (
        f"{folder.name} predates serving cleaning: its training applied {', '.join(rules)}, these texts are not "
        f"cleaned; re-export to apply them (edgefn export --run-dir {folder.parent.parent})"
    )


class Classifier:
    """Texts in, predictions out: the cleaning rules, one `Encoder`, length-sorted batches and a runner (the engine's:
    an ONNX Runtime session, another runtime's compiled model, the PyTorch checkpoint). What bench times and export
    scores is this class.

    `cleaning` names the rules (`core.cleaning.RULES`) applied to each text before tokenizing: `from_folder` sets
    the ones the variant's export.json records (the run's training cleaning) unless `clean=False`."""

    def __init__(
        self,
        runner: Runner,
        encoder: Encoder,
        id2label: dict[int, str],
        batch_size: int = 32,
        manifest: runs.VariantManifest | None = None,
        cleaning: Sequence[str] = (),
    ) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size", f"must be a positive integer, got {batch_size}")
        check_rules(cleaning)
        self.cleaning: tuple[str, ...] = tuple(cleaning)
        self.runner = runner
        self.encoder = encoder
        self.id2label = id2label
        self.batch_size = batch_size
        self.manifest = manifest or runs.VariantManifest()
        self.fake_id = next((i for i, name in id2label.items() if name == "fake"), 1)
        self.ood: OodThreshold | None = None  # set by from_folder from the run's ood.json, or by the caller
        self.cleaning_note: str | None = (
            None  # set by from_folder for a variant older than its run's cleaning
        )
        self.fingerprint: str | None = None  # `runs.files_fingerprint` of the model's files, where known

    @classmethod
    def from_folder(
        cls,
        path: str | Path,
        provider: str = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        clean: bool = True,
    ) -> Classifier:
        """Load a variant folder (model.onnx, config.json, tokenizer.json, export.json), after checking every
        file against the hashes in its export.json: a folder without one is refused, never served unchecked.

        Args:
            path: the variant folder, e.g. `RUN/onnx/int8-dynamic`.
            provider: `cpu`, `cuda` or a full ONNX Runtime execution provider name.
            threads: intra-op threads (None: ONNX Runtime's default).
            batch_size: texts per inference call; texts are grouped by token length.
            max_length: token limit (default: the run's fine-tuning max_length, else 512).
            clean: apply the cleaning the run's training applied (export.json's `cleaning`, e.g. URLs and
                @handles deleted for CONSTRAINT) to each text; False feeds texts as given. An export.json from
                before edgefn recorded it has none.

        Returns:
            A ready classifier. Raises EdgefnError when the folder is incomplete, has no export.json, a file
            no longer matches its hash in export.json, or the provider is unavailable.
        """
        check_threads(threads)
        folder, manifest = check_variant_folder(path)
        return cls.from_verified_folder(folder, manifest, provider, threads, batch_size, max_length, clean)

    @classmethod
    def from_verified_folder(
        cls,
        folder: Path,
        manifest: runs.VariantManifest,
        provider: str = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        clean: bool = False,
    ) -> Classifier:
        """A variant folder whose files the caller has checked against `manifest` with `runs.verify_variant`
        (bench and package check once, before timing and packaging); `from_folder` is the checked path. `clean`
        as in `from_folder`, off by default: these callers score the run's stored splits, cleaned already."""
        engine = engines.for_model(folder, provider)
        return cls.from_engine(engine, folder, manifest, threads, batch_size, max_length, clean=clean)

    @classmethod
    def from_engine(
        cls,
        engine: Engine,
        folder: Path,
        manifest: runs.VariantManifest,
        threads: int | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        options: dict[str, Any] | None = None,
        clean: bool = False,
    ) -> Classifier:
        """A checked variant folder (or the run's checkpoint, an empty manifest) run by `engine`, in the precision its
        manifest records; `options` go to the engine's load (a peer's); `clean` as in `from_verified_folder`."""
        folder = Path(folder)
        check_threads(threads)
        config = runs.read_optional_json(folder / runs.MODEL_CONFIG)
        limit = resolve_max_length(folder, manifest, config, max_length)
        encoder = engine.encoder_for(folder, limit)
        precision = manifest.precision or "fp32"
        request = LoadRequest(
            engine.model_path(folder), threads, precision, encoder.max_length, options or {}
        )
        id2label = id2label_of(config, str(folder / runs.MODEL_CONFIG))
        cleaning = (manifest.cleaning or []) if clean else []
        check_rules(cleaning, str(folder / runs.EXPORT_MANIFEST))  # a rule of a newer edgefn is not skipped
        clf = cls(engine.load(request), encoder, id2label, batch_size, manifest, cleaning)
        if manifest.files_sha256:
            clf.fingerprint = runs.files_fingerprint(dict(manifest.files_sha256))
        if folder.parent.name == runs.ONNX_DIR:  # a run's variant: its calibration, if made for this model
            clf.ood = read_ood(folder.parent.parent, folder.name, clf.fingerprint)
            clf.cleaning_note = cleaning_note(folder, manifest, clean)
        return clf

    @classmethod
    def for_model_file(
        cls,
        model: Path,
        encoder: Encoder,
        id2label: dict[int, str],
        provider: str = CPU,
        threads: int | None = None,
        precision: str = "fp32",
    ) -> Classifier:
        """A classifier for one model file (any engine's: .onnx, .ort, another runtime's file run in `precision`) and a
        given encoder (export scores files before they are variants; package checks converted files)."""
        engine = engines.for_model(Path(model), provider)
        request = LoadRequest(Path(model), threads, precision, encoder.max_length)
        return cls(engine.load(request), encoder, id2label)

    @property
    def max_length(self) -> int:
        return int(self.encoder.max_length)

    @property
    def tokenizer(self) -> Any:
        """The `tokenizers.Tokenizer` (truncating, unpadded)."""
        return self.encoder.tokenizer

    @property
    def session(self) -> Any:
        """The ONNX Runtime session (None for the PyTorch reference)."""
        return getattr(self.runner, "session", None)

    @property
    def input_names(self) -> list[str]:
        """The model inputs fed on each call (those its graph or forward() declares)."""
        return list(getattr(self.runner, "input_names", []))

    @property
    def providers(self) -> list[str]:
        """The execution providers the model runs on."""
        return list(getattr(self.runner, "providers", []))

    @property
    def provider_note(self) -> str | None:
        """A note when the variant was exported for other execution providers than the one it runs on."""
        intended = self.manifest.execution_providers or []
        if not intended or set(intended) & set(self.providers):
            return None
        name = self.manifest.variant or "this variant"
        return f"{name} is meant for {', '.join(intended)}; running on {self.providers[0]}"

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The model call alone on an already padded feed (fixed-shape measurements)."""
        return self.runner(feed)

    def _logits(self, encodings: Sequence[Any], batch_size: int | None) -> np.ndarray:
        return batched_logits(
            self.runner, self.encoder, encodings, batch_size or self.batch_size, len(self.id2label)
        )

    def clean(self, texts: Sequence[str]) -> Sequence[str]:
        """The texts as the model gets them: `cleaning` applied (the same sequence without rules)."""
        return clean_texts(texts, self.cleaning) if self.cleaning else texts

    def predict_logits(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Raw logits, shape (len(texts), num_labels), in input order (texts cleaned first)."""
        return self._logits(self.encoder.encode_compact(self.clean(texts)), batch_size)

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> list[Prediction]:
        """Label, probability of fake, logits and truncation flag for each text, in input order (texts cleaned
        first)."""
        tokens = self.encoder.encode_compact(self.clean(texts))
        logits = self._logits(tokens, batch_size)
        probs = softmax(logits)
        label_ids = logits.argmax(axis=-1)
        scores = ood_scores(logits, self.ood.score if self.ood else "energy")
        return [
            Prediction(
                label=self.id2label.get(int(k), str(int(k))),
                label_id=int(k),
                prob_fake=float(probs[i, self.fake_id]),
                logits=tuple(float(v) for v in logits[i]),
                truncated=tokens[i].truncated,
                ood_score=float(scores[i]),
                ood=None if self.ood is None else bool(scores[i] > self.ood.threshold),
            )
            for i, k in enumerate(label_ids)
        ]
