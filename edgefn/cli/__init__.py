"""The `edgefn` command line: commands, shared options, and `show`."""
