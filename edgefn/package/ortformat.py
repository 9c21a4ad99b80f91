"""ORT-format (.ort) files for a minimal ONNX Runtime on a phone: the conversion settings, the conversion, and
the check of each .ort against its .onnx."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.core.errors import EdgefnError
from edgefn.runtime.classifier import Classifier

# Fixed: optimisations are applied now and saved (the Runtime style is for NNAPI / CoreML partitions). Level
# all with target arm: the tool leaves out the NCHWc layout transformer, the one rewrite tied to the converting
# CPU (its block size is 16 on AVX-512, 8 on AVX2: a Fixed amd64 .ort made on an AVX-512 machine fails
# elsewhere); arm also lets QDQ nodes fuse to int8 kernels (session.qdqisint8allowed).
ORT_FORMAT = {"optimization_style": "Fixed", "optimization_level": "all", "target_platform": "arm"}
ORT_FORMAT_WHY = (
    "Fixed: optimisations applied at conversion and saved (Runtime style is for NNAPI / CoreML partitions); "
    "level all with target_platform arm: the NCHWc layout rewrite, tied to the converting x86 CPU's vector "
    "width, is left out, and QDQ nodes may fuse to int8 kernels as on ARM"
)
MIN_ORT_AGREEMENT = 0.995  # a .ort against its .onnx on the same texts and batches
ORT_SUFFIX = ".ort"
OPS_CONFIG_SUFFIX = ".required_operators.config"


def compare_logits(logits: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Rows, argmax agreement and the largest absolute logit difference of two (rows, labels) arrays."""
    return {
        "samples": int(len(reference)),
        "agreement": float((logits.argmax(1) == reference.argmax(1)).mean()),
        "max_abs_logit_diff": float(np.abs(logits - reference).max()),
    }


def convert_to_ort(model: Path, out_dir: Path) -> tuple[Path, Path]:
    """`python -m onnxruntime.tools.convert_onnx_models_to_ort` with ORT_FORMAT: the .ort file and the
    operator config a minimal build takes (`--include_ops_by_config`), in `out_dir`."""
    cmd = [
        sys.executable,
        "-m",
        "onnxruntime.tools.convert_onnx_models_to_ort",
        str(model),
        "--output_dir",
        str(out_dir),
        "--optimization_style",
        ORT_FORMAT["optimization_style"],
        "--target_platform",
        ORT_FORMAT["target_platform"],
    ]
    env = {
        **os.environ,
        "ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL": ORT_FORMAT["optimization_level"],
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    stem = Path(runs.ONNX_FILE).stem
    ort_file, config = out_dir / f"{stem}{ORT_SUFFIX}", out_dir / f"{stem}{OPS_CONFIG_SUFFIX}"
    if proc.returncode != 0 or not ort_file.is_file() or not config.is_file():
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise EdgefnError(
            f"ORT-format conversion of {model} failed: {lines[-1] if lines else proc.returncode}"
        )
    # The tool names the path it wrote to (a temporary folder); keep the file name only.
    config.write_text(
        config.read_text(encoding="utf-8").replace(str(ort_file), ort_file.name), encoding="utf-8"
    )
    return ort_file, config


def convert_and_check(
    model: Path, onnx_clf: Classifier, out_dir: Path, texts: list[str], threads: int | None = None
) -> dict[str, Any]:
    """Convert `model` to ORT format in `out_dir` and check the .ort against `onnx_clf` (the classifier of
    `model`) on `texts`, same tokens and batches; an .ort agreeing below MIN_ORT_AGREEMENT is refused.

    Returns:
        file and ops_config (names inside out_dir), sizes, the operator lines, and the check.
    """
    ort_file, config = convert_to_ort(model, out_dir)
    ort_clf = Classifier.for_model_file(ort_file, onnx_clf.encoder, onnx_clf.id2label, threads=threads)
    check = compare_logits(ort_clf.predict_logits(onnx_clf.clean(texts)), onnx_clf.predict_logits(texts))
    if check["agreement"] < MIN_ORT_AGREEMENT:
        raise EdgefnError(
            f"{ort_file} agrees {check['agreement']:.1%} with {model} on {check['samples']} texts "
            f"(< {MIN_ORT_AGREEMENT:.1%})"
        )
    return {
        "file": ort_file.name,
        "ops_config": config.name,
        "size_mb": runs.file_size_mb(ort_file),
        "onnx_size_mb": runs.file_size_mb(model),
        "operators": [ln for ln in config.read_text(encoding="utf-8").splitlines() if ln and ln[0] != "#"],
        "check_against_onnx": check,
    }
