"""edgefn's variants beside what users would pick instead, for the five architectures, and the verdict.

Usage (the committed results):
    HF_HUB_OFFLINE=1 python benchmarks/peers.py --minilm-run RUN   # RUN: minilm fine-tuned on full CONSTRAINT
    HF_HUB_OFFLINE=1 python benchmarks/peers.py --presets tinybert --samples 200   # one architecture, quicker

Per architecture: export fp32, int8-dynamic, int8-static and the OpenVINO variants (ov-int8, and ov-bf16
where the CPU has BF16), then one `edgefn bench` with every peer (pytorch-int8, ort-default,
optimum-recipe, openvino-fp32 / -bf16 / -int8) at batch 1 / 8 / 32, fixed seq 128 and real lengths,
interleaved rounds, the same texts and threads. The four presets other than minilm are fine-tuned from a
random init (the hub is unreachable here): their latencies and sizes are real, their accuracies are not.
Writes benchmarks/results/peers.{json,md} with the machine's CPU flags and the targets of the peer issue.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import RESULTS, command_line, now

from edgefn import runs
from edgefn.bench.report import BenchReport, markdown_table
from edgefn.core.environment import cpu_info, describe_cpu, machine_environment
from edgefn.runs import RunFolder

PRESETS = ("minilm", "tinybert", "distilbert", "mobilebert", "albert")
BATCHES = (1, 8, 32)
SEQ_LEN = 128
VERDICT_CELLS = (("fixed", 1), ("fixed", 32), ("real", 1), ("real", 32))  # the target: batch 1 and 32
OWN_INT8 = ("int8-dynamic", "int8-static", "ov-int8")
CPU = "CPUExecutionProvider"


def ensure_run(preset: str, root: Path, minilm_run: Path | None, train: int) -> Path:
    """minilm: a copy of the given fine-tuned run; the others: a quick random-init fine-tune on CONSTRAINT."""
    from edgefn.train.finetune import FinetuneConfig, finetune

    run = root / f"{preset}-constraint"
    if RunFolder(run).status() == "complete":
        return run
    if preset == "minilm" and minilm_run is not None:
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(
            minilm_run, run, ignore=shutil.ignore_patterns("onnx", "bench", "peers", "package", "eval")
        )
        return run
    finetune(
        FinetuneConfig(
            preset=preset,
            data="constraint",
            init="pretrained" if preset == "minilm" else "scratch",
            epochs=1,
            max_train_samples=train,
            max_eval_samples=256,
            max_length=SEQ_LEN,
            run_dir=run,
            overwrite=True,
        )
    )
    return run


def export_all(run: Path, threads: int) -> None:
    from edgefn.engines.openvino import bf16_unavailable
    from edgefn.export.exporter import ExportConfig, export

    schemes = ["int8-dynamic", "int8-static", "ov-int8"] + ([] if bf16_unavailable() else ["ov-bf16"])
    # every variant afresh: the numbers are those of this edgefn, not of an export made by an older one
    export(ExportConfig(run_dir=run, schemes=tuple(schemes), threads=threads, overwrite=True), progress=print)


def bench_all(run: Path, args: argparse.Namespace) -> BenchReport:
    from edgefn.bench.benchmark import BenchConfig, bench

    return bench(
        BenchConfig(
            run_dir=run,
            batch_sizes=BATCHES,
            seq_len=SEQ_LEN,
            samples=args.samples,
            min_time_s=args.min_time,
            threads=args.threads,
            peers=None,
            **{k: v for k, v in (("rounds", args.rounds), ("processes", args.processes)) if v is not None},
        ),
        progress=print,
    )


def _p50(report: BenchReport, variant: str, mode: str, batch: int) -> float | None:
    for r in report.results:
        if r.variant == variant and r.status == "ok":
            for m in r.measurements:
                if (m.mode, m.batch_size) == (mode, batch):
                    return m.latency.p50_ms
    return None


def _fraction(report: BenchReport, variant: str) -> float | None:
    for r in report.results:
        if r.variant == variant and r.status == "ok":
            for m in r.measurements:
                if (m.mode, m.batch_size) == ("fixed", 32):
                    return m.peak_fraction
    return None


def openvino_time_split(run: Path, report: BenchReport, threads: int, batch: int = 32) -> dict[str, Any]:
    """Where ov-int8's time goes at batch x SEQ_LEN, from OpenVINO's per-node profile of the static-shape model
    edgefn runs at full length: milliseconds per batch by node type, and the fraction of this run's int8 MatMul
    peak the model would reach if every node but the FullyConnected (linear layer) ones took no time."""
    import numpy as np

    from edgefn.engines.openvino import IR_XML, OvRunner

    row = next((r for r in report.results if r.variant == "ov-int8" and r.status == "ok"), None)
    m = (
        next((m for m in row.measurements if (m.mode, m.batch_size) == ("fixed", batch)), None)
        if row
        else None
    )
    if m is None or not m.flops_per_sample or not report.peak.get("int8_gops"):
        return {}
    folder = RunFolder(run).variant_dir("ov-int8")
    precision = runs.read_variant_manifest(folder).precision or "fp32"
    runner = OvRunner(folder / IR_XML, threads, precision, SEQ_LEN, profile=True)
    feed = {n: np.ones((batch, SEQ_LEN), dtype=np.int64) for n in runner.input_names}
    for _ in range(3):
        runner(feed)
    calls, by_type = 5, Counter[str]()
    for _ in range(calls):
        runner(feed)
        for p in runner.static[batch].profiling_info:
            by_type[f"{p.node_type} ({p.exec_type})"] += p.real_time.total_seconds() * 1e3 / calls
    total = sum(by_type.values())
    linear = sum(v for k, v in by_type.items() if k.startswith("FullyConnected"))
    peak = report.peak["int8_gops"]
    return {
        "batch": batch,
        "seq_len": SEQ_LEN,
        "profiled_ms_per_batch": total,
        "ms_per_batch_by_node_type": dict(by_type.most_common(8)),
        "linear_share": linear / total,
        "peak_fraction_measured": m.peak_fraction,
        "peak_fraction_if_only_linear_layers_took_time": m.flops_per_sample
        * batch
        / (linear / 1e3)
        / 1e9
        / peak,
    }


def _model_key(r: Any) -> tuple[Any, ...] | None:
    return (r.model_fingerprint, r.provider, r.precision) if r.model_fingerprint else None


def targets(preset: str, report: BenchReport) -> dict[str, Any]:
    """The peer issue's targets for one architecture, from the recorded numbers. A peer that runs the very
    model of an edgefn variant (same file, runtime and precision) is no competitor of it: the verdict ships
    them as one, and "fastest distinct peer" leaves such peers out."""
    out: dict[str, Any] = {}
    ok = [r for r in report.results if r.status == "ok" and r.accuracy is not None]
    own_models = {_model_key(r) for r in ok if not r.peer} - {None}
    peers = [r.variant for r in ok if r.peer and _model_key(r) not in own_models]
    out["peers_identical_to_an_edgefn_variant"] = sorted(
        r.variant for r in ok if r.peer and _model_key(r) in own_models
    )
    for mode, batch in VERDICT_CELLS:
        cell = next(
            (v for v in report.verdict if (v["device"], v["mode"], v["batch_size"]) == ("cpu", mode, batch)),
            None,
        )
        best_peer = min(((p, n) for n in peers if (p := _p50(report, n, mode, batch))), default=None)
        # edgefn's fastest own candidate as the verdict compared it (a file that a peer also ran: their mean)
        best_own = cell["fastest_own"] if cell is not None else None
        if cell is not None and best_own is not None:
            out[f"verdict_{mode}_b{batch}"] = {
                "ship": cell["winner"]["variant"],
                "p50_ms": cell["winner"]["p50_ms"],
                "same_model": cell["winner"].get("same_model"),
                "fastest_edgefn_variant": best_own["variant"],
                "fastest_edgefn_ms": best_own["p50_ms"],
                "fastest_edgefn_same_model": best_own.get("same_model"),
                "fastest_distinct_peer": best_peer[1] if best_peer else None,
                "fastest_distinct_peer_ms": best_peer[0] if best_peer else None,
                "edgefn_not_slower_than_fastest_peer": not cell["peer_wins"],
                "peer_wins": cell["peer_wins"],
                # where a peer wins by p50: in how many interleaved rounds it beat edgefn's fastest own row
                "rounds_peer_faster_than_edgefn": cell.get("rounds_peer_faster_than_edgefn"),
                "peer_wins_every_round": cell.get("peer_wins_every_round"),
                # the peer's time over edgefn's fastest own row, its interval and whether that is a tie
                "peer_vs_edgefn": cell.get("peer_vs_edgefn"),
                "peer_tie": cell.get("peer_tie"),
            }
    mine, default = _p50(report, "int8-dynamic", "real", 32), _p50(report, "ort-default", "real", 32)
    out["int8_dynamic_vs_ort_default_real_b32"] = default / mine if mine and default else None
    fractions = {
        v: _fraction(report, v) for v in (*OWN_INT8, "ort-default", "optimum-recipe", "openvino-int8")
    }
    out["int8_peak_fraction_fixed_b32"] = {k: v for k, v in fractions.items() if v is not None}
    out["best_int8_peak_fraction_fixed_b32"] = max(out["int8_peak_fraction_fixed_b32"].values(), default=None)
    if preset == "minilm":
        ref = next((r for r in report.results if r.variant == "fp32" and r.provider == CPU), None)
        cell = next((v for v in report.verdict if (v["mode"], v["batch_size"]) == ("real", 32)), None)
        if ref and ref.accuracy and cell:
            out["verdict_accuracy_vs_fp32_pts"] = 100 * (cell["winner"]["accuracy"] - ref.accuracy.accuracy)
    return out


def recompute(preset: str, entry: dict[str, Any], max_drop: float) -> dict[str, Any]:
    """An architecture's entry with its verdict and targets recomputed from the run's saved report.json (no
    new measurement), every row's model fingerprint filled in from its folder: for reports written before
    the verdict knew that two rows can run one model."""
    from edgefn.bench.report import format_verdict
    from edgefn.bench.verdict import compute_verdict
    from edgefn.runtime import engines

    run = RunFolder(entry["run"])
    report = BenchReport.from_json(run.bench_file("json"))
    for r in report.results:
        folder = run.peer_dir(r.variant) if r.peer else run.variant_dir(r.variant)
        if r.status == "ok" and r.provider != "torch-cpu" and r.model_fingerprint is None:
            r.model_fingerprint = engines.get(r.provider).fingerprint_of(folder)
    report.verdict = compute_verdict(report, max_drop)
    return {
        **entry,
        "verdict": report.verdict,
        "verdict_lines": format_verdict(report.verdict),
        "targets": targets(preset, report),
    }


def write_results(entries: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    import json

    args.results.mkdir(parents=True, exist_ok=True)
    record = {
        "command": command_line(),
        "finished": now(),
        "machine": machine_environment(args.threads),
        "cpu_flags": cpu_info()["flags"],
        "settings": {
            "batches": BATCHES,
            "seq_len": SEQ_LEN,
            "samples": args.samples,
            "rounds": args.rounds or _default("rounds"),
            "processes": args.processes or _default("processes"),
            "min_time_s": args.min_time,
            "threads": args.threads,
        },
        "architectures": entries,
    }
    (args.results / "peers.json").write_text(
        json.dumps(runs.to_jsonable(record), indent=2) + "\n", encoding="utf-8"
    )
    (args.results / "peers.md").write_text(format_markdown(record), encoding="utf-8")


def _default(name: str) -> Any:
    """A BenchConfig field's default (what bench used when the option was not given)."""
    from edgefn.bench.benchmark import BenchConfig

    return BenchConfig.__dataclass_fields__[name].default


