"""Versioning the verified data with DVC: `data.dvc` records it, the default remote keeps a copy.

DVC is driven through its command line (`python -m dvc`), its stable interface; its Python internals
change between releases.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from mnistgen.errors import MnistgenError

log = logging.getLogger(__name__)

DVC_FILE = "data.dvc"  # records the published data folder (`data.dir`)


class VersioningError(MnistgenError):
    """DVC could not record or push the data."""


@dataclass(frozen=True)
class DataVersion:
    md5: str
    nfiles: int
    changed: bool
    pushed_to: str | None


def dvc(project_dir: Path, *args: str) -> str:
    """Run one DVC command in `project_dir`; a failure raises with DVC's own message."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=project_dir, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()
        raise VersioningError(f"`dvc {' '.join(args)}` failed in {project_dir}:\n{message}")
    return done.stdout


def read_version(dvc_file: Path) -> tuple[str, int] | None:
    """The (md5, file count) a `.dvc` file records, or None when there is none yet."""
    out = _recorded_out(dvc_file)
    if out is None or "md5" not in out:
        return None
    return out["md5"], int(out.get("nfiles", 0))


def _recorded_out(dvc_file: Path) -> dict | None:
    if not dvc_file.is_file():
        return None
    return yaml.safe_load(dvc_file.read_text())["outs"][0]


def version_data(project_dir: Path, folder: str, push: bool = True) -> DataVersion:
    """Record the data `folder` (relative to the project, `data/mnist`) in `data.dvc`, rewritten only when
    the data changed, and push it to the default remote.

    `data.dvc` tracks the data folder itself, not the folder above it: `dvc repro` with the data deleted
    then stops at the missing source instead of recording an empty folder in its place.

    Args:
        project_dir: a git and DVC repository.
        folder: the published data's folder.
        push: whether to push it to the default remote.

    Returns:
        Its md5 and file count, whether they changed, and the remote it went to.
    """
    if not (project_dir / ".dvc").is_dir():
        raise VersioningError(
            f"{project_dir} is not a DVC repository. Fix: run `dvc init` there (inside git)."
        )
    dvc_file = project_dir / DVC_FILE
    before = read_version(dvc_file)
    previous = dvc_file.read_text() if dvc_file.is_file() else None
    out = _recorded_out(dvc_file)
    if out is None or out.get("path") != folder:  # none yet, or one of the folder above (older layout)
        dvc_file.write_text(f"outs:\n- path: {folder}\n")
    try:
        dvc(project_dir, "commit", "--force", "--quiet", DVC_FILE)
    except VersioningError:  # the record as it was: a failed commit leaves no half-written data.dvc
        if previous is None:
            dvc_file.unlink(missing_ok=True)
        else:
            dvc_file.write_text(previous)
        raise
    recorded = read_version(dvc_file)
    if recorded is None:
        raise VersioningError(f"`dvc commit` did not record {folder} in {dvc_file}. Fix: run it by hand.")
    md5, nfiles = recorded
    changed = recorded != before
    if changed:
        log.info("%s updated: %s (%d files); commit it to version the data", dvc_file.name, md5, nfiles)
    remote = default_remote(project_dir) if push else None
    if remote:
        dvc(project_dir, "push", "--quiet", dvc_file.name)
        log.info("pushed %s to DVC remote %s", folder, remote)
    elif push:
        log.warning("no default DVC remote configured; not pushed (see `dvc remote add -d`)")
    return DataVersion(md5=md5, nfiles=nfiles, changed=changed, pushed_to=remote)


def default_remote(project_dir: Path) -> str | None:
    try:
        name = dvc(project_dir, "config", "core.remote").strip()
    except VersioningError:
        return None
    return name or None
