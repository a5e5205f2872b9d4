"""One process at a time for work that shares a project's files: the kernel's `flock` on a file under
`.mnistgen/locks/`, so a killed process never leaves its lock behind."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_DIR = ".mnistgen/locks"


@contextmanager
def held(project_dir: Path, name: str, busy: Callable[[str], Exception] | None = None) -> Iterator[None]:
    """Hold the project's lock `name` for the duration of the block.

    Args:
        project_dir: the project whose files the work shares.
        name: what is locked (`register`, `data`, a variant's name).
        busy: when given, a second process is refused with `busy(pid of the holder)`; without it, the
            second waits for the first to end, then goes on (and finds what the first left).
    """
    lock_file = project_dir / LOCK_DIR / f"{name}.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            if busy is not None:
                raise busy(holder) from None
            log.info("waiting for process %s to end its %s in %s", holder, name, project_dir)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
