"""MLflow set-up shared by training, evaluation and registration.

The default store is embedded: `sqlite:///mlflow/mlflow.db` relative to the project, with artifacts
under `mlflow/artifacts`. `MLFLOW_TRACKING_URI` points everything at a server instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from mnistgen.config import DVC_EXPERIMENT_ENV
from mnistgen.data.versioning import DVC_FILE, read_version
from mnistgen.errors import MnistgenError, free_space
from mnistgen.settings import MlflowSection

SQLITE_PREFIX = "sqlite:///"
SERVER_PREFIXES = ("http://", "https://")
LOCKED_FIX = (  # SQLite lets one writer in at a time, and waits a few seconds for it
    "another process held the embedded store longer than SQLite waits; run again when it ends (a server, "
    "mlflow/server.sh, lets many processes write at once)"
)
DVC_ROOT_ENV = "DVC_ROOT"  # the repository a (queued) experiment was started from
# MLflow 3's UI opens an experiment on its GenAI view (traces, token usage) unless the link asks for the
# "Model training" view; the experiment is also tagged as model training for the UIs that read the tag.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
DEFAULT_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
# A view of the runs table kept in the experiment (the UI's "shared view"), which the link opens: best FID
# first, with the columns that decide beside the run names (`VARIANT · PROFILE · seed N`).
VIEW_NAME = "leaderboard"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_NAME}"
VIEW_METRICS = ("eval/fid", "eval/recall", "eval/precision", "eval/inception_score", "eval/label_accuracy")
VIEW_TAGS = ("stopped_by", "steps")
LEADERBOARD_VIEW = json.dumps(
    {
        "orderByKey": "metrics.`eval/fid`",
        "orderByAsc": True,
        "selectedColumns": [
            "attributes.`Dataset`",  # the splits a run read (its dataset inputs)
            *(f"metrics.`{m}`" for m in VIEW_METRICS),
            *(f"tags.`{t}`" for t in VIEW_TAGS),
        ],
    }
)
EXPERIMENT_TAGS = {EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND, VIEW_TAG: LEADERBOARD_VIEW}
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI shows a run nested under the run this names
PIPELINE_TAG = "pipeline"  # on the parent run of a `mnistgen pipeline` / `retrain` flow run
DESCRIPTION_TAG = "mlflow.note.content"  # MLflow's own: a run's description, shown atop its page
HEALTH_TIMEOUT_SECONDS = 10  # one `/health` request to a tracking server before any work
# A request to a tracking server that fails (a 5xx: its database restarting, its artifact store down) is
# tried again for about 30 s (waits of 1, 2, 4, 8, 16 s), enough for a database restart (measured: a
# training's metrics carried on across one). MLflow's default (7 tries, factor 2) waits about 4 min per
# request, so a register with the artifact store down took over 15 min to fail; with these, 82 s.
HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
_HEALTHY_SERVERS: set[str] = set()  # servers this process has found up (asked once each)


class TrackingError(MnistgenError):
    """The MLflow store cannot be reached or used."""


def dvc_experiment() -> str | None:
    """The name of the DVC experiment this process runs a stage of (`dvc exp run`), if any."""
    return os.environ.get(DVC_EXPERIMENT_ENV) or None


def store_root(project_dir: Path) -> Path:
    """The folder the embedded store's relative paths start from: the project, or for a DVC experiment
    the repository it was started from (a queued experiment runs in a temporary copy, whose store would
    vanish with it), so every trial lands in the one store."""
    root = os.environ.get(DVC_ROOT_ENV)
    return Path(root) if root and dvc_experiment() else project_dir


def experiment_names(cfg: MlflowSection) -> tuple[str, str]:
    """(the experiment this process logs to, the other one): the tuning experiment inside `dvc exp run`."""
    if dvc_experiment():
        return cfg.tuning_experiment, cfg.experiment
    return cfg.experiment, cfg.tuning_experiment


def tracking_uri(project_dir: Path, cfg: MlflowSection) -> str:
    """`MLFLOW_TRACKING_URI` if set, else `mlflow.tracking_uri`, relative SQLite paths made absolute."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri
    if uri.startswith(SQLITE_PREFIX) and not uri.startswith(SQLITE_PREFIX + "/"):
        database = store_root(project_dir) / uri[len(SQLITE_PREFIX) :]
        database.parent.mkdir(parents=True, exist_ok=True)
        uri = f"{SQLITE_PREFIX}{database}"
    return uri


