"""Errors a user can act on: each message names the problem and the fix."""


class MnistgenError(Exception):
    """Base of every error the CLI reports as a message instead of a traceback."""
