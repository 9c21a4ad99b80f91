"""What one export shares across variants: job state, kept variants, scoring, each folder's files."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.errors import EdgefnError
from edgefn.core.presets import ArchQuirks
from edgefn.core.progress import Progress
from edgefn.export import quantize as q
from edgefn.export import schemes
from edgefn.export.config import ExportConfig
from edgefn.export.graph import graph_input_names, op_counts
from edgefn.export.optimum import export_plain_onnx
from edgefn.runs import RunFolder
from edgefn.runtime import engines
from edgefn.runtime.classifier import Classifier
from edgefn.runtime.inference import CPU, Encoder

FP32 = "fp32"
_COPIED_SUFFIXES = (".json", ".txt", ".model")  # config and tokenizer files carried into every variant
# The export.json fields an export reports for a variant it keeps.
_RESULT_FIELDS = ("variant", "size_mb", "size_ratio_to_fp32", "parity")


@dataclass
class VariantResult:
    """One exported variant folder and what it cost against fp32."""

    name: str
    folder: Path
    size_mb: float
    size_ratio_to_fp32: float
    parity: dict[str, Any]
    agreement: float | None
    validation_accuracy: float | None
    accuracy_delta_vs_fp32: float | None
    notes: list[str] = field(default_factory=list)
    guard: dict[str, Any] | None = None  # a guarded variant's search record (export.json's "guard")


@dataclass
class ExportResult:
    """Every variant of one export call, in the order written."""

    run_dir: Path
    picked_automatically: bool
    target: str
    variants: list[VariantResult] = field(default_factory=list)


@dataclass
class ExportJob:
    """State shared by the variants of one export: run facts, encoded texts, fp32 reference logits."""

    cfg: ExportConfig
    run: RunFolder
    preset: str
    init: str
    quirks: ArchQuirks
    max_length: int
    source_sha256: str
    target: str
    step: Progress
    encoder: Encoder
    id2label: dict[int, str]
    eval_texts: list[str] = field(default_factory=list)
    eval_labels: Any = None
    fp32_logits: Any = None
    fp32_accuracy: float | None = None
    fp32_size_mb: float = 0.0
    kept: dict[str, runs.VariantManifest] = field(default_factory=dict)  # variants made as requested
    plain: Path | None = None  # the unfused fp32 graph, exported once for the schemes that start from it
    cleaning: tuple[str, ...] = ()  # the run's training cleaning, recorded in each variant for serving
    cleaning_note: str | None = None  # why the rules are these (a union's sources cleaned differently)
    logits: dict[str, Any] = field(default_factory=dict)  # validation logits of the variants scored here
    guard_data: Any = None  # --guard-data's (name, texts, labels), read before any variant is written
    guard_sample: Any = None  # --guard-data's texts and fp32 logits (guard.Sample), scored on first use

    @property
    def checkpoint(self) -> Path:
        return self.run.checkpoint

    def variant_dir(self, name: str) -> Path:
        return self.run.variant_dir(name)

    def calibration(self) -> dict[str, list[list[int]]]:
        """The calibration texts as the fp32 graph's inputs (what the static schemes calibrate on)."""
        fp32 = self.variant_dir(FP32) / runs.ONNX_FILE
        return calibration_inputs(
            self.run, self.encoder, self.cfg.calibration_samples, graph_input_names(fp32)
        )

    def plain_fp32(self) -> Path:
        """The fp32 graph as Optimum exports it, before any --optimize fusion: exported on first use into a
        hidden work folder of the onnx folder (removed when the export ends, or by the next export if killed)."""
        if self.plain is None:
            work = Path(tempfile.mkdtemp(prefix=".plain-", dir=self.run.onnx_dir))
            self.plain = (
                work / "plain" / runs.ONNX_FILE
            )  # set first: export() removes the folder however it ends
            self.step("fp32: exporting the plain (unfused) graph the quantizers start from")
            export_plain_onnx(self.checkpoint, self.plain.parent, self.cfg.opset)
        return self.plain


