"""The mobile target: ORT-format (.ort) files and operator configs for a minimal ONNX Runtime on a phone."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from edgefn import runs
from edgefn.core.errors import EdgefnError
from edgefn.package import ortformat
from edgefn.package.targets import PackageJob, PackageTarget, out_of_domain, register_target, run_record
from edgefn.runtime import engines
from edgefn.runtime.inference import CPU


def write_mobile(job: PackageJob, tmp: Path) -> runs.PackageManifest:
    names = list(job.variants or job.manifests)
    if not job.variants:
        for n in [n for n in names if CPU not in (job.manifests[n].execution_providers or [CPU])]:
            job.notes.append(
                f"{n} left out: it is meant for {', '.join(job.manifests[n].execution_providers or [])}"
            )
            names.remove(n)
    if not names:
        raise EdgefnError(f"no CPU variant in {job.run.onnx_dir} to convert for a phone")
    src = job.run.variant_dir(names[0])
    for file in (runs.MODEL_CONFIG, runs.TOKENIZER_FILE, runs.TOKENIZER_CONFIG):
        if (src / file).is_file():
            shutil.copy2(src / file, tmp / file)
    models = []
    for name in names:
        settings = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ortformat.ORT_FORMAT.items())
        job.step(f"mobile: {name}: converting to ORT format ({settings})")
        model, onnx_clf = job.run.variant_dir(name) / runs.ONNX_FILE, job.classifier(name, batch_size=32)
        record = ortformat.convert_and_check(model, onnx_clf, tmp / name, job.texts, job.threads)
        job.step(
            f"mobile: {name}: .ort agrees {record['check_against_onnx']['agreement']:.1%} with the .onnx"
        )
        record["file"] = f"{name}/{record['file']}"  # paths inside the package folder
        record["ops_config"] = f"{name}/{record['ops_config']}"
        record["validation_accuracy"] = job.manifests[name].validation_accuracy
        models.append({"variant": name, **record})
    return runs.PackageManifest(
        edgefn_package=1,
        target="mobile",
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        model=run_record(job.run),
        ort_format={**ortformat.ORT_FORMAT, "why": ortformat.ORT_FORMAT_WHY},
        models=models,
        cleaning=job.cleaning(names),  # the app applies them before tokenizing (edgefn.core.cleaning)
        out_of_domain=out_of_domain(job.run),
        notes=job.notes,
        versions=engines.library_versions(),
    )


register_target(
    PackageTarget(
        "mobile",
        write_mobile,
        ".onnx",
        lambda folder: (
            "minimal ONNX Runtime build: --include_ops_by_config <variant>/model.required_operators.config"
        ),
    )
)
