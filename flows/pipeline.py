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
import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import deployment, flow_run

from flows.data_flow import data_flow
from flows.evaluate_flow import ensure_classifier, evaluate_runs, register
from flows.progress import StepClock
from flows.retries import store_or_network_failed
from flows.train_flow import TRAIN_DEPLOYMENT, train_all, train_on_workers
from mnistgen import lineage, tracking
from mnistgen.config import (
    check_flow_mirrors,
    check_options,
    check_variants,
    load_params,
    load_project,
    validate,
)
from mnistgen.data.versioning import VersioningError
from mnistgen.errors import interrupted, redact
from mnistgen.evaluation.evaluate import reports_folder
from mnistgen.evaluation.leaderboard import FLOOR
from mnistgen.serving.generate import sample_to_file
from mnistgen.settings import Settings
from mnistgen.training import hardware

CHAMPION_GRID = "champion.png"
DESCRIPTION_ROWS = 6  # leaderboard rows in the pipeline run's description
SUMMARY_FILE = "pipeline_run.json"  # beside the reports: the commit, machine and step times that made them


@task
def record_in_dvc(root: Path, stages: list[str]) -> str:
    """Write what this run produced into dvc.lock, so `dvc status` agrees with the pipeline."""
    try:
        lineage.commit_stages(root, stages)
    except VersioningError as err:
        return f"not recorded in dvc.lock ({str(err).splitlines()[-1]})"
    return f"recorded in dvc.lock: {', '.join(stages)}"


@task(retries=2, retry_delay_seconds=[3, 10], retry_condition_fn=store_or_network_failed)
def check_tracking(root: Path, params: Settings) -> tuple[str, str]:
    """Fail before any work when the MLflow store is unreachable (after retries); returns the store's URI
    and the experiment's page in the MLflow UI."""
    uri, experiment_id = tracking.check_store(root, params.mlflow)
    page = tracking.experiment_page(uri, experiment_id)
    print(f"MLflow store: {redact(uri)}; the runs: {redact(page)}")
    return uri, page


