"""`edgefn show`: what a run folder holds (stages, variants, bench, evals, packages) and what to ship."""

from __future__ import annotations

import csv
import shlex
from pathlib import Path
from typing import Any

import click

from edgefn import runs
from edgefn.bench.writers import CONSOLE_WIDTH, runtime_label, ship_lines, text_table, verdict_table
from edgefn.cli.errors import user_errors
from edgefn.cli.options import use
from edgefn.core.errors import EdgefnError
from edgefn.core.progress import wrap, wrap_line
from edgefn.runs import RunFolder


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
        "warnings": [str(w) for w in metrics.get("warnings") or []],
        "distillation": _obj(metrics.get("distillation") or config.distillation) or None,
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
        "accuracy_delta_vs_fp32": manifest.accuracy_delta_vs_fp32,  # a fraction, as in export.json
        "target": manifest.target,
        "execution_providers": manifest.execution_providers,
        "hash": runs.hash_status(folder, read),
    }


def _flatten_result(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows (report.csv's columns) from one report.json result: its scalar keys, its accuracy and one
    row per measurement."""
    base = {k: v for k, v in r.items() if not isinstance(v, (dict, list))}
    acc = r.get("accuracy")
    if isinstance(acc, dict):
        base["accuracy"] = acc.get("accuracy")
        base["accuracy_delta"] = _obj(acc.get("delta")).get("accuracy")
        base["agreement"] = acc.get("agreement")
    rows = []
    measurements = r.get("measurements")
    for m in measurements if isinstance(measurements, list) else []:
        if not isinstance(m, dict):
            continue
        lat = _obj(m.get("latency"))
        flags = m.get("flags")
        rows.append(
            {
                **base,
                "input_mode": m.get("mode"),
                "batch_size": m.get("batch_size"),
                "latency_p50_ms": lat.get("p50_ms"),
                "flags": "; ".join(map(str, flags)) if isinstance(flags, list) and flags else None,
            }
        )
    return rows or [base]


def _bench_rows(run: RunFolder, report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Flat result rows: report.csv when present (one row per variant x provider x batch x mode), else
    report.json read leniently (reports of older versions, or partial ones, still show what they hold)."""
    if run.bench_file("csv").is_file():
        try:
            with open(run.bench_file("csv"), newline="", encoding="utf-8") as f:
                return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(f)]
        except (OSError, UnicodeDecodeError, csv.Error):
            pass
    results = (report or {}).get("rows") or (report or {}).get("results")
    if not isinstance(results, list):
        return []
    return [row for r in results if isinstance(r, dict) for row in _flatten_result(r)]


def _number(value: Any) -> float | None:
    """A float from a JSON number or a CSV cell; None for anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _bench_targets(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """report.csv's flat rows folded into one row per target (variant x provider), with its p50 per input
    mode and batch size ("fixed b1"): every row of the report, none left out."""
    cases: dict[str, None] = {}
    targets: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row.get("variant"), row.get("provider"), row.get("precision"), _truthy(row.get("peer")))
        delta = _number(row.get("accuracy_delta"))
        target = targets.setdefault(
            key,
            {
                "variant": str(row.get("variant") or "?"),
                "provider": str(row.get("provider") or "?"),
                "precision": row.get("precision"),
                "peer": key[3],
                "status": row.get("status"),
                "reason": row.get("reason"),
                "size_mb": _number(row.get("size_mb")),
                "accuracy": _number(row.get("accuracy")),
                "accuracy_delta_pts": None if delta is None else 100 * delta,
                "agreement": _number(row.get("agreement")),
                "p50_ms": {},
                "flagged": [],
            },
        )
        for field, value in (
            ("accuracy", _number(row.get("accuracy"))),
            ("size_mb", _number(row.get("size_mb"))),
        ):
            if target[field] is None:  # a row that did not run has blank figures; its siblings may not
                target[field] = value
        if target["accuracy_delta_pts"] is None and delta is not None:
            target["accuracy_delta_pts"] = 100 * delta
        mode, batch = row.get("input_mode"), row.get("batch_size")
        if mode is None or batch is None:
            continue
        case = f"{mode} b{batch}"
        cases[case] = None
        target["p50_ms"][case] = _number(row.get("latency_p50_ms"))
        if row.get("flags"):
            target["flagged"].append(case)
    return list(cases), list(targets.values())


def _verdict(report: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    verdict = (report or {}).get("verdict")
    return [v for v in verdict if isinstance(v, dict)] if isinstance(verdict, list) else None


def _describe_bench(run: RunFolder) -> dict[str, Any] | None:
    if not run.bench_dir.is_dir():
        return None
    report = _json_or_none(run.bench_file("json"))
    rows = _bench_rows(run, report)
    cases, targets = _bench_targets(rows)
    return {
        "rows_total": len(rows),
        "cases": cases,
        "targets": targets,
        "verdict": _verdict(report),
        "report_error": (report or {}).get("error"),
        "files": sorted(p.name for p in run.bench_dir.iterdir() if p.is_file()),
    }


def _describe_evals(run: RunFolder, trained_on: str | None, teacher: Any = None) -> list[dict[str, Any]]:
    """One record per RUN/eval/<folder>/metrics.json: the data, the model, its figures, in- or out-of-domain;
    for a student, the teacher's accuracy in its eval folder of the same name (same data, same kind of model)."""
    if not run.eval_root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in run.eval_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        record = _json_or_none(RunFolder.eval_file(folder, "metrics"))
        if record is None:
            continue
        taught = None
        if isinstance(teacher, str):
            taught = _json_or_none(
                RunFolder.eval_file(RunFolder(Path(teacher)).eval_root / folder.name, "metrics")
            )
        data, metrics = _obj(record.get("data")), _obj(record.get("metrics"))
        name = data.get("name") if isinstance(data.get("name"), str) else folder.name
        out.append(
            {
                "folder": folder.name,
                "error": record.get("error"),
                "data": name,
                "domain": "in-domain" if trained_on and name == trained_on else "out-of-domain",
                "model": _text(record.get("model")),
                "split": _text(data.get("split")),
                "rows": data.get("rows_scored", metrics.get("n")),
                "accuracy": metrics.get("accuracy"),
                "f1_macro": metrics.get("f1_macro"),
                "roc_auc": metrics.get("roc_auc"),
                "in_domain_accuracy": _obj(record.get("in_domain")).get("accuracy"),
                "ood_auroc": _obj(record.get("ood")).get("auroc"),
                "teacher_accuracy": _obj(_obj(taught).get("metrics")).get("accuracy"),
            }
        )
    return out


def _text(value: Any) -> str | None:
    """A string field of a file, None when it holds something else (a hand edit, another version)."""
    return value if isinstance(value, str) else None


def _describe_packages(run: RunFolder) -> list[dict[str, Any]]:
    """One record per RUN/package/<target>/ with its manifest's models, checks and page downloads."""
    root = run.path / runs.PACKAGE_DIR
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = _json_or_none(folder / runs.PACKAGE_MANIFEST) or {"error": f"no {runs.PACKAGE_MANIFEST}"}
        models = []
        listed = manifest.get("models")
        for m in listed if isinstance(listed, list) else []:
            if not isinstance(m, dict):
                continue
            check = _obj(m.get("wasm_check") or m.get("check_against_onnx"))
            models.append(
                {
                    "file": _text(m.get("file")),
                    "variant": _text(m.get("variant")),
                    "size_mb": m.get("size_mb"),
                    "agreement": check.get("agreement"),
                    "checked_on": check.get("samples"),
                }
            )
        out.append(
            {
                "target": _text(manifest.get("target")) or folder.name,
                "folder": str(folder),
                "error": manifest.get("error"),
                "models": models,
                "download_mb": _obj(manifest.get("download_mb")),
            }
        )
    return out


def _stages(d: dict[str, Any], status: str | None) -> dict[str, str]:
    ft, bench = d["finetune"], d["bench"]
    finetune = "not run" if ft is None else ("done" if ft["complete"] else "unfinished")
    if status == "unfinished":
        finetune = "unfinished"
    n = len(d["variants"])
    export = f"{n} variant{'s' if n != 1 else ''}" if n else "not run"
    if bench is None:
        bench_state = "not run"
    else:
        bench_state = f"{bench['rows_total']} rows" if bench["rows_total"] else "no result rows"
    evals = d["evals"]
    return {
        "finetune": finetune,
        "export": export,
        "bench": bench_state,
        "eval": f"{len(evals)} result{'s' if len(evals) != 1 else ''}" if evals else "not run",
        "package": ", ".join(p["target"] for p in d["packages"]) or "not run",
    }


def _not_a_run(run: RunFolder) -> EdgefnError:
    """Why a folder with nothing of a run's is not one, and what to do instead."""
    inside = (
        sorted(p.name for p in run.path.iterdir() if runs.run_status(p) is not None)
        if run.path.is_dir()
        else []
    )
    if inside:
        shown = ", ".join(inside[:5]) + (f" and {len(inside) - 5} more" if len(inside) > 5 else "")
        return EdgefnError(
            f"{run.path} is not a run folder but holds runs: {shown}; "
            f"e.g. `edgefn show --run-dir {run.path / inside[0]}`"
        )
    what = "is empty" if not any(run.path.iterdir()) else f"is not an edgefn run (no {runs.RUN_MANIFEST})"
    return EdgefnError(f"{run.path} {what}: make a run with `edgefn finetune` (or `edgefn demo`)")


def describe_run(run_dir: Path) -> dict[str, Any]:
    """Everything `edgefn show` reports about a run folder, as a JSON-ready dict.

    Args:
        run_dir: the run folder.

    Returns:
        {"run_dir", "stages" (each stage: done, not run, or what it holds), "finetune" (or None), "variants",
        "incomplete_variants", "bench" (or None: its per-target rows and report.json's verdict), "evals",
        "packages", "ship" (the lines naming what to ship)}. Accuracy deltas named `_pts` are in points;
        `accuracy_delta_vs_fp32` is export.json's fraction. Raises EdgefnError for a folder that holds
        nothing of a run's.
    """
    run = RunFolder(run_dir)
    finetune = _describe_finetune(run)
    config = _finetune_config(run)
    d: dict[str, Any] = {
        "run_dir": str(run.path),
        "finetune": finetune,
        "variants": [_describe_variant(p) for p in run.variants()],
        "incomplete_variants": run.incomplete_variants(),
        "bench": _describe_bench(run),
        "evals": _describe_evals(
            run,
            (finetune or {}).get("data") or (config.data if config else None),
            _obj((finetune or {}).get("distillation")).get("teacher"),
        ),
        "packages": _describe_packages(run),
    }
    status = run.status()
    if status is None and not any(
        d[k] for k in ("finetune", "variants", "incomplete_variants", "bench", "evals", "packages")
    ):
        raise _not_a_run(run)
    d["stages"] = _stages(d, status)
    d["ship"] = _ship(d, run)
    return d


def _ship(d: dict[str, Any], run: RunFolder) -> list[str]:
    bench = d["bench"]
    if bench is None:
        step = "export" if not d["variants"] else "bench"
        return [f"ship: not decided yet: run `edgefn {step} --run-dir {shlex.quote(str(run.path))}`"]
    verdict = bench["verdict"]
    if not verdict:
        why = "no verdict in bench/report.json" if verdict is None else "the bench verdict ranked no row"
        return [f"ship: not decided: {why}; rerun `edgefn bench --run-dir {shlex.quote(str(run.path))}`"]
    try:
        return ship_lines(verdict)
    except (KeyError, TypeError, ValueError, AttributeError):
        return ["ship: bench/report.json's verdict has an unexpected shape; rerun `edgefn bench`"]


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    if spec and not isinstance(value, bool):
        try:
            return format(float(value), spec)
        except (TypeError, ValueError):
            pass
    return str(value)


def _pts(fraction: Any) -> str:
    value = _number(fraction)
    return "-" if value is None else f"{100 * value + 0.0:+.2f}"


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
        *_format_teacher(ft),
        *(wrap_line(f"  warning: {w}") for w in ft["warnings"]),
    ]


