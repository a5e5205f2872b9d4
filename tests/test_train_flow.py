"""The training flows under Prefect's test harness, each training in its own process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.projects import make_training_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def train_flow(prefect_harness):
    from flows import train_flow as module

    return module


def test_train_variant_flow(train_flow, tmp_path: Path) -> None:
    project = make_training_project(tmp_path / "project")
    result = train_flow.train_variant("toy_gan_1d", profile="smoke", project_dir=str(project))
    assert result["variant"] == "toy_gan_1d" and len(result["run_id"]) == 32
    assert "sample_mean" in result["metrics"]


def test_train_all_runs_every_variant_and_reports_failures(train_flow, tmp_path: Path) -> None:
    project = make_training_project(tmp_path / "project")
    shutil.rmtree(project / "data" / "mnist")  # mlp_gan learns from MNIST, the toy GAN from N(-1, 1)
    state = train_flow.train_all(
        variants=["mlp_gan", "toy_gan_1d"], profile="smoke", project_dir=str(project), return_state=True
    )
    assert state.is_failed()
    assert "1 of 2 trainings failed" in str(state.message) and "mlp_gan" in str(state.message)
    assert (project / "runs" / "toy_gan_1d" / "model" / "generator.keras").is_file()
    assert not (project / "runs" / "mlp_gan" / "model").exists()
