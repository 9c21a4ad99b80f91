"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class EdgefnError(Exception):
    """A problem with the user's input or environment, explained in one line."""