def _format_teacher(ft: dict[str, Any]) -> list[str]:
    """A student's teacher, its layers and loss, and the teacher's test accuracy beside the student's."""
    d = _obj(ft.get("distillation"))
    if not d:
        return []
    layers = ", ".join(str(i) for i in d.get("layers") or [])
    loss = f"KD T={_fmt(d.get('temperature'))} alpha={_fmt(d.get('alpha'))}" if d.get("kd") else "no KD"
    teacher_acc, acc = _number(d.get("teacher_test_accuracy")), _number(ft.get("test_accuracy"))
    versus = f" ({100 * (acc - teacher_acc):+.2f} pts)" if acc is not None and teacher_acc is not None else ""
    return [
        wrap_line(
            f"  student of {_fmt(d.get('teacher'))}: layers {layers} of {_fmt(d.get('teacher_layers'))}, {loss}; "
            f"teacher test accuracy {_fmt(teacher_acc, '.4f')}{versus}"
        )
    ]


def _format_variants(variants: list[dict[str, Any]], incomplete: list[str]) -> list[str]:
    if not variants and not incomplete:
        return ["export: not run"]
    header = ["variant", "MB", "scheme", "val acc", "Δacc pts", "hash"]
    rows = [
        [
            v["variant"],
            _fmt(v["size_mb"], ".2f"),
            _fmt(v["scheme"]),
            _fmt(v["validation_accuracy"], ".4f"),
            _pts(v["accuracy_delta_vs_fp32"]),
            v["hash"],
        ]
        for v in variants
    ]
    rows += [[name, "-", "-", "-", "-", "incomplete (no export.json)"] for name in incomplete]
    return [
        "export: validation accuracy; Δacc pts: points against fp32",
        *text_table(header, rows, indent="  "),
    ]


