"""The Prefect data flow under Prefect's test harness (synthetic data, then the full MNIST). Slow lane:
starting the harness's server costs about 25 s, and the fast lane tests the data stage's functions
without Prefect (test_download.py, test_validation.py, test_versioning.py)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from helpers.mirror import Mirror
from helpers.paths import REPO, SHARED_MNIST
from helpers.projects import init_dvc_repo, snapshot

from mnistgen.data.versioning import read_version

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_flow(prefect_harness):
    from flows import data_flow as module

    return module


def test_flow_stages_validates_publishes_and_versions(data_flow, dvc_project: Path, mirror: Mirror) -> None:
    result = data_flow.data_flow(project_dir=str(dvc_project), mirrors=[mirror.folder.as_uri()])
    assert result["changed"] is True
    assert read_version(dvc_project / "data.dvc") == (result["md5"], 4)
    assert len(result["downloaded"]) == 4


def test_flow_fails_on_corrupt_mirror_and_leaves_data_alone(
    data_flow, dvc_project: Path, mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_flow, "stage_mnist", data_flow.stage_mnist.with_options(retries=0))
    mirror.corrupt("test_labels", gzip.compress(b"not labels"))
    state = data_flow.data_flow(project_dir=str(dvc_project), mirrors=[str(mirror.folder)], return_state=True)
    assert state.is_failed()
    assert "t10k-labels-idx1-ubyte: no mirror delivered a valid copy" in str(state.message)
    assert snapshot(dvc_project / "data") == {}
    assert not (dvc_project / "data.dvc").exists()


def test_flow_on_the_full_mnist(data_flow, tmp_path: Path) -> None:
    if not SHARED_MNIST.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the offline MNIST mirror {SHARED_MNIST} is missing; CI must run this test")
        pytest.skip(f"no offline MNIST mirror at {SHARED_MNIST} (set MNISTGEN_TEST_MNIST)")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    init_dvc_repo(project, tmp_path / "dvc-remote")

    result = data_flow.data_flow(project_dir=str(project), mirrors=[SHARED_MNIST.as_uri()])

    committed = yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]["md5"]
    assert result["md5"] == committed, "the real MNIST must hash to the data.dvc committed in the repository"
    assert read_version(project / "data.dvc") == (committed, 4)
    report = json.loads((project / "reports" / "data_validation.json").read_text())
    assert report["success"] is True
    assert report["splits"]["train"]["rows"] == 60000 and report["splits"]["test"]["rows"] == 10000
    assert report["splits"]["train"]["class_counts"][0] == 5923
    assert (project / "reports" / "data_docs" / "index.html").is_file()
