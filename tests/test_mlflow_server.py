"""The pipeline against a real `mlflow server` (started by mlflow/server.sh on 127.0.0.1), and a training
killed mid-way that the next pipeline run resumes from its checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import cli_env, run_cli
from helpers.paths import REPO
from helpers.projects import pipeline_project
from helpers.servers import free_port, local_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(prefect_harness):
    from flows import pipeline as module

    return module


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **cli_env(),
        "MLFLOW_BIN": str(Path(sys.executable).parent / "mlflow"),
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'server.db'}",
        "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "server-artifacts"),
        "MLFLOW_PORT": str(port),
        "MLFLOW_WORKERS": "1",
    }
    url = f"http://127.0.0.1:{port}"
    command = ["bash", str(REPO / "mlflow" / "server.sh")]
    with local_server(command, f"{url}/health", tmp_path / "mlflow-server.log", env):
        yield url


def test_pipeline_on_an_mlflow_server_resumes_a_killed_training(
    pipeline, mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_mlp = {"profiles": {"smoke": {"variants": {"mlp_gan": {"epochs": 40}}}}}
    project, mirror = pipeline_project(tmp_path, long_mlp)
    assert run_cli(project, "data", "--mirror", str(mirror.folder)).returncode == 0
    env = {**cli_env(), "MLFLOW_TRACKING_URI": mlflow_server}
    run_dir = project / ".mnistgen" / "runs" / "mlp_gan"  # where a run lives until it ends
    training = subprocess.Popen(
        [sys.executable, "-m", "mnistgen", "train", "mlp_gan", "--profile", "smoke"]
        + ["--project-dir", str(project), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((run_dir / "checkpoints").glob("ckpt-40.index")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert training.poll() is None, "training ended before it could be killed"
    finally:
        training.send_signal(signal.SIGKILL)
        training.wait()
    killed_run = json.loads((run_dir / "run.json").read_text())["run_id"]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    result = pipeline.retrain(
        profile="smoke", variants=["mlp_gan"], mirrors=[str(mirror.folder)], project_dir=str(project)
    )
    assert result["trainings"] == {"mlp_gan": "resumed"}
    assert result["tracking_uri"] == mlflow_server
    assert result["registration"]["run_id"] == killed_run, "the same MLflow run, continued"

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    run = client.get_run(killed_run)
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert any((tmp_path / "server-artifacts").rglob("generator.keras")), "artifacts went to the server"
    steps = [m.step for m in client.get_metric_history(killed_run, "train/g_loss")]
    assert max(steps) == 800 and min(steps) < 40
    assert client.get_model_version_by_alias("mnist-generator", "champion").run_id == killed_run
    assert not (project / "mlflow" / "mlflow.db").exists(), "nothing went to the embedded store"
