"""Helpers shared by the benchmark scripts: results folder, machine block, test-split scoring, tables."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from edgefn.runs import RunFolder

RESULTS = Path(__file__).resolve().parent / "results"
INT8 = ("int8-dynamic", "int8-static")
ONNX_VARIANTS = ("fp32", *INT8)
# set by a wrapper script (without_amx.py) so that results name the command in full
WRAPPER_VARIABLE = "EDGEFN_BENCHMARK_WRAPPER"


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def command_line() -> str:
    """The command that is running, as a user would type it (with the wrapper it runs under, if any)."""
    wrapper = os.environ.get(WRAPPER_VARIABLE)
    return shlex.join([*(["python", wrapper] if wrapper else []), "python", *sys.argv])


def write_measurement(
    results: Path, stem: str, record: dict[str, Any], title: str, setup: str, table: str
) -> str:
    """Write results/<stem>.json (the record, plus command, time, CPU, versions and the machine state given
    as record["machine"]) and results/<stem>.md (title, command, CPU and `setup`, the table); returns the
    Markdown."""
    import json

    from edgefn.core.environment import cpu_info, describe_cpu, library_versions

    record = {
        "command": command_line(),
        "finished": now(),
        "cpu": cpu_info(),
        "versions": library_versions(),
        **record,
    }
    cpu, machine = record["cpu"], record["machine"]
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    md = "\n".join(
        [
            f"# {title}",
            "",
            f"Command: `{record['command']}` ({record['finished']}); CPU {describe_cpu(cpu)}; "
            f"{setup}; load average {machine['before']['loadavg'][0]} -> {machine['after']['loadavg'][0]}.",
            "",
            table,
            "",
        ]
    )
    (results / f"{stem}.md").write_text(md, encoding="utf-8")
    return md


def score_test_split(
    run_dir: Path,
    variants: tuple[str, ...] = ONNX_VARIANTS,
    threads: int | None = None,
    samples: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Test-split metrics of each ONNX variant with the torch-free edgefn.runtime.classifier.Classifier.

    Args:
        run_dir: a run folder with data/test.jsonl and onnx/<variant>/ folders.
        variants: which variant folders to score (missing ones are skipped).
        threads: ONNX Runtime intra-op threads.
        samples: the first `samples` test rows only (None: all).

    Returns:
        variant -> classification_metrics(...) plus "agreement_with_fp32" where fp32 was scored.
    """
    from edgefn.core.metrics import classification_metrics
    from edgefn.runtime.classifier import Classifier

    run = RunFolder(run_dir)
    test = run.read_split("test")
    texts, labels = test.texts[:samples], test.labels[:samples]
    preds: dict[str, list[int]] = {}
    out: dict[str, dict[str, Any]] = {}
    exported = run.variant_names()
    for name in variants:
        if name not in exported:
            continue
        clf = Classifier.from_folder(run.variant_dir(name), threads=threads, batch_size=32)
        preds[name] = clf.predict_logits(texts).argmax(axis=-1).tolist()
        out[name] = {
            k: v for k, v in classification_metrics(labels, preds[name]).items() if k != "confusion_matrix"
        }
    for name, p in preds.items():
        if "fp32" in preds:
            out[name]["agreement_with_fp32"] = sum(a == b for a, b in zip(p, preds["fp32"])) / max(len(p), 1)
    return out


def verdict(passed: bool | None) -> str:
    """PASS / FAIL, or "not measured" when the number is missing."""
    return "not measured" if passed is None else ("PASS" if passed else "FAIL")


def fmt(value: Any, spec: str = ".2f") -> str:
    """A number formatted with `spec`, "-" for missing values."""
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, int | float) else str(value)