@task
def publish_champion(root: Path, params: Settings) -> Path:
    """Sample the registered champion (so it is known to load) and show its grid as an artifact."""
    name = params.registry.model_name
    path = root / params.evaluation.reports_dir / CHAMPION_GRID
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
    check_flow_mirrors(mirrors)
    check_options(seed=seed)
    root, params = load_project(project_dir, profile)
    profile = params.profile
    names = variants or params.train.variants
    check_variants(names)
    clock = StepClock(steps=7)
    commit = tracking.git_commit(root)  # before the run writes dvc.lock and the reports
    tracking_uri, experiment_page = clock.time("MLflow check", lambda: check_tracking(root, params))
    trained_with = params.train.seed if seed is None else seed
    parent = tracking.start_pipeline_run(
        root,
        params.mlflow,
        tracking.run_name("pipeline", profile, f"seed {trained_with}"),
        {"profile": profile, "seed": str(trained_with), "prefect_flow_run_id": str(flow_run.id)},
    )
    try:
        clock.time("data", lambda: data_flow(str(root), mirrors))
        extractor = clock.time("classifier", lambda: ensure_classifier(root, params, retrain=False))
        use_workers = deployment.id is not None if on_workers is None else on_workers
        if use_workers:
            flow_runs = clock.time(
                "trainings (on the workers)",
                lambda: train_on_workers(
                    names, profile, seed, force, TRAIN_DEPLOYMENT, **params.workers.plain()
                ),
            )
            trainings = {name: f"flow run {run_id} on the workers" for name, run_id in flow_runs.items()}
        else:
            results = clock.time("trainings", lambda: train_all(names, profile, seed, force, str(root)))
            trainings = {name: r["action"] for name, r in results.items()}
            for name, r in results.items():
                clock.trainings[f"{name} ({r['action']}, {r['step']:,} steps)"] = r["seconds"]
        leaderboard = clock.time("evaluation", lambda: evaluate_runs(root, params, seed))
        decision = clock.time("registration", lambda: register(profile, str(root), seed))
        grid = clock.time("champion grid", lambda: publish_champion(root, params))
        reports = reports_folder(root, params, seed)
        record_pipeline_run(
            parent, profile, extractor, leaderboard, decision, clock.seconds, clock.table(), reports, grid
        )
        summary = {
            "commit": commit,
            "date": time.strftime("%Y-%m-%d"),
            "machine": hardware.machine(),
            "profile": profile,
            "seed": trained_with,
            "steps": {name: round(seconds, 1) for name, seconds in clock.seconds.items()},
            "trainings": {name: round(seconds, 1) for name, seconds in clock.trainings.items()},
            "registration": decision,
        }
        (reports / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    except BaseException as err:
        # Interrupted (Ctrl-C, SIGTERM): KILLED, as its training is; else FAILED, never FINISHED.
        ended = "KILLED" if interrupted(err) else "FAILED"
        with contextlib.suppress(Exception):  # the store may be what failed: the original error matters
            tracking.end_pipeline_run(parent, ended, {}, {}, [])
        raise
    print((reports / "leaderboard.md").read_text())
    print(f"registry: {params.registry.model_name} @{decision['alias']}: {decision['reason']}")
    print(_commit_dvc_lock(root, params, profile, seed, names, use_workers))
    print(f"time per step:\n{clock.table()}")
    return {
        "flow_run_id": str(flow_run.id),
        "mlflow_run_id": parent,
        "profile": profile,
        "extractor": extractor,
        "trainings": trainings,
        "leaderboard": leaderboard,
        "registration": decision,
        "tracking_uri": tracking_uri,
        "experiment_page": experiment_page,
        "seconds": clock.seconds,
        "reports": {
            "leaderboard": str(reports / "leaderboard.html"),
            "champion_grid": str(grid),
        },
    }


@task
def record_pipeline_run(
    parent: str,
    profile: str,
    extractor: str,
    leaderboard: list[dict[str, Any]],
    decision: dict[str, Any],
    seconds: dict[str, float],
    step_table: str,
    reports: Path,
    grid: Path,
) -> None:
    """The pipeline's MLflow run, one row that expands in the UI: the trainings it ran nested under it,
    an evaluation run with the real-data floor (`floor/...`, so it does not rank among the generators'
    `eval/...`), and the leaderboard, the champion's grid and the time per step on the run itself; its
    description (the run page's first lines) the top of the leaderboard, the decision and the step table.
    Not retried: a second try would log a second evaluation run."""
    adopted = tracking.adopt_new_runs(parent, [row["run_id"] for row in leaderboard if row["run_id"]])
    floor = next(row for row in leaderboard if row["variant"] == FLOOR)
    numbers = {k: v for k, v in floor.items() if isinstance(v, int | float)}
    tracking.log_child_run(
        parent,
        tracking.run_name("evaluation", profile, f"classifier {extractor}"),
        {f"floor/{k}": v for k, v in numbers.items()},
        {"extractor_version": extractor},
        [reports / "leaderboard.md"],
    )
    tracking.end_pipeline_run(
        parent,
        "FINISHED",
        {f"time/{re.sub(r'[^A-Za-z0-9]+', '_', step).strip('_')}": took for step, took in seconds.items()},
        {
            "decision": decision["reason"],
            "trainings_nested": str(len(adopted)),
            tracking.DESCRIPTION_TAG: _description(reports / "leaderboard.md", decision, step_table),
        },
        [reports / "leaderboard.md", reports / "leaderboard.html", grid],
    )


def _description(leaderboard: Path, decision: dict[str, Any], step_table: str) -> str:
    """The leaderboard's table without its run ids, cut after the first rows, then the decision and
    the time of each step."""
    table = [
        line.rsplit("|", 2)[0] + "|" for line in leaderboard.read_text().splitlines() if line.startswith("|")
    ]
    return "\n".join(
        [
            "**Leaderboard** (the top; the whole in `leaderboard.html`)",
            "",
            *table[: DESCRIPTION_ROWS + 2],
            "",
            f"**Registry**: {decision['variant']} is `{decision['alias']}` of `{decision['model']}`: "
            f"{decision['reason']}",
            "",
            "**Time per step**",
            "",
            step_table,
        ]
    )


def _commit_dvc_lock(
    root: Path, params: Settings, profile: str, seed: int | None, names: list[str], on_workers: bool
) -> str:
    """Record this run in dvc.lock when it is what `dvc repro` would have produced: the profile and seed
    of params.yaml, trained on this host."""
    if on_workers:
        return "not recorded in dvc.lock: the trainings ran on the workers' hosts"
    trained_with = params.train.seed if seed is None else seed
    if profile != validate(load_params(root)).profile or trained_with != params.train.seed:
        return (
            f"not recorded in dvc.lock: profile {profile} and seed {trained_with} are not params.yaml's "
            "(`dvc status` will list these stages as changed)"
        )
    stages = ["classifier", *(f"train@{name}" for name in names), "evaluate", "register"]
    return record_in_dvc(root, stages)


if __name__ == "__main__":
    retrain()
