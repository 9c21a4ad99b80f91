"""Sections of docs/results.md about running the models: throughput, cold start, streaming, browser and
phone, OpenVINO; rendered from the committed files in benchmarks/results/."""

from __future__ import annotations

import statistics

from docs_common import describe_cpu, load, md_table, pct, plot_link, result_link


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
    d, paired = load("predict-stream.json"), load("predict-stream-100k-paired.json")
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
    q = paired["summary"]["100k"]
    ratios = ", ".join(f"{r:.2f}" for r in q["paired_throughput_ratios"])
    interval = q["throughput_interval"]
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
        f"On a quiet machine, 100k lines, {q['new']['rounds']} rounds of the two paths back to back: peak RSS "
        f"{q['old']['peak_rss_mb']:.0f} -> {q['new']['peak_rss_mb']:.0f} MB; throughput streaming / before "
        f"{q['throughput_ratio']:.2f} (per round {ratios}; {interval['confidence']:.0%} interval "
        f"{interval['ci_low']:.2f}-{interval['ci_high']:.2f}: no measurable change in speed). The table's rows "
        "come from the earlier run on a shared machine; the 1M row was not repeated quietly. "
        f"{result_link('predict-stream')}, {result_link('predict-stream-100k-paired')}.",
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


def render_runtime_sections() -> list[str]:
    """The sections in page order."""
    return [*_throughput(), *_runtime(), *_streaming(), *_web(), *_openvino()]
