"""The paired protocol's statistics: ratio intervals, the tie rule, the noise flag, steal time; report.json's cells."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefn.bench import noise
from edgefn.bench.measure import Latency
from edgefn.bench.report import Accuracy, BenchReport, Measurement, TargetResult, format_verdict
from edgefn.bench.stats import RatioInterval, dispersion, ratio_interval, round_groups
from edgefn.bench.verdict import compute_verdict
from edgefn.runs import ONNX_FILE
from edgefn.runtime import engines
from edgefn.runtime.engines import Engine, LoadRequest
from edgefn.runtime.inference import CPU

FAILING = "ort-failing"


def load_failing(request: LoadRequest) -> None:
    """An engine whose load always fails, as a missing kernel or library would."""
    raise RuntimeError("no kernel for this model here")


FLAKY, FLAKY_MARKER = "ort-flaky", "EDGEFN_TEST_FLAKY_MARKER"


def load_flaky(request: LoadRequest) -> Any:
    """ONNX Runtime's load the first time (the marker file absent), a failure every time after: a target that
    loads in the first process block and not in a later one."""
    marker = Path(os.environ[FLAKY_MARKER])
    if marker.exists():
        raise RuntimeError("out of memory on the second load")
    marker.touch()
    return engines.get(CPU).load(request)


# registered when this module is imported: bench's measuring processes import it by the record's `module`
engines.register(
    Engine(FAILING, "cpu", "onnxruntime", __name__, load_failing, files=(ONNX_FILE,), default=False)
)
engines.register(Engine(FLAKY, "cpu", "onnxruntime", __name__, load_flaky, files=(ONNX_FILE,), default=False))

GROUPS = round_groups(24, 4)  # the default: 24 rounds over 4 processes


def paired(seed: int, lead: float = 1.0, jitter: float = 0.03, offsets: float = 0.0) -> tuple[list, list]:
    """Per-round times of two rows measured side by side: a common slow-down per round (the machine), each
    row's own jitter, each process's own offset; `a` is `lead` times `b`."""
    rng = np.random.default_rng(seed)
    machine = rng.normal(0, 0.10, len(GROUPS))  # shared by both rows of a round: pairing removes it
    offset_a, offset_b = rng.normal(0, offsets, 4), rng.normal(0, offsets, 4)
    a = 3.0 * lead * np.exp(machine + rng.normal(0, jitter, 24) + offset_a[GROUPS])
    b = 3.0 * np.exp(machine + rng.normal(0, jitter, 24) + offset_b[GROUPS])
    return list(a), list(b)


def test_round_groups_split_rounds_evenly_over_processes() -> None:
    """24 rounds over 4 processes are 6 each in turn; 10 over 4 give the first two processes one more."""
    assert [g for g in range(4) for _ in range(6)] == GROUPS
    assert round_groups(10, 4) == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3]
    assert round_groups(3, 5) == [0, 1, 2]


def test_a_true_ten_percent_lead_excludes_one() -> None:
    """A row 10% faster in truth (3% jitter per round, a 10% machine slow-down shared by both rows of a
    round): its interval excludes 1 in every one of 20 seeds, and holds the true 0.9 in at least 18."""
    held = 0
    for seed in range(20):
        ci = ratio_interval(*paired(seed, lead=0.9), GROUPS)
        assert ci is not None and not ci.tie and ci.ci_high < 1, (seed, ci)
        assert ci.rounds == 24 and ci.processes == 4
        held += ci.ci_low < 0.9 < ci.ci_high
    assert held >= 18


def test_identical_distributions_are_a_tie_in_most_seeds() -> None:
    """The same model timed twice (A/A): the interval holds 1 in at least 96 of 100 seeds, with or without
    offsets between the processes."""
    for offsets in (0.0, 0.03):
        ties = sum(bool(ratio_interval(*paired(seed, offsets=offsets), GROUPS).tie) for seed in range(100))
        assert ties >= 96, (offsets, ties)


def test_process_offsets_widen_the_interval() -> None:
    """Offsets that stay for a process's life count: the same rounds with 5% offsets between processes give a
    wider interval than without, and a process's offset alone never decides a lead."""
    calm = [ratio_interval(*paired(s), GROUPS).half_width for s in range(20)]
    shifted = [ratio_interval(*paired(s, offsets=0.05), GROUPS).half_width for s in range(20)]
    assert np.median(shifted) > 2 * np.median(calm)


