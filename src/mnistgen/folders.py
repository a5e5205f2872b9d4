"""Replacing a folder as one step: readers see the previous folder or the new one, never a mix, and a
failure leaves the previous one in place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def swap_in(incoming: Path, target: Path) -> None:
    """Put the complete folder `incoming` at `target`, replacing what is there.

    Both moves are renames on `target`'s filesystem: a folder built on another one (`train.runs_dir` on
    its own disk) is copied beside `target` first. If the second move fails, the previous folder is put
    back. `incoming` is gone afterwards.

    Args:
        incoming: the new folder, complete.
        target: where it belongs; its parent is created if need be.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    source = incoming
    if os.stat(incoming).st_dev != os.stat(target.parent).st_dev:
        source = target.with_name(f".{target.name}.incoming")
        shutil.rmtree(source, ignore_errors=True)
        try:
            shutil.copytree(incoming, source)
        except OSError:
            shutil.rmtree(source, ignore_errors=True)
            raise
    retired = target.with_name(f".{target.name}.retired")
    shutil.rmtree(retired, ignore_errors=True)
    if target.exists():
        target.replace(retired)
    try:
        source.replace(target)
    except OSError:
        if retired.exists():
            retired.replace(target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
    if source is not incoming:
        shutil.rmtree(incoming, ignore_errors=True)
