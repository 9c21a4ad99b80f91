"""The one progress callback every stage takes as `progress`: called with one line per step."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def silent(_message: str) -> None:
    """The progress callback of a caller that wants no lines."""
