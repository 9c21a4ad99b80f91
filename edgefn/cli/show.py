"""`edgefn show`: a run folder's stages, variants and headline numbers, read from what each stage wrote."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import click

from edgefn import runs
from edgefn.cli.errors import user_errors
from edgefn.cli.options import use
from edgefn.core.errors import EdgefnError
from edgefn.runs import RunFolder

# Bench columns worth a headline, in display order; whichever exist are shown.
BENCH_HEADLINE = (
    "variant",
    "provider",
    "status",
    "batch_size",
    "seq_len",
    "input_mode",
    "latency_p50_ms",
    "latency_p90_ms",
    "throughput_samples_per_s",
    "accuracy",
    "accuracy_delta",
    "peak_rss_mb",
)
MAX_BENCH_ROWS = 12


def _json_or_none(path: Path) -> dict[str, Any] | None:
    """A JSON object file; None when absent; {"error": ...} when unreadable or not an object (show never
    fails on what another version, or a hand edit, left in a run folder)."""
    if not path.is_file():
        return None
    try:
        value = runs.parse_json(runs.read_text(path), path)
    except EdgefnError:  # not JSON, nested too deeply, not UTF-8, not a regular file (nothing blocks)
        return {"error": f"unreadable {path.name}"}
    return value if isinstance(value, dict) else {"error": f"{path.name} is not a JSON object"}


def _obj(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else {} (a field of an unexpected shape shows as absent)."""
    return value if isinstance(value, dict) else {}


def _finetune_config(run: RunFolder) -> runs.FinetuneManifest | None:
    """finetune_config.json; None when absent, unreadable or of another shape (as `_json_or_none`)."""
    try:
        return run.read_finetune_config() if run.finetune_config.is_file() else None
    except EdgefnError:
        return None


def _variant_manifest(folder: Path) -> runs.VariantManifest | None:
    """A variant's export.json; None when absent, unreadable or of another shape (as `_json_or_none`)."""
    try:
        return runs.read_variant_manifest(folder)
    except EdgefnError:
        return None


def _describe_finetune(run: RunFolder) -> dict[str, Any] | None:
    config = _finetune_config(run)
    metrics = _json_or_none(run.metrics) or {}
    if config is None and not metrics:
        return None
    config = config or runs.FinetuneManifest()
    test = _obj(metrics.get("test"))
    data = _obj(metrics.get("data"))
    return {
        "preset": config.preset or metrics.get("preset"),
        "init": config.init or metrics.get("init"),
        "data": data.get("name") or config.data,
        "data_fingerprint": data.get("fingerprint"),
        "max_length": config.max_length,
        "test_accuracy": test.get("accuracy", metrics.get("test_accuracy")),
        "test_f1_weighted": test.get("f1_weighted", metrics.get("test_f1")),
        "test_rows": test.get("n"),
        "parameters": metrics.get("parameters"),
        "checkpoint_mb": metrics.get("checkpoint_mb"),
        "complete": run.status() == "complete",
    }


def _describe_variant(folder: Path) -> dict[str, Any]:
    read = _variant_manifest(folder)
    manifest = read or runs.VariantManifest()
    model = folder / runs.ONNX_FILE
    size = manifest.size_mb or (runs.file_size_mb(model) if model.is_file() else None)
    return {
        "variant": manifest.variant or folder.name,
        "scheme": manifest.scheme,
        "size_mb": size,
        "validation_accuracy": manifest.validation_accuracy,
        "accuracy_delta_vs_fp32": manifest.accuracy_delta_vs_fp32,
        "target": manifest.target,
        "execution_providers": manifest.execution_providers,
        "hash": runs.hash_status(folder, read),
    }


