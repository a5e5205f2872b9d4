"""The team stack on one machine: PostgreSQL, an S3-compatible object store, an MLflow tracking server on
both, and a Prefect server on PostgreSQL, every one bound to 127.0.0.1.

    python team/stack.py up      # or `make team-up`: start them, write .team.env, print where they are
    python team/stack.py down    # or `make team-down`: stop every one of them
    python team/stack.py status

`up` writes the environment a shell needs into `.team.env` (git-ignored, readable by its owner only):
`set -a; . ./.team.env; set +a` then points every `mnistgen`, `prefect`, `mlflow` and `dvc` command at the
stack. Every service requires credentials: PostgreSQL a password, MLflow's basic-auth app a user and
password (MLFLOW_TRACKING_USERNAME/PASSWORD), Prefect's API an auth string (PREFECT_API_AUTH_STRING), the
S3 store requests signed with the keys it made for the stack's user. Passwords come from the environment
(TEAM_POSTGRES_PASSWORD, MLFLOW_TRACKING_PASSWORD, TEAM_PREFECT_PASSWORD) or are generated once and kept in
the state folder, never in a committed file.

The engines are the ones a team runs for real: PostgreSQL 15 (`initdb`, `pg_ctl`), MLflow's server with a
PostgreSQL backend and proxied artifacts in an S3 bucket, Prefect's server on PostgreSQL. The object store is
`moto` in server mode (it speaks the S3 API, installs from the lock file, and keeps its objects in memory:
a `down` empties it); a team points MLFLOW_ARTIFACTS_DESTINATION and the DVC remote at a real bucket instead
(README "Team scale"). PostgreSQL refuses to run as root: as root, its processes run as the user `postgres`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_STATE_ROOT = Path("/var/tmp")  # where the state goes when the checkout is private to root
BIN = Path(sys.executable).parent  # the project's virtual environment: mlflow, prefect, moto_server
BUCKET = "mnistgen"
AUTH_DATABASE = "mlflow_auth"  # MLflow's users and permissions
DATABASES = ("mlflow", AUTH_DATABASE, "prefect")
REGION = "us-east-1"
PROXIED_ONLY = ("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD")
S3_SETUP_ACTIONS = 3  # the requests of `_s3_user`, the only ones the S3 store answers unsigned
DB_USER = "mnistgen"
START_TIMEOUT_SECONDS = 180
SERVICES = ("s3", "mlflow", "prefect")  # the servers this script starts besides PostgreSQL, in order


class StackError(Exception):
    """A stack that cannot start or stop; the message names the fix."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _secret(state: Path, name: str, environment_name: str) -> str:
    """The value of `environment_name`, else the one generated for `name` at the first `up` (kept in the
    state folder so a restarted stack opens the same database)."""
    if os.environ.get(environment_name):
        return os.environ[environment_name]
    path = state / "secrets" / name
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(18))
        path.chmod(0o600)
    return path.read_text().strip()


def default_state() -> Path:
    """`.team/` in the checkout, unless PostgreSQL's user cannot reach the checkout (as root, in a clone
    under /root or a private temporary folder): then a folder named after the checkout under /var/tmp,
    which every user can reach. The same checkout always gets the same folder, so `down` finds `up`'s."""
    if os.geteuid() != 0 or subprocess.run(_as_postgres(["test", "-x", str(REPO)])).returncode == 0:
        return REPO / ".team"
    return SHARED_STATE_ROOT / f"mnistgen-team-{hashlib.sha256(str(REPO).encode()).hexdigest()[:12]}"


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL's programs refuse to run as root: as root, run them as the user `postgres`."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _wait(what: str, ready: Callable[[], bool], state: Path, name: str) -> None:
    """Until `ready()`; a server that exits or does not answer in time is one error naming its log."""
    log = state / "logs" / f"{name}.log"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        if not _signal(int((state / "pids" / name).read_text()), 0):
            raise StackError(f"{what} exited while starting: {_last_line(log)}. Its log: {log}")
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not answer within {START_TIMEOUT_SECONDS} s. Its log: {log}")
        time.sleep(0.5)


def _last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1] if lines else "(nothing logged)"


