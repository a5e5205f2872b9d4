"""MLflow set-up shared by training, evaluation and registration.

The default store is embedded: `sqlite:///mlflow/mlflow.db` relative to the project, with artifacts
under `mlflow/artifacts`. `MLFLOW_TRACKING_URI` points everything at a server instead.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from mnistgen.data.versioning import read_version
from mnistgen.errors import MnistgenError

SQLITE_PREFIX = "sqlite:///"
SERVER_PREFIXES = ("http://", "https://")


class TrackingError(MnistgenError):
    """The MLflow store cannot be reached or used."""


def tracking_uri(project_dir: Path, cfg: dict[str, Any]) -> str:
    """`MLFLOW_TRACKING_URI` if set, else `mlflow.tracking_uri`, relative SQLite paths made absolute."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg["tracking_uri"]
    if uri.startswith(SQLITE_PREFIX) and not uri.startswith(SQLITE_PREFIX + "/"):
        database = project_dir / uri[len(SQLITE_PREFIX) :]
        database.parent.mkdir(parents=True, exist_ok=True)
        uri = f"{SQLITE_PREFIX}{database}"
    return uri


def use_store(project_dir: Path, cfg: dict[str, Any]) -> str:
    """Point MLflow's tracking and registry at the project's store (not one a previous call left set)."""
    import mlflow

    uri = tracking_uri(project_dir, cfg)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def use_experiment(project_dir: Path, cfg: dict[str, Any]) -> str:
    """Point MLflow at the project's store and experiment (created with artifacts beside the database)."""
    import mlflow

    uri = use_store(project_dir, cfg)
    try:
        experiment = mlflow.get_experiment_by_name(cfg["experiment"])
        if experiment is None:
            # A server stores artifacts where it was told to (--artifacts-destination); the embedded
            # store keeps them beside its database rather than in ./mlruns of the working directory.
            location = (
                None
                if uri.startswith(SERVER_PREFIXES)
                else (project_dir / cfg["artifact_location"]).resolve().as_uri()
            )
            experiment_id = mlflow.create_experiment(cfg["experiment"], artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
    except Exception as err:  # MLflow raises many types for an unreachable or broken store
        raise TrackingError(
            f"cannot use the MLflow store at {uri}: {err}\n"
            "Fix: check MLFLOW_TRACKING_URI or mlflow.tracking_uri in params.yaml (is the server up?)."
        ) from err
    return experiment_id


def check_store(project_dir: Path, cfg: dict[str, Any]) -> str:
    """Fail fast, naming the fix, when the MLflow store cannot be used: before anything is trained.

    A server gets one quick health check (MLflow's own client would retry for minutes before failing).
    """
    uri = tracking_uri(project_dir, cfg)
    if uri.startswith(SERVER_PREFIXES):
        import requests

        try:
            requests.get(uri.rstrip("/") + "/health", timeout=10).raise_for_status()
        except requests.RequestException as err:
            raise TrackingError(
                f"the MLflow server at {uri} is not reachable: {err}\n"
                "Fix: start it (mlflow/server.sh, see mlflow/README.md), or unset MLFLOW_TRACKING_URI "
                "to use the embedded store."
            ) from err
    use_experiment(project_dir, cfg)
    return uri


def git_commit(project_dir: Path) -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return done.stdout.strip() + ("-dirty" if dirty else "")


def data_version(project_dir: Path) -> str:
    """The md5 `data.dvc` records, or "untracked"."""
    recorded = read_version(project_dir / "data.dvc")
    return recorded[0] if recorded else "untracked"