def use_store(project_dir: Path, cfg: MlflowSection) -> str:
    """Point MLflow's tracking and registry at the project's store (not one a previous call left set).

    A server is asked once for its health first: MLflow's own client retries a dead server for minutes
    before it fails, this fails in seconds with the fix."""
    import mlflow

    uri = tracking_uri(project_dir, cfg)
    folder = Path(uri[len(SQLITE_PREFIX) :]).parent if uri.startswith(SQLITE_PREFIX) else None
    if folder and _made_at_the_root(folder):  # MLflow creates a missing folder: a slash too many lands here
        raise TrackingError(
            f"the MLflow store at {uri} is in a folder that does not exist ({folder}), which would be made "
            "at the root of the file system.\nFix: correct the path (a relative one, "
            "sqlite:///mlflow/mlflow.db, is inside the project), or create the folder first."
        )
    if uri.startswith(SERVER_PREFIXES):
        for name, value in HTTP_RETRIES.items():  # read by MLflow at each request; a user's own setting wins
            os.environ.setdefault(name, value)
        if uri not in _HEALTHY_SERVERS:
            _check_health(uri)
            _HEALTHY_SERVERS.add(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _made_at_the_root(folder: Path) -> bool:
    """Whether making `folder` would make a new folder at the root of the file system."""
    existing = folder
    while not existing.is_dir():
        existing = existing.parent
    return existing != folder and existing == Path(existing.anchor)


def _check_health(uri: str) -> None:
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT_SECONDS).raise_for_status()
    except requests.RequestException as err:
        raise TrackingError(
            f"the MLflow server at {uri} is not reachable: {err}\n"
            "Fix: start it (mlflow/server.sh, see mlflow/README.md), or unset MLFLOW_TRACKING_URI "
            "to use the embedded store."
        ) from err


def use_experiment(project_dir: Path, cfg: MlflowSection) -> str:
    """Point MLflow at the project's store and experiment (created with artifacts beside the database):
    `mlflow.experiment`, or `mlflow.tuning_experiment` for the stages of a DVC experiment."""
    import mlflow

    uri = use_store(project_dir, cfg)
    try:
        experiment_id = _experiment_id(project_dir, uri, cfg, experiment_names(cfg)[0])
        mlflow.set_experiment(experiment_id=experiment_id)
    except Exception as err:  # MLflow raises many types for an unreachable or broken store
        raise unusable_store(project_dir, cfg, err) from err
    return experiment_id


def experiment_ids(project_dir: Path, cfg: MlflowSection) -> list[str]:
    """Both experiments, this process's first: where the variants' current runs may be (a DVC experiment
    retrains one variant in the tuning experiment and reuses the others' runs)."""
    uri = use_store(project_dir, cfg)
    try:
        return [_experiment_id(project_dir, uri, cfg, name) for name in experiment_names(cfg)]
    except Exception as err:  # MLflow raises many types for an unreachable or broken store
        raise unusable_store(project_dir, cfg, err) from err


def unusable_store(project_dir: Path, cfg: MlflowSection, err: Exception) -> TrackingError:
    """The error for a store that cannot be read or written, whatever type the failure came as: held by
    another process or full (as `store_failed` says), else broken or no MLflow store at all."""
    if _locked(err) or _full(err):
        return store_failed(project_dir, cfg, err)
    uri = tracking_uri(project_dir, cfg)
    where = "is the server up?" if uri.startswith(SERVER_PREFIXES) else "is it an MLflow database?"
    fix = f"check MLFLOW_TRACKING_URI or mlflow.tracking_uri in params.yaml ({where})"
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return TrackingError(f"cannot use the MLflow store at {uri}: {first}\nFix: {fix}.")


def _experiment_id(project_dir: Path, uri: str, cfg: MlflowSection, name: str) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        for key, value in EXPERIMENT_TAGS.items():  # an experiment made before these tags, or this view
            if experiment.tags.get(key) != value:
                mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id
    # A server stores artifacts where it was told to (--artifacts-destination); the embedded store keeps
    # them beside its database rather than in ./mlruns of the working directory.
    location = (
        None
        if uri.startswith(SERVER_PREFIXES)
        else (store_root(project_dir) / cfg.artifact_location).resolve().as_uri()
    )
    return mlflow.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)


def experiment_page(uri: str, experiment_id: str) -> str:
    """The address of an experiment's runs table in the MLflow UI, in the "Model training" view and the
    leaderboard view (best FID first, the deciding metrics as columns): on the server itself, or on
    `mlflow ui` (default address) for the embedded store."""
    base = uri.rstrip("/") if uri.startswith(SERVER_PREFIXES) else DEFAULT_UI
    return (
        f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_NAME}"
        "&workflowType=machine_learning"
    )


def check_store(project_dir: Path, cfg: MlflowSection) -> tuple[str, str]:
    """Fail fast, naming the fix, when the MLflow store cannot be used: before anything is trained.
    Returns (the store's URI, the id of the experiment this process logs to)."""
    uri = tracking_uri(project_dir, cfg)
    _HEALTHY_SERVERS.discard(uri)  # asked again: the pipeline retries this check
    return uri, use_experiment(project_dir, cfg)


def store_failed(project_dir: Path, cfg: MlflowSection, err: Exception) -> TrackingError:
    """The error for a store that failed mid-way (a full disk under the embedded store, a server gone)."""
    uri = tracking_uri(project_dir, cfg)
    text = str(err).strip()
    where = "the server, its database and its artifact store (the server's log names the one that failed)"
    if uri.startswith(SQLITE_PREFIX):
        free = free_space(Path(uri[len(SQLITE_PREFIX) :]).parent)
        where = f"the space ({free}), a file-size limit (`ulimit -f`) and its permissions"
    elif not uri.startswith(SERVER_PREFIXES):
        where = "that MLFLOW_TRACKING_URI names a database (sqlite:///PATH) or a server (http://HOST:PORT)"
    fix = LOCKED_FIX if _locked(err) else f"check {where}, then run again"
    return TrackingError(
        f"the MLflow store at {uri} failed: {text.splitlines()[0] if text else type(err).__name__}\n"
        f"Fix: {fix}."
    )