def test_interval_is_seeded_and_paired_by_round() -> None:
    """The same inputs give the same interval (the verdict recomputes from report.json); swapping the rows
    inverts it; pairing matters: the same times with one row's rounds shuffled give a wider interval."""
    a, b = paired(7, lead=0.95)
    first, again = ratio_interval(a, b, GROUPS), ratio_interval(a, b, GROUPS)
    assert first == again
    swapped = ratio_interval(b, a, GROUPS)
    assert swapped.ratio == pytest.approx(1 / first.ratio)
    assert swapped.ci_low == pytest.approx(1 / first.ci_high) and swapped.ci_high == pytest.approx(
        1 / first.ci_low
    )
    shuffled = list(np.random.default_rng(0).permutation(a))
    assert ratio_interval(shuffled, b, GROUPS).half_width > 2 * first.half_width


def test_interval_needs_two_rounds_and_positive_times() -> None:
    """Under two rounds there is no interval; rounds with a missing (0) time are left out."""
    assert ratio_interval([1.0], [1.0]) is None
    ci = ratio_interval([1.0, 0.0, 1.1, 0.9], [1.0, 1.0, 1.0, 1.0])
    assert ci is not None and ci.rounds == 3


def test_tie_rule_is_the_interval_holding_one() -> None:
    """A tie exactly when the interval holds 1, its ends included."""
    assert RatioInterval(0.97, 0.94, 1.0, 24, 4).tie
    assert RatioInterval(1.02, 1.0, 1.05, 24, 4).tie
    assert not RatioInterval(0.9, 0.85, 0.999, 24, 4).tie
    assert not RatioInterval(1.2, 1.01, 1.3, 24, 4).tie


def _row(variant: str, rounds: list[float], fingerprint: str, peer: bool = False) -> TargetResult:
    r = TargetResult(variant, CPU, "int8", "ok", peer=peer, model_fingerprint=fingerprint, size_mb=1.0)
    r.accuracy = Accuracy(100, 0.9, 0.9, 0.9, 0.9, {}, 1.0, {"accuracy": 0.0})
    ms = float(np.median(rounds))
    r.measurements = [Measurement("real", 1, Latency([ms], [1]), [64], 64.0, round_p50_ms=list(rounds))]
    return r


def _paired_report(*rows: TargetResult) -> BenchReport:
    protocol = {"name": "paired", "rounds": 24, "processes": 4}
    return BenchReport("run", {"rounds": 24}, "fp32 on CPU", 128, {}, {}, list(rows), protocol=protocol)


def test_verdict_cells_carry_the_interval_and_decide_ties_by_it() -> None:
    """Under the paired protocol each cell holds ratio, ci_low and ci_high of winner / runner-up; a lead is a
    tie exactly when that interval holds 1, even when the winner was faster in most rounds; a peer's lead over
    edgefn's row carries its own interval; the console line prints the interval beside the lead."""
    a, b = paired(3, lead=0.9)
    (clear,) = compute_verdict(_paired_report(_row("int8-dynamic", a, "x"), _row("fp32", b, "y")))
    assert clear["winner"]["variant"] == "int8-dynamic" and clear["decided_by"] == "interval"
    assert clear["ci_low"] <= clear["ratio"] <= clear["ci_high"] < 1 and not clear["tie_with_runner_up"]
    a, b = paired(4, lead=0.995)
    (close,) = compute_verdict(
        _paired_report(_row("int8-dynamic", a, "x"), _row("ort-default", b, "z", True))
    )
    assert close["tie_with_runner_up"] == (close["ci_low"] <= 1 <= close["ci_high"]) is True
    (line,) = format_verdict([clear])
    low, high = 1 / clear["ci_high"], 1 / clear["ci_low"]
    assert f"99% interval {low:.2f}-{high:.2f})" in line and "a tie" not in line
    a, b = paired(5, lead=0.85)
    (peer,) = compute_verdict(_paired_report(_row("int8-dynamic", b, "x"), _row("ort-default", a, "z", True)))
    assert peer["peer_wins"] and not peer["peer_tie"] and peer["peer_vs_edgefn"]["ci_high"] < 1
    assert "a peer wins" in format_verdict([peer])[0]