def _format_bench(bench: dict[str, Any] | None, run_dir: str) -> list[str]:
    if bench is None:
        return ["bench: not run"]
    if not bench["targets"]:
        why = f"; {bench['report_error']}" if bench["report_error"] else ""
        return [f"bench: no result rows found{why} (files: {', '.join(bench['files']) or 'none'})"]
    cases = bench["cases"]
    header = ["variant", "runtime", "MB", "acc", "Δacc pts", *cases]
    rows = []
    for t in bench["targets"]:
        delta = t["accuracy_delta_pts"]
        times = [
            "-" if t["p50_ms"].get(c) is None else f"{t['p50_ms'][c]:.3f}{'!' if c in t['flagged'] else ''}"
            for c in cases
        ]
        rows.append(
            [
                f"{t['variant']}*" if t["peer"] else t["variant"],
                runtime_label(t["provider"], t["precision"]),
                _fmt(t["size_mb"], ".1f"),
                _fmt(t["accuracy"], ".3f"),
                "-" if delta is None else f"{delta + 0.0:+.2f}",
                *times,
            ]
        )
    n = len(bench["targets"])
    lines = [
        f"bench: {bench['rows_total']} rows, {n} target{'s' if n != 1 else ''}; p50 ms per text; Δacc pts: points "
        "against the reference; * a peer; ! timing flagged",
        *text_table(header, rows, indent="  "),
    ]
    lines += [
        f"  {t['variant']} on {t['provider']}: {t['status']}: {t['reason'] or '-'}"
        for t in bench["targets"]
        if t["status"] not in (None, "ok")
    ]
    report = Path(run_dir) / runs.BENCH_DIR / runs.BENCH_FILES["markdown"]
    lines.append(f"  every figure: {report}")
    return lines


