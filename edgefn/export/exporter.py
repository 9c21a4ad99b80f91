"""export(cfg) -> ExportResult: Optimum ONNX export, parity against PyTorch, graph optimisation, quantized variants."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.environment import check_threads, library_versions
from edgefn.core.errors import ConfigError, EdgefnError, disk_faults
from edgefn.core.presets import ArchQuirks, quirks_for
from edgefn.export import openvino_models  # noqa: F401 - registers the ov-* schemes
from edgefn.export import quantize as q
from edgefn.export.graph import graph_input_names, op_counts
from edgefn.runs import RunFolder
from edgefn.runtime.classifier import Classifier, id2label_of
from edgefn.runtime.inference import CPU, CUDA, OPENVINO, Encoder, available_providers

MIN_OPSET = 11  # the oldest Optimum exports text classifiers to
OPTIMIZE_LEVELS = ("O1", "O2", "O3", "none")  # none: the plain graph, even where a preset defaults to O2
FP32 = "fp32"
_WEIGHT_FILES = (
    runs.SAFETENSORS_WEIGHTS,
    runs.PICKLE_WEIGHTS,
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model")
_COPIED_SUFFIXES = (".json", ".txt", ".model")  # config and tokenizer files carried into every variant
Step = Callable[[str], None]
# The export.json fields an export reports for a variant it keeps.
_RESULT_FIELDS = ("variant", "size_mb", "size_ratio_to_fp32", "parity")


@dataclass
class ExportConfig:
    """What to export: the run, the schemes after fp32, optimisation level, CPU target and checks."""

    run_dir: Path | None = None
    schemes: tuple[str, ...] = ("int8-dynamic",)
    optimize: str | None = None
    target: str | None = None
    calibration_samples: int = 256
    calibration_method: str = "minmax"
    opset: int | None = None
    overwrite: bool = False
    parity_samples: int = 64
    eval_samples: int | None = None
    parity_atol: float = 1e-4
    saturation_check: bool = True  # int8-dynamic on x86 without VNNI: also measure u8/s8 full range
    threads: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.schemes, str):
            self.schemes = tuple(s for s in self.schemes.split(",") if s.strip())
        self.schemes = q.resolve_schemes(tuple(self.schemes) or ("none",))
        if self.optimize is not None and self.optimize not in OPTIMIZE_LEVELS:
            raise ConfigError(
                "optimize", f"unknown level {self.optimize!r}; choose one of {', '.join(OPTIMIZE_LEVELS)}"
            )
        if self.target is not None:
            q.get_target(self.target)
        if self.calibration_method not in q.CALIBRATION_METHODS:
            raise ConfigError(
                "calibration_method",
                f"unknown method {self.calibration_method!r}; choose one of {', '.join(q.CALIBRATION_METHODS)}",
            )
        check_threads(self.threads)
        if self.opset is not None and not MIN_OPSET <= self.opset <= max_opset():
            raise ConfigError(
                "opset", f"must be between {MIN_OPSET} and {max_opset()} (this onnx), got {self.opset}"
            )
        for name in ("calibration_samples", "parity_samples", "eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(name, f"must be a positive integer, got {value}")
        if self.run_dir is not None:
            self.run_dir = Path(self.run_dir)


def max_opset() -> int:
    """The newest ONNX opset the installed onnx package knows."""
    import onnx

    return int(onnx.defs.onnx_opset_version())


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


@dataclass
class ExportResult:
    """Every variant of one export call, in the order written."""

    run_dir: Path
    picked_automatically: bool
    target: str
    variants: list[VariantResult] = field(default_factory=list)


@dataclass
class _Job:
    """State shared by the variants of one export: run facts, encoded texts, fp32 reference logits."""

    cfg: ExportConfig
    run: RunFolder
    preset: str
    init: str
    quirks: ArchQuirks
    max_length: int
    source_sha256: str
    target: str
    step: Step
    encoder: Encoder
    id2label: dict[int, str]
    eval_texts: list[str] = field(default_factory=list)
    eval_labels: Any = None
    fp32_logits: Any = None
    fp32_accuracy: float | None = None
    fp32_size_mb: float = 0.0
    kept: dict[str, runs.VariantManifest] = field(default_factory=dict)  # variants made as requested
    plain: Path | None = None  # the unfused fp32 graph, exported once for the schemes that start from it

    @property
    def checkpoint(self) -> Path:
        return self.run.checkpoint

    def variant_dir(self, name: str) -> Path:
        return self.run.variant_dir(name)


def export(cfg: ExportConfig, on_step: Step | None = None) -> ExportResult:
    """Export a run's checkpoint to ONNX fp32 (checked against PyTorch), then each requested scheme.

    Args:
        cfg: what to export; `cfg.run_dir=None` picks the most recent run under artifacts/.
        on_step: called with a one-line description of each step (the CLI prints them).

    Returns:
        The variants written, each with size, parity / agreement and validation accuracy against fp32.
    """
    run, picked = RunFolder.resolve(cfg.run_dir)
    run.require_complete()
    runs.check_writable_dir(run.onnx_dir, None)
    onnx_existed = run.onnx_dir.exists()
    with run.lock("export"), _remove_if_left_empty(run.onnx_dir, onnx_existed):
        _remove_leftovers(run)
        job = _start_job(cfg, run, on_step or (lambda _msg: None))
        result = ExportResult(run.path, picked, job.target)
        schemes = [s for s in cfg.schemes if s != "none"]
        _refuse_existing(job, schemes)
        try:
            with _threads(cfg.threads):
                _load_eval_texts(job)
                result.variants.append(_export_fp32(job))
                for name in schemes:
                    kept = _kept(job, name)
                    result.variants.append(kept or _export_scheme(job, q.get_scheme(name)))
        finally:
            if job.plain is not None:
                shutil.rmtree(job.plain.parent.parent, ignore_errors=True)
        return result


@contextlib.contextmanager
def _remove_if_left_empty(folder: Path, existed: bool) -> Iterator[None]:
    """Remove `folder` when this export created it and ended without writing any variant into it."""
    try:
        yield
    finally:
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _remove_leftovers(run: RunFolder) -> None:
    """Remove the temporary folders of an export killed outright (the lock says none is running)."""
    if run.onnx_dir.is_dir():
        for p in run.onnx_dir.iterdir():
            if runs.is_temporary(p):  # never a hidden folder of the user's
                shutil.rmtree(p, ignore_errors=True)


def _start_job(cfg: ExportConfig, run: RunFolder, step: Step) -> _Job:
    from edgefn.engines.reference import checkpoint_encoder

    _check_checkpoint(run.checkpoint)
    run.verify_checkpoint()
    ft = run.read_finetune_config()
    if ft.preset is None:
        raise EdgefnError(f'{run.finetune_config} has no "preset"; re-run `edgefn finetune`')
    init = ft.init or "pretrained"
    target = cfg.target or q.detect_target()
    step(f"run {run.path} (preset {ft.preset}, {init}); int8 target {target}")
    max_length = ft.max_length or 128
    checkpoint_config = runs.read_optional_json(run.checkpoint / runs.MODEL_CONFIG)
    return _Job(
        cfg,
        run,
        ft.preset,
        init,
        quirks_for(ft.preset, checkpoint_config.get("model_type")),
        max_length,
        runs.sha256_dir(run.checkpoint),
        target,
        step,
        checkpoint_encoder(run.checkpoint, max_length),
        id2label_of(checkpoint_config, str(run.checkpoint / runs.MODEL_CONFIG)),
    )


def _check_checkpoint(checkpoint: Path) -> None:
    if not checkpoint.is_dir():
        raise EdgefnError(f"no checkpoint folder {checkpoint}; run `edgefn finetune` first")
    missing = [] if (checkpoint / runs.MODEL_CONFIG).is_file() else [runs.MODEL_CONFIG]
    if not any((checkpoint / f).is_file() for f in _WEIGHT_FILES):
        missing.append("model weights (model.safetensors or pytorch_model.bin)")
    if not any((checkpoint / f).is_file() for f in _TOKENIZER_FILES):
        missing.append("tokenizer files (tokenizer.json or vocab.txt)")
    if missing:
        raise EdgefnError(f"incomplete checkpoint {checkpoint}: missing {', '.join(missing)}")


def _request(job: _Job, variant: str) -> dict[str, Any]:
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
    if variant == "int8-dynamic":
        request["recipe"] = q.dynamic_recipe(job.target)
    return request


def _refuse_existing(job: _Job, schemes: list[str]) -> None:
    """Refuse before any work when a variant exists that was made otherwise (unless overwrite); one made
    with the same request is kept (`job.kept`), so the same command re-run after an interruption carries on.
    A damaged variant (a file no longer matching its recorded hash) is refused with that reason."""
    if job.cfg.overwrite:  # every folder to replace is checked now, before the first one is replaced
        for name in [FP32, *schemes]:
            outputs.check_output_dir(
                job.variant_dir(name), overwrite=True, owned=runs.is_manifested_dir, kind="variant folder"
            )
        return
    existing = [n for n in [FP32, *schemes] if job.variant_dir(n).exists()]
    manifests = {n: runs.verify_variant(job.variant_dir(n)) for n in existing}
    job.kept = {n: m for n, m in manifests.items() if m.request == _request(job, n)}
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


def _kept(job: _Job, name: str) -> VariantResult | None:
    """The existing variant `name` when it is kept (same request, not --overwrite), else None."""
    if name not in job.kept:
        return None
    folder = job.variant_dir(name)
    job.step(f"{name}: kept {folder} (same checkpoint and settings; --overwrite re-exports it)")
    return _variant_result(folder, job.kept[name])


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- texts and scoring ------------------------------------------------------------------------------------


def _load_eval_texts(job: _Job) -> None:
    import numpy as np

    val = job.run.read_split("validation")
    if job.run.split_file("calibration").is_file():
        job.run.read_split("calibration")  # a damaged file is refused now, not after the fp32 export
    n = len(val) if job.cfg.eval_samples is None else min(job.cfg.eval_samples, len(val))
    if n == 0:
        raise EdgefnError(f"{job.run.split_file('validation')} is empty: nothing to check parity on")
    job.eval_labels = np.asarray(val.labels[:n])
    job.eval_texts = val.texts[:n]


def _onnx_logits(
    job: _Job, model: Path, texts: list[str] | None = None, provider: str = CPU, precision: str = "fp32"
) -> Any:
    """Logits of a model file through the runtime's Classifier, on the checkpoint's tokens."""
    clf = Classifier.for_model_file(model, job.encoder, job.id2label, provider, job.cfg.threads, precision)
    return clf.predict_logits(job.eval_texts if texts is None else texts)


def _torch_logits(job: _Job, texts: list[str]) -> Any:
    """Logits of the fine-tuned checkpoint through the PyTorch reference path, on the same tokens."""
    from edgefn.engines.reference import TorchRunner, load_checkpoint_model

    runner = TorchRunner(load_checkpoint_model(job.checkpoint), "cpu")
    return Classifier(runner, job.encoder, job.id2label).predict_logits(texts)


def _compare(logits: Any, reference: Any) -> dict[str, float]:
    import numpy as np

    diff = np.abs(logits - reference)
    agree = float((logits.argmax(1) == reference.argmax(1)).mean())
    return {
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "agreement": agree,
    }


def _accuracy(job: _Job, logits: Any) -> float:
    return float((logits.argmax(1) == job.eval_labels).mean())


# --- fp32 -------------------------------------------------------------------------------------------------


def _export_fp32(job: _Job) -> VariantResult:
    folder = job.variant_dir(FP32)
    kept = _kept(job, FP32)
    if kept is None:
        with (
            runs.atomic_dir(
                folder, overwrite=job.cfg.overwrite, owned=runs.is_manifested_dir, kind="variant folder"
            ) as tmp,
            disk_faults(folder),
        ):
            job.step(f"fp32: exporting {job.checkpoint} with Optimum (text-classification)")
            opset = _optimum_export(job, tmp)
            optimize = _optimize(job, tmp)
            parity = _check_parity(job, tmp / runs.ONNX_FILE)
            _score_fp32(job, tmp / runs.ONNX_FILE)
            manifest = _manifest(
                job,
                tmp,
                FP32,
                FP32,
                [CPU],
                parity,
                job.fp32_accuracy,
                opset=opset,
                optimize=optimize,
                notes=optimize.get("notes", []),
            )
            runs.write_json(tmp / runs.EXPORT_MANIFEST, manifest)
        return _variant_result(folder, manifest)
    _score_fp32(job, folder / runs.ONNX_FILE)
    kept.validation_accuracy = job.fp32_accuracy  # on this export's validation texts, as the deltas are
    return kept


def _score_fp32(job: _Job, model: Path) -> None:
    """fp32's validation logits, accuracy and size: the reference of every quantized variant."""
    job.fp32_logits = _onnx_logits(job, model)
    job.fp32_accuracy = _accuracy(job, job.fp32_logits)
    job.fp32_size_mb = runs.file_size_mb(model)