def test_legacy_reports_keep_the_round_count_rule() -> None:
    """A report without a protocol record (the legacy protocol) decides by rounds, and still carries an
    interval: a lead held in 2 of 3 rounds is a tie, one held in 3 of 3 is not."""
    legacy = BenchReport("run", {"rounds": 3}, "fp32 on CPU", 128, {}, {}, [])
    legacy.results = [_row("a", [5.0, 5.0, 5.6], "x"), _row("b", [5.5, 5.5, 5.5], "y")]
    (tie,) = compute_verdict(legacy)
    assert tie["decided_by"] == "rounds" and tie["tie_with_runner_up"]
    assert tie["rounds_faster_than_runner_up"] == [2, 3] and tie["ratio"] is not None
    legacy.results = [_row("a", [5.0, 5.0, 5.4], "x"), _row("b", [5.5, 5.5, 5.5], "y")]
    (win,) = compute_verdict(legacy)
    assert not win["tie_with_runner_up"] and win["ci_low"] is not None


def test_dispersion_leaves_process_offsets_out() -> None:
    """Round-to-round dispersion is the robust spread within processes: 20% offsets between processes with
    1% jitter read as about 1%, 25% jitter as far more."""
    rng = np.random.default_rng(0)
    offsets = np.array([0.0, 0.2, -0.2, 0.1])[GROUPS]
    quiet = np.exp(offsets + rng.normal(0, 0.01, 24))
    assert dispersion(list(quiet), [1.0] * 24, GROUPS) < 0.02
    loaded = np.exp(rng.normal(0, 0.25, 24))
    assert dispersion(list(loaded), [1.0] * 24, GROUPS) > 0.15
    assert dispersion([1.0, 2.0], [1.0, 1.0]) is None


def test_noise_flag_thresholds_on_synthetic_spreads() -> None:
    """A quiet run (rows moving ~2% per round, 0.02 cores of neighbours, no steal) is trusted; rows moving
    ~25%, neighbours on a quarter core and more, or 5% steal are flagged, and the run is called unreliable
    when more than a quarter of its rows are flagged or the steal is over the limit."""
    rng = np.random.default_rng(1)
    base = 4.0 * np.exp(rng.normal(0, 0.10, 24))  # the machine's shared slow-downs

    def rows(jitter: float) -> list[list[float]]:
        return [list(base * np.exp(rng.normal(0, jitter, 24))) for _ in range(4)]

    quiet, loaded = rows(0.02), rows(0.25)
    quiet_noise = [noise.row_noise(r, [o for o in quiet if o is not r], GROUPS) for r in quiet]
    loaded_noise = [noise.row_noise(r, [o for o in loaded if o is not r], GROUPS) for r in loaded]
    assert max(quiet_noise) < noise.NOISE_LIMIT < min(loaded_noise)
    assert noise.row_flags(quiet_noise[0], 0.02, 0.0) == []
    assert "from round to round" in noise.row_flags(loaded_noise[0], 0.02, 0.0)[0]
    assert "0.40 cores" in noise.row_flags(0.01, 0.40, 0.0)[0]
    assert "stole 5.0%" in noise.row_flags(0.01, 0.0, 0.05)[0]

    stat = {"user": 1000, "system": 100, "idle": 8900, "steal": 0}
    calm = {"loadavg": [0.3, 0.3, 0.3], "cpu_mhz": 2600.0, "cpu_times": stat}
    after = {**calm, "cpu_times": {**stat, "user": 2000, "idle": 9900}}
    trusted = [
        {"label": f"r{i}", "noise": n, "flags": noise.row_flags(n, 0.02, 0.0)}
        for i, n in enumerate(quiet_noise)
    ]
    verdict = noise.assess(calm, after, trusted, [0.02] * 24, [0.0] * 24)
    assert not verdict["unreliable"] and verdict["measured"]["steal_fraction"] == 0.0
    assert verdict["measured"]["rows_flagged"] == 0 and verdict["limits"]["row_noise"] == noise.NOISE_LIMIT
    busy = [
        {"label": f"r{i}", "noise": n, "flags": noise.row_flags(n, 0.02, 0.0)}
        for i, n in enumerate(loaded_noise)
    ]
    assert noise.assess(calm, after, busy, [0.02] * 24, [0.0] * 24)["unreliable"]
    stolen = {**calm, "cpu_times": {**stat, "user": 1900, "idle": 9900, "steal": 100}}  # 100 of 2000 jiffies
    result = noise.assess(calm, stolen, trusted, [0.02] * 24, [0.05] * 24)
    assert result["unreliable"] and "stole 5.0%" in result["reasons"][0]
    assert result["measured"]["steal_fraction"] == pytest.approx(0.05)


