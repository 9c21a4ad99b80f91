"""Peers, OpenVINO variants, interleaved rounds, the busy-machine flag and the "what to ship" verdict."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgefn import runs
from edgefn.bench import noise
from edgefn.bench.benchmark import BenchConfig, bench
from edgefn.bench.report import BenchReport
from edgefn.bench.verdict import compute_verdict
from edgefn.core.errors import EdgefnError
from edgefn.engines.openvino import IR_BIN, IR_XML
from edgefn.engines.openvino import NAME as OPENVINO
from edgefn.runs import RunFolder
from edgefn.runtime import engines
from edgefn.runtime.inference import CPU

FAST = dict(batch_sizes=(1, 4), seq_len=32, samples=48, min_time_s=0.03, min_iters=3, warmup=1, threads=1)
openvino = pytest.importorskip("openvino", reason="the dev extra installs openvino")


@pytest.fixture(scope="module")
def ov_run(tiny_run_factory, tmp_path_factory) -> Path:
    """The tiny BERT run with fp32, int8-dynamic and ov-int8 variants."""
    from edgefn.export.exporter import ExportConfig, export

    run = tmp_path_factory.mktemp("peers") / "run"
    shutil.copytree(tiny_run_factory("test-tiny-bert"), run)
    export(
        ExportConfig(run, schemes=("int8-dynamic", "ov-int8"), eval_samples=32, parity_samples=8, threads=1)
    )
    return run


@pytest.fixture(scope="module")
def peer_report(ov_run) -> BenchReport:
    """A two-round bench of the run with every peer."""
    return bench(BenchConfig(run_dir=ov_run, rounds=2, **FAST))


def test_every_peer_is_a_row(peer_report: BenchReport, ov_run: Path) -> None:
    """Each peer is a row built from the run's checkpoint: measured, or unavailable with its reason."""
    rows = {r.variant: r for r in peer_report.results}
    for name, peer in engines.peers().items():
        r = rows[name]
        assert r.peer and r.provider == peer.engine and r.description == peer.description
        assert (r.status == "ok" and r.accuracy is not None and r.measurements) or (
            r.status == "unavailable" and r.reason
        ), (name, r.status, r.reason)
    assert rows["pytorch-int8"].status == "ok" and rows["ort-default"].status == "ok"
    assert rows["ov-int8"].provider == OPENVINO and not rows["ov-int8"].peer
    from edgefn.engines.openvino import bf16_unavailable

    assert rows["ov-int8"].precision == ("fp32" if bf16_unavailable() else "bf16")
    assert rows["openvino-fp32"].precision == "fp32"
    manifest = runs.verify_variant(RunFolder(ov_run).peer_dir("ort-default"))
    assert (manifest.recipe or "").startswith("onnxruntime.quantization.quantize_dynamic")
    assert manifest.source_checkpoint_sha256 == runs.sha256_dir(RunFolder(ov_run).checkpoint)
    ops = __import__("edgefn.export.graph", fromlist=["op_counts"]).op_counts(
        RunFolder(ov_run).peer_dir("ort-default") / runs.ONNX_FILE
    )
    assert ops.get("MatMulInteger", 0) + ops.get("DynamicQuantizeMatMul", 0) > 0  # really int8


def test_rounds_are_pooled_and_their_spread_kept(peer_report: BenchReport) -> None:
    """With 2 rounds every measured row has two round p50s, the pooled calls (at least min_iters, and each
    round's slice at least --min-time / rounds of timed calls), and spread = max/min - 1."""
    for r in peer_report.results:
        for m in r.measurements:
            assert len(m.round_p50_ms) == 2
            assert m.spread == pytest.approx(max(m.round_p50_ms) / min(m.round_p50_ms) - 1)
            assert m.latency.count >= FAST["min_iters"]
            assert sum(m.latency.call_ms) / 1000 >= FAST["min_time_s"]
    assert peer_report.machine["before"]["loadavg"] and "assessment" in peer_report.machine