def _plain_fp32(job: _Job) -> Path:
    """The fp32 graph as Optimum exports it, before any --optimize fusion: exported on first use into a hidden
    work folder of the onnx folder (removed when the export ends, or by the next export if killed)."""
    if job.plain is None:
        work = Path(tempfile.mkdtemp(prefix=".plain-", dir=job.run.onnx_dir))
        job.plain = work / "plain" / runs.ONNX_FILE  # set first: export() removes the folder however it ends
        job.step("fp32: exporting the plain (unfused) graph the quantizers start from")
        _optimum_export(job, job.plain.parent)
    return job.plain


def _optimum_export(job: _Job, out: Path) -> int:
    return export_plain_onnx(job.checkpoint, out, job.cfg.opset)


def export_plain_onnx(checkpoint: Path, out: Path, opset: int | None = None) -> int:
    """Optimum's text-classification export of a checkpoint into `out` (model.onnx, config, tokenizer);
    returns the opset written."""
    import warnings

    import onnx
    import torch
    from optimum.exporters.onnx import main_export

    from edgefn.engines.reference import check_weights, load_error

    check_weights(checkpoint)
    try:
        with warnings.catch_warnings():
            # torch.jit's tracer warns about constants it records; the parity check is what tells
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            main_export(
                str(checkpoint),
                out,
                task="text-classification",
                opset=opset,
                do_validation=False,
                library_name="transformers",
                local_files_only=True,
                device="cpu",
            )
    except ValueError as e:  # Optimum's refusals: an opset too old for the architecture, an unknown model
        raise EdgefnError(f"Optimum cannot export {checkpoint}: {str(e).splitlines()[0]}") from None
    except (OSError, RuntimeError, ImportError) as e:  # weights that load in no framework installed here
        if isinstance(e, OSError) and e.errno is not None:
            raise  # a fault of the machine (a full disk), not of the weights: one line, exit 1
        raise EdgefnError(f"Optimum cannot load {checkpoint}: {load_error(e)}") from None
    if not (out / runs.ONNX_FILE).is_file():
        raise EdgefnError(f"Optimum did not write {runs.ONNX_FILE} for {checkpoint}")
    return int(
        next(
            o.version
            for o in onnx.load(str(out / runs.ONNX_FILE), load_external_data=False).opset_import
            if o.domain in ("", "ai.onnx")
        )
    )


