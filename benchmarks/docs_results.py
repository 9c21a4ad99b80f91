"""docs/results.md and the README's headline table, rendered from the committed files in benchmarks/results/."""

from __future__ import annotations

import statistics
from typing import Any

from docs_common import describe_cpu, generated_header, load, md_table, pct, plot_link, pts, result_link

ARCHITECTURES = ("minilm", "tinybert", "distilbert", "mobilebert", "albert")
ENGINES = {
    "pytorch": "PyTorch fp32",
    "fp32": "ONNX fp32",
    "int8-dynamic": "int8-dynamic",
    "int8-static": "int8-static",
}
BATCHES = (1, 8, 32)


def _arch_slot(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["slots"] if s["slot"] == name)


def _init(slot: dict[str, Any]) -> str:
    return "pretrained" if slot["init"] == "pretrained" else "**random init**"


# --- the README's headline ------------------------------------------------------------------------------


def headline_table() -> str:
    """minilm fine-tuned on CONSTRAINT: size, test accuracy and real-length latency per engine, one file."""
    data = load("architectures.json")
    slot = _arch_slot(data, "minilm")
    bench = slot["bench"]
    rows = []
    for name, label in ENGINES.items():
        r = bench["rows"][name]
        lat = r["latency"]
        rows.append(
            [
                label,
                f"{r['size_mb']:.1f}",
                f"{r['test_accuracy']:.4f}",
                "reference" if name == "pytorch" else pts(r["test_delta_vs_pytorch"]),
                f"{lat['real-b1']['per_sample_p50_ms']:.1f} ({lat['real-b1']['speedup_vs_pytorch']:.2f}x)",
                f"{lat['real-b32']['per_sample_p50_ms']:.1f} ({lat['real-b32']['speedup_vs_pytorch']:.2f}x)",
            ]
        )
    header = [
        "minilm on CONSTRAINT",
        "MB",
        f"test accuracy ({bench['test_rows']:,} posts)",
        "vs PyTorch",
        "ms/text, batch 1 (speed-up)",
        "ms/text, batch 32 (speed-up)",
    ]
    return "\n".join(
        [
            md_table(header, rows),
            "",
            f"Measured on {describe_cpu(bench['environment'])}, {bench['threads']} threads, real text lengths "
            f"(tokenisation included); command `{data['command']}`, from "
            f"{result_link('architectures', prefix='')}.",
        ]
    )


# --- sections of docs/results.md ------------------------------------------------------------------------


def _accuracy() -> list[str]:
    rows, commands = [], []
    for stem in ("finetune_constraint", "finetune_isot", "finetune_liar"):
        d = load(f"{stem}.json")
        onnx = {r["variant"]: r for r in d["onnx"]["rows"]}
        training, data = d["edgefn"]["training"], d["data"]
        rows.append(
            [
                f"{data['name']} ({'official splits' if data['splits'] == 'official' else 'own 70/15/15 split'})",
                f"{d['edgefn']['test']['n']:,}",
                f"{training['train_samples']:,} of {data['rows']['train']:,}, {training['epochs_run']:g} epochs",
                f"{d['baseline']['accuracy']:.4f}",
                f"{d['edgefn']['test']['accuracy']:.4f}",
                f"{onnx['fp32']['test_accuracy']:.4f}",
                f"{onnx['int8-dynamic']['test_accuracy']:.4f} ({pts(onnx['int8-dynamic']['delta_vs_fp32'])})",
                f"{onnx['int8-static']['test_accuracy']:.4f} ({pts(onnx['int8-static']['delta_vs_fp32'])})",
            ]
        )
        commands.append(f"- {data['name']}: `{d['command']}`, {result_link(stem)}")
    header = [
        "data",
        "test rows",
        "minilm training rows",
        "TF-IDF + LR",
        "minilm PyTorch",
        "ONNX fp32",
        "int8-dynamic",
        "int8-static",
    ]
    return [
        "## Accuracy: minilm on three datasets, fp32 and int8",
        "",
        "minilm (the bundled pretrained all-MiniLM-L6-v2) fine-tuned with the preset's defaults, beside a "
        "TF-IDF (word 1-2-grams) + logistic-regression baseline trained on the full training split. Test "
        "accuracy; the int8 differences are against ONNX fp32. ISOT is scored on titles with its shortcut cues "
        "removed; its high accuracy reflects how separable ISOT's topics are, not real-world detection.",
        "",
        md_table(header, rows),
        "",
        *commands,
        "",
    ]