def test_verdict_is_recomputed_from_the_recorded_numbers(peer_report: BenchReport, ov_run: Path) -> None:
    """report.json's verdict equals one recomputed from its rows, and each winner is the fastest model
    within the accuracy budget (checked by brute force: rows running the same model file on the same runtime
    are one model, timed as their mean, and shipped under edgefn's name when it is among them)."""
    import statistics

    saved = BenchReport.from_json(RunFolder(ov_run).bench_file("json"))
    assert saved.verdict == compute_verdict(saved, 0.5) == peer_report.verdict
    assert all(r.model_fingerprint for r in saved.results if r.status == "ok" and r.provider != "torch-cpu")
    for cell in saved.verdict:
        models: dict[object, list[tuple[float, str, bool]]] = {}
        for r in saved.results:
            if r.status != "ok" or r.provider not in (CPU, OPENVINO, "torch-cpu") or not r.accuracy:
                continue
            if -100 * r.accuracy.delta.get("accuracy", 0) > 0.5:
                continue
            key = (r.model_fingerprint, r.provider, r.precision) if r.model_fingerprint else r.variant
            for m in r.measurements:
                if (m.mode, m.batch_size) == (cell["mode"], cell["batch_size"]):
                    models.setdefault(key, []).append((m.latency.p50_ms, r.variant, r.peer))
        fastest = min(models.values(), key=lambda rows: statistics.mean(p for p, _, _ in rows))
        assert cell["winner"]["variant"] == min(fastest, key=lambda row: row[2])[1]
        assert cell["peer_wins"] == all(peer for _, _, peer in fastest)
        assert cell["winner"]["p50_ms"] == pytest.approx(statistics.mean(p for p, _, _ in fastest))
    strict = compute_verdict(saved, max_drop=0.0)
    for cell in strict:  # a zero budget keeps only rows as accurate as the reference
        assert cell["winner"]["accuracy_delta_pts"] >= 0
    md = RunFolder(ov_run).bench_file("markdown").read_text(encoding="utf-8")
    assert "## What to ship" in md and "ship " in md


def test_the_same_model_timed_twice_is_one_candidate() -> None:
    """A peer that is the very file of an edgefn variant does not "win" on noise: the two are one candidate,
    shipped under edgefn's name at their mean time; a different model that is faster still wins."""
    from edgefn.bench.measure import Latency
    from edgefn.bench.report import Accuracy, Measurement, TargetResult

    def row(variant: str, ms: float, fingerprint: str | None, peer: bool = False) -> TargetResult:
        r = TargetResult(variant, CPU, "int8", "ok", peer=peer, model_fingerprint=fingerprint, size_mb=1.0)
        r.accuracy = Accuracy(100, 0.9, 0.9, 0.9, 0.9, {}, 1.0, {"accuracy": 0.0})
        r.measurements = [Measurement("real", 32, Latency([ms * 32], [32]), [64], 64.0)]
        return r

    def cell(*rows: TargetResult) -> dict:
        report = BenchReport("run", {}, "fp32 on CPU", 128, {}, {}, list(rows))
        (only,) = compute_verdict(report)
        return only

    same = cell(
        row("int8-dynamic", 3.33, "abc"), row("ort-default", 3.27, "abc", peer=True), row("fp32", 9.0, "f")
    )
    assert same["winner"]["variant"] == "int8-dynamic" and not same["peer_wins"]
    assert same["winner"]["p50_ms"] == pytest.approx(3.30)
    assert same["winner"]["same_model"] == pytest.approx({"int8-dynamic": 3.33, "peer ort-default": 3.27})
    assert same["runner_up"]["variant"] == "fp32"
    other = cell(row("int8-dynamic", 3.33, "abc"), row("ort-default", 3.27, "xyz", peer=True))
    assert other["winner"]["variant"] == "ort-default" and other["peer_wins"]
    assert "same_model" not in other["winner"]