def _optimize(job: _Job, folder: Path) -> dict[str, Any]:
    """Apply ORTOptimizer at the requested (or preset default) level where the architecture supports it."""
    level = job.cfg.optimize or job.quirks.default_optimize
    record: dict[str, Any] = {"requested": job.cfg.optimize, "applied": None, "notes": []}
    if level is None or level == "none":
        return record
    if not job.quirks.optimizer_supported:
        record["skipped"] = f"{job.preset}: " + (job.quirks.notes[0] if job.quirks.notes else "not supported")
        record["notes"].append(f"--optimize {level} skipped ({record['skipped']})")
        job.step(f"fp32: optimize {level} skipped: {record['skipped']}")
        return record
    if job.quirks.avoid_fusion and level != "O1":
        record["notes"].append(
            f"{level} fusion on {job.preset} unshares the shared layers and grows the file"
        )
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    job.step(f"fp32: ONNX Runtime graph optimisation {level}")
    save_dir = folder.parent / f".{folder.name}.optimized"
    try:
        with disk_faults(folder):
            optimizer = ORTOptimizer.from_pretrained(folder, file_names=[runs.ONNX_FILE])
            optimizer.optimize(AutoOptimizationConfig.with_optimization_level(level), save_dir)
        shutil.move(str(next(save_dir.glob("*.onnx"))), folder / runs.ONNX_FILE)
    except NotImplementedError as e:  # architectures Optimum does not know
        record["skipped"] = str(e).split(".")[0]
        record["notes"].append(f"--optimize {level} skipped ({record['skipped']})")
        return record
    finally:
        shutil.rmtree(save_dir, ignore_errors=True)
    record["applied"] = level
    return record


