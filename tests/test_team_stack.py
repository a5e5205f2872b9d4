"""The team stack for real (team/stack.py, `make team-up`): PostgreSQL, an S3 store, MLflow on both, Prefect
on PostgreSQL. A pipeline runs against it with nothing but `.team.env`; its runs, models and flow runs land
in those engines; another clone pulls the data from the S3 remote; a process that knows only the tracking
URI loads the champion and samples."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, cli_env, free_port, git, local_server, pipeline_project, snapshot

pytestmark = pytest.mark.slow

STACK = [sys.executable, str(REPO / "team" / "stack.py")]
DVC = [sys.executable, "-m", "dvc"]


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {key: value for key, value in pairs}


@pytest.fixture(scope="module")
def team() -> Iterator[tuple[dict[str, str], Path]]:
    """`stack.py up` in a state folder the user postgres can reach (PostgreSQL refuses to run as root;
    pytest's own temporary folders are private to root), its environment, `down` at the end."""
    state = Path(tempfile.mkdtemp(prefix="mnistgen-team-"))
    state.chmod(0o755)
    env_file = state / "team.env"
    where = ["--state-dir", str(state / "stack"), "--env-file", str(env_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "PREFECT_"))}
    try:
        done = subprocess.run([*STACK, "up", *where], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "MLflow UI   http://127.0.0.1:" in done.stdout
        yield read_env_file(env_file), env_file
    finally:
        down = subprocess.run([*STACK, "down", *where], capture_output=True, text=True, timeout=120)
        status = subprocess.run([*STACK, "status", *where], capture_output=True, text=True, timeout=60)
        shutil.rmtree(state, ignore_errors=True)
    assert down.returncode == 0, down.stderr[-2000:]
    assert "running" not in status.stdout, status.stdout


def _postgres(stack_state: Path, database: str):
    import psycopg2

    password = (stack_state / "secrets" / "postgres").read_text().strip()
    port = int(json.loads((stack_state / "stack.json").read_text())["postgres_port"])
    return psycopg2.connect(host="127.0.0.1", port=port, user="mnistgen", password=password, dbname=database)


def test_the_environment_file_is_private_and_points_at_loopback(team) -> None:
    environment, env_file = team
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    for key in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "AWS_ENDPOINT_URL"):
        assert environment[key].startswith("http://127.0.0.1:"), key
    assert environment["MNISTGEN_DVC_REMOTE"] == "s3://mnistgen/dvc"
    assert environment["AWS_SECRET_ACCESS_KEY"] and environment["AWS_ACCESS_KEY_ID"]