def test_a_lead_that_does_not_hold_in_every_round_is_a_tie() -> None:
    """The verdict counts the interleaved rounds each lead held in: a peer ahead by p50 but behind edgefn's
    best in one round is reported as a tie, not a win; a lead in every round stays a win."""
    from edgefn.bench.measure import Latency
    from edgefn.bench.report import Accuracy, Measurement, TargetResult, format_verdict

    def row(variant: str, rounds: list[float], fingerprint: str, peer: bool = False) -> TargetResult:
        r = TargetResult(variant, CPU, "int8", "ok", peer=peer, model_fingerprint=fingerprint, size_mb=1.0)
        r.accuracy = Accuracy(100, 0.9, 0.9, 0.9, 0.9, {}, 1.0, {"accuracy": 0.0})
        ms = sorted(rounds)[1]
        r.measurements = [Measurement("real", 1, Latency([ms], [1]), [64], 64.0, round_p50_ms=rounds)]
        return r

    def cell(*rows: TargetResult) -> dict:
        (only,) = compute_verdict(BenchReport("run", {}, "fp32 on CPU", 128, {}, {}, list(rows)))
        return only

    # int8-dynamic and ort-default are one file: p50 (5.62 + 5.64) / 2, per round 5.74 / 5.66 / 5.52
    own = (
        row("int8-dynamic", [5.84, 5.62, 5.58], "a"),
        row("ort-default", [5.64, 5.70, 5.46], "a", peer=True),
    )
    tie = cell(*own, row("optimum-recipe", [5.57, 5.55, 5.60], "b", peer=True))
    assert tie["winner"]["variant"] == "optimum-recipe" and tie["peer_wins"]
    assert tie["winner"]["p50_ms"] == pytest.approx(5.57)
    assert tie["runner_up"]["p50_ms"] == pytest.approx(5.63)
    assert tie["runner_up"]["round_p50_ms"] == pytest.approx([5.74, 5.66, 5.52])
    assert tie["rounds_peer_faster_than_edgefn"] == [2, 3] and tie["peer_wins_every_round"] is False
    assert tie["rounds_faster_than_runner_up"] == [2, 3] and tie["tie_with_runner_up"]
    # the peer is compared with edgefn's file at the mean of its two rows, not with either row alone
    assert tie["fastest_own"]["variant"] == "int8-dynamic" and tie["fastest_own"]["p50_ms"] == pytest.approx(
        5.63
    )
    (line,) = format_verdict([tie])
    assert "a tie: faster in 2 of 3 interleaved rounds" in line and "a peer wins" not in line
    assert line.endswith("against edgefn's fastest own row (the runner-up)")

    win = cell(*own, row("optimum-recipe", [5.30, 5.35, 5.32], "b", peer=True))
    assert win["rounds_peer_faster_than_edgefn"] == [3, 3] and win["peer_wins_every_round"] is True
    assert not win["tie_with_runner_up"]
    (line,) = format_verdict([win])
    assert "a peer wins" in line and "a tie" not in line

    # a distinct peer between the winner and edgefn's row: the line names edgefn's row and its time
    behind = cell(
        *own,
        row("optimum-recipe", [5.57, 5.55, 5.60], "b", peer=True),
        row("pytorch-int8", [5.65, 5.58, 5.62], "c", peer=True),
    )
    assert behind["runner_up"]["variant"] == "pytorch-int8"
    assert behind["fastest_own"]["variant"] == "int8-dynamic"
    (line,) = format_verdict([behind])
    assert "own row, int8-dynamic (CPUExecutionProvider; the same model file as" in line
    assert line.endswith("timed as their mean) 5.630 ms")

    ours = cell(*own, row("optimum-recipe", [5.90, 5.95, 5.92], "b", peer=True))
    assert not ours["peer_wins"] and ours["rounds_peer_faster_than_edgefn"] is None
    assert ours["peer_wins_every_round"] is None and ours["rounds_faster_than_runner_up"] == [3, 3]