def request_of(job: ExportJob, variant: str) -> dict[str, Any]:
    """Everything that decides a variant's file: an existing variant made with the same request is kept."""
    cfg = job.cfg
    request: dict[str, Any] = {
        "source_checkpoint_sha256": job.source_sha256,
        "optimize": cfg.optimize,
        "opset": cfg.opset,
        "max_length": job.max_length,
    }
    if variant != FP32:
        request.update(
            scheme=variant,
            target=job.target,
            calibration_samples=cfg.calibration_samples,
            calibration_method=cfg.calibration_method,
            eval_samples=cfg.eval_samples,
            saturation_check=cfg.saturation_check,
        )
    scheme = variant.removesuffix(runs.GUARDED_SUFFIX)
    if scheme != variant:
        request.update(
            scheme=scheme,
            guard={
                "max_drop": cfg.max_drop,
                "guard_data": cfg.guard_data,
                "time_budget_s": cfg.time_budget_s,
            },
        )
    if scheme == "int8-dynamic":
        request["recipe"] = q.dynamic_recipe(job.target)
    return request


def refuse_existing(job: ExportJob, schemes: list[str], guarded: list[str] | None = None) -> None:
    """Refuse before any work when a variant exists that was made otherwise (unless overwrite); one made
    with the same request is kept (`job.kept`), so the same command re-run after an interruption carries on.
    A damaged variant (a file no longer matching its recorded hash) is refused with that reason. `guarded`: the
    guard search's variants this export may write."""
    schemes = [*schemes, *(guarded or [])]
    if job.cfg.overwrite:  # every folder to replace is checked now, before the first one is replaced
        for name in [FP32, *schemes]:
            outputs.check_output_dir(
                job.variant_dir(name), overwrite=True, owned=runs.is_manifested_dir, kind="variant folder"
            )
        return
    existing = [n for n in [FP32, *schemes] if job.variant_dir(n).exists()]
    manifests = {n: runs.verify_variant(job.variant_dir(n)) for n in existing}
    job.kept = {n: m for n, m in manifests.items() if m.request == request_of(job, n)}
    for name, manifest in job.kept.items():  # their records are reported as this export's results
        where = str(job.variant_dir(name) / runs.EXPORT_MANIFEST)
        fix = runs.reexport_hint(job.variant_dir(name))
        manifest.require(_RESULT_FIELDS, where, fix)
    different = [n for n in existing if n not in job.kept]
    if different:
        raise EdgefnError(
            f"variant(s) {', '.join(different)} already exist in {job.run.onnx_dir}, exported from another "
            "checkpoint or with other settings (use --overwrite to replace them)"
        )


def kept_result(job: ExportJob, name: str) -> VariantResult | None:
    """The existing variant `name` when it is kept (same request, not --overwrite), else None."""
    if name not in job.kept:
        return None
    folder = job.variant_dir(name)
    job.step(f"{name}: kept {folder} (same checkpoint and settings; --overwrite re-exports it)")
    manifest = job.kept[name]
    if manifest.cleaning != list(
        job.cleaning
    ):  # exported before edgefn recorded it: export.json is not hashed
        manifest = dataclasses.replace(manifest, cleaning=list(job.cleaning))
        runs.write_json(folder / runs.EXPORT_MANIFEST, manifest)
    return variant_result(folder, manifest)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- texts and scoring ------------------------------------------------------------------------------------


def load_eval_texts(job: ExportJob) -> None:
    import numpy as np

    val = job.run.read_split("validation")
    if job.run.split_file("calibration").is_file():
        job.run.read_split("calibration")  # a damaged file is refused now, not after the fp32 export
    n = len(val) if job.cfg.eval_samples is None else min(job.cfg.eval_samples, len(val))
    if n == 0:
        raise EdgefnError(f"{job.run.split_file('validation')} is empty: nothing to check parity on")
    job.eval_labels = np.asarray(val.labels[:n])
    job.eval_texts = val.texts[:n]


def model_logits(
    job: ExportJob, model: Path, texts: list[str] | None = None, provider: str = CPU, precision: str = "fp32"
) -> Any:
    """Logits of a model file through the runtime's Classifier, on the checkpoint's tokens."""
    clf = Classifier.for_model_file(model, job.encoder, job.id2label, provider, job.cfg.threads, precision)
    return clf.predict_logits(job.eval_texts if texts is None else texts)


def compare_logits(logits: Any, reference: Any) -> dict[str, float]:
    import numpy as np

    diff = np.abs(logits - reference)
    agree = float((logits.argmax(1) == reference.argmax(1)).mean())
    return {
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "agreement": agree,
    }


def accuracy_of(job: ExportJob, logits: Any) -> float:
    return float((logits.argmax(1) == job.eval_labels).mean())