def _check_parity(job: _Job, model: Path) -> dict[str, Any]:
    n = min(job.cfg.parity_samples, len(job.eval_labels))
    texts = job.eval_texts[:n]
    got = _compare(_onnx_logits(job, model, texts), _torch_logits(job, texts))
    parity = {
        "reference": "pytorch",
        "samples": n,
        "atol": job.cfg.parity_atol,
        **got,
        "passed": got["max_abs_logit_diff"] <= job.cfg.parity_atol and got["agreement"] == 1.0,
    }
    job.step(
        f"fp32: parity vs PyTorch on {n} validation texts: max |logit diff| "
        f"{got['max_abs_logit_diff']:.2e}, agreement {got['agreement']:.1%}"
    )
    if not parity["passed"]:
        raise EdgefnError(
            f"fp32 ONNX does not match PyTorch on {n} validation texts: max |logit diff| "
            f"{got['max_abs_logit_diff']:.3g} (allowed {job.cfg.parity_atol:g}), prediction "
            f"agreement {got['agreement']:.1%} (required 100%); nothing was written"
        )
    return parity


# --- quantized variants -----------------------------------------------------------------------------------


def _export_scheme(job: _Job, scheme: q.QuantScheme) -> VariantResult:
    folder, fp32 = job.variant_dir(scheme.name), job.variant_dir(FP32)
    assert scheme.apply is not None
    with (
        runs.atomic_dir(
            folder, overwrite=job.cfg.overwrite, owned=runs.is_manifested_dir, kind="variant folder"
        ) as tmp,
        tempfile.TemporaryDirectory(prefix=".work-", dir=folder.parent) as work,
        disk_faults(folder),  # innermost: the disk is checked before the partial files are removed
    ):
        tmp.chmod(0o755)
        job.step(f"{scheme.name}: {scheme.description}")
        ctx = q.SchemeContext(
            fp32 / runs.ONNX_FILE,
            tmp,
            Path(work),
            job.target,
            job.quirks,
            lambda: _calibration_inputs(job, fp32 / runs.ONNX_FILE),
            job.cfg.calibration_method,
            lambda: _plain_fp32(job),
        )
        out = scheme.apply(ctx)
        copy_model_files(fp32, tmp)
        notes = list(out.notes)
        precision = str(out.settings.get("precision", "fp32"))
        logits, providers = _score_variant(job, scheme, runs.model_file(tmp), notes, precision)
        parity = {
            "reference": "fp32 onnx",
            "samples": len(job.eval_labels),
            **_compare(logits, job.fp32_logits),
        }
        if scheme.name == "int8-dynamic" and job.cfg.saturation_check and job.target in ("avx2", "avx512"):
            out.settings["saturation_check"] = _saturation_check(job, ctx, out, parity)
        accuracy = _accuracy(job, logits)
        manifest = _manifest(
            job,
            tmp,
            scheme.name,
            scheme.name,
            list(scheme.execution_providers),
            parity,
            accuracy,
            settings=out.settings,
            runtime=out.settings.get("runtime", "onnxruntime"),
            precision=precision,
            graph_passes=out.graph_passes,
            nodes_kept_float=out.nodes_kept_float,
            notes=notes,
            measured_on=providers,
        )
        runs.write_json(tmp / runs.EXPORT_MANIFEST, manifest)
    job.step(
        f"{scheme.name}: {manifest.size_mb:.2f} MB ({manifest.size_ratio_to_fp32:.0%} of fp32), "
        f"agreement with fp32 {parity['agreement']:.1%}"
    )
    return _variant_result(folder, manifest)


