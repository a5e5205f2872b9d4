"""The `retrain` pipeline flow end to end under Prefect's test harness (smoke profile, synthetic MNIST)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.cli import cli_env, run_cli
from helpers.projects import pipeline_project

from mnistgen.tracking import TrackingError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(prefect_harness):
    from flows import pipeline as module

    return module


@pytest.fixture(autouse=True)
def own_tracking_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow exports the URI it last used; each test's project must use its own store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_pipeline_ends_with_a_champion_and_reuses_current_steps(pipeline, tmp_path: Path) -> None:
    project, mirror = pipeline_project(tmp_path)
    arguments = dict(
        profile="smoke",
        variants=["mlp_gan", "toy_gan_1d"],
        mirrors=[str(mirror.folder)],
        project_dir=str(project),
    )
    first = pipeline.retrain(**arguments)
    assert first["trainings"] == {"mlp_gan": "trained", "toy_gan_1d": "trained"}
    assert first["registration"]["alias"] == "champion" and first["registration"]["variant"] == "mlp_gan"
    assert Path(first["reports"]["champion_grid"]).is_file()
    assert {row["variant"] for row in first["leaderboard"]} >= {"mlp_gan", "toy_gan_1d", "real data (floor)"}
    assert (project / "data.dvc").is_file()
    page = first["experiment_page"]  # the runs table in the MLflow UI, best FID first
    assert page.startswith("http://127.0.0.1:5000/#/experiments/")
    assert page.endswith("/runs?viewStateShareKey=leaderboard&workflowType=machine_learning")
    from prefect import get_client

    with get_client(sync_client=True) as client:  # the run `mnistgen pipeline` links to in the Prefect UI
        assert client.read_flow_run(first["flow_run_id"]).state.is_completed()

    # The champion loads and generates in a process of its own, from the project's MLflow store.
    sampled = run_cli(project, "sample", "--n", "4", "--out", str(tmp_path / "four.npy"))
    assert sampled.returncode == 0, sampled.stderr[-2000:]

    second = pipeline.retrain(**arguments)
    assert second["trainings"] == {"mlp_gan": "reused", "toy_gan_1d": "reused"}
    assert second["extractor"] == first["extractor"], (
        "the classifier is reused while its inputs are unchanged"
    )
    assert "already the champion" in second["registration"]["reason"]

    # One MLflow run per pipeline run, the trainings it ran and its evaluation nested under it; a reused
    # training stays under the pipeline run that trained it.
    import mlflow

    store = f"sqlite:///{project}/mlflow/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=store)
    parents = [client.get_run(result["mlflow_run_id"]) for result in (first, second)]
    assert [p.info.run_name for p in parents] == ["pipeline · smoke · seed 42"] * 2
    assert all(p.info.status == "FINISHED" and "time/evaluation" in p.data.metrics for p in parents)
    description = parents[0].data.tags["mlflow.note.content"]  # atop the run's page in the MLflow UI
    assert "| 1 | mlp_gan |" in description and "**Time per step**" in description, description
    assert first["registration"]["reason"] in description
    summary = json.loads((project / "reports" / "pipeline_run.json").read_text())  # of the latest run
    assert summary["registration"] == second["registration"] and summary["machine"]["cores"] >= 1
    assert summary["steps"].keys() == second["seconds"].keys()
    logged = {a.path for a in client.list_artifacts(first["mlflow_run_id"])}
    assert logged == {"leaderboard.md", "leaderboard.html", "champion.png"}, logged

    def children(parent: str) -> list[str]:
        runs = client.search_runs([parents[0].info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
        return sorted(run.info.run_name for run in runs)

    evaluation = f"evaluation · smoke · classifier {first['extractor']}"
    assert children(first["mlflow_run_id"]) == sorted(
        [evaluation, "mlp_gan · smoke · seed 42", "toy_gan_1d · smoke · seed 42"]
    )
    assert children(second["mlflow_run_id"]) == [evaluation]
    floor = client.search_runs([parents[0].info.experiment_id], f"attributes.run_name = '{evaluation}'")[0]
    assert 0 <= floor.data.metrics["floor/fid"] < 50 and not any(
        k.startswith("eval/") for k in floor.data.metrics
    )


def test_an_unreachable_mlflow_server_stops_the_pipeline_before_any_work(
    pipeline, tmp_path: Path, dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, mirror = pipeline_project(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead_url.rstrip("/"))
    with pytest.raises(TrackingError, match="is not reachable") as raised:
        pipeline.retrain(
            profile="smoke", variants=["mlp_gan"], mirrors=[str(mirror.folder)], project_dir=str(project)
        )
    assert "Fix: start it" in str(raised.value)
    assert not (project / "data").exists() and not (project / "runs").exists()
    assert not (project / "models").exists() and not (project / "reports").exists()


def test_unknown_variants_are_refused_by_name(pipeline, tmp_path: Path) -> None:
    project, _ = pipeline_project(tmp_path)
    with pytest.raises(Exception, match=r"unknown variants gan9; params.yaml defines"):
        pipeline.retrain(profile="smoke", variants=["gan9"], project_dir=str(project))


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_pipeline_ends_its_training_killed_and_stops_its_server(
    tmp_path: Path, how: str
) -> None:
    """Ctrl-C (SIGINT to the terminal's process group: the pipeline and its training) during a training:
    the training checkpoints and its MLflow run ends KILLED; SIGTERM (to the pipeline alone): the training
    under way ends first. Either way the pipeline's own MLflow run ends KILLED, no traceback is shown, the
    flow reports to a server still up, the temporary Prefect server is stopped, exit 130."""
    import mlflow

    long_training = {"profiles": {"smoke": {"variants": {"mlp_gan": {"epochs": 500}}}}}
    project, mirror = pipeline_project(tmp_path, long_training)
    home = tmp_path / "prefect-home"  # this run's own Prefect database
    env = {**cli_env(), "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "mnistgen", "pipeline", "--profile", "smoke", "--variants", "mlp_gan"]
    command += ["--mirror", str(mirror.folder), "--project-dir", str(project)]
    pipeline = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow/mlflow.db")
    try:
        training = _running_training(project, pipeline)
        if how == "ctrl-c":
            os.killpg(pipeline.pid, signal.SIGINT)
        else:
            pipeline.send_signal(signal.SIGTERM)
        out, err = pipeline.communicate(timeout=600)  # a guard against a hang, not a measure
    finally:
        if pipeline.poll() is None:
            os.killpg(pipeline.pid, signal.SIGKILL)
    assert pipeline.returncode == 130, (pipeline.returncode, err[-3000:])
    assert "interrupted; `mnistgen pipeline` again" in err, err[-3000:]
    assert "Traceback" not in err, err[-3000:]  # an interruption asked for is no failure
    run = client.get_run(training)
    (parent,) = client.search_runs(
        [run.info.experiment_id], filter_string="attributes.run_name LIKE 'pipeline%'"
    )
    assert parent.info.status == "KILLED", parent.info.status
    if how == "ctrl-c":  # the training gets the signal too: checkpointed, KILLED, resumable
        assert run.info.status == "KILLED" and run.data.tags["stopped_by"] == "interrupted"
        assert (project / ".mnistgen" / "runs" / "mlp_gan" / "checkpoints").is_dir(), "resumable"
    else:  # Prefect's SIGTERM handler runs once the flow's wait for the training under way returns
        assert run.info.status == "FINISHED" and run.data.tags["stopped_by"] == "completed"
    assert not _servers_of(home), "the temporary Prefect server outlived the pipeline"


def _running_training(project: Path, pipeline: subprocess.Popen) -> str:
    """The MLflow run id of the pipeline's training once it has written a checkpoint (read from the run
    being built in the staging folder)."""
    staged = project / ".mnistgen" / "runs" / "mlp_gan"
    while pipeline.poll() is None:
        if any((staged / "checkpoints").glob("ckpt-*.index")) and (staged / "run.json").is_file():
            return json.loads((staged / "run.json").read_text())["run_id"]
        time.sleep(0.5)
    raise AssertionError(f"the pipeline ended before its training ran: {pipeline.communicate()[1][-3000:]}")


def _servers_of(home: Path) -> list[int]:
    """The processes still running with `PREFECT_HOME=home` in their environment."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and f"PREFECT_HOME={home}".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found