@pytest.fixture(scope="module")
def team_pipeline(team, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """`mnistgen pipeline --profile smoke` on mlp_gan with nothing but `.team.env` (and this clone's DVC
    remote set to the stack's bucket, as README "Team scale" says): the project and the environment."""
    environment, _ = team
    project, mirror = pipeline_project(tmp_path_factory.mktemp("team-pipeline"))
    env = {**cli_env(), **environment}
    remote = ["remote", "add", "--local", "-d", "team", environment["MNISTGEN_DVC_REMOTE"]]
    subprocess.run([*DVC, *remote], cwd=project, check=True, env=env, capture_output=True)
    command = [sys.executable, "-m", "mnistgen", "pipeline", "--profile", "smoke", "--variants", "mlp_gan"]
    command += ["--mirror", str(mirror.folder), "--project-dir", str(project)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=project, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return project, environment


def test_runs_models_and_flow_runs_land_in_postgres_and_s3(team, team_pipeline) -> None:
    environment, env_file = team
    project, _ = team_pipeline
    stack_state = env_file.parent / "stack"
    assert not (project / "mlflow" / "mlflow.db").exists(), "nothing went to the embedded store"

    # MLflow's runs and registry are in PostgreSQL, the artifacts in the bucket.
    with _postgres(stack_state, "mlflow") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT name, status FROM runs")
        runs = dict(cursor.fetchall())
        cursor.execute("SELECT name FROM registered_models")
        assert cursor.fetchall() == [("mnist-generator",)]
    assert runs["mlp_gan · smoke · seed 42"] == "FINISHED", runs
    assert any(name.startswith("pipeline · smoke") and status == "FINISHED" for name, status in runs.items())

    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    keys = {
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="mnistgen")
        for item in page.get("Contents", [])
    }
    models = [key for key in keys if key.startswith("mlflow/") and key.endswith("generator.keras")]
    assert models, sorted(keys)[:20]
    assert any(key.startswith("dvc/files/md5/") for key in keys), "the data went to the S3 remote"

    # Prefect's flow runs are in PostgreSQL.
    with _postgres(stack_state, "prefect") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id")
        flow_runs = cursor.fetchall()
    assert ("retrain", "COMPLETED") in flow_runs, flow_runs


def test_another_clone_pulls_the_data_from_the_s3_remote(team_pipeline, tmp_path: Path) -> None:
    project, environment = team_pipeline
    git(project, "add", "-A")
    git(project, "commit", "-qm", "data")
    other = tmp_path / "other-clone"
    git(tmp_path, "clone", "-q", str(project), str(other))
    env = {**cli_env(), **environment}
    for args in (
        ["remote", "add", "--local", "-d", "team", environment["MNISTGEN_DVC_REMOTE"]],
        ["pull", "data.dvc"],  # the pipeline's data step pushed it; its other steps are not DVC stages
    ):
        pulled = subprocess.run([*DVC, *args], cwd=other, capture_output=True, text=True, env=env)
        assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-2000:]
    assert snapshot(other / "data" / "mnist") == snapshot(project / "data" / "mnist")


def _only_the_tracking_uri(environment: dict[str, str]) -> dict[str, str]:
    """This process's environment without any credentials or stack address but the MLflow server's."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "PREFECT_"))}
    return kept | {"MLFLOW_TRACKING_URI": environment["MLFLOW_TRACKING_URI"], "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_a_process_that_knows_only_the_tracking_uri_samples_the_champion(team_pipeline) -> None:
    _, environment = team_pipeline
    sampler = (
        "import mlflow, numpy as np, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/mnist-generator@champion')\n"
        "images = np.asarray(model.predict(pd.DataFrame({'seed': [0, 1, 0]})))\n"
        "print(images.shape, float(images.min()) >= 0.0, float(images.max()) <= 1.0, "
        "bool((images[0] == images[2]).all()))\n"
    )
    sampled = subprocess.run(
        [sys.executable, "-c", sampler],
        capture_output=True,
        text=True,
        env=_only_the_tracking_uri(environment),
        timeout=300,
    )
    assert sampled.returncode == 0, sampled.stderr[-3000:]
    assert sampled.stdout.strip().splitlines()[-1] == "(3, 28, 28) True True True"


def test_the_champion_served_over_http(team_pipeline, tmp_path: Path) -> None:
    """`mlflow models serve` of the registered champion on 127.0.0.1, asked by a second process
    (benchmarks/serving_latency.py): images of the right shape and range, the same for the same seeds, a
    4xx for a bad request, still serving after it; the latency is measured and printed, not judged."""
    _, environment = team_pipeline
    port = free_port()
    env = _only_the_tracking_uri(environment)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # MLflow starts `uvicorn`
    serve = [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        "models:/mnist-generator@champion",
    ]
    serve += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with local_server(serve, f"{url}/ping", tmp_path / "serve.log", env, cwd=tmp_path):
        benchmark = [sys.executable, str(REPO / "benchmarks" / "serving_latency.py"), "--url", url]
        done = subprocess.run([*benchmark, "--requests", "100"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["shape"] == [64, 28, 28] and measured["in_range"] and measured["same_seeds_same_images"]
    assert all(400 <= status < 500 for status in measured["bad_requests"].values()), measured
    assert measured["still_serving"] and measured["p50_ms"] > 0 and measured["p99_ms"] >= measured["p50_ms"]
    print(done.stdout)  # the latency, for the log