def test_noise_assessment_flags_load_spread_and_clock() -> None:
    """The legacy protocol's busy-machine verdict: load above the cores, other processes' CPU, spread or a
    moving clock (the paired protocol's: tests/bench/test_precision.py)."""
    quiet = {"loadavg": [0.3, 0.3, 0.3], "cpu_mhz": 2600.0}
    rows = [{"label": "a", "spread": 0.02, "other_cores": 0.05}]
    assert noise.assess_legacy(quiet, quiet, 2, rows) == {"unreliable": False, "reasons": [], "flagged": []}
    busy = {"loadavg": [5.0, 3.0, 1.0], "cpu_mhz": 2600.0}
    assert "load average 5.0 above the 2 cores" in noise.assess_legacy(quiet, busy, 2, rows)["reasons"][0]
    spread = noise.assess_legacy(quiet, quiet, 2, [{"label": "a", "spread": 0.2, "other_cores": 0.0}])
    assert spread["unreliable"] and spread["flagged"] == ["a"]
    slow = noise.assess_legacy(quiet, {**quiet, "cpu_mhz": 1800.0}, 2, rows)
    assert slow["unreliable"] and "clock" in slow["reasons"][0]


def test_busy_machine_is_flagged_under_a_synthetic_load(ov_run: Path, tmp_path: Path) -> None:
    """Busy loops on every core while bench measures: the rows are flagged and the report says unreliable."""
    import os

    run = tmp_path / "run"
    shutil.copytree(ov_run, run)
    burn = "import time\nt = time.time()\nwhile time.time() - t < 600: pass\n"
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(1.0)
        report = bench(BenchConfig(run_dir=run, variants=("fp32",), rounds=2, peers=(), **FAST))
    finally:
        for b in burners:
            b.kill()
    assessment = report.machine["assessment"]
    assert assessment["unreliable"], assessment
    fp32 = report.result("fp32", CPU)
    assert fp32.other_cores is not None and fp32.other_cores > noise.OTHER_CORES_LIMIT
    assert all(m.flags for m in fp32.measurements)
    assert "UNRELIABLE TIMINGS" in RunFolder(run).bench_file("markdown").read_text(encoding="utf-8")


