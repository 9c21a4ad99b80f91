"""How the CLI ends on a refusal: one line, exit 2 for the user's input, exit 1 for an OS fault."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shlex
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
            click.echo(f"Error: {_instead(e, click.get_current_context(silent=True))}", err=True)
            sys.exit(2)
        except OSError as e:  # here, before click's main, which would swallow a broken pipe silently
            exit_on_os_error(e, command_path(click.get_current_context(silent=True)))

    return wrapper  # type: ignore[return-value]


SMOKE_DATA = "sample"  # packaged with edgefn, so always found


def _instead(e: EdgefnError, ctx: click.Context | None) -> str:
    """The message of `e`; for a dataset not found, first the same command on the packaged sample."""
    from edgefn.data.home import DatasetNotFound

    if not isinstance(e, DatasetNotFound) or ctx is None or e.name == SMOKE_DATA:
        return str(e)
    return f"dataset {e.name} not found; run `{_rerun(ctx, SMOKE_DATA)}` instead, or {e.how}"


def _rerun(ctx: click.Context, data: str) -> str:
    """The command of `ctx` as typed (its arguments and the options given on the command line, as far as
    they print back) with `data` as its data."""
    words = command_path(ctx).split()
    given = click.core.ParameterSource.COMMANDLINE
    for param in ctx.command.params:
        name = param.name or ""
        value = data if name == "data" else ctx.params.get(name)
        if isinstance(param, click.Argument):
            words += [
                str(v) for v in (value if isinstance(value, (tuple, list)) else [value]) if v is not None
            ]
        elif isinstance(param, click.Option) and (name == "data" or ctx.get_parameter_source(name) == given):
            words += _option_words(param, value)
    return " ".join(shlex.quote(w) if i >= 2 else w for i, w in enumerate(words))


def _option_words(param: click.Option, value: Any) -> list[str]:
    """`--flag VALUE` words of an option given on the command line; [] for a value that would not print
    back as typed (a parsed list, a range)."""
    flag = max(param.opts, key=len)
    if param.is_flag:  # a boolean flag given as --flag, or as the --no-flag of a pair
        if value is True:
            return [flag]
        return [max(param.secondary_opts, key=len)] if value is False and param.secondary_opts else []
    values = value if param.multiple and isinstance(value, (tuple, list)) else [value]
    if not all(isinstance(v, (str, int, float, os.PathLike)) and not isinstance(v, bool) for v in values):
        return []
    return [w for v in values for w in (flag, str(v))]


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