def _score_variant(
    job: _Job, scheme: q.QuantScheme, model: Path, notes: list[str], precision: str = "fp32"
) -> tuple[Any, list[str]]:
    """Validation logits; CUDA-only variants are scored on CPU when no CUDA provider is present; OpenVINO
    variants by OpenVINO's runtime in their precision."""
    if model.suffix == ".xml":
        return _onnx_logits(job, model, precision=precision), [OPENVINO]
    available = available_providers()
    providers = [p for p in scheme.execution_providers if p in available] or [CPU]
    if CUDA in scheme.execution_providers and CUDA not in available:
        notes.append(
            f"{scheme.name} is meant for CUDAExecutionProvider, which is not available here: accuracy was "
            "checked on CPU; benchmark it on a CUDA machine"
        )
        job.step(
            f"{scheme.name}: no CUDA here: exported and checked on CPU; it can only be benchmarked on CUDA"
        )
    return _onnx_logits(job, model, provider=providers[0]), providers


def _saturation_check(
    job: _Job, ctx: q.SchemeContext, out: q.SchemeOutput, chosen: dict[str, Any]
) -> dict[str, Any]:
    """Measure the saturation-prone u8/s8 full-range setting, and u8/u8, against the target's choice,
    quantizing the same prepared graph as the scheme did."""
    model = out.quantized_from
    assert model is not None, "int8-dynamic records the graph it quantized"
    setting = q.get_target(job.target)
    record: dict[str, Any] = {
        "chosen": {k: chosen[k] for k in ("agreement", "mean_abs_logit_diff", "max_abs_logit_diff")}
    }
    for other in (q.SATURATION_PRONE, q.SATURATION_FREE_ALTERNATIVE):
        if (other.weights, other.reduce_range) == (setting.weights, setting.reduce_range):
            continue
        alt, _ = q.quantize_dynamic_file(model, ctx.work_dir / other.name, job.target, other)
        record[other.name] = _compare(_onnx_logits(job, alt), job.fp32_logits)
    job.step(
        f"int8-dynamic: chosen {setting.weights} weights, reduce_range={setting.reduce_range}: mean |logit diff| "
        f"{chosen['mean_abs_logit_diff']:.4f}, agreement {chosen['agreement']:.1%}; "
        + "; ".join(
            f"{name}: {r['mean_abs_logit_diff']:.4f}, {r['agreement']:.1%}"
            for name, r in record.items()
            if name != "chosen"
        )
    )
    return record


