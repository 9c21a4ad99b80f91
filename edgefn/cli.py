"""Command-line interface: one thin command per stage over the Python API."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from edgefn import __version__
from edgefn.errors import EdgefnError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn EdgefnError into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgefnError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def parse_int_list(value: str, option: str) -> tuple[int, ...]:
    """Parse `1,8,32` into positive integers, with a one-line error otherwise."""
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip() != "")
    except ValueError:
        raise EdgefnError(f"{option} takes a comma list of positive integers, got {value!r}") from None
    if not out or any(v <= 0 for v in out):
        raise EdgefnError(f"{option} takes a comma list of positive integers, got {value!r}")
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgefn")
def main() -> None:
    """edgefn: fine-tune a small transformer classifier, export it to ONNX, quantize and benchmark it."""


def data_options(fn: F) -> F:
    """Options shared by every command that reads a dataset."""
    decorators = [
        click.option("--data", "data", default="welfake", show_default=True,
                     help="Dataset name (welfake, isot, constraint, liar, sample) or a file/folder path."),
        click.option("--text-col", "text_cols", multiple=True,
                     help="Text column of a generic file; repeat to join columns (title + text)."),
        click.option("--label-col", default=None, help="Label column of a generic file."),
        click.option("--fake-label", default=None, help="The label value that means fake in a generic file."),
        click.option("--no-clean", is_flag=True, help="Keep dataset shortcut cues (ISOT datelines etc.)."),
    ]
    for dec in reversed(decorators):
        fn = dec(fn)
    return fn


def make_data_options(text_cols: tuple[str, ...], label_col: str | None, fake_label: str | None,
                      no_clean: bool, seed: int = 42) -> Any:
    from edgefn.data import DataOptions

    return DataOptions(text_cols=tuple(text_cols), label_col=label_col, fake_label=fake_label,
                       clean=not no_clean, seed=seed)


# --- data -------------------------------------------------------------------------------------------------

# --- finetune ---------------------------------------------------------------------------------------------

# --- export -----------------------------------------------------------------------------------------------

# --- bench ------------------------------------------------------------------------------------------------

# --- run / demo -------------------------------------------------------------------------------------------

# --- predict / show ---------------------------------------------------------------------------------------


if __name__ == "__main__":
    main()
