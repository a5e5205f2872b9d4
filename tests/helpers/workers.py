"""The deployments of prefect.yaml on a Prefect server, with process workers that run them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers.paths import REPO
from helpers.servers import stop

# Runs a deployment to its end and prints, as one JSON line, its state and the `train-variant` runs.
RUN_AND_REPORT = """
import json, sys
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter, ArtifactFilterFlowRunId, DeploymentFilter, DeploymentFilterName
)
from prefect.deployments import run_deployment

run = run_deployment(sys.argv[1], parameters=json.loads(sys.argv[2]), timeout=900, poll_interval=2)
with get_client(sync_client=True) as client:
    trainings = client.read_flow_runs(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["train-variant"]))
    )
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
    )
print(json.dumps({
    "id": str(run.id),
    "state": run.state.type.value,
    "message": run.state.message,
    "trainings": [[r.parameters["variant"], r.state.type.value, r.work_pool_name] for r in trainings],
    "training_times": {
        r.parameters["variant"]: [r.start_time.timestamp(), r.end_time.timestamp()] for r in trainings
    },
    "artifacts": {a.key: str(a.id) for a in artifacts if a.key},
}))
"""


def retrain_on_workers(
    project: Path,
    env: dict[str, str],
    logs: Path,
    parameters: dict[str, Any],
    schedule: str,
    gpu_workers: int = 1,
) -> dict[str, Any]:
    """What `make deploy` does (the `gpu` and `cpu` process pools, every deployment of prefect.yaml), then
    a `cpu` worker, `gpu_workers` workers on the `gpu` pool (which runs that many flow runs at once) and one
    `retrain/retrain` run with `parameters`, waited for; returns what RUN_AND_REPORT printed, after checking
    the deployments (`schedule` on `retrain`) and that it completed."""
    import json

    shutil.copy2(REPO / "prefect.yaml", project / "prefect.yaml")
    shutil.copytree(REPO / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    prefect_cli = str(Path(sys.executable).parent / "prefect")

    def prefect(*args: str) -> str:
        done = subprocess.run(
            [prefect_cli, *args], cwd=project, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    prefect("work-pool", "create", "gpu", "--type", "process")
    prefect("work-pool", "set-concurrency-limit", "gpu", str(gpu_workers))
    prefect("work-pool", "create", "cpu", "--type", "process")
    prefect("--no-prompt", "deploy", "--all")
    listed = prefect("deployment", "ls")
    assert "retrain/retrain" in listed and "train-variant/train-variant" in listed
    assert schedule in prefect("deployment", "inspect", "retrain/retrain")

    workers = []
    for number, pool in enumerate(["cpu", *["gpu"] * gpu_workers]):
        log = (logs / f"worker-{number}-{pool}.log").open("w")
        workers.append(
            subprocess.Popen(
                [prefect_cli, "worker", "start", "--pool", pool, "--type", "process", "--limit", "1"],
                cwd=project,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        done = subprocess.run(
            [sys.executable, "-c", RUN_AND_REPORT, "retrain/retrain", json.dumps(parameters)],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    finally:
        for worker in workers:
            stop(worker)
    worker_logs = "\n".join(p.read_text()[-3000:] for p in sorted(logs.glob("worker-*.log")))
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{worker_logs}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["state"] == "COMPLETED", f"{report}\n{worker_logs}"
    return report