def _calibration_inputs(job: _Job, model: Path) -> dict[str, list[list[int]]]:
    return calibration_inputs(job.run, job.encoder, job.cfg.calibration_samples, graph_input_names(model))


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


def _manifest(
    job: _Job,
    folder: Path,
    variant: str,
    scheme: str,
    providers: list[str],
    parity: dict[str, Any],
    accuracy: float | None,
    **extra: Any,
) -> runs.VariantManifest:
    record = runs.model_record(folder)
    size = record["size_mb"]
    opset = extra.pop("opset", None)
    if opset is None:
        opset = runs.read_variant_manifest(job.variant_dir(FP32)).opset
    return runs.VariantManifest(
        variant=variant,
        scheme=scheme,
        preset=job.preset,
        init=job.init,
        model_sha256=record["model_sha256"],
        files_sha256=record["files_sha256"],
        source_checkpoint_sha256=job.source_sha256,
        request=_request(job, variant),
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
        versions=library_versions(),
        **extra,
    )


def _variant_result(folder: Path, m: runs.VariantManifest) -> VariantResult:
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
    )


def _number(value: Any, spec: str) -> str:
    """`value` formatted, or "-" when a kept manifest holds no number there."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return format(value, spec) if ok else "-"


def format_table(result: ExportResult) -> str:
    """A short text table: variant, MB, ratio to fp32, parity / agreement, validation accuracy delta."""
    rows = [("variant", "MB", "x fp32", "parity / agreement", "val acc", "delta (pts)")]
    for v in result.variants:
        check = (
            f"max diff {_number(v.parity.get('max_abs_logit_diff'), '.1e')}"
            if v.parity.get("reference") == "pytorch"
            else f"{_number(v.agreement, '.1%')} agree"
        )
        acc = "-" if v.validation_accuracy is None else f"{v.validation_accuracy:.4f}"
        delta = "-" if v.accuracy_delta_vs_fp32 is None else f"{100 * v.accuracy_delta_vs_fp32:+.2f}"
        rows.append((v.name, f"{v.size_mb:.2f}", f"{v.size_ratio_to_fp32:.2f}", check, acc, delta))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