def _latency_rows(slots: list[dict[str, Any]], mode: str) -> list[list[str]]:
    rows = []
    for slot in slots:
        for name, label in ENGINES.items():
            lat = slot["bench"]["rows"][name]["latency"]
            rows.append(
                [
                    f"{slot['slot']} ({_init(slot)})",
                    label,
                    *(
                        f"{lat[f'{mode}-b{b}']['per_sample_p50_ms']:.1f} "
                        f"({lat[f'{mode}-b{b}']['speedup_vs_pytorch']:.2f}x)"
                        for b in BATCHES
                    ),
                ]
            )
    return rows


def _architectures() -> list[str]:
    data = load("architectures.json")
    slots = [_arch_slot(data, n) for n in ARCHITECTURES]
    sizes = []
    for s in slots:
        rows, export = s["bench"]["rows"], s["export"]
        sizes.append(
            [
                f"{s['slot']} ({_init(s)})",
                f"{s['parameters'] / 1e6:.1f} M",
                export["fp32"]["optimize_applied"] or "plain",
                f"{rows['pytorch']['size_mb']:.1f}",
                f"{rows['fp32']['size_mb']:.1f}",
                *(
                    f"{rows[v]['size_mb']:.1f} ({pct(export[v]['size_ratio_to_fp32'], '.1f')})"
                    for v in ("int8-dynamic", "int8-static")
                ),
            ]
        )
    env = slots[0]["bench"]["environment"]
    header_lat = ["preset", "engine", *(f"batch {b}: ms/text (speed-up)" for b in BATCHES)]
    plots = ", ".join(plot_link(f"{n}-latency.png", n) for n in ARCHITECTURES)
    return [
        "## Size and speed: five architectures on one CPU",
        "",
        f"{describe_cpu(env)}, {slots[0]['bench']['threads']} threads; command `{data['command']}` (sizes from "
        f"its finetune and export stages), {result_link('architectures')}. Rows marked **random init** were "
        "fine-tuned briefly from random weights because their pretrained weights could not be downloaded "
        "there: their size and speed are the real architecture's, their accuracy means nothing. int8 here "
        f"is the `{slots[0]['export']['int8-dynamic']['target']}` target's recipe (see "
        "[quantization.md](quantization.md)).",
        "",
        md_table(
            [
                "preset",
                "params",
                "fp32 graph",
                "MB PyTorch",
                "MB ONNX fp32",
                "MB int8-dynamic",
                "MB int8-static",
            ],
            sizes,
        ),
        "",
        "Per-text latency p50 with real test lengths (tokenisation, dynamic padding and length-sorted "
        "batches included); speed-up over PyTorch fp32 in the same run:",
        "",
        md_table(header_lat, _latency_rows(slots, "real")),
        "",
        "The same with fixed inputs of batch x 128 tokens (the model call alone):",
        "",
        md_table(header_lat, _latency_rows(slots, "fixed")),
        "",
        f"Latency plots: {plots}.",
        "",
    ]


def _cell_name(verdict: dict[str, Any]) -> str:
    mode = "fixed 128" if verdict["mode"] == "fixed" else "real"
    return f"{mode}, b{verdict['batch_size']}"


def _winner_name(winner: dict[str, Any]) -> str:
    return f"peer {winner['variant']}" if winner["peer"] else str(winner["variant"])


def _verdict_cell(v: dict[str, Any]) -> str:
    w = v["winner"]
    name = _winner_name(w)
    tie = (
        " (tie)"
        if v.get("tie_with_runner_up") or (v.get("peer_wins") and not v.get("peer_wins_every_round"))
        else ""
    )
    return f"{name} {w['p50_ms']:.2f}{tie}"


