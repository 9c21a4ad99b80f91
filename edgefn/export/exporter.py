"""export(cfg) -> ExportResult: Optimum ONNX export, parity against PyTorch, graph optimisation, quantized variants."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core.errors import EdgefnError, disk_faults
from edgefn.core.presets import quirks_for
from edgefn.core.progress import Progress, silent
from edgefn.export import quantize as q
from edgefn.export import schemes
from edgefn.export.budget import read_guard_data
from edgefn.export.config import ExportConfig
from edgefn.export.guard import guard_scheme
from edgefn.export.optimum import export_plain_onnx, optimize_graph
from edgefn.export.variants import (
    FP32,
    ExportJob,
    ExportResult,
    VariantResult,
    accuracy_of,
    build_manifest,
    compare_logits,
    copy_model_files,
    kept_result,
    load_eval_texts,
    model_logits,
    refuse_existing,
    score_variant,
    torch_threads,
    variant_result,
)
from edgefn.runs import RunFolder
from edgefn.runtime import engines
from edgefn.runtime.classifier import Classifier, id2label_of
from edgefn.runtime.engines import LoadRequest
from edgefn.runtime.inference import CPU

_WEIGHT_FILES = (
    runs.SAFETENSORS_WEIGHTS,
    runs.PICKLE_WEIGHTS,
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model")


def export(cfg: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Export a run's checkpoint to ONNX fp32 (checked against PyTorch), then each requested scheme.

    Args:
        cfg: what to export; `cfg.run_dir=None` picks the most recent run under artifacts/.
        progress: called with a one-line description of each step (the CLI prints them).

    Returns:
        The variants written, each with size, parity / agreement and validation accuracy against fp32.
    """
    run, picked = RunFolder.resolve(cfg.run_dir)
    run.require_complete()
    runs.check_writable_dir(run.onnx_dir, None)
    onnx_existed = run.onnx_dir.exists()
    with run.lock("export"), _remove_if_left_empty(run.onnx_dir, onnx_existed):
        _remove_leftovers(run)
        job = _start_job(cfg, run, progress or silent)
        result = ExportResult(run.path, picked, job.target)
        names = [s for s in cfg.schemes if s != "none"]
        guarded = [n for n in names if cfg.max_drop is not None and schemes.get_scheme(n).guard is not None]
        refuse_existing(job, names, [n + runs.GUARDED_SUFFIX for n in guarded])
        read_guard_data(job)
        try:
            with torch_threads(cfg.threads):
                load_eval_texts(job)
                result.variants.append(_export_fp32(job))
                for name in names:
                    scheme = schemes.get_scheme(name)
                    full = kept_result(job, name) or _export_scheme(job, scheme)
                    result.variants.append(full)
                    twin = guard_scheme(job, scheme, full) if name in guarded else None
                    if twin is not None:
                        result.variants.append(twin)
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


def _start_job(cfg: ExportConfig, run: RunFolder, step: Progress) -> ExportJob:
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
    cleaning, note = run.serving_cleaning()
    if cleaning or note:
        step(
            f"serving cleaning, as in training: {', '.join(cleaning) or 'none'}{f' ({note})' if note else ''}"
        )
    job = ExportJob(
        cfg,
        run,
        ft.preset,
        init,
        quirks_for(ft.preset, checkpoint_config.get("model_type")),
        max_length,
        runs.sha256_dir(run.checkpoint),
        target,
        step,
        engines.for_model(run.checkpoint, CPU).encoder_for(run.checkpoint, max_length),
        id2label_of(checkpoint_config, str(run.checkpoint / runs.MODEL_CONFIG)),
    )
    job.cleaning, job.cleaning_note = cleaning, note
    return job


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


def _torch_logits(job: ExportJob, texts: list[str]) -> Any:
    """Logits of the fine-tuned checkpoint, run by the CPU's engine for it (PyTorch), on the same tokens."""
    runner = engines.for_model(job.checkpoint, CPU).load(LoadRequest(job.checkpoint))
    return Classifier(runner, job.encoder, job.id2label).predict_logits(texts)


# --- fp32 -------------------------------------------------------------------------------------------------


