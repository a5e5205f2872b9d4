"""Prefect flows for training: `train_variant` (one variant) and `train_all` (every listed variant).

Each training runs in a process of its own (see `mnistgen.training.isolated`); `train_all` runs them one
after another, since one TensorFlow process already uses every CPU core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from mnistgen.config import load_params, project_root, with_profile
from mnistgen.training.isolated import train_in_subprocess


@task(task_run_name="train-{variant}")
def train_task(
    project_dir: Path,
    variant: str,
    profile: str | None,
    seed: int | None,
    resume: bool,
    max_minutes: float | None,
) -> dict[str, Any]:
    result = train_in_subprocess(project_dir, variant, profile, seed, resume, max_minutes)
    print(result.pop("log"))
    return result


@flow(name="train-variant", log_prints=True)
def train_variant(
    variant: str,
    profile: str | None = None,
    seed: int | None = None,
    resume: bool = False,
    max_minutes: float | None = None,
    project_dir: str | None = None,
) -> dict[str, Any]:
    """Train one variant; returns its MLflow run id and final metrics."""
    return train_task(project_root(project_dir), variant, profile, seed, resume, max_minutes)


@flow(name="train-all", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=1))
def train_all(
    variants: list[str] | None = None,
    profile: str | None = None,
    seed: int | None = None,
    resume: bool = False,
    project_dir: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Train every variant listed in `train.variants` (or `variants`); one failure does not stop the rest."""
    root = project_root(project_dir)
    names = variants or with_profile(load_params(root), profile)["train"]["variants"]
    futures = train_task.map(unmapped(root), names, unmapped(profile), unmapped(seed), unmapped(resume), None)
    for future in futures:
        future.wait()
    states = [future.state for future in futures]
    results = {
        name: state.result() for name, state in zip(names, states, strict=True) if state.is_completed()
    }
    failed = {
        name: str(state.message)
        for name, state in zip(names, states, strict=True)
        if not state.is_completed()
    }
    create_table_artifact(
        key="training-runs",
        table=[{"variant": name, "run_id": r["run_id"], **r["metrics"]} for name, r in results.items()]
        + [{"variant": name, "run_id": "FAILED"} for name in failed],
        description=f"profile {profile or 'from params.yaml'}",
    )
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(names)} trainings failed: " + "; ".join(failed.values()))
    return results


if __name__ == "__main__":
    train_all()