def _peers(stem: str, title: str) -> list[str]:
    data = load(f"{stem}.json")
    archs = data["architectures"]
    names = [n for n in ARCHITECTURES if n in archs]
    first = archs[names[0]]["verdict"]
    cells = [(v["mode"], v["batch_size"]) for v in first]
    rows, ratios, winners = [], [], []
    for name in names:
        by_cell = {(v["mode"], v["batch_size"]): v for v in archs[name]["verdict"]}
        rows.append([f"{name} ({archs[name]['init']})", *(_verdict_cell(by_cell[c]) for c in cells)])
        winners += [_winner_name(by_cell[c]["winner"]) for c in cells]
        targets = archs[name]["targets"]
        for key in ("verdict_fixed_b1", "verdict_fixed_b32", "verdict_real_b1", "verdict_real_b32"):
            t = targets[key]
            ratios.append(t["fastest_edgefn_ms"] / t["fastest_distinct_peer_ms"])
    counts = ", ".join(
        f"{w} {winners.count(w)}" for w in sorted(set(winners), key=lambda w: -winners.count(w))
    )
    s = data["settings"]
    commands = {}
    for name in names:
        commands.setdefault(archs[name]["command"], []).append(name)
    if len(commands) == 1:
        made_by = f"command `{next(iter(commands))}`"
    else:
        made_by = "; ".join(f"{', '.join(n)}: `{c}`" for c, n in commands.items())
    return [
        f"### {title}",
        "",
        f"{describe_cpu(data['machine'])}, {s['threads']} threads, {s['rounds']} interleaved rounds, "
        f"{s['samples']} CONSTRAINT test texts; {made_by}; {result_link(stem)}.",
        "",
        "Per cell, what `edgefn bench` says to ship (the fastest row within 0.5 accuracy points of PyTorch "
        'fp32, peers included) and its ms per text; "tie" where its lead over the runner-up did not hold '
        "in every interleaved round:",
        "",
        md_table(["architecture", *(_cell_name(v) for v in first)], rows),
        "",
        f"Cells won: {counts}. edgefn's fastest own row takes {min(ratios):.2f}-{max(ratios):.2f}x the time of "
        "the fastest peer that is not the same model file (fixed and real lengths, batch 1 and 32).",
        "",
    ]


def _what_to_ship() -> list[str]:
    return [
        "## What to ship: edgefn beside what users would pick instead",
        "",
        "Every edgefn variant and every peer (`pytorch-int8`, `ort-default`, `optimum-recipe`, "
        "`openvino-fp32`, `openvino-bf16`, `openvino-int8`, built from the same checkpoint) measured in one "
        "`edgefn bench` per architecture. minilm is the CONSTRAINT model; the other four are random init. "
        "How the verdict is reached: [bench.md](bench.md).",
        "",
        *_peers("peers", "With AMX"),
        *_peers(
            "without-amx/peers", "The same CPU with AMX denied (int8 on AVX-512 VNNI, bf16 on AVX512_BF16)"
        ),
    ]


def _throughput() -> list[str]:
    ft = load("finetune_constraint.json")["throughput"]
    sp = load("seeds_protocol.json")
    base = sp["sides"]["seeds_pytorch_fp32_pad512"]
    rows = [
        [
            "PyTorch fp32, every text padded to 512 tokens, batch 32",
            f"{base['texts_per_s']:.1f}",
            f"{base['test_accuracy']:.4f}",
            "1.000",
        ]
    ]
    for v in ("int8-dynamic", "int8-static"):
        side = sp["sides"][v]
        rows.append(
            [
                f"edgefn {v}, real lengths (max {sp['int8_max_length'][v]}), sorted batches of {sp['batch_size']}",
                f"{side['texts_per_s']:.1f}",
                f"{side['test_accuracy']:.4f}",
                f"{side['agreement_with_seeds_pytorch']:.3f}",
            ]
        )
    return [
        "## Throughput against padding every input to 512 tokens",
        "",
        "Training, minilm on CONSTRAINT, batch 16, the same steps:",
        "",
        md_table(
            ["recipe", "samples/s", "mean tokens per sample"],
            [
                [
                    "dynamic padding + length grouping (edgefn)",
                    f"{ft['edgefn']['samples_per_s']:.2f}",
                    f"{ft['edgefn']['mean_tokens_per_sample']:.0f}",
                ],
                [
                    "pad to 512, no length grouping",
                    f"{ft['seeds']['samples_per_s']:.2f}",
                    f"{ft['seeds']['mean_tokens_per_sample']:.0f}",
                ],
            ],
        ),
        "",
        f"edgefn trains {ft['ratio']:.1f}x faster (command `{load('finetune_constraint.json')['command_throughput']}`).",
        "",
        f"Inference on {sp['texts']} CONSTRAINT test texts, end to end, one process, "
        f"{describe_cpu(sp['machine'])}:",
        "",
        md_table(["side", "texts/s", "accuracy on these texts", "agreement with the padded PyTorch"], rows),
        "",
        f"Best int8 ({sp['best_int8']}): {sp['speedup']:.1f}x the padded PyTorch throughput. Command "
        f"`{sp['command']}`, {result_link('seeds_protocol')}.",
        "",
    ]