def download(run_id: str, artifact_path: str, scratch: str | Path) -> Path:
    """A run's artifact (a file or a folder) copied out of the store into the folder `scratch`.

    MLflow's error for a copy that failed names no cause ("please ensure that the path is correct"), so
    a failure is one error saying which it was: the artifact is not in the run, or it could not be
    written here (the free space and this process's file-size limit are named).
    """
    import resource

    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact_path, dst_path=str(scratch)
            )
        )
    except MlflowException as err:
        parent = artifact_path.rpartition("/")[0] or None
        listed = {info.path for info in mlflow.MlflowClient().list_artifacts(run_id, parent)}
        if artifact_path not in listed:
            raise TrackingError(
                f"run {run_id} has no artifact {artifact_path!r}. Fix: train the run's variant again "
                "(`mnistgen train VARIANT`), then run again."
            ) from err
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        limited = "" if limit == resource.RLIM_INFINITY else f", a file-size limit of {limit:,} bytes"
        raise TrackingError(
            f"{artifact_path!r} of run {run_id} could not be copied out of the MLflow store into {scratch} "
            f"({free_space(Path(scratch))}{limited}): {str(err).splitlines()[0]}\nFix: free space there, "
            "raise the file-size limit (`ulimit -f`) or point TMPDIR at a folder with room; then run again."
        ) from err


def _locked(err: Exception) -> bool:
    """Whether SQLite refused because another connection held the database."""
    return "database is locked" in str(err)


def _full(err: Exception) -> bool:
    """Whether the store's disk (or this process's file-size limit) refused a write."""
    return any(sign in str(err) for sign in ("disk I/O error", "database or disk is full", "File too large"))


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
    recorded = read_version(project_dir / DVC_FILE)
    return recorded[0] if recorded else "untracked"


def run_name(*parts: str) -> str:
    """A run's name in the MLflow UI: `cgan · cpu · seed 42`, `pipeline · cpu · seed 42`."""
    return " · ".join(parts)


# ---------------------------------------------------------------- one parent run per pipeline run


def start_pipeline_run(project_dir: Path, cfg: MlflowSection, name: str, tags: dict[str, str]) -> str:
    """Open the parent run of one pipeline run in the project's experiment (the flow nests what it starts
    under it, see `adopt_new_runs`); returns its id. Made with the client, not `mlflow.start_run`, so it is
    never the process's active run that evaluation and registration log into."""
    import mlflow

    experiment_id = use_experiment(project_dir, cfg)
    tags = {
        **tags,
        PIPELINE_TAG: "true",
        "git_commit": git_commit(project_dir),
        "data_version": data_version(project_dir),
    }
    return mlflow.MlflowClient().create_run(experiment_id, tags=tags, run_name=name).info.run_id


def adopt_new_runs(parent_id: str, run_ids: list[str]) -> list[str]:
    """Nest under the pipeline run those of `run_ids` that started after it did (the trainings it ran);
    a run it reused stays under the pipeline run that started it. Returns the ids it nested."""
    import mlflow

    client = mlflow.MlflowClient()
    began = client.get_run(parent_id).info.start_time
    adopted = [run_id for run_id in run_ids if client.get_run(run_id).info.start_time >= began]
    for run_id in adopted:
        client.set_tag(run_id, PARENT_TAG, parent_id)
    return adopted


def log_child_run(
    parent_id: str, name: str, metrics: dict[str, float], tags: dict[str, str], files: list[Path]
) -> str:
    """A finished run nested under the pipeline run (its evaluation: the real-data floor and the
    leaderboard); returns its id."""
    import mlflow

    client = mlflow.MlflowClient()
    parent = client.get_run(parent_id)
    run_id = client.create_run(parent.info.experiment_id, run_name=name).info.run_id
    _log_and_end(client, run_id, "FINISHED", metrics, {**tags, PARENT_TAG: parent_id}, files)
    return run_id


def end_pipeline_run(
    parent_id: str, status: str, metrics: dict[str, float], tags: dict[str, str], files: list[Path]
) -> None:
    """Close the pipeline run: FINISHED with the leaderboard and the champion's grid beside its scores,
    KILLED when it was interrupted, or FAILED (a failed pipeline is never recorded as a success)."""
    import mlflow

    _log_and_end(mlflow.MlflowClient(), parent_id, status, metrics, tags, files)


def _log_and_end(
    client: Any, run_id: str, status: str, metrics: dict[str, float], tags: dict[str, str], files: list[Path]
) -> None:
    """Metrics and tags in one request, the files, then the run's end."""
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)  # the metrics' timestamp, as MLflow records it; decides nothing
    client.log_batch(
        run_id,
        metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
        tags=[RunTag(key, value) for key, value in tags.items()],
    )
    for path in files:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status)
