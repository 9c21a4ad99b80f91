"""Real-lengths throughput of the best int8 variant against the seeds' protocol, on the same CONSTRAINT test texts.

    HF_HUB_OFFLINE=1 python benchmarks/seeds_protocol.py --run-dir artifacts/bench-minilm-constraint

Both sides run end to end (tokenisation included, model loading excluded) over the same texts, in this one
process, one after the other, with the same threads:
- seeds' protocol: the PyTorch fp32 checkpoint, every text padded to 512 tokens, batches of 32 in file order;
- edgefn: edgefn.runtime.classifier.Classifier on int8-dynamic and on int8-static (batches of 32 sorted by length,
  padded to each batch's longest, truncated at the run's max_length); the faster of the two is "best int8".
Throughput = texts / wall seconds of a whole pass, after one untimed warm-up batch; the median of --repeats
passes is reported. --samples caps the texts (default 512: 16 batches of 32 per pass, which averages over
the whole length distribution; the PyTorch pass at 512 tokens dominates the run time).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import INT8, RESULTS, command_line, fmt, now, verdict

from edgefn import runs
from edgefn.bench.report import markdown_table
from edgefn.core.environment import machine_environment, physical_cores
from edgefn.runs import RunFolder

TARGET = 10.0  # best int8 real-lengths throughput / seeds' protocol throughput
SEEDS_PAD = 512
BATCH = 32


def pick_texts(run_dir: Path, samples: int | None, seed: int = 0) -> tuple[list[str], list[int], int]:
    """A seeded random sample of the run's test split (all of it when `samples` is None or larger)."""
    test = RunFolder(run_dir).read_split("test")
    idx = list(range(len(test)))
    if samples is not None and samples < len(idx):
        idx = sorted(random.Random(seed).sample(idx, samples))
    return [test.texts[i] for i in idx], [test.labels[i] for i in idx], len(test)


def time_passes(predict: Callable[[list[str]], list[int]], texts: list[str], repeats: int) -> dict[str, Any]:
    """One untimed warm-up batch, then `repeats` timed passes over all texts; predictions of the last pass."""
    predict(texts[:BATCH])
    seconds, preds = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        preds = predict(texts)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return {
        "pass_seconds": seconds,
        "median_pass_seconds": median,
        "texts_per_s": len(texts) / median,
        "predictions": preds,
    }


def seeds_predictor(checkpoint: Path) -> Callable[[list[str]], list[int]]:
    """PyTorch fp32 (edgefn's reference path), every text padded and truncated to 512 tokens, batches of 32
    in the given order."""
    from edgefn.engines.pytorch import load_reference

    ref = load_reference(checkpoint, max_length=SEEDS_PAD)

    def predict(texts: list[str]) -> list[int]:
        preds: list[int] = []
        for i in range(0, len(texts), BATCH):
            feed = ref.encoder.fixed_feed(texts[i : i + BATCH], SEEDS_PAD)
            preds += ref.run(feed).argmax(-1).tolist()
        return preds

    return predict


def edgefn_predictor(
    folder: Path, threads: int, max_length: int | None
) -> tuple[Callable[[list[str]], list[int]], Any]:
    """edgefn.runtime.classifier.Classifier: tokenise all texts, length-sorted batches of 32, dynamic padding."""
    from edgefn.runtime.classifier import Classifier

    clf = Classifier.from_folder(folder, threads=threads, batch_size=BATCH, max_length=max_length)
    return (lambda texts: clf.predict_logits(texts).argmax(-1).tolist()), clf