def format_markdown(record: dict[str, Any]) -> str:
    cpu = record["machine"]["cpu"]
    measured_by = {p: e.get("command", record["command"]) for p, e in record["architectures"].items()}
    commands = list(dict.fromkeys(measured_by.values()))
    lines = [
        "# edgefn beside what users would pick instead",
        "",
        ("Command: " if len(commands) == 1 else "Commands: ")
        + "; ".join(f"`{c}`" for c in commands)
        + f" (last finished {record['finished']})",
        "",
        *(
            [
                f"Verdicts and targets recomputed from the saved reports, nothing re-measured: "
                f"`{record['recomputed']['command']}` ({record['recomputed']['finished']})",
                "",
            ]
            if record.get("recomputed")
            else []
        ),
        f"CPU: {describe_cpu(cpu)}; {record['settings']['threads']} threads; "
        f"{record['settings']['rounds']} interleaved rounds; {record['settings']['samples'] or 'all'} test texts.",
        "",
        "## Targets",
        "",
        "Verdict cells: `edgefn` where an edgefn variant is fastest; `peer X (k/n, r)` where peer X is fastest "
        "by p50 and beat edgefn's fastest own row in k of n interleaved rounds (a tie unless k = n), r being "
        "that row's p50 / the peer's (a file that a peer also ran is timed at the mean of its rows); under the "
        "paired protocol `peer X (r, lo-hi)`, r being edgefn's row's time over the peer's (the median of the "
        "per-round ratios) and lo-hi its 99% interval, `tie` where that holds 1. "
        "int8 vs ort-default: ort-default's p50 / int8-dynamic's at batch 32, real lengths (1.00 where they "
        "are one file). Peak: the best int8 row's share of the int8 MatMul peak at batch 32 x 128.",
        "",
        markdown_table(
            [
                "architecture",
                *(f"{m} b{b}" for m, b in VERDICT_CELLS),
                "int8 vs ort-default",
                "best int8 peak",
            ],
            [target_row(preset, e["targets"]) for preset, e in record["architectures"].items()],
        ),
        "",
    ]
    for preset, e in record["architectures"].items():
        lines += [f"## {preset} ({e['init']})", "", f"Machine: {e['machine_note']}", ""]
        if len(commands) > 1:
            lines += [f"Measured by `{measured_by[preset]}` ({e['finished']})", ""]
        header = ["row", "runtime", "MB", "acc", "Δacc pts"] + [
            f"{m} b{b} ms" for m in ("fixed", "real") for b in BATCHES
        ]
        lines += [markdown_table(header, e["table"]), "", "What to ship:", ""]
        lines += [f"- {line}" for line in e["verdict_lines"]]
        lines += ["", "Targets: `" + json_line(e["targets"]) + "`", ""]
        split = e.get("ov_int8_time_split_fixed_b32")
        if split:
            lines += [
                f"ov-int8 at batch {split['batch']} x {split['seq_len']} tokens (OpenVINO's per-node profile): "
                f"{split['profiled_ms_per_batch']:.1f} ms per batch, {split['linear_share']:.0%} of it in the "
                f"linear layers (FullyConnected); {split['peak_fraction_measured']:.0%} of the int8 MatMul peak "
                f"measured, at most {split['peak_fraction_if_only_linear_layers_took_time']:.0%} if every other "
                "node took no time. By node type (ms per batch): "
                + ", ".join(f"{k} {v:.1f}" for k, v in split["ms_per_batch_by_node_type"].items()),
                "",
            ]
    return "\n".join(lines) + "\n"


