"""The `edgefn` command group: one thin command per stage over the Python API, listed in pipeline order."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

import click

from edgefn import __version__
from edgefn.cli.data import data_group
from edgefn.cli.errors import exit_on_os_error
from edgefn.cli.predict import predict
from edgefn.cli.run import demo, run_cmd
from edgefn.cli.show import show
from edgefn.cli.stages import bench, distill, eval_cmd, export_cmd, finetune, package_cmd

# `edgefn --help` lists the commands in this order: the pipeline's, then the commands that span it.
PIPELINE = (
    data_group,
    finetune,
    distill,
    export_cmd,
    bench,
    eval_cmd,
    predict,
    package_cmd,
    show,
    run_cmd,
    demo,
)


class _PipelineGroup(click.Group):
    """Commands in pipeline order; usage errors as one line naming the help to read, like every other
    refusal (exit 2)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added: PIPELINE

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as e:
            where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            click.echo(f"Error: {e.format_message()}{where}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except OSError as e:  # the system refused: a full disk, an I/O error, a read-only file system
            exit_on_os_error(e, self._command_path(args))
        try:
            sys.stdout.flush()  # a full stdout (`> /dev/full`) fails here, not silently at exit
        except OSError as e:
            exit_on_os_error(e, self._command_path(args), stdout=True)
        sys.exit(code if isinstance(code, int) else 0)

    def _command_path(self, args: Sequence[str] | None) -> str:
        """`edgefn data list` from the arguments: the group and command names they start with."""
        words = ["edgefn"]
        group: click.Command = self
        for arg in sys.argv[1:] if args is None else args:
            sub = group.commands.get(arg) if isinstance(group, click.Group) else None
            if sub is None:
                break
            words.append(arg)
            group = sub
        return " ".join(words)


@click.group(cls=_PipelineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgefn")
def main() -> None:
    """edgefn: fine-tune a small transformer classifier, export it to ONNX, quantize and benchmark it."""
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM behaves like Ctrl-C: temporary folders are removed and measuring processes stopped."""
    raise KeyboardInterrupt


for _command in PIPELINE:
    main.add_command(_command)


if __name__ == "__main__":
    main()