def _answers(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status < 500
        except (urllib.error.URLError, OSError):
            return False

    return ready


# ---------------------------------------------------------------- PostgreSQL


def _start_postgres(state: Path, password: str) -> int:
    """Create the cluster on the first `up` (password authentication only, TCP on 127.0.0.1, no socket in
    a shared folder), start it and create the databases. Returns its port."""
    data = state / "postgres"
    port = _free_port()
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        password_file = state / "postgres.pwfile"  # for initdb only: read by its user, removed after
        password_file.touch(mode=0o600)
        try:
            password_file.write_text(password + "\n")
            if os.geteuid() == 0:
                shutil.chown(data, "postgres")
                shutil.chown(password_file, "postgres")
            if subprocess.run(_as_postgres(["test", "-w", str(data)]), capture_output=True).returncode:
                raise StackError(
                    f"the user postgres cannot write {data} (PostgreSQL refuses to run as root). Fix: pass "
                    "--state-dir in a folder every user can reach (e.g. under /tmp), or run as a normal user."
                )
            init = ["initdb", "-D", str(data), "-U", DB_USER, "--auth=scram-sha-256"]
            done = subprocess.run(
                _as_postgres([*init, f"--pwfile={password_file}"]), capture_output=True, text=True
            )
        finally:
            password_file.unlink()
        if done.returncode != 0:
            raise StackError(f"initdb failed: {done.stderr.strip().splitlines()[-1]}")
    log = state / "logs" / "postgres.log"
    if os.geteuid() == 0:
        shutil.chown(log.parent, "postgres")
    options = f"-h 127.0.0.1 -p {port} -k ''"  # TCP on loopback only, no unix socket
    start = _as_postgres(["pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
    done = subprocess.run(start, capture_output=True, text=True)
    if done.returncode != 0:
        raise StackError(f"PostgreSQL did not start: {_last_line(log)}. Its log: {log}")
    import psycopg2  # the lock file's psycopg2-binary, which MLflow's PostgreSQL backend needs too

    connection = psycopg2.connect(
        host="127.0.0.1", port=port, user=DB_USER, password=password, dbname="postgres"
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        for name in DATABASES:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return port


def _stop_postgres(state: Path) -> None:
    data = state / "postgres"
    if (data / "postmaster.pid").exists():
        stop = _as_postgres(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"])
        subprocess.run(stop, check=False, capture_output=True)


# ---------------------------------------------------------------- the servers


def _spawn(state: Path, name: str, command: list[str], env: dict[str, str]) -> None:
    """Start a server in a process group of its own (`down` stops it with its children); its pid to a file."""
    log = state / "logs" / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=state, start_new_session=True
        )
    (state / "pids" / name).write_text(str(process.pid))


def _stop(state: Path, name: str) -> None:
    """Stop a server and its children (its own process group), politely first."""
    pid_file = state / "pids" / name
    if not pid_file.exists():
        return
    group = int(pid_file.read_text())
    for sig, grace_seconds in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if not _signal(group, sig) or _ended(group, grace_seconds):
            break
    pid_file.unlink()


def _signal(group: int, sig: int) -> bool:
    """Send `sig` to a process group; False if no process of it is left."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    return True


def _ended(group: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _signal(group, 0):
            return True
        time.sleep(0.2)
    return False


def up(state: Path, env_file: Path) -> dict[str, str]:
    """Start the stack (nothing that already runs is started twice: `down` first) and write `env_file`."""
    if any((state / "pids" / name).exists() for name in SERVICES):
        raise StackError(
            f"a stack from {state} is running. Fix: `make team-down` (or `stack.py down`) first."
        )
    for folder in ("logs", "pids"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    password = _secret(state, "postgres", "TEAM_POSTGRES_PASSWORD")
    mlflow_password = _secret(state, "mlflow-admin", "MLFLOW_TRACKING_PASSWORD")
    prefect_auth = f"{DB_USER}:{_secret(state, 'prefect-api', 'TEAM_PREFECT_PASSWORD')}"
    flask_key = _secret(state, "mlflow-flask", "MLFLOW_FLASK_SERVER_SECRET_KEY")  # signs the UI's forms
    try:
        print("PostgreSQL ...", file=sys.stderr)
        pg_port = _start_postgres(state, password)
        database = f"{DB_USER}:{password}@127.0.0.1:{pg_port}"
        s3_port, mlflow_port, prefect_port = _free_port(), _free_port(), _free_port()
        s3_url = f"http://127.0.0.1:{s3_port}"

        print("S3 (moto) ...", file=sys.stderr)
        # The first S3_SETUP_ACTIONS requests need no signature: they create the stack's user and its
        # keys; every request after them must be signed with those keys.
        s3_env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(S3_SETUP_ACTIONS)}
        _spawn(state, "s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)], s3_env)
        _wait("the S3 store", _answers(s3_url + "/moto-api/"), state, "s3")
        access_key, secret_key = _s3_user(s3_url)
        storage = {
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": s3_url,
            "MLFLOW_S3_ENDPOINT_URL": s3_url,
        }
        _create_bucket(s3_url, storage)
        base = {**os.environ, **storage}

        print("MLflow server ...", file=sys.stderr)
        mlflow_env = {
            **base,
            "MLFLOW_BIN": str(BIN / "mlflow"),
            "MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg2://{database}/mlflow",
            "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{BUCKET}/mlflow",
            "MLFLOW_PORT": str(mlflow_port),
            # MLflow's basic-auth app: every request but /health needs the admin's user and password
            "MLFLOW_AUTH_CONFIG_PATH": str(_mlflow_auth_config(state, f"{database}/{AUTH_DATABASE}")),
            "MLFLOW_AUTH_ADMIN_USERNAME": DB_USER,
            "MLFLOW_AUTH_ADMIN_PASSWORD": mlflow_password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": flask_key,
        }
        _spawn(state, "mlflow", [str(REPO / "mlflow" / "server.sh")], mlflow_env)
        mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        _wait("the MLflow server", _answers(mlflow_url + "/health"), state, "mlflow")

        print("Prefect server ...", file=sys.stderr)
        prefect_env = {
            **base,
            "PREFECT_HOME": str(state / "prefect-home"),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{database}/prefect",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_AUTH_STRING": prefect_auth,  # every request but the health check
        }
        prefect = [
            str(BIN / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(prefect_port),
        ]
        _spawn(state, "prefect", prefect, prefect_env)
        prefect_url = f"http://127.0.0.1:{prefect_port}"
        _wait("the Prefect server", _answers(prefect_url + "/api/health"), state, "prefect")
    except BaseException:
        down(state)
        raise
    environment = {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MLFLOW_TRACKING_USERNAME": DB_USER,
        "MLFLOW_TRACKING_PASSWORD": mlflow_password,
        "PREFECT_API_URL": prefect_url + "/api",
        "PREFECT_UI_API_URL": prefect_url + "/api",
        "PREFECT_API_AUTH_STRING": prefect_auth,
        # moto's signature check fails on presigned URLs (it reads no Authorization header): clients
        # fetch and send artifacts through the MLflow server instead of straight from the store
        **dict.fromkeys(PROXIED_ONLY, "false"),
        **storage,
        "MNISTGEN_DVC_REMOTE": f"s3://{BUCKET}/dvc",
    }
    env_file.write_text(
        "# The team stack started by `make team-up` (team/stack.py): `set -a; . ./.team.env; set +a`\n"
        + "".join(f"{key}={value}\n" for key, value in environment.items())
    )
    env_file.chmod(0o600)
    # Where the databases listen (the tests read it).
    (state / "stack.json").write_text(json.dumps({"postgres_port": pg_port}))
    return environment


def _s3_user(url: str) -> tuple[str, str]:
    """The stack's S3 user, allowed everything on S3, and its (access key, secret key): the store makes
    the keys (moto checks signatures against the keys of its own users)."""
    import boto3

    anyone = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}  # not checked yet
    iam = boto3.client("iam", endpoint_url=url, region_name=REGION, **anyone)
    iam.create_user(UserName=DB_USER)
    key = iam.create_access_key(UserName=DB_USER)["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName=DB_USER, PolicyName="s3", PolicyDocument=json.dumps(policy))
    return key["AccessKeyId"], key["SecretAccessKey"]


def _create_bucket(url: str, storage: dict[str, str]) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=storage["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=storage["AWS_SECRET_ACCESS_KEY"],
        region_name=storage["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=BUCKET)


def _mlflow_auth_config(state: Path, database: str) -> Path:
    """MLflow's basic-auth settings, with its users in PostgreSQL: readable by their owner only (the
    database's password is in it)."""
    path = state / "secrets" / "mlflow-auth.ini"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = postgresql+psycopg2://{database}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return path


def down(state: Path) -> None:
    """Stop every server of the stack in `state` (those that run), PostgreSQL last."""
    for name in reversed(SERVICES):
        _stop(state, name)
    _stop_postgres(state)


def status(state: Path) -> list[str]:
    lines = []
    for name in SERVICES:
        pid_file = state / "pids" / name
        running = pid_file.exists() and _signal(int(pid_file.read_text()), 0)
        lines.append(f"{name}: {'running' if running else 'stopped'}")
    running = (state / "postgres" / "postmaster.pid").exists()
    lines.append(f"postgres: {'running' if running else 'stopped'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument(
        "--state-dir", type=Path, help="servers' data and logs (default: .team/, or under /var/tmp as root)"
    )
    parser.add_argument(
        "--env-file", type=Path, default=REPO / ".team.env", help="where `up` writes the environment"
    )
    args = parser.parse_args(argv)
    state = (args.state_dir or default_state()).resolve()
    if args.state_dir is None and state != REPO / ".team":
        print(f"state folder {state} (the user postgres cannot reach {REPO})", file=sys.stderr)
        state.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        if args.action == "up":
            environment = up(state, args.env_file.resolve())
            print(f"MLflow UI   {environment['MLFLOW_TRACKING_URI']}")
            print(f"Prefect UI  {environment['PREFECT_API_URL'].removesuffix('/api')}")
            print(f"S3          {environment['AWS_ENDPOINT_URL']} (bucket {BUCKET})")
            print(f"environment {args.env_file}: set -a; . {args.env_file}; set +a")
        elif args.action == "down":
            down(state)
            print("team stack stopped")
        else:
            print("\n".join(status(state)))
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