# --- variant folders -------------------------------------------------------------------------------------


def calibration_inputs(
    run: RunFolder, encoder: Encoder, samples: int, input_names: list[str] | None = None
) -> dict[str, list[list[int]]]:
    """The run's first `samples` calibration texts as model inputs (`input_names`, default all the encoder
    builds), padded to the longest: what Optimum's calibrator and NNCF take. {} without calibration texts."""
    texts = run.read_split("calibration").texts[:samples]
    if not texts:
        return {}
    feed = encoder.feed(encoder.encode(texts))
    return {name: feed[name].tolist() for name in (input_names or list(feed))}


def copy_model_files(src: Path, dst: Path) -> None:
    """Copy the config and tokenizer files of `src` (a variant or an Optimum export) that `dst` lacks."""
    for p in src.iterdir():
        if (
            p.is_file()
            and p.suffix in _COPIED_SUFFIXES
            and p.name != runs.EXPORT_MANIFEST
            and not (dst / p.name).exists()
        ):
            shutil.copy2(p, dst / p.name)


def variant_result(folder: Path, m: runs.VariantManifest) -> VariantResult:
    parity = m.parity or {}
    return VariantResult(
        m.variant or folder.name,
        folder,
        m.size_mb or 0.0,
        m.size_ratio_to_fp32 or 0.0,
        parity,
        parity.get("agreement"),
        m.validation_accuracy,
        m.accuracy_delta_vs_fp32,
        list(m.notes or []),
        m.guard,
    )


def score_variant(
    job: ExportJob, scheme: schemes.QuantScheme, folder: Path, notes: list[str], precision: str = "fp32"
) -> tuple[Any, list[str]]:
    """Validation logits on the first engine the scheme is made for that runs here (an engine's own format by
    that engine, in the variant's precision); a variant whose engines do not run here (fp16 without CUDA) is
    scored on the CPU."""
    made_for = [engines.get(p) for p in scheme.execution_providers]
    model = made_for[0].model_path(folder)
    usable = [e.name for e in made_for if e.available() is None]
    if usable:
        return model_logits(job, model, provider=usable[0], precision=precision), usable
    device = (made_for[0].device or "suitable").upper()
    notes.append(
        f"{scheme.name} is meant for {', '.join(scheme.execution_providers)}, which is not available here: "
        f"accuracy was checked on CPU; benchmark it on a {device} machine"
    )
    job.step(
        f"{scheme.name}: no {device} here: exported and checked on CPU; it can only be benchmarked on {device}"
    )
    return model_logits(job, model, provider=CPU, precision=precision), [CPU]


def build_manifest(
    job: ExportJob,
    folder: Path,
    variant: str,
    scheme: str,
    providers: list[str],
    parity: dict[str, Any],
    accuracy: float | None,
    **extra: Any,
) -> runs.VariantManifest:
    record = runs.model_record(folder, tuple(extra.pop("model_files", (runs.ONNX_FILE,))))
    size = record["size_mb"]
    opset = extra.pop("opset", None)
    if job.cleaning_note:
        extra["notes"] = [*extra.get("notes", []), job.cleaning_note]
    if opset is None:
        opset = runs.read_variant_manifest(job.variant_dir(FP32)).opset
    return runs.VariantManifest(
        variant=variant,
        scheme=scheme,
        preset=job.preset,
        init=job.init,
        model_files=record["model_files"],
        model_sha256=record["model_sha256"],
        files_sha256=record["files_sha256"],
        source_checkpoint_sha256=job.source_sha256,
        request=request_of(job, variant),
        size_mb=size,
        size_ratio_to_fp32=size / (job.fp32_size_mb or size),
        opset=opset,
        target=job.target,
        execution_providers=providers,
        max_length=job.max_length,
        parity=parity,
        validation_accuracy=accuracy,
        validation_samples=len(job.eval_labels),
        accuracy_delta_vs_fp32=None
        if accuracy is None or job.fp32_accuracy is None
        else accuracy - job.fp32_accuracy,
        nodes_kept_float=extra.pop("nodes_kept_float", []),
        op_counts=op_counts(folder / runs.ONNX_FILE) if (folder / runs.ONNX_FILE).is_file() else {},
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        versions=engines.library_versions(),
        cleaning=list(job.cleaning),
        **extra,
    )
