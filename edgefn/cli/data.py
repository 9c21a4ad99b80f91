"""`edgefn data list | inspect | audit`: the known datasets, and what one holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgefn.cli.configs import data_files, make_data_options
from edgefn.cli.errors import user_errors
from edgefn.cli.options import use
from edgefn.core import outputs

COLUMNS = ("--text-col", "--label-col", "--fake-label")


class _Ordered(click.Group):
    """Subcommands in the order they were added."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group("data", cls=_Ordered)
def data_group() -> None:
    """List the known datasets and inspect one."""


@data_group.command("list")
@use(("--json",))
@user_errors
def data_list(as_json: bool) -> None:
    """List the known datasets: found or missing, the folder each loads from, and where to get it."""
    import json

    from edgefn.data.catalog import data_homes, dataset_status
    from edgefn.data.home import format_list, list_json

    homes, datasets = data_homes(), dataset_status()
    click.echo(json.dumps(list_json(homes, datasets), indent=2) if as_json else format_list(homes, datasets))


@data_group.command("inspect")
@use(("data",), COLUMNS, ("--no-clean", "--seed", "--tokenizer", "--json"))
@user_errors
def data_inspect(data: str, tokenizer: str | None, as_json: bool, **opts: Any) -> None:
    """Rows, label balance, token lengths, duplicates and cleaning of DATA (a name or a path)."""
    import json

    from edgefn.data.catalog import format_inspect, inspect_data, load_data

    report = inspect_data(load_data(data, make_data_options(opts)), tokenizer)
    click.echo(json.dumps(report, indent=2) if as_json else format_inspect(report))


@data_group.command("audit")
@use(
    ("data",),
    COLUMNS,
    ("--no-clean", "--clean", "--seed", "--ngrams", "--no-duplicates", "--output", "--json"),
)
@user_errors
def data_audit(
    data: str, ngrams: int, no_duplicates: bool, output: Path | None, as_json: bool, **opts: Any
) -> None:
    """Shortcut audit of DATA: cues per class, what each alone predicts, top n-grams, near-duplicates."""
    import json

    from edgefn.data.audit import audit_data, format_audit
    from edgefn.data.catalog import load_data
    from edgefn.runs import refuse_output_in_run, write_json

    options = make_data_options(opts)
    if output is not None:
        for source in data_files(data):
            outputs.refuse_input_as_output(output, [source], "--output")
            if Path(source).is_dir():
                outputs.refuse_output_inside(output, source, "--output", "the input folder")
        refuse_output_in_run(output)
        outputs.check_output_file(output)
    report = audit_data(load_data(data, options), ngrams=ngrams, duplicates=not no_duplicates)
    if output is not None:
        write_json(output, report, follow_symlinks=True)
    click.echo(json.dumps(report, indent=2) if as_json else format_audit(report))