def _runtime() -> list[str]:
    d = load("runtime_bench-minilm-constraint.json")
    r = d["results"]
    rows = []
    for key, label, unit in (
        ("cold_start_s", "cold start to first prediction", "s"),
        ("process_s", "process lifetime", "s"),
        ("peak_rss_mb", "peak RSS", "MB"),
    ):
        a, b = r["edgefn_predict"][key], r["transformers_pipeline"][key]
        spec = ".0f" if unit == "MB" else ".2f"
        rows.append(
            [
                f"{label} ({unit})",
                f"{a['median']:{spec}} ({a['min']:{spec}}-{a['max']:{spec}})",
                f"{b['median']:{spec}} ({b['min']:{spec}}-{b['max']:{spec}})",
                f"{a['median'] / b['median']:.2f}",
            ]
        )
    return [
        "## Cold start and memory of `edgefn predict`",
        "",
        f"`edgefn predict` on the {d['variant']} minilm folder ({d['variant_size_mb']:.1f} MB; onnxruntime, "
        "tokenizers and numpy, no torch) against a transformers `pipeline` on the PyTorch checkpoint, "
        f"{d['repeats']} fresh processes each, alternating, median (min-max); {d['environment']['cpu']}, "
        f"{d['environment']['cpu_count']} cores. Made by `benchmarks/bench_runtime.py`, "
        f"{result_link('runtime_bench-minilm-constraint')}.",
        "",
        md_table(["measure", "edgefn predict", "transformers pipeline", "ratio"], rows),
        "",
    ]


def _streaming() -> list[str]:
    d, rerun = load("predict-stream.json"), load("predict-stream-100k-rerun.json")
    rows = []
    for size, s in d["summary"].items():
        if not isinstance(s, dict):
            continue
        old, new = s.get("old"), s["new"]
        rows.append(
            [
                size,
                f"{old['peak_rss_mb']:.0f}" if old else "not run",
                f"{new['peak_rss_mb']:.0f}",
                f"{old['texts_per_s']:.3g}" if old else "-",
                f"{new['texts_per_s']:.3g}",
            ]
        )
    q = rerun["summary"]["100k"]
    cpu = describe_cpu({"cpu": d["cpu"], "cores_logical": d["cores_logical"]})
    return [
        "## Streaming `edgefn predict`",
        "",
        "`edgefn predict --input FILE --output FILE` as a fresh process on CONSTRAINT test posts, one per "
        "line, and on one 10 MB line. Streaming reads the input as it classifies it, in windows of texts "
        "sorted by token length, and cuts each text to max_length x 64 characters before tokenizing; the "
        f"path it replaced read everything, classified everything, then wrote once. {cpu}, shared with other "
        "jobs (their load is in the report).",
        "",
        md_table(
            [
                "input lines",
                "peak RSS before (MB)",
                "peak RSS streaming (MB)",
                "texts/s before",
                "texts/s streaming",
            ],
            rows,
        ),
        "",
        f"On a quiet machine, 100k lines: {q['old']['peak_rss_mb']:.0f} -> {q['new']['peak_rss_mb']:.0f} MB, "
        f"{q['old']['texts_per_s']:.0f} -> {q['new']['texts_per_s']:.0f} texts/s. "
        f"{result_link('predict-stream')}, {result_link('predict-stream-100k-rerun')}.",
        "",
    ]