def target_row(preset: str, t: dict[str, Any]) -> list[Any]:
    """One architecture's line of the targets table."""
    cells = []
    for mode, batch in VERDICT_CELLS:
        v = t.get(f"verdict_{mode}_b{batch}")
        if v is None:
            cells.append("-")
        elif not v["peer_wins"]:
            cells.append("edgefn")
        elif v.get("peer_vs_edgefn"):  # the paired protocol: the lead with its interval
            pv = v["peer_vs_edgefn"]
            tie = ", tie" if v.get("peer_tie") else ""
            cells.append(
                f"peer {v['ship']} ({1 / pv['ratio']:.3f}x, {1 / pv['ci_high']:.2f}-{1 / pv['ci_low']:.2f}{tie})"
            )
        else:
            rounds = v.get("rounds_peer_faster_than_edgefn")
            lead = f"{v['fastest_edgefn_ms'] / v['p50_ms']:.3f}x"
            cells.append(
                f"peer {v['ship']} ({rounds[0]}/{rounds[1]}, {lead})"
                if rounds
                else f"peer {v['ship']} ({lead})"
            )
    ratio, peak = t.get("int8_dynamic_vs_ort_default_real_b32"), t.get("best_int8_peak_fraction_fixed_b32")
    return [preset, *cells, f"{ratio:.2f}x" if ratio else "-", f"{peak:.1%}" if peak else "-"]