def _format_verdict(bench: dict[str, Any] | None) -> list[str]:
    verdict = (bench or {}).get("verdict")
    if not verdict:
        return []
    try:
        header, rows, notes = verdict_table(verdict)
    except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError):
        return ["what to ship: bench/report.json's verdict has an unexpected shape"]
    return [
        "what to ship (bench's verdict)",
        *text_table(header, rows, indent="  "),
        *[f"  {n}" for n in notes],
    ]


def _format_evals(evals: list[dict[str, Any]], run_dir: str) -> list[str]:
    if not evals:
        return [
            f"eval: not run (`edgefn eval --model {shlex.quote(run_dir)} --data NAME` scores the run on other data)"
        ]
    header = [
        "data",
        "domain",
        "model",
        "split",
        "rows",
        "acc",
        "macro F1",
        "ROC-AUC",
        "run test acc",
        "OOD AUROC",
    ]
    student = any(e.get("teacher_accuracy") is not None for e in evals)
    rows = [
        [
            e["data"],
            e["domain"],
            _fmt(e["model"]),
            _fmt(e["split"]),
            _fmt(e["rows"]),
            _fmt(e["accuracy"], ".4f"),
            _fmt(e["f1_macro"], ".4f"),
            _fmt(e["roc_auc"], ".4f"),
            _fmt(e["in_domain_accuracy"], ".4f"),
            _fmt(e["ood_auroc"], ".3f"),
            *([_fmt(e.get("teacher_accuracy"), ".4f")] if student else []),
        ]
        for e in evals
    ]
    header += ["teacher acc"] if student else []
    lines = [
        "eval: RUN/eval/*; run test acc: the same model on the run's own test split"
        + ("; teacher acc: the teacher's eval folder of the same name" if student else ""),
        *text_table(header, rows, keep=2, indent="  "),
    ]
    lines += [f"  {e['folder']}: {e['error']}" for e in evals if e["error"]]
    return lines