def token_lengths(folder: Path, texts: list[str]) -> dict[str, Any]:
    """Untruncated token counts of the texts: what padding to 512 wastes, and how many exceed a limit."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    lengths = sorted(len(e.ids) for e in tok.encode_batch(texts))
    return {
        "mean": statistics.fmean(lengths),
        "median": statistics.median(lengths),
        "max": lengths[-1],
        "over_128": sum(n > 128 for n in lengths),
        "over_512": sum(n > SEEDS_PAD for n in lengths),
    }


def measure(
    run_dir: Path, samples: int | None, repeats: int, threads: int, max_length: int | None
) -> dict[str, Any]:
    """Seeds' protocol and both int8 variants on the same texts; the best int8 against the target."""
    import torch

    from edgefn.core.metrics import classification_metrics

    torch.set_num_threads(threads)
    texts, labels, n_test = pick_texts(run_dir, samples)
    sides: dict[str, Any] = {}
    print(
        f"seeds' protocol (PyTorch fp32, pad {SEEDS_PAD}, batch {BATCH}) on {len(texts)} texts ...",
        flush=True,
    )
    sides["seeds_pytorch_fp32_pad512"] = time_passes(
        seeds_predictor(RunFolder(run_dir).checkpoint), texts, repeats
    )
    gc.collect()
    limits = {}
    for variant in INT8:
        print(f"edgefn {variant} (Classifier, sorted batches of {BATCH}) ...", flush=True)
        predict, clf = edgefn_predictor(RunFolder(run_dir).variant_dir(variant), threads, max_length)
        sides[variant] = time_passes(predict, texts, repeats)
        limits[variant] = clf.max_length
        del predict, clf
        gc.collect()
    ref = sides["seeds_pytorch_fp32_pad512"]
    preds = {name: side.pop("predictions") for name, side in sides.items()}
    for name, side in sides.items():
        side["test_accuracy"] = classification_metrics(labels, preds[name])["accuracy"]
        side["agreement_with_seeds_pytorch"] = sum(
            a == b for a, b in zip(preds[name], preds["seeds_pytorch_fp32_pad512"])
        ) / len(texts)
    best = max(INT8, key=lambda v: sides[v]["texts_per_s"])
    ratio = sides[best]["texts_per_s"] / ref["texts_per_s"]
    return {
        "run_dir": str(run_dir),
        "texts": len(texts),
        "test_rows": n_test,
        "repeats": repeats,
        "threads": threads,
        "batch_size": BATCH,
        "int8_max_length": limits,
        "sides": sides,
        "token_lengths": token_lengths(RunFolder(run_dir).variant_dir(best), texts),
        "best_int8": best,
        "speedup": ratio,
        "target": TARGET,
        "passed": ratio >= TARGET,
        "verdict": verdict(ratio >= TARGET),
        "method": __doc__.split("\n\n", 2)[2].strip(),
    }


def to_markdown(out: dict[str, Any]) -> str:
    """seeds_protocol.md: the table, the ratio and the target."""
    titles = {
        "seeds_pytorch_fp32_pad512": f"seeds: PyTorch fp32, pad to {SEEDS_PAD}, batch {BATCH}",
        **{
            v: f"edgefn {v}, real lengths (max {out['int8_max_length'][v]}), sorted batches of {BATCH}"
            for v in INT8
        },
    }
    rows = [
        [
            titles[k],
            fmt(s["texts_per_s"], ".1f"),
            fmt(s["median_pass_seconds"], ".2f"),
            fmt(s["test_accuracy"], ".4f"),
            fmt(s["agreement_with_seeds_pytorch"], ".3f"),
        ]
        for k, s in out["sides"].items()
    ]
    t = out["token_lengths"]
    return "\n".join(
        [
            "# Best int8 variant vs the seeds' protocol (CONSTRAINT test texts, CPU)",
            "",
            f"Command: `{out['command']}` ({out['finished']}); run `{out['run_dir']}`; {out['texts']} of "
            f"{out['test_rows']} test texts (seeded sample); {out['repeats']} timed pass(es), median; "
            f"{out['threads']} threads; CPU: {out['machine']['cpu']['model']}.",
            "",
            markdown_table(
                ["side", "texts/s", "s per pass", "accuracy on these texts", "agreement with seeds' PyTorch"],
                rows,
            ),
            "",
            f"Best int8: **{out['best_int8']}**, **{out['speedup']:.1f}x** the seeds' protocol throughput "
            f"(target >= {out['target']:.0f}x: **{out['verdict']}**).",
            "",
            f"Token lengths of these texts: mean {t['mean']:.1f}, median {t['median']:.0f}, max {t['max']}; "
            f"{t['over_128']} over 128, {t['over_512']} over 512.",
            "",
            out["method"],
            "",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, print and write seeds_protocol.json / .md."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", type=Path, default=runs.ARTIFACTS_DIR / "bench-minilm-constraint")
    p.add_argument("--samples", type=int, default=512, help="texts (a seeded sample of the test split)")
    p.add_argument("--repeats", type=int, default=1, help="timed passes over the texts per side")
    p.add_argument("--threads", type=int, default=None, help="default: physical cores")
    p.add_argument("--max-length", type=int, default=None, help="int8 token limit (default: the run's)")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    started, start = now(), time.perf_counter()
    threads = args.threads or physical_cores()
    out = {
        "command": command_line(),
        "started": started,
        **measure(args.run_dir, args.samples, args.repeats, threads, args.max_length),
        "machine": machine_environment(threads),
    }
    out["finished"], out["total_seconds"] = now(), time.perf_counter() - start
    runs.write_json(args.results_dir / "seeds_protocol.json", out)
    md = to_markdown(out)
    (args.results_dir / "seeds_protocol.md").write_text(md, encoding="utf-8")
    print(md)
    return out


if __name__ == "__main__":
    main()