def json_line(obj: Any) -> str:
    import json

    return json.dumps(runs.to_jsonable(obj), default=str)


def table(report: BenchReport) -> list[list[Any]]:
    rows = []
    for r in report.results:
        acc = r.accuracy
        name = f"{r.variant} (peer)" if r.peer else r.variant
        runtime = f"{r.provider} {r.precision}" if r.precision else r.provider
        cells = []
        for mode in ("fixed", "real"):
            for b in BATCHES:
                m = next((m for m in r.measurements if (m.mode, m.batch_size) == (mode, b)), None)
                cells.append(None if m is None else f"{m.latency.p50_ms:.3f}" + ("!" if m.flags else ""))
        status = r.status if r.status == "ok" else f"{r.status}: {r.reason}"
        rows.append(
            [
                name if r.status == "ok" else f"{name} ({status})",
                runtime,
                r.size_mb,
                acc.accuracy if acc else None,
                100 * acc.delta.get("accuracy", 0) if acc else None,
                *cells,
            ]
        )
    return rows


def main() -> None:
    from edgefn.bench.report import format_verdict

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--minilm-run", type=Path, default=None, help="minilm fine-tuned on full CONSTRAINT")
    parser.add_argument("--root", type=Path, default=Path("artifacts/peers"))
    parser.add_argument("--samples", type=int, default=None, help="test texts (default: all)")
    parser.add_argument("--min-time", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=None, help="bench's --rounds (default: bench's)")
    parser.add_argument("--processes", type=int, default=None, help="bench's --processes (default: bench's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", type=int, default=256, help="training rows of the random-init presets")
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="measure nothing: recompute the verdicts and targets in peers.json from the runs' report.json",
    )
    parser.add_argument(
        "--results-dir", dest="results", type=Path, default=RESULTS, help="Where the JSON and Markdown go."
    )
    args = parser.parse_args()
    entries: dict[str, dict[str, Any]] = {}
    if (args.results / "peers.json").is_file():
        import json

        earlier = json.loads((args.results / "peers.json").read_text(encoding="utf-8"))
        entries = earlier["architectures"]
        for e in entries.values():  # entries written before each named its own command
            e.setdefault("command", earlier["command"])
    if args.recompute:
        import json

        record = json.loads((args.results / "peers.json").read_text(encoding="utf-8"))
        record["architectures"] = {p: recompute(p, e, 0.5) for p, e in record["architectures"].items()}
        record["recomputed"] = {"command": command_line(), "finished": now()}
        (args.results / "peers.json").write_text(
            json.dumps(runs.to_jsonable(record), indent=2) + "\n", encoding="utf-8"
        )
        (args.results / "peers.md").write_text(format_markdown(record), encoding="utf-8")
        return
    for preset in args.presets.split(","):
        start = time.perf_counter()
        run = ensure_run(preset, args.root, args.minilm_run, args.train)
        export_all(run, args.threads)
        report = bench_all(run, args)
        split = openvino_time_split(run, report, args.threads)
        assessment = report.machine["assessment"]
        entries[preset] = {
            "run": str(run),
            "command": command_line(),  # an architecture re-measured later names its own command
            "init": RunFolder(run).read_metrics().get("init", "?"),
            "table": table(report),
            "verdict": report.verdict,
            "verdict_lines": format_verdict(report.verdict),
            "targets": targets(preset, report),
            "ov_int8_time_split_fixed_b32": split,
            "finished": now(),
            "machine": report.machine,
            "machine_note": "UNRELIABLE: " + "; ".join(assessment["reasons"])
            if assessment["unreliable"]
            else f"quiet (load average {report.machine['before']['loadavg'][0]} -> {report.machine['after']['loadavg'][0]})",
            "seconds": time.perf_counter() - start,
        }
        write_results(entries, args)
        print(f"{preset}: {entries[preset]['targets']}")


if __name__ == "__main__":
    main()
