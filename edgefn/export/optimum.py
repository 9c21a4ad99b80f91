"""Optimum's side of export: a checkpoint's ONNX export, and ONNX Runtime's graph optimisation at a level."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core.errors import EdgefnError, disk_faults
from edgefn.core.presets import ArchQuirks
from edgefn.core.progress import dropping_log_messages

# Optimum's main_export loads the checkpoint with `torch_dtype=`, which this transformers deprecates in favour
# of `dtype`; the load is Optimum's own, so its one message is dropped, nothing else.
_OPTIMUM_NOISE = (
    ("transformers.modeling_utils", "transformers.configuration_utils"),
    ("`torch_dtype` is deprecated",),
)


def export_plain_onnx(checkpoint: Path, out: Path, opset: int | None = None) -> int:
    """Optimum's text-classification export of a checkpoint into `out` (model.onnx, config, tokenizer);
    returns the opset written."""
    import warnings

    import onnx
    import torch
    from optimum.exporters.onnx import main_export

    from edgefn.engines.pytorch import check_weights, load_error

    check_weights(checkpoint)
    try:
        with warnings.catch_warnings(), dropping_log_messages(*_OPTIMUM_NOISE):
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


def optimize_graph(
    folder: Path, requested: str | None, preset: str, quirks: ArchQuirks, step: Callable[[str], None]
) -> dict[str, Any]:
    """Apply ORTOptimizer to folder/model.onnx at the requested (or the preset's default) level where the
    architecture supports it; returns what was requested, applied or skipped, with notes."""
    level = requested or quirks.default_optimize
    record: dict[str, Any] = {"requested": requested, "applied": None, "notes": []}
    if level is None or level == "none":
        return record
    if not quirks.optimizer_supported:
        record["skipped"] = f"{preset}: " + (quirks.notes[0] if quirks.notes else "not supported")
        record["notes"].append(f"--optimize {level} skipped ({record['skipped']})")
        step(f"fp32: optimize {level} skipped: {record['skipped']}")
        return record
    if quirks.avoid_fusion and level != "O1":
        record["notes"].append(f"{level} fusion on {preset} unshares the shared layers and grows the file")
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    step(f"fp32: ONNX Runtime graph optimisation {level}")
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