def _format_packages(packages: list[dict[str, Any]], run_dir: str) -> list[str]:
    if not packages:
        return [
            f"package: not run (`edgefn package --target web --run-dir {shlex.quote(run_dir)}`, or --target mobile)"
        ]
    header = ["target", "file", "variant", "MB", "agreement", "texts"]
    rows = [
        [
            p["target"],
            _fmt(m["file"]),
            _fmt(m["variant"]),
            _fmt(m["size_mb"], ".1f"),
            _fmt(m["agreement"], ".1%"),
            _fmt(m["checked_on"]),
        ]
        for p in packages
        for m in p["models"]
    ]
    lines = ["package: RUN/package/*; agreement: with ONNX Runtime in Python on validation texts"]
    if rows:
        lines += text_table(header, rows, indent="  ")
    for p in packages:
        if p["error"]:
            lines.append(f"  {p['target']}: {p['error']}")
        elif p["download_mb"]:
            sizes = ", ".join(f"{dtype} {_fmt(mb, '.1f')} MB" for dtype, mb in p["download_mb"].items())
            lines.append(f"  {p['target']} page download: {sizes}")
    return lines


def format_run(d: dict[str, Any]) -> str:
    """Human-readable text of `describe_run`'s dict: the stages and what to ship first, then each stage's
    figures, and bench's verdict last. No line is wider than the console width but the run's path."""
    stages = "; ".join(f"{k} {v}" for k, v in d["stages"].items())
    lines = [f"run {d['run_dir']}", *wrap(f"stages: {stages}"), *d["ship"], ""]
    lines += _format_finetune(d["finetune"])
    lines += ["", *_format_variants(d["variants"], d["incomplete_variants"])]
    lines += ["", *_format_bench(d["bench"], d["run_dir"])]
    lines += ["", *_format_evals(d["evals"], d["run_dir"])]
    lines += ["", *_format_packages(d["packages"], d["run_dir"])]
    verdict = _format_verdict(d["bench"])
    if verdict:
        lines += ["", *verdict, "", *d["ship"]]
    # the run's path stays whole; any other line too long (a long reason, a long name) is wrapped
    out = [part for line in lines for part in ([line] if line.startswith("run ") else _fit(line))]
    return "\n".join(out)


def _fit(line: str) -> list[str]:
    if len(line) <= CONSOLE_WIDTH:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    return wrap(line.strip(), indent=indent)


@click.command()
@use(("--run-dir", "--json"))
@user_errors
def show(run_dir: Path | None, as_json: bool) -> None:
    """Print what to ship and what a run folder holds, stage by stage (default: the most recent run)."""
    import json

    run, picked = runs.resolve_run_dir(run_dir)
    if picked:
        click.echo(f"(most recent run: {run})", err=True)
    d = describe_run(run)
    click.echo(json.dumps(d, indent=2) if as_json else format_run(d))
