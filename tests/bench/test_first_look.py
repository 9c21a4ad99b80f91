"""A quick first bench (`--quick`) and the warning for a test sample too small for --max-drop."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from edgefn.bench import benchmark
from edgefn.bench.benchmark import BenchConfig, sample_warning
from edgefn.cli.commands import main


class _Stop(Exception):
    pass


def _config_of(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> BenchConfig:
    """The BenchConfig the bench command builds from `argv` (the bench itself is not run)."""
    seen: list[BenchConfig] = []

    def capture(cfg: BenchConfig, progress=None):
        seen.append(cfg)
        raise _Stop

    monkeypatch.setattr(benchmark, "bench", capture)
    result = CliRunner().invoke(main, ["bench", *argv])
    assert isinstance(result.exception, _Stop), result.output
    return seen[0]


def test_quick_means_no_peers_one_process_no_peak_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench --quick` builds a config with no peers, one measuring process per target (8 short rounds) and no
    MatMul peak probe, whatever --peers, --rounds and --processes say; without it the defaults (every peer, 4
    processes x 24 paired rounds, the probe) stay, and --rounds 1 alone means one process."""
    argv = ["--quick", "--rounds", "5", "--processes", "3", "--peers", "all"]
    quick = _config_of(argv, monkeypatch)
    assert (quick.peers, quick.processes, quick.rounds, quick.peak_probe) == ((), 1, 8, False)
    full = _config_of([], monkeypatch)
    assert (
        full.peers and (full.processes, full.rounds, full.protocol) == (4, 24, "paired") and full.peak_probe
    )
    assert _config_of(["--rounds", "1"], monkeypatch).processes == 1
    assert BenchConfig.quick(batch_sizes=(1,)).batch_sizes == (1,)


def test_sample_warning_when_one_text_outweighs_max_drop() -> None:
    """64 texts make one text 1.5625 points, over the 0.5 default: warned, naming the 200 texts needed; 200
    texts (0.5 points each) and a --max-drop of 0 are not; the line fits the console."""
    message = sample_warning(64, 0.5)
    assert (
        message is not None
        and "one text of 64 is 1.562 accuracy points" in message
        and ">= 200 texts" in message
    )
    assert len("warning: " + message) <= 120
    assert len("warning: " + (sample_warning(1999, 0.05) or "")) <= 120
    assert sample_warning(200, 0.5) is None
    assert sample_warning(199, 0.5) is not None
    assert sample_warning(64, 2.0) is None and sample_warning(10, 0.0) is None
