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
    if not dvc_file.is_file():
        return None
    out = yaml.safe_load(dvc_file.read_text())["outs"][0]
    return out["md5"], int(out.get("nfiles", 0))


def version_data(project_dir: Path, target: str = "data", push: bool = True) -> DataVersion:
    """Record `target` in `target.dvc` (rewritten only when the data changed) and push it to the remote."""
    if not (project_dir / ".dvc").is_dir():
        raise VersioningError(
            f"{project_dir} is not a DVC repository. Fix: run `dvc init` there (inside git)."
        )
    dvc_file = project_dir / f"{target}.dvc"
    before = read_version(dvc_file)
    dvc(project_dir, "add", "--quiet", target)
    recorded = read_version(dvc_file)
    assert recorded is not None, f"dvc add did not write {dvc_file}"
    md5, nfiles = recorded
    changed = recorded != before
    if changed:
        log.info("%s updated: %s (%d files); commit it to version the data", dvc_file.name, md5, nfiles)
    remote = default_remote(project_dir) if push else None
    if remote:
        dvc(project_dir, "push", "--quiet", dvc_file.name)
        log.info("pushed %s to DVC remote %s", target, remote)
    elif push:
        log.warning("no default DVC remote configured; not pushed (see `dvc remote add -d`)")
    return DataVersion(md5=md5, nfiles=nfiles, changed=changed, pushed_to=remote)


def default_remote(project_dir: Path) -> str | None:
    try:
        name = dvc(project_dir, "config", "core.remote").strip()
    except VersioningError:
        return None
    return name or None
