"""How the CLI ends on a refusal: one line, exit 2 for the user's input, exit 1 for an OS fault."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from edgefn.cli.options import flag_message
from edgefn.core.errors import ConfigError, EdgefnError, os_error_line

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn EdgefnError into a one-line message and exit code 2 (a config field named by its flag), an
    OSError (a full disk, an I/O error) into one line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as e:
            ctx = click.get_current_context(silent=True)
            click.echo(f"Error: {flag_message(e, ctx.command if ctx else None)}", err=True)
            sys.exit(2)
        except EdgefnError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(2)
        except OSError as e:  # here, before click's main, which would swallow a broken pipe silently
            exit_on_os_error(e, command_path(click.get_current_context(silent=True)))

    return wrapper  # type: ignore[return-value]


def command_path(ctx: click.Context | None) -> str:
    """`edgefn data list`: the command's names under the edgefn group, however the program was started."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["edgefn", *reversed(names)])


def exit_on_os_error(e: OSError, what: str, stdout: bool = False) -> NoReturn:
    """Print an OS fault met by command `what` as one line and exit 1; a failed standard output is named and
    silenced (a reader that closed the pipe, as `| head` does, is no fault to report)."""
    if stdout or _raised_writing_stdout(e):
        silence_stdout()
        if e.errno == errno.EPIPE:
            sys.exit(1)
        what += ": writing standard output"
    click.echo(f"Error: {os_error_line(e, what)}", err=True)
    sys.exit(1)


def _raised_writing_stdout(e: OSError) -> bool:
    """Whether the innermost Python frame of `e` held standard output (click.echo's or a writer's stream)."""
    streams = {id(sys.stdout), id(getattr(sys.stdout, "buffer", None)), id(sys.__stdout__)}
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and any(id(v) in streams for v in tb.tb_frame.f_locals.values())


def silence_stdout() -> None:
    """Point a failed standard output at /dev/null, so its unwritten buffer cannot fail again at exit."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = sys.stdout.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
