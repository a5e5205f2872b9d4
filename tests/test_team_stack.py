"""The team stack for real (team/stack.py, `make team-up`): PostgreSQL, an S3 store, MLflow on both, Prefect
on PostgreSQL. A pipeline runs against it with nothing but `.team.env`; its runs, models and flow runs land
in those engines; another clone pulls the data from the S3 remote; a process that knows only the tracking
URI loads the champion and samples."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import cli_env, run_cli
from helpers.mirror import TRAINING_ROWS, publish_synthetic_mnist
from helpers.paths import REPO
from helpers.projects import copy_repository, git, pipeline_project, set_params, snapshot, stages_run
from helpers.servers import free_port, local_server
from helpers.workers import retrain_on_workers

pytestmark = pytest.mark.slow

STACK = [sys.executable, str(REPO / "team" / "stack.py")]
DVC = [sys.executable, "-m", "dvc"]
MNISTGEN = [sys.executable, "-m", "mnistgen"]
MLFLOW_CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


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
    secrets = env_file.parent / "stack" / "secrets"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secrets.iterdir()), "readable by others"
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
    """This process's environment without any credentials or stack address but the MLflow server's:
    its address, its user and password, and how artifacts reach it (`.team.env`'s MLFLOW_ variables)."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "PREFECT_"))}
    server = {k: v for k, v in environment.items() if k.startswith("MLFLOW_")}  # address, user, transfers
    return kept | server | {"TF_CPP_MIN_LOG_LEVEL": "2"}


def test_every_service_refuses_a_request_without_its_credentials(team) -> None:
    """MLflow's basic-auth app, Prefect's auth string and the S3 store's signatures: a request without
    credentials or with wrong ones is refused, with them it is answered; the health checks stay open."""
    import boto3
    import requests
    from botocore.exceptions import ClientError

    environment, _ = team
    mlflow_url, prefect_api = environment["MLFLOW_TRACKING_URI"], environment["PREFECT_API_URL"]
    user = (environment["MLFLOW_TRACKING_USERNAME"], environment["MLFLOW_TRACKING_PASSWORD"])
    create = f"{mlflow_url}/api/2.0/mlflow/registered-models/create"
    for auth in (None, (user[0], "wrong")):
        assert requests.post(create, json={"name": "intruder"}, auth=auth, timeout=30).status_code == 401
        search = requests.get(f"{mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1", auth=auth)
        assert search.status_code == 401
    assert requests.get(f"{mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1", auth=user).ok
    assert requests.get(f"{mlflow_url}/health", timeout=30).ok

    prefect_auth = environment["PREFECT_API_AUTH_STRING"]
    for header in ({}, {"Authorization": "Basic " + base64.b64encode(b"mnistgen:wrong").decode()}):
        assert requests.post(f"{prefect_api}/flows/filter", json={}, headers=header).status_code == 401
    good = {"Authorization": "Basic " + base64.b64encode(prefect_auth.encode()).decode()}
    assert requests.post(f"{prefect_api}/flows/filter", json={}, headers=good).ok
    assert requests.get(f"{prefect_api}/health", timeout=30).ok

    s3_url = environment["AWS_ENDPOINT_URL"]
    for key, secret in (("AKIAANYONE", "any"), (environment["AWS_ACCESS_KEY_ID"], "wrong")):
        other = boto3.client("s3", endpoint_url=s3_url, aws_access_key_id=key, aws_secret_access_key=secret)
        with pytest.raises(ClientError, match="InvalidAccessKeyId|SignatureDoesNotMatch"):
            other.put_object(Bucket="mnistgen", Key="intruder", Body=b"x")
    # unsigned: 403, or 500 where moto's check trips over the missing Authorization header; no data either way
    assert requests.get(f"{s3_url}/mnistgen/dvc/", timeout=30).status_code in (403, 500)
    assert requests.put(f"{s3_url}/mnistgen/intruder", data=b"x", timeout=30).status_code in (403, 500)
    stack = boto3.client(
        "s3",
        endpoint_url=s3_url,
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    listed = stack.list_objects_v2(Bucket="mnistgen")
    assert "intruder" not in {item["Key"] for item in listed.get("Contents", [])}


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
    (benchmarks/serving_latency.py): images of the right shape and range in both pixel formats, the same
    for the same seeds, a 400 naming the problem for each bad request (label 12, 10^7 rows, ...; JSON nested
    too deep for MLflow's parser gets its 500), still serving after them; the latency is measured and
    printed, not judged."""
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
    for pixels, answers in measured["formats"].items():
        assert answers["shape"] == [64, 28, 28] and answers["in_range"], (pixels, answers)
        assert answers["same_seeds_same_images"] and 0 < answers["p50_ms"] <= answers["p99_ms"], (
            pixels,
            answers,
        )
    assert set(measured["formats"]) == {"float", "uint8"} and measured["formats_agree"], measured
    refused = measured["bad_requests"]
    nested = refused.pop("JSON nested 100,000 deep")  # MLflow parses it before the model: 500 (mlflow#4897)
    assert nested["status"] in (400, 500), nested
    assert all(answer["status"] == 400 for answer in refused.values()), refused
    assert "`label` 12 in row 0: it must be 0..9" in refused["label 12"]["message"], refused
    assert "10000000 rows in one request; at most 1000" in refused["10^7 rows"]["message"], refused
    for seed in ("a fractional seed", "a boolean seed"):  # never read as seed 1
        assert "`seed` must be an integer in every row" in refused[seed]["message"], refused
    assert measured["still_serving"], measured
    print(done.stdout)  # the latency, for the log


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def test_a_second_clone_pulls_the_results_and_dvc_repro_runs_no_stage(team, tmp_path: Path) -> None:
    """The team shares results instead of retraining: one clone runs `dvc repro` against the stack (smoke,
    one variant) and pushes the data and every stage's outputs to the S3 remote; in a fresh second clone,
    `dvc pull` brings them, and then `dvc repro` runs no stage and `dvc status` has nothing to say."""
    environment, _ = team
    project = tmp_path / "first"
    copy_repository(project)
    files = publish_synthetic_mnist(project / "data" / "mnist", TRAINING_ROWS)
    set_params(project, {"profile": "smoke", "data": {"files": files}, "train": {"variants": ["mlp_gan"]}})
    env = {**cli_env(), **environment}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `mnistgen` in the stages
    git(project, "init", "-q")
    remote = ["remote", "add", "--local", "-d", "team", environment["MNISTGEN_DVC_REMOTE"]]
    _run([*DVC, *remote], project, env)
    _run([*DVC, "commit", "-f", "-q", "data.dvc"], project, env)
    first = _run([*DVC, "repro"], project, env)
    assert stages_run(first.stdout) == {"classifier", "train@mlp_gan", "evaluate", "register"}, first.stdout
    _run([*DVC, "push"], project, env)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "results")

    second = tmp_path / "second"
    git(tmp_path, "clone", "-q", str(project), str(second))
    _run([*DVC, *remote], second, env)
    _run([*DVC, "pull"], second, env)
    again = _run([*DVC, "repro"], second, env)
    assert stages_run(again.stdout) == set(), again.stdout
    assert json.loads(_run([*DVC, "status", "--json"], second, env).stdout) == {}
    for shared in ("reports/registration.json", "reports/leaderboard.md"):
        assert (second / shared).read_bytes() == (project / shared).read_bytes(), shared
    assert snapshot(second / "runs/mlp_gan/model") == snapshot(project / "runs/mlp_gan/model") != {}


def test_a_training_carries_on_across_a_postgres_restart(team, team_pipeline, tmp_path: Path) -> None:
    """PostgreSQL (MLflow's database) restarts in the middle of a training: MLflow's client retries, the
    run's metrics carry on after it is back, and the run ends FINISHED at its full step budget."""
    environment, env_file = team
    project, _ = team_pipeline
    stack_state = env_file.parent / "stack"
    epochs = 60  # 1,200 steps of mlp_gan, about 40 s: long enough to restart in the middle
    command = [*MNISTGEN, "train", "mlp_gan", "--profile", "smoke", "--no-progress", "--project-dir"]
    command += [str(project), "--set", f"variants.mlp_gan.epochs={epochs}"]
    training = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**cli_env(), **environment}
    )
    try:
        record = project / ".mnistgen" / "runs" / "mlp_gan" / "run.json"  # the run being built
        run_id = _poll(lambda: json.loads(record.read_text())["run_id"] if record.is_file() else None)
        logged = (
            f"SELECT count(*), max(step) FROM metrics WHERE run_uuid = '{run_id}' AND key = 'train/d_loss'"
        )
        _poll(lambda: _query(stack_state, logged)[0][0] or None)
        port = json.loads((stack_state / "stack.json").read_text())["postgres_port"]
        restart = ["pg_ctl", "-D", str(stack_state / "postgres"), "-m", "fast", "-w", "restart"]
        restart += ["-o", f"-h 127.0.0.1 -p {port} -k ''", "-l", str(stack_state / "logs" / "postgres.log")]
        if os.geteuid() == 0:
            restart = ["runuser", "-u", "postgres", "--", *restart]
        (before, _), restarted_at = _query(stack_state, logged)[0], time.time()
        subprocess.run(restart, check=True, capture_output=True, timeout=120)
        output, _ = training.communicate(timeout=900)
    finally:
        training.kill()
    assert training.returncode == 0, output[-3000:]
    ((count, last_step),) = _query(stack_state, logged)
    since = (
        f"SELECT count(*) FROM metrics WHERE run_uuid = '{run_id}' AND timestamp > {1000 * restarted_at:.0f}"
    )
    ((after,),) = _query(stack_state, since)
    steps = epochs * 20  # the smoke profile's 20 steps an epoch
    assert last_step == steps and count > before and after > 0, (before, count, after, last_step)
    assert _query(stack_state, f"SELECT status FROM runs WHERE run_uuid = '{run_id}'") == [("FINISHED",)]


def test_two_gpu_workers_train_at_once_and_give_the_figures_of_one_after_another(
    team, tmp_path: Path
) -> None:
    """`make deploy` against Prefect on PostgreSQL, a `cpu` worker and two `gpu` workers (the pool runs two
    flow runs at once), `retrain/retrain` (smoke) on two variants: each training is a `train-variant` flow
    run on the `gpu` pool, the two run at the same time, their runs land in MLflow on PostgreSQL, the
    retrain's registration is a version of the shared registry, and each variant's losses are byte for byte
    those of the same training run alone in a project of its own."""
    environment, env_file = team
    variants = ["mlp_gan", "toy_gan_1d"]
    project, mirror = pipeline_project(tmp_path / "deployed")
    env = {**cli_env(), **environment, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env["PREFECT_WORKER_QUERY_SECONDS"] = "2"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    parameters = {"profile": "smoke", "variants": variants, "mirrors": [str(mirror.folder)]}
    report = retrain_on_workers(project, env, tmp_path, parameters, schedule="0 3 * * 1", gpu_workers=2)
    assert sorted(report["trainings"]) == [[v, "COMPLETED", "gpu"] for v in variants], report
    (first_start, first_end), (second_start, second_end) = (report["training_times"][v] for v in variants)
    assert first_start < second_end and second_start < first_end, f"one after another: {report}"
    assert not (project / "mlflow" / "mlflow.db").exists(), "nothing went to the embedded store"
    stack_state = env_file.parent / "stack"
    with _postgres(stack_state, "prefect") as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT state_type FROM flow_run JOIN deployment ON flow_run.deployment_id = deployment.id "
            "WHERE deployment.name = 'train-variant'"
        )
        assert cursor.fetchall() == [("COMPLETED",)] * 2
    registered = json.loads((project / "reports" / "registration.json").read_text())
    versions = dict(_query(stack_state, "SELECT version, run_id FROM model_versions"))
    assert versions[int(registered["version"])] == registered["run_id"], (versions, registered)

    alone, _ = pipeline_project(tmp_path / "alone")  # the same synthetic MNIST and settings
    shutil.copytree(project / "data", alone / "data")
    for variant in variants:
        done = run_cli(alone, "train", variant, "--profile", "smoke")
        assert done.returncode == 0, done.stderr[-2000:]
        for name in ("metrics.json", "history.csv"):
            together = (project / "runs" / variant / name).read_bytes()
            assert together == (alone / "runs" / variant / name).read_bytes(), (variant, name)


def test_with_the_s3_store_down_registering_fails_clearly_and_registers_nothing(
    team, team_pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last test of the module: it stops the stack's S3 store. `mnistgen register` must log the champion
    anew (the registered model was deleted), cannot, and says so in one `error:` line that names the
    artifact store, in about a minute and a half (not MLflow's default retries of over 15 minutes); no
    version is left registered."""
    environment, env_file = team
    project, _ = team_pipeline
    import mlflow

    for name in MLFLOW_CREDENTIALS:  # read by MLflow's client at each request
        monkeypatch.setenv(name, environment[name])
    client = mlflow.MlflowClient(environment["MLFLOW_TRACKING_URI"])
    client.delete_registered_model("mnist-generator")
    s3_pid = int((env_file.parent / "stack" / "pids" / "s3").read_text())
    os.killpg(s3_pid, signal.SIGKILL)
    # Down means refusing connections: on a loaded machine the killed server's socket can outlive the
    # signal for a moment, and a registration that reached it then logged its model (seen once in CI).
    s3 = urllib.parse.urlsplit(environment["MLFLOW_S3_ENDPOINT_URL"])
    _poll(lambda: not _accepts(s3.hostname, s3.port), timeout=60)
    done = subprocess.run(
        [*MNISTGEN, "register", "--profile", "smoke", "--project-dir", str(project)],
        capture_output=True,
        text=True,
        env={**cli_env(), **environment},
        timeout=900,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(errors) == 1, done.stderr[-3000:]
    assert "the MLflow store at http://127.0.0.1:" in errors[0] and "Traceback" not in done.stderr
    assert "its artifact store" in done.stderr, done.stderr[-2000:]
    assert client.search_model_versions("name = 'mnist-generator'") == []


def _accepts(host: str, port: int) -> bool:
    """Whether something listens on host:port."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def _poll(value: Callable[[], Any], timeout: float = 300) -> Any:
    """`value()` once it is truthy (polled every 0.2 s for at most `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not (found := value()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.2)
    return found


def _query(stack_state: Path, sql: str) -> list[tuple]:
    with _postgres(stack_state, "mlflow") as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_a_checkout_private_to_root_keeps_the_stack_state_where_postgres_reaches_it(tmp_path: Path) -> None:
    """As root in a clone the user postgres cannot enter (under /root, or pytest's private temporary
    folders), `make team-up` needs no --state-dir: the state goes under /var/tmp, the same for `down`."""
    if os.geteuid() != 0:
        pytest.skip("only root runs PostgreSQL as another user")
    import importlib.util

    private = Path(tempfile.mkdtemp(dir=tmp_path))  # 0700: postgres cannot enter it
    checkout = private / "clone"
    (checkout / "team").mkdir(parents=True)
    shutil.copy(REPO / "team" / "stack.py", checkout / "team" / "stack.py")
    spec = importlib.util.spec_from_file_location("private_stack", checkout / "team" / "stack.py")
    stack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stack)
    chosen = stack.default_state()
    assert chosen.parent == Path("/var/tmp") and chosen.name.startswith("mnistgen-team-")
    assert chosen == stack.default_state(), "up and down agree"
    reach = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(chosen.parent)])
    assert reach.returncode == 0
    spec_repo = importlib.util.spec_from_file_location("repo_stack", REPO / "team" / "stack.py")
    repo_stack = importlib.util.module_from_spec(spec_repo)
    spec_repo.loader.exec_module(repo_stack)
    reachable = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(REPO)]).returncode == 0
    assert (repo_stack.default_state() == REPO / ".team") == reachable