def _export_fp32(job: ExportJob) -> VariantResult:
    folder = job.variant_dir(FP32)
    kept = kept_result(job, FP32)
    if kept is None:
        with (
            runs.atomic_dir(
                folder, overwrite=job.cfg.overwrite, owned=runs.is_manifested_dir, kind="variant folder"
            ) as tmp,
            disk_faults(folder),
        ):
            job.step(f"fp32: exporting {job.checkpoint} with Optimum (text-classification)")
            opset = _optimum_export(job, tmp)
            optimize = optimize_graph(tmp, job.cfg.optimize, job.preset, job.quirks, job.step)
            parity = _check_parity(job, tmp / runs.ONNX_FILE)
            _score_fp32(job, tmp / runs.ONNX_FILE)
            manifest = build_manifest(
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
        return variant_result(folder, manifest)
    _score_fp32(job, folder / runs.ONNX_FILE)
    kept.validation_accuracy = job.fp32_accuracy  # on this export's validation texts, as the deltas are
    return kept


def _score_fp32(job: ExportJob, model: Path) -> None:
    """fp32's validation logits, accuracy and size: the reference of every quantized variant."""
    job.fp32_logits = model_logits(job, model)
    job.fp32_accuracy = accuracy_of(job, job.fp32_logits)
    job.fp32_size_mb = runs.file_size_mb(model)


def _optimum_export(job: ExportJob, out: Path) -> int:
    return export_plain_onnx(job.checkpoint, out, job.cfg.opset)


def _check_parity(job: ExportJob, model: Path) -> dict[str, Any]:
    n = min(job.cfg.parity_samples, len(job.eval_labels))
    texts = job.eval_texts[:n]
    got = compare_logits(model_logits(job, model, texts), _torch_logits(job, texts))
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


def _export_scheme(job: ExportJob, scheme: schemes.QuantScheme) -> VariantResult:
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
        ctx = schemes.SchemeContext(
            fp32 / runs.ONNX_FILE,
            tmp,
            Path(work),
            job.target,
            job.quirks,
            job.calibration,
            job.cfg.calibration_method,
            job.plain_fp32,
        )
        out = scheme.apply(ctx)
        copy_model_files(fp32, tmp)
        notes = list(out.notes)
        precision = str(out.settings.get("precision", "fp32"))
        engine = engines.get(scheme.execution_providers[0])  # the engine whose files the scheme wrote
        logits, providers = score_variant(job, scheme, tmp, notes, precision)
        job.logits[scheme.name] = logits
        parity = {
            "reference": "fp32 onnx",
            "samples": len(job.eval_labels),
            **compare_logits(logits, job.fp32_logits),
        }
        if scheme.name == "int8-dynamic" and job.cfg.saturation_check and job.target in ("avx2", "avx512"):
            out.settings["saturation_check"] = _saturation_check(job, ctx, out, parity)
        accuracy = accuracy_of(job, logits)
        manifest = build_manifest(
            job,
            tmp,
            scheme.name,
            scheme.name,
            list(scheme.execution_providers),
            parity,
            accuracy,
            settings=out.settings,
            runtime=engine.runtime,
            precision=precision,
            graph_passes=out.graph_passes,
            nodes_kept_float=out.nodes_kept_float,
            notes=notes,
            measured_on=providers,
            model_files=engine.model_files(tmp),
        )
        runs.write_json(tmp / runs.EXPORT_MANIFEST, manifest)
    job.step(
        f"{scheme.name}: {manifest.size_mb:.2f} MB ({manifest.size_ratio_to_fp32:.0%} of fp32), "
        f"agreement with fp32 {parity['agreement']:.1%}"
    )
    return variant_result(folder, manifest)


def _saturation_check(
    job: ExportJob, ctx: schemes.SchemeContext, out: schemes.SchemeOutput, chosen: dict[str, Any]
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
        record[other.name] = compare_logits(model_logits(job, alt), job.fp32_logits)
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


def _number(value: Any, spec: str) -> str:
    """`value` formatted, or "-" when a kept manifest holds no number there."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return format(value, spec) if ok else "-"


def format_table(result: ExportResult) -> str:
    """A short text table: variant, MB, ratio to fp32, parity / agreement, validation accuracy delta."""
    rows = [("variant", "MB", "x fp32", "parity / agreement", "val acc", "Δacc pts")]
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
