"""Errors a user can act on: each message names the problem and the fix, and never a secret."""

import re
import shutil
from pathlib import Path

INTERRUPTED_EXIT = 130  # the exit status of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT)
# `scheme://user:password@host` (or `scheme://token@host`): the credentials part of a URL.
_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***`: tracking URIs and mirrors may
    carry a password, and error messages and logs must not."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def has_credentials(text: str) -> bool:
    """Whether `text` holds a URL with credentials (what `redact` would hide)."""
    return _CREDENTIALS.search(text) is not None


def free_space(path: Path) -> str:
    """`N MiB free in FOLDER` for the nearest existing folder at or above `path`: what a message about a
    full disk (or a file-size limit) tells the user, so they can tell the two apart."""
    folder = next((p for p in (path, *path.parents) if p.is_dir()), Path("/"))
    return f"{shutil.disk_usage(folder).free / 2**20:,.0f} MiB free in {folder}"


def interrupted(error: BaseException | None) -> bool:
    """Whether `error`, or one it came from, is an interruption a user asked for rather than a failure:
    Ctrl-C or SIGTERM in this process (KeyboardInterrupt, Prefect's termination signal), or a command it
    ran that exited as one does when interrupted (`failed (exit 130)`)."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt) or type(error).__name__ == "TerminationSignal":
            return True
        if f"(exit {INTERRUPTED_EXIT})" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


class MnistgenError(Exception):
    """Base of every error the CLI reports as a message instead of a traceback. Its message is redacted:
    whatever URL it quotes, no password reaches the terminal or a log."""

    def __init__(self, message: str = "") -> None:
        super().__init__(redact(str(message)))
