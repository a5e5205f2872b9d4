"""Where a training run reports: its parameters, tags, metrics and files.

The loop talks to a `Tracker`, not to MLflow, so training needs no tracking store to run: `MlflowTracker`
is what `mnistgen train` uses (the project's MLflow store, or a server), `MemoryTracker` keeps everything
in lists and dictionaries (tests, and anyone embedding the loop).
"""

from __future__ import annotations

import atexit
import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import mlflow
from mlflow.exceptions import MlflowException

from mnistgen.datasets import DataInput, dataset


def _never_finished_at_exit() -> None:
    """A run still open when the process exits did not end as the loop ends runs (an error while it was
    being ended, say): it ends FAILED. MLflow's own exit hook, which runs after this one (registered
    earlier), would end it FINISHED, and a crash is never recorded as a success."""
    if mlflow.active_run() is not None:
        with contextlib.suppress(Exception):
            mlflow.end_run(status="FAILED")


atexit.register(_never_finished_at_exit)


class Tracker(Protocol):
    """One run at a time: `start` or `resume` it, report, then `end` it with its final status."""

    label: str  # what messages call it: "MLflow run 1a2b..."

    @property
    def active(self) -> bool: ...

    def start(self, name: str, tags: dict[str, str]) -> str:
        """Open a new run; returns its id."""
        ...

    def resume(self, run_id: str) -> str | None:
        """Reopen run `run_id`: None, or why it cannot be (the store no longer has it: the caller then
        continues in a new run)."""
        ...

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_input(self, data: DataInput) -> None:
        """Record which data the run read (MNIST's training split, at its DVC version)."""
        ...

    def log_metrics(self, values: dict[str, float], step: int | None = None) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_file(self, path: Path, folder: str | None = None) -> None: ...

    def log_folder(self, path: Path, folder: str) -> None: ...

    def end(self, status: str) -> None:
        """Close the run as FINISHED, FAILED or KILLED."""
        ...

    def abandon(self, run_id: str) -> bool:
        """Close as KILLED a run that a killed process left RUNNING (any other run is left as it is).

        Returns:
            Whether the run was still RUNNING and is now KILLED.
        """
        ...


class MlflowTracker:
    """The active MLflow store (`tracking.use_experiment` has chosen the store and the experiment), with
    the run's CPU and memory use as MLflow's system metrics every `system_metrics_seconds` (None: off),
    sampled on a thread of their own that no result reads."""

    label = "MLflow"

    def __init__(self, system_metrics_seconds: float | None = None) -> None:
        self.system_metrics_seconds = system_metrics_seconds
        if system_metrics_seconds is not None:
            mlflow.set_system_metrics_sampling_interval(system_metrics_seconds)

    @property
    def active(self) -> bool:
        return mlflow.active_run() is not None

    def start(self, name: str, tags: dict[str, str]) -> str:
        system = self.system_metrics_seconds is not None
        return mlflow.start_run(run_name=name, tags=tags, log_system_metrics=system).info.run_id

    def resume(self, run_id: str) -> str | None:
        try:
            mlflow.start_run(run_id=run_id, log_system_metrics=self.system_metrics_seconds is not None)
        except MlflowException as err:
            return str(err).splitlines()[0]
        return None

    def log_params(self, params: dict[str, Any]) -> None:
        mlflow.log_params(params)

    def log_input(self, data: DataInput) -> None:
        mlflow.log_input(dataset(data), context=data.context)

    def log_metrics(self, values: dict[str, float], step: int | None = None) -> None:
        mlflow.log_metrics(values, step=step)

    def set_tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def log_file(self, path: Path, folder: str | None = None) -> None:
        mlflow.log_artifact(str(path), artifact_path=folder)

    def log_folder(self, path: Path, folder: str) -> None:
        mlflow.log_artifacts(str(path), artifact_path=folder)

    def end(self, status: str) -> None:
        mlflow.end_run(status=status)

    def abandon(self, run_id: str) -> bool:
        client = mlflow.MlflowClient()
        try:
            running = client.get_run(run_id).info.status == "RUNNING"
        except MlflowException:  # deleted, or a store that never had it
            return False
        if running:
            client.set_terminated(run_id, status="KILLED")
        return running


@dataclass
class MemoryTracker:
    """Everything a run reports, kept in this object: metrics as (step, value) lists per name, files as
    the paths they were logged from. Nothing is written anywhere."""

    label = "in-memory"
    run_id: str = ""
    status: str = ""
    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int | None, float]]] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)
    inputs: list[DataInput] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.run_id) and not self.status

    def start(self, name: str, tags: dict[str, str]) -> str:
        self.run_id, self.status, self.name = uuid.uuid4().hex, "", name
        self.tags.update(tags)
        return self.run_id

    def resume(self, run_id: str) -> str | None:
        if run_id != self.run_id:
            return f"run {run_id} is not in memory"
        self.status = ""
        return None

    def log_params(self, params: dict[str, Any]) -> None:
        self.params.update(params)

    def log_input(self, data: DataInput) -> None:
        self.inputs.append(data)

    def log_metrics(self, values: dict[str, float], step: int | None = None) -> None:
        for name, value in values.items():
            self.metrics.setdefault(name, []).append((step, value))

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)

    def log_file(self, path: Path, folder: str | None = None) -> None:
        self.files.setdefault(folder or "", []).append(path)

    def log_folder(self, path: Path, folder: str) -> None:
        self.files.setdefault(folder, []).extend(sorted(p for p in path.rglob("*") if p.is_file()))

    def end(self, status: str) -> None:
        self.status = status

    def abandon(self, run_id: str) -> bool:
        running = run_id == self.run_id and not self.status
        if running:
            self.status = "KILLED"
        return running