PROC_STAT = """cpu  1908516 124295 172911 3465352 8311 0 1679 3308 0 0
cpu0 832417 43702 60695 1900093 2100 0 357 1674 0 0
intr 123456
"""


def test_steal_time_parsed_from_proc_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "cpu" line's counters by name; steal between two readings over all CPU time but guest time
    (already inside user); no /proc/stat (macOS) gives None, and so does an empty interval."""
    times = noise.read_cpu_times(PROC_STAT)
    assert times is not None and times["user"] == 1908516 and times["steal"] == 3308 and times["guest"] == 0
    later = {
        **times,
        "user": times["user"] + 900,
        "steal": times["steal"] + 100,
        "guest": times["guest"] + 500,
    }
    assert noise.steal_fraction(times, later) == pytest.approx(100 / 1000)
    assert noise.steal_fraction(times, times) is None and noise.steal_fraction(None, later) is None
    monkeypatch.setattr(noise, "PROC_STAT", tmp_path / "missing")
    assert noise.read_cpu_times() is None
    assert noise.read_cpu_times("intr 1\n") is None


def test_report_json_verdict_cells_carry_intervals(exported_tiny_run: Path, tmp_path: Path) -> None:
    """A tiny bench by the paired protocol (2 processes x 6 rounds): every verdict cell in report.json has
    ratio, ci_low and ci_high (the interval around the ratio), the protocol with each engine's threading
    (ONNX Runtime's spinning explicit), steal time in the machine block, and each row its round p50s and
    round-to-round noise."""
    import shutil

    from edgefn.bench.benchmark import BenchConfig, bench

    run = tmp_path / "run"
    shutil.copytree(exported_tiny_run, run)
    bench(
        BenchConfig(
            run_dir=run,
            batch_sizes=(1, 4),
            seq_len=32,
            samples=48,
            min_time_s=0.06,
            warmup=1,
            threads=1,
            peers=(),
            rounds=6,
            processes=2,
            peak_probe=False,
        )
    )
    saved = json.loads((run / "bench" / "report.json").read_text())
    assert len(saved["verdict"]) == 4
    for cell in saved["verdict"]:
        assert {"ratio", "ci_low", "ci_high"} <= set(cell) and cell["decided_by"] == "interval"
        assert cell["ci_low"] <= cell["ratio"] <= cell["ci_high"]
        assert cell["tie_with_runner_up"] == (cell["ci_low"] <= 1 <= cell["ci_high"])
    protocol = saved["protocol"]
    assert (protocol["name"], protocol["processes"], protocol["rounds"]) == ("paired", 2, 6)
    assert (
        protocol["engines"][CPU]["session.intra_op.allow_spinning"] == "0"
    )  # bench times without spinning (aa.md)
    assert len(protocol["round_steal"]) == 6 and protocol["wall_s"] > 0
    assert "steal_fraction" in saved["machine"]["assessment"]["measured"]
    for result in saved["results"]:
        for m in result["measurements"]:
            assert len(m["round_p50_ms"]) == 6 and m["noise"] is None or math.isfinite(m["noise"])
    md = (run / "bench" / "report.md").read_text()
    assert "99% interval" in md and "threading:" in md and "steal" in md


AA_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "aa_test.py"
CELL_KEYS = {"variant", "shape", "batch", "ratio_p50", "ci_low", "ci_high", "called_tie"}


@pytest.mark.slow
def test_aa_script_quick_writes_the_schema(exported_tiny_run: Path, tmp_path: Path) -> None:
    """benchmarks/aa_test.py --quick on the tiny run (ov-int8 exported into its own copy, the source left
    alone): aa.json holds before (legacy) and after (paired) cells of both variants, fixed and real, with the
    promised keys, each protocol's wall seconds, the CPU and its flags, steal time, the decomposition (between
    vs within processes, spinning, round length) and the targets; aa.md its tables."""
    import os
    import subprocess
    import sys

    pytest.importorskip("openvino", reason="the dev extra installs openvino")
    before = sorted(p.name for p in (exported_tiny_run / "onnx").iterdir())
    root = str(AA_SCRIPT.parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
    argv = [sys.executable, str(AA_SCRIPT), "--run", str(exported_tiny_run), "--work", str(tmp_path / "work")]
    argv += ["--quick", "--samples", "16", "--seq-len", "16", "--threads", "1"]
    argv += ["--results-dir", str(tmp_path / "results")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (exported_tiny_run / "onnx").iterdir()) == before
    record = json.loads((tmp_path / "results" / "aa.json").read_text())
    for key in ("before", "after"):
        cells = record[key]["cells"]
        assert {(c["variant"], c["shape"], c["batch"]) for c in cells} == {
            (v, s, b) for v in ("int8-dynamic", "ov-int8") for s in ("fixed", "real") for b in (1, 8)
        }
        for c in cells:
            assert set(c) >= CELL_KEYS and isinstance(c["called_tie"], bool)
            assert c["ratio_p50"] == pytest.approx(c["p50_a_ms"] / c["p50_b_ms"])
        assert record[key]["wall_s"] > 0
    assert (
        record["before"]["protocol"]["name"] == "legacy" and record["after"]["protocol"]["name"] == "paired"
    )
    assert record["cpu"]["flags"] and "steal_fraction" in record["machine"]
    d = record["decomposition"]
    assert {"paired_within_process", "paired_between_processes"} <= set(d["median"])
    assert d["spin"]["cells"] and d["round_length"]["cells"]
    assert {"agree_within_5pct", "aa_ties", "wall_after_over_before"} <= set(record["criteria"])
    md = (tmp_path / "results" / "aa.md").read_text()
    assert "## Before: the legacy protocol" in md and "## Where the spread comes from" in md


def bench_beside_cpu(source: Path, tmp_path: Path, engine: str, **settings: Any) -> Any:
    """A copy of the tiny run benched by the paired protocol: its fp32 on ONNX Runtime's CPU engine and on
    `engine`, batch 2 at 16 tokens, one thread, no peers; `settings` the rounds, processes and warm-up."""
    import shutil

    from edgefn.bench.benchmark import BenchConfig, bench

    run = tmp_path / "run"
    shutil.copytree(source, run)
    return bench(
        BenchConfig(
            run_dir=run,
            providers=("cpu", engine),
            variants=("fp32",),
            include_pytorch=False,
            batch_sizes=(2,),
            seq_len=16,
            samples=16,
            threads=1,
            peers=(),
            peak_probe=False,
            **settings,
        )
    )


def test_a_target_that_fails_to_load_is_a_failed_row(exported_tiny_run: Path, tmp_path: Path) -> None:
    """Under the paired protocol a target whose model does not load is a failed row naming the process and
    the reason; the other targets are measured in every round."""
    report = bench_beside_cpu(
        exported_tiny_run, tmp_path, FAILING, min_time_s=0.02, warmup=1, rounds=4, processes=2
    )
    failed, ok = report.result("fp32", FAILING), report.result("fp32", CPU)
    assert failed.status == "failed" and "process 1" in failed.reason and "no kernel" in failed.reason
    assert ok.status == "ok" and all(len(m.round_p50_ms) == 4 for m in ok.measurements)


def test_later_blocks_load_at_once_and_warm_once(
    exported_tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first process block the models load all at once: a target whose load fails there is a failed
    row naming that process and the reason, the rounds it was measured in before are not passed off as a row,
    and the other target is measured in every round. The protocol records 3 warm-up calls for the first block
    and one for each later block."""
    monkeypatch.setenv(FLAKY_MARKER, str(tmp_path / "loaded-once"))
    report = bench_beside_cpu(
        exported_tiny_run, tmp_path, FLAKY, min_time_s=0.03, warmup=3, rounds=6, processes=3
    )
    failed, ok = report.result("fp32", FLAKY), report.result("fp32", CPU)
    assert failed.status == "failed" and "process 2" in failed.reason and "second load" in failed.reason
    assert ok.status == "ok" and all(len(m.round_p50_ms) == 6 for m in ok.measurements)
    assert report.protocol["warmup_calls_per_process"] == [3, 1, 1]