def test_openvino_variant_predicts_and_is_hash_checked(ov_run: Path, tmp_path: Path) -> None:
    """ov-int8 runs through Classifier on OpenVINO (torch-free) and agrees with fp32; a changed IR is refused."""
    from edgefn.runtime.classifier import Classifier

    run = RunFolder(ov_run)
    texts = run.read_split("test").texts[:64]
    ov = Classifier.from_folder(run.variant_dir("ov-int8"))
    assert ov.providers == [OPENVINO]
    same = [
        a.label == b.label
        for a, b in zip(ov.predict(texts), Classifier.from_folder(run.variant_dir("fp32")).predict(texts))
    ]
    assert sum(same) / len(same) >= 0.95
    copy = tmp_path / "ov-int8"
    shutil.copytree(run.variant_dir("ov-int8"), copy)
    with open(copy / IR_BIN, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xfe\xfd")
    with pytest.raises(EdgefnError, match="openvino_model.bin does not match the hash"):
        Classifier.from_folder(copy)


def test_ov_bf16_refused_without_bf16_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU without AVX512_BF16 or AMX, ov-bf16 is refused (OpenVINO would emulate it) and its peer row
    is unavailable with that reason."""
    from edgefn.engines import openvino as openvino_engine

    monkeypatch.setattr(openvino_engine, "cpu_flags", lambda: {"avx2", "fma"})
    assert "neither AVX512_BF16 nor AMX" in (openvino_engine.bf16_unavailable() or "")
    assert "neither AVX512_BF16 nor AMX" in (engines.peers()["openvino-bf16"].unavailable() or "")


@pytest.mark.parametrize("kind", ["latency", "tradeoff"])
def test_plot_labels_do_not_overlap(kind: str, peer_report: BenchReport) -> None:
    """Every row is in one legend outside the panels, and no two tick, legend or data labels overlap (the
    trade-off plot's labels beside their markers avoid each other and the legend), with a dozen rows of
    variants and peers."""
    from itertools import combinations

    import matplotlib.pyplot as plt

    from edgefn.bench.plots import text_box
    from edgefn.bench.report import latency_figure, tradeoff_figure

    fig = (latency_figure if kind == "latency" else tradeoff_figure)(peer_report)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    rows = [r for r in peer_report.results if r.status == "ok" and r.measurements]
    marks = ("shipped", "budget", "reference")
    assert len([t for t in legend.get_texts() if not t.get_text().startswith(marks)]) == len(rows) >= 10
    box = legend.get_window_extent(renderer)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent(renderer))
        texts = [text_box(t, renderer) for t in ax.texts]
        assert kind == "tradeoff" or not texts
        assert not any(a.overlaps(b) for a, b in combinations(texts, 2))
        assert not any(t.overlaps(box) for t in texts)
        for axis in (ax.get_xticklabels(), ax.get_yticklabels()):
            ticks = [t.get_window_extent(renderer) for t in axis if t.get_text()]
            assert not any(a.overlaps(b) for a, b in combinations(ticks, 2))
    labels = [t.get_window_extent(renderer) for t in legend.get_texts()]
    assert not any(a.overlaps(b) for a, b in combinations(labels, 2))
    assert box.x1 <= fig.bbox.x1 + 1  # the legend fits in the figure
    plt.close(fig)


def test_full_length_batches_run_a_static_shape_model(ov_run: Path) -> None:
    """OpenVINO batches at the token limit run on a model compiled for their static shape, one per batch size;
    shorter batches share the dynamic-shape model, and both give the same logits (fp32)."""
    import numpy as np

    from edgefn.engines.openvino import OvRunner
    from edgefn.runtime.classifier import Classifier

    clf = Classifier.from_folder(RunFolder(ov_run).variant_dir("ov-int8"), "cpu", 1)
    runner = OvRunner(RunFolder(ov_run).variant_dir("ov-int8") / IR_XML, 1, "fp32", clf.max_length)
    texts = RunFolder(ov_run).read_split("test").texts[:6]
    full, short = (clf.encoder.fixed_feed(texts, length) for length in (clf.max_length, 24))
    static = runner(full)
    assert list(runner.static) == [6]
    runner(full), runner(short), runner(clf.encoder.fixed_feed(texts[:2], clf.max_length))
    assert sorted(runner.static) == [2, 6]
    dynamic = runner.request.infer({k: full[k] for k in runner.input_names}).to_tuple()[0]
    np.testing.assert_allclose(static, dynamic, atol=1e-4)


def test_nncf_writes_nothing_on_stdout(
    ov_run: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """NNCF's INFO log and rich progress bars stay off stdout (bench's result stream): with stderr not a
    terminal the bars draw nowhere; the quantized IR is still written."""
    import onnx

    from edgefn.engines.openvino import quantize_nncf

    model = RunFolder(ov_run).variant_dir("fp32") / runs.ONNX_FILE
    names = [i.name for i in onnx.load(str(model), load_external_data=False).graph.input]
    row = {"input_ids": [2, 5, 7, 9, 3], "attention_mask": [1] * 5, "token_type_ids": [0] * 5}
    capfd.readouterr()
    xml = quantize_nncf(model, tmp_path / "ov", {n: [row[n]] * 8 for n in names}, subset=8)
    out, err = capfd.readouterr()
    assert xml.is_file()
    assert out == ""
    assert "\x1b" not in err and "INFO" not in err
