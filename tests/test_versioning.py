"""DVC versioning in a real temporary git + DVC repository with a local remote."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.mirror import Mirror
from helpers.projects import snapshot

from mnistgen.data.prepare import DataSettings, prepare_mnist
from mnistgen.data.versioning import DataVersion, VersioningError, dvc, read_version, version_data


def test_data_is_versioned_pushed_and_pulled_back(dvc_project: Path, mirror: Mirror, tmp_path: Path) -> None:
    settings = DataSettings.load(dvc_project)
    first = prepare_mnist(settings, [str(mirror.folder)], progress=False)
    assert first.version is not None and first.version.changed
    assert first.version.nfiles == 4 and first.version.pushed_to == "local"
    assert read_version(dvc_project / "data.dvc") == (first.version.md5, 4)
    ignored = subprocess.run(["git", "check-ignore", "-q", "data/mnist"], cwd=dvc_project, check=False)
    assert ignored.returncode == 0, "git leaves the data to DVC"
    assert any((tmp_path / "dvc-remote").rglob("*")), "the remote received the data"

    second = prepare_mnist(settings, [str(mirror.folder)], progress=False)
    assert second.version == DataVersion(first.version.md5, 4, changed=False, pushed_to="local")

    published = snapshot(settings.data_dir)
    shutil.rmtree(dvc_project / "data")
    shutil.rmtree(dvc_project / ".dvc" / "cache")
    dvc(dvc_project, "pull", "--quiet")
    assert snapshot(settings.data_dir) == published


def test_changed_data_updates_data_dvc(dvc_project: Path, mirror: Mirror) -> None:
    settings = DataSettings.load(dvc_project)
    before = prepare_mnist(settings, [str(mirror.folder)], progress=False).version
    (settings.data_dir / "notes.txt").write_text("an extra file changes the folder's hash")
    after = version_data(dvc_project, "data/mnist", push=False)
    assert after.changed and after.md5 != before.md5 and after.nfiles == 5 and after.pushed_to is None


def test_outside_a_dvc_repository_is_a_clear_error(project: Path) -> None:
    with pytest.raises(VersioningError, match="is not a DVC repository. Fix: run `dvc init`"):
        version_data(project, "data/mnist")
