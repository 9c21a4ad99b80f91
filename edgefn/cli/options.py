"""Shared click options and helpers of the CLI: one-line errors, list parsing, dataset and fine-tune options."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from edgefn.core.errors import EdgefnError, os_error_line

F = TypeVar("F", bound=Callable[..., Any])


class RegistryHelp(click.Option):
    """An option whose help text a registry computes when help is shown (`help_from`: "module:function"), so
    that what was registered after import (an engine, a peer, a scheme) is listed; imported only then."""

    def __init__(self, *args: Any, help_from: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help_from = help_from

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        import importlib

        module, function = self.help_from.split(":")
        self.help = getattr(importlib.import_module(module), function)()
        return super().get_help_record(ctx)


# The run folder of the commands that read an existing run (export, bench, package).
run_dir_option = click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Run folder (default: the most recent under artifacts/).",
)


def user_errors(fn: F) -> F:
    """Turn EdgefnError into a one-line message and exit code 2, an OSError (a full disk, an I/O error) into
    one line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
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
        _silence_stdout()
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


def _silence_stdout() -> None:
    """Point a failed standard output at /dev/null, so its unwritten buffer cannot fail again at exit."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = sys.stdout.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)


def parse_int_list(value: str, option: str) -> tuple[int, ...]:
    """Parse `1,8,32` into positive integers, with a one-line error otherwise."""
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip() != "")
    except ValueError:
        raise EdgefnError(f"{option} takes a comma list of positive integers, got {value!r}") from None
    if not out or any(v <= 0 for v in out):
        raise EdgefnError(f"{option} takes a comma list of positive integers, got {value!r}")
    return out


def split_list(value: str | None) -> tuple[str, ...] | None:
    """Split `a, b,c` into names; None stays None."""
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def name_list(value: str | None, option: str) -> tuple[str, ...] | None:
    """`split_list` for an option whose absence means a default: given, it must name something."""
    names = split_list(value)
    if names == ():
        raise EdgefnError(f"{option} {value!r} names nothing; leave the option out for the default")
    return names


# How to read a generic file (the commands that take DATA as an argument use them as they are).
column_options = [
    click.option(
        "--text-col",
        "text_cols",
        multiple=True,
        help="Text column of a generic file; repeat to join columns (title + text).",
    ),
    click.option("--label-col", default=None, help="Label column of a generic file."),
    click.option("--fake-label", default=None, help="The label value that means fake in a generic file."),
]


def apply_options(fn: F, decorators: Sequence[Callable[[Any], Any]]) -> F:
    """Decorate `fn` with click options in the order they are listed (as if stacked in that order)."""
    for dec in reversed(decorators):
        fn = dec(fn)
    return fn


def column_options_for(fn: F) -> F:
    """--text-col, --label-col and --fake-label (for the commands that take DATA as an argument)."""
    return apply_options(fn, column_options)


def data_options(fn: F) -> F:
    """Options shared by every command that reads a dataset."""
    data = click.option(
        "--data",
        "data",
        default="welfake",
        show_default=True,
        help="Dataset name (welfake, isot, constraint, liar, sample), a file/folder path, "
        "fake=PATH,real=PATH (one file or folder per class) or a union a+b+c.",
    )
    no_clean = click.option(
        "--no-clean", is_flag=True, help="Keep dataset shortcut cues (ISOT datelines etc.)."
    )
    return apply_options(fn, [data, *column_options, no_clean, *cleaning_options])


cleaning_options = [
    click.option(
        "--clean",
        "clean_rules",
        default=None,
        help="Comma list of cleaning rules (urls, drop-urls, handles, drop-handles, hashtags, reuters, "
        "featured-image, whitespace) for a generic file, or instead of a named dataset's own.",
    ),
    click.option(
        "--strict", is_flag=True, help="Refuse rows without a label instead of dropping and counting them."
    ),
    click.option(
        "--max-train-per-source",
        type=click.IntRange(min=1),
        default=None,
        help="Cap each dataset's training rows in a union a+b (a seeded sample).",
    ),
]


def make_data_options(
    text_cols: tuple[str, ...],
    label_col: str | None,
    fake_label: str | None,
    no_clean: bool,
    seed: int = 42,
    clean_rules: str | None = None,
    strict: bool = False,
    max_train_per_source: int | None = None,
) -> Any:
    from edgefn.data.catalog import DataOptions
    from edgefn.data.dataprep import check_rules

    rules = split_list(clean_rules) or ()
    check_rules(rules)
    return DataOptions(
        text_cols=tuple(text_cols),
        label_col=label_col,
        fake_label=fake_label,
        clean=not no_clean,
        seed=seed,
        strict=strict,
        clean_rules=rules,
        max_train_per_source=max_train_per_source,
    )


def finetune_options(fn: F) -> F:
    """Options shared by `finetune` and `run`."""
    decorators = [
        data_options,
        click.option(
            "--epochs",
            type=int,
            default=None,
            help="Maximum epochs (default: the preset's, 5 for real presets).",
        ),
        click.option(
            "--batch-size", type=int, default=None, help="Per-device batch size (default: the preset's)."
        ),
        click.option("--lr", type=float, default=None, help="Learning rate (default: the preset's)."),
        click.option(
            "--max-length", type=int, default=None, help="Truncate texts to this many tokens (default 128)."
        ),
        click.option(
            "--max-train-samples", type=int, default=None, help="Use a random subset of the training split."
        ),
        click.option(
            "--max-eval-samples", type=int, default=None, help="Use a random subset of the validation split."
        ),
        click.option(
            "--max-test-samples",
            type=int,
            default=None,
            help="Score a random subset of the test split (quick runs).",
        ),
        click.option(
            "--seed",
            type=int,
            default=42,
            show_default=True,
            help="Seed for splits, init and training order.",
        ),
        click.option(
            "--init",
            type=click.Choice(["pretrained", "scratch"]),
            default="pretrained",
            show_default=True,
            help="pretrained: local folder, HF cache, hub or bundled weights (never a silent fallback); "
            "scratch: random init of the preset's architecture.",
        ),
        click.option(
            "--run-dir",
            type=click.Path(path_type=Path),
            default=None,
            help="Output folder (default: artifacts/<preset>-<data>).",
        ),
        click.option("--overwrite", is_flag=True, help="Replace an existing run folder."),
    ]
    return apply_options(fn, decorators)


def make_finetune_config(preset: str, opts: dict[str, Any], resume: bool = False) -> Any:
    """Build a FinetuneConfig from the `finetune_options` values."""
    from edgefn.train.finetune import FinetuneConfig

    data_opts = make_data_options(
        opts.pop("text_cols"),
        opts.pop("label_col"),
        opts.pop("fake_label"),
        opts.pop("no_clean"),
        opts["seed"],
        opts.pop("clean_rules"),
        opts.pop("strict"),
        opts.pop("max_train_per_source"),
    )
    return FinetuneConfig(preset=preset, data_options=data_opts, resume=resume, **opts)


def data_files(data: str) -> list[str]:
    """The files and folders a --data / DATA argument names (`a.csv+b.jsonl`, `fake=A,real=B`,
    `welfake:PATH`, a folder of files), for the input-is-not-output guard; registry names are left out."""
    parts = (p.split("=", 1)[-1] for p in data.replace(",", "+").split("+"))
    candidates = (p.split(":", 1)[-1] if not Path(p).exists() else p for p in parts)
    return [c for c in candidates if c and Path(c).exists()]