def _flatten_result(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows from one bench result: its own scalar keys, plus accuracy and one row per measurement."""
    base = {k: v for k, v in r.items() if not isinstance(v, (dict, list))}
    acc = r.get("accuracy")
    if isinstance(acc, dict):
        base["accuracy"] = acc.get("accuracy")
        base["accuracy_delta"] = _obj(acc.get("delta")).get("accuracy")
    rows = []
    measurements = r.get("measurements")
    for m in measurements if isinstance(measurements, list) else []:
        if not isinstance(m, dict):
            continue
        lat = _obj(m.get("latency"))
        row = {**base, "input_mode": m.get("mode"), "batch_size": m.get("batch_size")}
        row.update(
            {k: lat.get(k.removeprefix("latency_")) for k in BENCH_HEADLINE if k.startswith("latency_")}
        )
        row["throughput_samples_per_s"] = lat.get("throughput_samples_per_s")
        rows.append(row)
    return rows or [base]


def _bench_rows(run: RunFolder) -> list[dict[str, Any]]:
    """Flat result rows: report.csv when present (one row per variant x provider x batch x mode), else
    report.json read leniently (reports of older versions, or partial ones, still show what they hold)."""
    if run.bench_file("csv").is_file():
        with open(run.bench_file("csv"), newline="", encoding="utf-8") as f:
            return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(f)]
    report = _json_or_none(run.bench_file("json"))
    if not isinstance(report, dict):
        return []
    results = report.get("rows") or report.get("results")
    if not isinstance(results, list):
        return []
    return [row for r in results if isinstance(r, dict) for row in _flatten_result(r)]


def _describe_bench(run: RunFolder) -> dict[str, Any] | None:
    bench_dir = run.bench_dir
    if not bench_dir.is_dir():
        return None
    rows = _bench_rows(run)
    batch_one = [r for r in rows if str(r.get("batch_size") or "1") == "1"] or rows
    headline = [{k: r[k] for k in BENCH_HEADLINE if r.get(k) is not None} for r in batch_one[:MAX_BENCH_ROWS]]
    return {
        "rows_total": len(rows),
        "headline": [h for h in headline if h],
        "files": sorted(p.name for p in bench_dir.iterdir() if p.is_file()),
    }


def describe_run(run_dir: Path) -> dict[str, Any]:
    """Everything `edgefn show` reports about a run folder, as a JSON-ready dict.

    Args:
        run_dir: the run folder.

    Returns:
        {"run_dir", "finetune" (or None), "variants" (list), "incomplete_variants", "bench" (or None)}.
    """
    run = RunFolder(run_dir)
    return {
        "run_dir": str(run.path),
        "finetune": _describe_finetune(run),
        "variants": [_describe_variant(p) for p in run.variants()],
        "incomplete_variants": run.incomplete_variants(),
        "bench": _describe_bench(run),
    }


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    if spec and not isinstance(value, bool):
        try:
            return format(float(value), spec)
        except (TypeError, ValueError):
            pass
    return str(value)


def _bench_spec(key: str) -> str:
    if key.startswith("accuracy"):
        return "+.4f" if key.endswith("delta") else ".4f"
    return ".2f" if key.endswith(("_ms", "_mb", "_per_s")) else ""


def _format_finetune(ft: dict[str, Any] | None) -> list[str]:
    if ft is None:
        return ["finetune: not run"]
    setup = (
        f"  preset {_fmt(ft['preset'])}, init {_fmt(ft['init'])}, data {_fmt(ft['data'])}, "
        f"max_length {_fmt(ft['max_length'])}"
    )
    if not ft["complete"]:
        return ["finetune (no metrics.json: unfinished or interrupted)", setup]
    return [
        "finetune",
        setup,
        f"  test accuracy {_fmt(ft['test_accuracy'], '.4f')}, F1 (weighted) {_fmt(ft['test_f1_weighted'], '.4f')}"
        f" on {_fmt(ft['test_rows'])} rows",
    ]


def _format_variants(variants: list[dict[str, Any]], incomplete: list[str]) -> list[str]:
    if not variants and not incomplete:
        return ["export: not run"]
    lines = ["export", f"  {'variant':<14} {'MB':>8} {'scheme':<14} {'val acc':>8} {'delta':>8}  hash"]
    for v in variants:
        delta = v["accuracy_delta_vs_fp32"]
        lines.append(
            f"  {v['variant']:<14} {_fmt(v['size_mb'], '.2f'):>8} {_fmt(v['scheme']):<14} "
            f"{_fmt(v['validation_accuracy'], '.4f'):>8} {_fmt(delta, '+.4f'):>8}  {v['hash']}"
        )
    lines += [f"  {name:<14} incomplete (no export.json)" for name in incomplete]
    return lines


def _format_bench(bench: dict[str, Any] | None) -> list[str]:
    if bench is None:
        return ["bench: not run"]
    if not bench["headline"]:
        return [f"bench: no result rows found (files: {', '.join(bench['files']) or 'none'})"]
    keys = [k for k in BENCH_HEADLINE if any(k in h for h in bench["headline"])]
    cells = [keys] + [[_fmt(h.get(k), _bench_spec(k)) for k in keys] for h in bench["headline"]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    lines = [f"bench ({bench['rows_total']} rows; batch size 1 shown)"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return lines


def format_run(d: dict[str, Any]) -> str:
    """Human-readable text of `describe_run`'s dict."""
    lines = [f"run {d['run_dir']}"]
    lines += _format_finetune(d["finetune"])
    lines += _format_variants(d["variants"], d["incomplete_variants"])
    lines += _format_bench(d["bench"])
    return "\n".join(lines)


@click.command()
@use(("--run-dir", "--json"))
@user_errors
def show(run_dir: Path | None, as_json: bool) -> None:
    """Print a run folder's stages, variants and headline numbers (default: the most recent run)."""
    import json

    run, picked = runs.resolve_run_dir(run_dir)
    if picked:
        click.echo(f"(most recent run: {run})", err=True)
    d = describe_run(run)
    click.echo(json.dumps(d, indent=2) if as_json else format_run(d))
