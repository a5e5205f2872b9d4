"""Prefect flows for training: `train_variant` (one variant; the `train-variant` deployment on the `gpu`
pool) and `train_all` (every listed variant, on this machine).

Each training runs in a process of its own (see `mnistgen.training.isolated`); `train_all` runs them one
after another, since one TensorFlow process already uses every CPU core. A variant whose run on disk is
current (same settings and data) is reused, and an interrupted one resumes from its checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_client, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.deployments import run_deployment
from prefect.task_runners import ThreadPoolTaskRunner

from flows.progress import TrainingPace
from mnistgen.config import load_project, project_root
from mnistgen.errors import MnistgenError
from mnistgen.training.isolated import TrainingFailed, next_action, train_unless_current
from mnistgen.training.plan import TrainRequest

TRAIN_DEPLOYMENT = "train-variant/train-variant"


@task(task_run_name="train-{variant}")
def train_task(
    project_dir: Path, variant: str, profile: str | None, seed: int | None, force: bool
) -> dict[str, Any]:
    result = train_unless_current(project_dir, variant, profile, seed, force)
    if log := result.pop("log"):
        print(log)
    ended = f"{result['stopped_by']} at step {result['step']}/{result['total_steps']}"
    print(f"{variant}: {result['action']} ({ended}), MLflow run {result['run_id']}, {result['seconds']:.0f}s")
    return result


@flow(name="train-variant", log_prints=True)
def train_variant(
    variant: str,
    profile: str | None = None,
    seed: int | None = None,
    force: bool = False,
    project_dir: str | None = None,
) -> dict[str, Any]:
    """Train one variant (reusing a current run unless `force`); returns its MLflow run id and metrics."""
    return train_task(project_root(project_dir), variant, profile, seed, force)


@flow(name="train-all", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=1))
def train_all(
    variants: list[str] | None = None,
    profile: str | None = None,
    seed: int | None = None,
    force: bool = False,
    project_dir: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Train every variant listed in `train.variants` (or `variants`); one failure does not stop the rest."""
    root, params = load_project(project_dir, profile)
    names = variants or params.train.variants
    current = {name for name in names if not force and is_current(root, name, profile, seed)}
    pace = TrainingPace(names, [name for name in names if name not in current])
    futures = train_task.map(unmapped(root), names, unmapped(profile), unmapped(seed), unmapped(force))
    for name, future in zip(names, futures, strict=True):  # they run one after another, in this order
        future.wait()
        print(pace.line(name, future.state.result() if future.state.is_completed() else None))
    states = dict(zip(names, (future.state for future in futures), strict=True))
    results = {name: state.result() for name, state in states.items() if state.is_completed()}
    failed = {name: str(state.message) for name, state in states.items() if not state.is_completed()}
    create_table_artifact(
        key="training-runs",
        table=[
            {
                "variant": name,
                "action": r["action"],
                "steps": f"{r['step']}/{r['total_steps']}",
                "stopped_by": r["stopped_by"],
                "seconds": round(r["seconds"]),
                "run_id": r["run_id"],
                **r["metrics"],
            }
            for name, r in results.items()
        ]
        + [{"variant": name, "action": "FAILED"} for name in failed],
        description=f"profile {params.profile}",
    )
    if failed:
        raise TrainingFailed(f"{len(failed)} of {len(names)} trainings failed: " + "; ".join(failed.values()))
    return results


def is_current(root: Path, variant: str, profile: str | None, seed: int | None) -> bool:
    """Whether `train_unless_current` will reuse the variant's run (for the estimate of what is left); a
    variant that cannot even be planned is left to its task, which reports why."""
    try:
        return next_action(TrainRequest(root, variant, profile, seed)) == "reused"
    except MnistgenError:
        return False


@task
def train_on_workers(
    variants: list[str],
    profile: str | None,
    seed: int | None,
    force: bool,
    deployment: str,
    timeout_minutes: float,
    poll_seconds: float,
) -> dict[str, str]:
    """Submit one `train-variant` flow run per variant to the deployment's work pool and wait for all, at
    most `timeout_minutes` (params.yaml `workers:`; then the ones still pending or running are named, and
    the task fails).

    Returns each variant's flow-run id; the runs land in the shared MLflow store, where evaluation finds them.
    """
    submitted = {
        name: run_deployment(
            deployment,
            parameters={"variant": name, "profile": profile, "seed": seed, "force": force},
            timeout=0,
        ).id
        for name in variants
    }
    print(f"submitted {len(submitted)} trainings to {deployment}; waiting for the workers")
    finished: dict[str, Any] = {}
    deadline = time.monotonic() + 60 * timeout_minutes
    with get_client(sync_client=True) as client:
        while len(finished) < len(submitted):
            if time.monotonic() > deadline:
                waiting = ", ".join(sorted(set(submitted) - set(finished)))
                raise TrainingFailed(
                    f"trainings on {deployment} not finished after {timeout_minutes:g} min: "
                    f"{waiting}. Fix: check that a worker serves the pool (`prefect worker start --pool "
                    "gpu`) and what those flow runs say in the Prefect UI."
                )
            time.sleep(poll_seconds)
            for name, run_id in submitted.items():
                run = client.read_flow_run(run_id)
                if name not in finished and run.state and run.state.is_final():
                    finished[name] = run
                    print(f"{name}: flow run {run.name} {run.state.name}")
    failed = [f"{name} ({run.state.name})" for name, run in finished.items() if not run.state.is_completed()]
    if failed:
        raise TrainingFailed(f"trainings on the workers did not complete: {', '.join(failed)}")
    return {name: str(run_id) for name, run_id in submitted.items()}


if __name__ == "__main__":
    train_all()
