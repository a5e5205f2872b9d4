"""`retrain`: the whole pipeline as one Prefect flow: data -> classifier -> every variant's training ->
evaluation -> registration.

`mnistgen pipeline` runs it on this machine (Prefect's local server, the embedded MLflow store, trainings
one after another, each in a process of its own). Deployed from `prefect.yaml` it runs on a schedule and
submits each variant's training to the `gpu` work pool as a `train-variant` flow run.
Steps whose inputs did not change are reused: the data (verified files are not fetched again), the
classifier (same settings, same data), and each finished training (same settings, same data).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import deployment

from flows.data_flow import data_flow
from flows.evaluate_flow import ensure_classifier, evaluate_runs, register
from flows.train_flow import TRAIN_DEPLOYMENT, train_all, train_on_workers
from mnistgen import tracking
from mnistgen.config import ConfigError, load_project
from mnistgen.serving.generate import sample_to_file

CHAMPION_GRID = "champion.png"


@task(retries=2, retry_delay_seconds=[3, 10])
def check_tracking(root: Path, params: dict[str, Any]) -> str:
    """Fail before any work when the MLflow store is unreachable (after retries)."""
    uri = tracking.check_store(root, params["mlflow"])
    print(f"MLflow store: {uri}")
    return uri


@task
def publish_champion(root: Path, params: dict[str, Any]) -> Path:
    """Sample the registered champion (so it is known to load) and show its grid as an artifact."""
    name = params["registry"]["model_name"]
    path = root / params["evaluation"]["reports_dir"] / CHAMPION_GRID
    sample_to_file(root, params, f"models:/{name}@champion", 64, 0, path)
    encoded = base64.b64encode(path.read_bytes()).decode()
    create_markdown_artifact(
        key="champion",
        markdown=f"### models:/{name}@champion, seed 0\n\n![champion](data:image/png;base64,{encoded})",
        description=str(path),
    )
    return path


@flow(name="retrain", log_prints=True)
def retrain(
    profile: str | None = None,
    variants: list[str] | None = None,
    seed: int | None = None,
    force: bool = False,
    mirrors: list[str] | None = None,
    on_workers: bool | None = None,
    project_dir: str | None = None,
) -> dict[str, Any]:
    """Run every step; `on_workers` (default: when running as a deployment) trains on the `gpu` pool."""
    root, params = load_project(project_dir, profile)
    profile = params["profile"]
    names = variants or params["train"]["variants"]
    if unknown := sorted(set(names) - set(params["variants"])):
        raise ConfigError(f"unknown variants {unknown}; params.yaml defines: {', '.join(params['variants'])}")
    tracking_uri = check_tracking(root, params)
    data_flow(str(root), mirrors)
    extractor = ensure_classifier(root, params, retrain=False)
    use_workers = deployment.id is not None if on_workers is None else on_workers
    if use_workers:
        flow_runs = train_on_workers(names, profile, seed, force, TRAIN_DEPLOYMENT)
        trainings = {name: f"flow run {run_id} on the workers" for name, run_id in flow_runs.items()}
    else:
        trainings = {
            name: r["action"] for name, r in train_all(names, profile, seed, force, str(root)).items()
        }
    leaderboard = evaluate_runs(root, params)
    decision = register(profile, str(root))
    grid = publish_champion(root, params)
    reports = root / params["evaluation"]["reports_dir"]
    print((reports / "leaderboard.md").read_text())
    print(f"registry: {params['registry']['model_name']} @{decision['alias']}: {decision['reason']}")
    return {
        "profile": profile,
        "extractor": extractor,
        "trainings": trainings,
        "leaderboard": leaderboard,
        "registration": decision,
        "tracking_uri": tracking_uri,
        "reports": {
            "leaderboard": str(reports / "leaderboard.html"),
            "champion_grid": str(grid),
        },
    }


if __name__ == "__main__":
    retrain()