def _web() -> list[str]:
    d = load("web_minilm-constraint.json")
    pages = [
        [
            p["variant"] if p["variant"] == p["model"] else f"{p['variant']} ({p['model']})",
            f"{p['threads_used']}",
            f"{p['p50_ms']:.1f} / {p['p90_ms']:.1f}",
            f"{pct(p['agreement_with_predict_batch1'], '.1f')} / {pct(p['agreement_with_predict_batch32'], '.1f')}",
            f"{p['download_mb']:.1f}",
            str(len(p.get("external_requests") or [])),
        ]
        for p in d["pages"]
    ]
    peer = ", ".join(
        f"{v} {s['p50_ms']:.1f} / {s['p90_ms']:.1f} ms" for v, s in sorted(d["python_peer"].items())
    )
    mobile = [
        [
            m["variant"],
            f"{m['size_mb']:.1f}",
            f"{m['onnx_size_mb']:.1f}",
            str(m["operator_types"]),
            pct(m["agreement_with_onnx"], ".1f"),
        ]
        for m in d["mobile"]
    ]
    shots = ", ".join(plot_link(f"web_{d['run']}_{m}.png", f"{m} page") for m in ("q8", "fp32"))
    load_avg = f"load average {d['loadavg_before'][0]:.1f} before, {d['loadavg_after'][0]:.1f} after"
    return [
        "## Browser and phone",
        "",
        f"minilm fine-tuned on CONSTRAINT, packaged with `edgefn package`; {d['texts']} test texts pasted one "
        f"by one into the page in headless Chromium {d['chromium']} ({d['machine']['cpu']}, "
        f"{d['machine']['logical_cores']} cores, {load_avg}: the milliseconds are indicative). Command "
        f"`{d['command']}`, {result_link('web_minilm-constraint')}. Screenshots: {shots}.",
        "",
        md_table(
            [
                "page model",
                "WASM threads",
                "ms p50 / p90",
                "agreement with predict (batch 1 / 32)",
                "download MB",
                "requests off 127.0.0.1",
            ],
            pages,
        ),
        "",
        f"Python onnxruntime on the same texts, one per call (p50 / p90): {peer}. Transformers.js in Node "
        "agreed with `edgefn predict` on "
        + ", ".join(
            f"{t['variant']} {pct(t['agreement_with_predict_batch1'], '.1f')}" for t in d["transformers_js"]
        )
        + ".",
        "",
        "Phone (`.ort` files, checked against their `.onnx` on the same texts):",
        "",
        md_table(["variant", ".ort MB", ".onnx MB", "operator types", "agreement with .onnx"], mobile),
        "",
    ]


def _openvino() -> list[str]:
    paths, qdq = load("openvino_paths.json"), load("openvino_qdq.json")
    path_rows = [
        [name, *(f"{statistics.median(ms[str(b)]):.2f}" for b in (1, 32))]
        for name, ms in paths["ms_per_sample"].items()
    ]
    qdq_rows = [
        [
            name,
            f"{q['accuracy']:.3f}",
            f"{q['agreement_with_fp32']:.3f}",
            *(f"{statistics.median(qdq['ms_per_sample'][name][str(b)]):.2f}" for b in (1, 32)),
        ]
        for name, q in qdq["quality"].items()
    ]
    return [
        "## OpenVINO: which path, and int8-static's file",
        "",
        "The same minilm graph through ONNX Runtime's OpenVINO execution provider and through OpenVINO's own "
        f"runtime (edgefn uses the latter), ms per text at batch 1 and 32 x 128 tokens; "
        f"{describe_cpu({'cpu': paths['cpu']})}; command `{paths['command']}`, {result_link('openvino_paths')}:",
        "",
        md_table(["path", "b1 ms", "b32 ms"], path_rows),
        "",
        f"edgefn's int8-static file (QDQ ONNX) in OpenVINO, beside NNCF's ov-int8, on {qdq['test_texts']:,} "
        f"CONSTRAINT test texts; command `{qdq['command']}`, {result_link('openvino_qdq')}:",
        "",
        md_table(["row", "accuracy", "agreement with fp32", "b1 ms", "b32 ms"], qdq_rows),
        "",
    ]


def render_results() -> str:
    """docs/results.md."""
    ab = load("consolidation_ab.json")
    return "\n".join(
        [
            generated_header("benchmarks/results/*.json"),
            "# Results",
            "",
            "Every number on this page is read from the committed files in `benchmarks/results/` (raw JSON "
            "beside each Markdown report), each with the command that produced it. The machines were small "
            "shared 2-core x86 CPUs with no GPU: compare ratios measured in one run rather than absolute "
            "milliseconds across sections. How to re-measure: [benchmarks/README.md](../benchmarks/README.md). "
            "Accuracy off the training set: [robustness.md](robustness.md).",
            "",
            *_accuracy(),
            *_architectures(),
            *_what_to_ship(),
            *_throughput(),
            *_runtime(),
            *_streaming(),
            *_web(),
            *_openvino(),
            "## Code changes checked for speed",
            "",
            f"Moving every model run onto one inference path was timed before and after, interleaved: median "
            f"ratio {ab['ratio_median']:.2f} (range {ab['ratio_min']:.2f}-{ab['ratio_max']:.2f}) over "
            f"{len(ab['rows'])} engine x input cells; {result_link('consolidation_ab')}.",
            "",
        ]
    )
