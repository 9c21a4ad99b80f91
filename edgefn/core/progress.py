"""The one progress callback every stage takes as `progress`, bars only on a terminal, and quiet libraries."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator

Progress = Callable[[str], None]

TICK_S = 10.0  # without bars, a long step says how far it got at most this often


def silent(_message: str) -> None:
    """The progress callback of a caller that wants no lines."""


def warn(progress: Progress, message: str) -> str:
    """Say a warning as one `warning: ...` progress line (stderr in the CLI); returns the message."""
    progress(f"warning: {message}")
    return message


def on_terminal() -> bool:
    """Whether progress bars may draw: stderr, where they go, is a terminal (not a file or a pipe), or this is
    a notebook (whose bars are widgets)."""
    if "ipykernel" in sys.modules:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Ticker:
    """Progress lines for a loop that draws no bar: `what: done/total` at most every `every` seconds."""

    def __init__(self, say: Progress, what: str, total: int, every: float = TICK_S) -> None:
        self.say, self.what, self.total, self.every = say, what, total, every
        self.last = time.monotonic()

    def update(self, done: int) -> None:
        """Report `done` of `total` if `every` seconds passed since the last line."""
        now = time.monotonic()
        if now - self.last >= self.every and done < self.total:
            self.say(f"{self.what}: {done}/{self.total}")
            self.last = now


class _DropKnown(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


@contextlib.contextmanager
def dropping_log_messages(loggers: tuple[str, ...], prefixes: tuple[str, ...]) -> Iterator[None]:
    """Drop the library log records of `loggers` whose message starts with one of `prefixes` (known,
    harmless messages of a library call we cannot change), and only those, for the duration."""
    drop = _DropKnown(prefixes)
    targets = [logging.getLogger(name) for name in loggers]
    for logger in targets:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger in targets:
            logger.removeFilter(drop)


def library_bars_off() -> None:
    """Turn off the progress bars of Hugging Face datasets and the hub when stderr is no terminal (a
    redirected bar is a stream of carriage returns and escape codes)."""
    if on_terminal():
        return
    import datasets

    datasets.disable_progress_bars()
    with contextlib.suppress(ImportError):
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


LINE_WIDTH = 120  # console lines fit a terminal of this many columns


def wrap(
    line: str, width: int = LINE_WIDTH, indent: str = "", more: str = "  ", break_long_words: bool = True
) -> list[str]:
    """One long message as lines of at most `width` characters, folded at spaces (continuations indented by
    `more`); a word longer than a line is cut unless `break_long_words` is false."""
    import textwrap

    return textwrap.wrap(
        line,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + more,
        break_long_words=break_long_words,
        break_on_hyphens=False,
    ) or [indent]


def wrap_line(line: str, width: int = LINE_WIDTH) -> str:
    """`line` folded at spaces into lines of at most `width` characters, continuations indented two spaces;
    long words (paths) are kept whole."""
    return line if len(line) <= width else "\n".join(wrap(line, width, break_long_words=False))
