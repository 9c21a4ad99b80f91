"""`python -m edgefn.cli`: the `edgefn` command."""

from edgefn.cli.commands import main

main()
