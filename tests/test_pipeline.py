"""The `retrain` pipeline flow end to end under Prefect's test harness (smoke profile, synthetic MNIST)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import pipeline_project, run_cli

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
    with pytest.raises(Exception, match=r"unknown variants \['gan9'\]"):
        pipeline.retrain(profile="smoke", variants=["gan9"], project_dir=str(project))
