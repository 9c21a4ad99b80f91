"""The quiet console: line folding, throttled progress lines, known library messages dropped, no bars off a TTY."""

from __future__ import annotations

import io
import logging

import pytest

from edgefn.core import progress as console


def test_long_lines_fold_at_120_columns_and_short_ones_stay() -> None:
    """A line over 120 characters folds at spaces into indented lines that fit; a short one is unchanged."""
    short = "fp32: ONNX Runtime graph optimisation O2"
    assert console.wrap_line(short) == short
    long = " ".join(f"word{i}" for i in range(60))
    lines = console.wrap_line(long).splitlines()
    assert len(lines) > 1 and all(len(line) <= console.LINE_WIDTH for line in lines)
    assert all(line.startswith("  ") for line in lines[1:])
    assert " ".join(part.strip() for part in lines) == long


def test_ticker_says_at_most_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ticker stays silent inside its interval, then says `what: done/total`; never the finished count."""
    now = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: now[0])
    said: list[str] = []
    ticker = console.Ticker(said.append, "training steps", 10, every=5.0)
    for step, t in ((1, 1.0), (2, 4.9), (3, 5.0), (4, 6.0), (5, 10.5), (10, 30.0)):
        now[0] = t
        ticker.update(step)
    assert said == ["training steps: 3/10", "training steps: 5/10"]


def test_only_the_known_library_message_is_dropped() -> None:
    """dropping_log_messages drops the records starting with a known prefix on the named loggers, for the
    duration only; other messages of the same logger still show."""
    stream = io.StringIO()
    logger = logging.getLogger("edgefn-test.library")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        with console.dropping_log_messages(("edgefn-test.library",), ("`torch_dtype` is deprecated",)):
            logger.warning("`torch_dtype` is deprecated! Use `dtype` instead!")
            logger.warning("a real problem")
        logger.warning("`torch_dtype` is deprecated! after the call")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == ["a real problem", "`torch_dtype` is deprecated! after the call"]


def test_bars_are_off_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """on_terminal reads stderr: a file or pipe means no bars (and datasets' bars get turned off)."""
    import datasets

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not console.on_terminal()
    datasets.enable_progress_bars()
    try:
        console.library_bars_off()
        assert not datasets.is_progress_bar_enabled()
    finally:
        datasets.enable_progress_bars()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    assert console.on_terminal()


def test_a_warning_is_one_progress_line() -> None:
    """warn says `warning: ...` through the stage's progress callback and hands the message back."""
    said: list[str] = []
    assert console.warn(said.append, "something is off") == "something is off"
    assert said == ["warning: something is off"]
