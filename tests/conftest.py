"""Shared fixtures: tiny synthetic MNIST files, a project folder around them, a local HTTP mirror."""

from __future__ import annotations

import atexit
import base64
import copy
import functools
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(os.environ.get("MNISTGEN_TEST_MNIST", REPO.parent / "shared" / "mnist"))
ROWS = {"train": 100, "test": 50}
FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

# The test files that take longest, longest first (`pytest --durations=0` summed per file). `--dist
# loadfile` hands files to the workers in collection order, so the long ones start first and no worker
# is left running one of them alone at the end.
LONGEST_FIRST = (
    "test_reproducibility.py",
    "test_training.py",
    "test_faults.py",
    "test_dvc_pipeline.py",
    "test_evaluation.py",
    "test_pages.py",
    "test_deployments.py",
    "test_team_stack.py",
    "test_mlflow_server.py",
    "test_conditional.py",
    "test_pipeline.py",
    "test_models.py",
    "test_train_flow.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


# ---------------------------------------------------------------- synthetic IDX data


def idx_bytes(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    """Encode a uint8 array in the IDX layout."""
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def synthetic_split(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels and 28x28 images with a 10x10 block of ink (mean intensity ~33, like MNIST).

    The block's column encodes the label, so a classifier can learn these "digits" in one epoch.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(rows) % 10).astype(np.uint8)
    images = np.zeros((rows, 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        top, left = int(rng.integers(0, 18)), 2 * int(label)
        image[top : top + 10, left : left + 10] = 255
    return images, labels


@dataclass
class Mirror:
    """A folder of `.gz` files laid out like a public MNIST mirror, and the specs they satisfy."""

    folder: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, key: str, raw: bytes, compress: Callable[[bytes], bytes] = gzip.compress) -> None:
        """Serve `raw` as file `key` and record its true size and SHA-256 as the spec."""
        name = FILE_NAMES[key]
        (self.folder / f"{name}.gz").write_bytes(compress(raw))
        self.files[key] = {"name": name, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}

    def corrupt(self, key: str, payload: bytes) -> None:
        """Replace the served file with `payload` but keep the spec: the mirror now serves a bad copy."""
        (self.folder / f"{FILE_NAMES[key]}.gz").write_bytes(payload)


def make_mirror(folder: Path, arrays: dict[str, np.ndarray] | None = None) -> Mirror:
    folder.mkdir(parents=True, exist_ok=True)
    mirror = Mirror(folder)
    train_images, train_labels = synthetic_split(ROWS["train"], seed=1)
    test_images, test_labels = synthetic_split(ROWS["test"], seed=2)
    defaults = {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }
    for key, array in {**defaults, **(arrays or {})}.items():
        mirror.put(key, idx_bytes(array))
    return mirror


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    return make_mirror(tmp_path / "mirror")


# ---------------------------------------------------------------- project folder


def project_params(files: dict[str, dict[str, Any]], rows: dict[str, int] = ROWS) -> dict[str, Any]:
    """The repository's params.yaml, shrunk to the synthetic data and quick retries."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params = copy.deepcopy(params)
    data = params["data"]
    data["files"] = copy.deepcopy(files)
    data["validation"]["rows"] = dict(rows)
    data["download"] = {"attempts": 3, "backoff_seconds": 0.01, "timeout_seconds": 5}
    return params


def write_project(root: Path, params: dict[str, Any], stages: bool = False) -> Path:
    """params.yaml; with `stages`, also the repository's dvc.yaml, which says what each training, the
    classifier and the evaluation depend on (a project that only fetches data needs none)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if stages:
        (root / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    return root


def init_dvc_repo(root: Path, remote: Path) -> None:
    """A git + DVC repository with a local default remote, as the project itself is set up."""

    def run(*args: str) -> None:
        subprocess.run(args, cwd=root, check=True, capture_output=True)

    run("git", "init", "-q")
    run("git", "config", "user.email", "tests@mnistgen.invalid")
    run("git", "config", "user.name", "mnistgen tests")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run(sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(remote))


@pytest.fixture
def project(tmp_path: Path, mirror: Mirror) -> Path:
    """A project folder (params.yaml for the synthetic mirror), not yet a DVC repository."""
    return write_project(tmp_path / "project", project_params(mirror.files))


@pytest.fixture
def dvc_project(project: Path, tmp_path: Path) -> Path:
    init_dvc_repo(project, tmp_path / "dvc-remote")
    return project


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below `folder` with the SHA-256 of its bytes: equal snapshots mean an untouched folder."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- a local HTTP mirror


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: MirrorServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requests.append(self.path)
        if self.server.credentials:
            user, password = self.server.credentials
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_error(401, "Unauthorized")
                return
            self.server.authorized += 1
        if self.server.failures_left > 0:
            self.server.failures_left -= 1
            if self.server.failure == "503":
                self.send_error(503, "Service Unavailable")
                return
            if self.server.failure == "drop":
                # Promise the whole file, send a few bytes, hang up: a connection broken mid-transfer.
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"\x1f\x8b\x08\x00")
                self.close_connection = True
                return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass


class MirrorServer(http.server.ThreadingHTTPServer):
    """Serves a folder on 127.0.0.1; `failure` makes the next `failures_left` requests fail that way;
    with `credentials` (user, password), only to requests that send them (HTTP basic authentication)."""

    def __init__(self, folder: Path, credentials: tuple[str, str] | None = None) -> None:
        handler = lambda *a, **kw: _Handler(*a, directory=str(folder), **kw)  # noqa: E731
        super().__init__(("127.0.0.1", 0), handler)
        self.requests: list[str] = []
        self.failure = ""
        self.failures_left = 0
        self.credentials = credentials
        self.authorized = 0  # requests served with the right credentials

    @property
    def url(self) -> str:
        """The mirror's URL, with its credentials in it if it has some (`http://user:password@...`)."""
        login = "{}:{}@".format(*self.credentials) if self.credentials else ""
        return f"http://{login}127.0.0.1:{self.server_address[1]}/"


@contextmanager
def serving(folder: Path, credentials: tuple[str, str] | None = None) -> Iterator[MirrorServer]:
    """A MirrorServer of `folder` for the length of the block."""
    server = MirrorServer(folder, credentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., MirrorServer]]:
    with ExitStack() as servers:
        yield lambda folder, credentials=None: servers.enter_context(serving(folder, credentials))


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/"


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One temporary Prefect server for the whole session (starting one takes ~10-20 s)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


# ---------------------------------------------------------------- training projects


def publish_synthetic_mnist(data_dir: Path, rows: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Write synthetic MNIST files straight into a project's data folder; returns their `data.files` specs
    (training checks the files against them)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    specs = {}
    for split, seed in (("train", 1), ("test", 2)):
        images, labels = synthetic_split(rows[split], seed=seed)
        for kind, array in (("images", images), ("labels", labels)):
            key, raw = f"{split}_{kind}", idx_bytes(array)
            (data_dir / FILE_NAMES[key]).write_bytes(raw)
            specs[key] = {
                "name": FILE_NAMES[key],
                "bytes": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
    return specs


TRAINING_ROWS = {"train": 2600, "test": 300}


@functools.cache
def migrated_store() -> Path:
    """An empty MLflow database with MLflow's schema migrations applied, made once per test process.

    Creating a store runs every migration (about 1.3 CPU seconds more than opening one, in each of the
    dozens of training projects, on two cores); the projects start from a copy instead. Only the schema is
    shared: no experiment or run of one project is in another's store. The pipeline tests and CI's fresh
    clone still create their stores from nothing."""
    import mlflow

    folder = Path(tempfile.mkdtemp(prefix="mnistgen-store-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


def make_training_project(root: Path, overrides: dict[str, Any] | None = None) -> Path:
    """A project with the repository's params.yaml (plus `overrides`), synthetic data in place and an empty
    MLflow store (see `migrated_store`)."""
    from mnistgen.config import deep_merge

    params = deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()), overrides or {})
    params["data"]["files"] = publish_synthetic_mnist(root / params["data"]["dir"], TRAINING_ROWS)
    params["data"]["validation"]["rows"] = dict(TRAINING_ROWS)
    write_project(root, params, stages=True)
    store = root / params["mlflow"]["tracking_uri"].removeprefix("sqlite:///")
    store.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_store(), store)
    return root


def training_mirror(folder: Path) -> Mirror:
    """A mirror serving synthetic MNIST large enough to train the smoke profile on."""
    train_images, train_labels = synthetic_split(TRAINING_ROWS["train"], seed=1)
    test_images, test_labels = synthetic_split(TRAINING_ROWS["test"], seed=2)
    return make_mirror(
        folder,
        {
            "train_images": train_images,
            "train_labels": train_labels,
            "test_images": test_images,
            "test_labels": test_labels,
        },
    )


def pipeline_project(tmp_path: Path, overrides: dict[str, Any] | None = None) -> tuple[Path, Mirror]:
    """A git + DVC project whose params.yaml (plus `overrides`) describes the synthetic mirror's files."""
    from mnistgen.config import deep_merge

    mirror = training_mirror(tmp_path / "mirror")
    params = deep_merge(project_params(mirror.files, TRAINING_ROWS), overrides or {})
    project = write_project(tmp_path / "project", params, stages=True)
    init_dvc_repo(project, tmp_path / "dvc-remote")
    return project, mirror


def copy_repository(destination: Path) -> None:
    """The working tree as a fresh clone would have it (tracked and new files, nothing git ignores)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def set_params(repo: Path, overrides: dict[str, Any]) -> None:
    """Merge `overrides` into a project's params.yaml, as a user editing it would."""
    from mnistgen.config import deep_merge

    path = repo / "params.yaml"
    path.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(path.read_text()), overrides), sort_keys=False))


def stages_run(dvc_output: str) -> set[str]:
    """The stages a `dvc repro` (or `dvc exp run`) ran, from what it printed."""
    return {line.split("'")[1] for line in dvc_output.splitlines() if line.startswith("Running stage '")}


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@mnistgen.invalid", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def cli_env() -> dict[str, str]:
    """The environment of a `mnistgen` child process: the project's own MLflow store, quiet TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def run_cli(
    project: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`mnistgen ARGS` in a process of its own, as the pipeline trains (TensorFlow state is per process);
    `env` adds to its environment."""
    env = {**cli_env(), **(env or {})}
    quiet = ["--no-progress"] if args[0] in ("data", "train", "classifier") else []
    return subprocess.run(
        [sys.executable, "-m", "mnistgen", *args, "--project-dir", str(project), *quiet],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=project,
    )


def build_docs(site: Path) -> None:
    """The documentation site into `site`, as `make docs` builds it (strictly: a broken link fails)."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's notice of its successor
    )
    assert done.returncode == 0, done.stderr[-4000:]


# ---------------------------------------------------------------- servers on loopback


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
    "artifacts": {a.key: str(a.id) for a in artifacts if a.key},
}))
"""


def retrain_on_workers(
    project: Path, env: dict[str, str], logs: Path, parameters: dict[str, Any], schedule: str
) -> dict[str, Any]:
    """What `make deploy` does (the `gpu` and `cpu` process pools, every deployment of prefect.yaml), then
    a `cpu` and a `gpu` worker and one `retrain/retrain` run with `parameters`, waited for; returns what
    RUN_AND_REPORT printed, after checking the deployments (`schedule` on `retrain`) and that it completed."""
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
    prefect("work-pool", "set-concurrency-limit", "gpu", "1")
    prefect("work-pool", "create", "cpu", "--type", "process")
    prefect("--no-prompt", "deploy", "--all")
    listed = prefect("deployment", "ls")
    assert "retrain/retrain" in listed and "train-variant/train-variant" in listed
    assert schedule in prefect("deployment", "inspect", "retrain/retrain")

    workers = []
    for pool in ("cpu", "gpu"):
        log = (logs / f"worker-{pool}.log").open("w")
        workers.append(
            subprocess.Popen(
                [prefect_cli, "worker", "start", "--pool", pool, "--type", "process"],
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


@contextmanager
def local_server(
    command: list[str],
    health_url: str,
    log_path: Path,
    env: dict[str, str],
    cwd: Path | None = None,
    seconds: float = 120,
) -> Iterator[subprocess.Popen]:
    """A server (MLflow, Prefect) started as a process of its own, yielded once `health_url` answers 200,
    stopped at the end; its output goes to `log_path`, whose tail a failed start shows."""
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + seconds
        while True:
            assert server.poll() is None, f"the server exited: {log_path.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(health_url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{health_url} did not answer within {seconds} s"
            time.sleep(0.5)
        yield server
    finally:
        stop(server)


# One variant of each kind the engine and the reporters treat apart: a GAN with batch-norm reference
# statistics, a Wasserstein GAN with gradient penalty, a VAE, a conditional GAN, the 1-D toy GAN, and the
# self-conditioned GAN (trained on clusters, saved as a generator that picks its own). The other variants
# differ from these only in their networks, which test_models.py trains in-process.
SMOKE_KINDS = ("dcgan", "wgan_gp", "vae", "cgan", "toy_gan_1d", "scgan")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`smoke_run(VARIANT, *OPTIONS)`: a project in which `mnistgen train VARIANT --profile smoke OPTIONS`
    ran, in a fresh project and process, once per test session. The tests that share a run only read it
    (its MLflow run, files and weights), so what test_training.py checks of a run and what
    test_reproducibility.py compares it with come from one training."""
    trained: dict[tuple[str, ...], Path] = {}

    def run(variant: str, *options: str) -> Path:
        key = (variant, *options)
        if key not in trained:
            project = make_training_project(tmp_path_factory.mktemp(f"smoke-{variant}") / "project")
            done = run_cli(project, "train", variant, "--profile", "smoke", *options)
            assert done.returncode == 0, done.stderr[-3000:]
            trained[key] = project
        return trained[key]

    return run


# ---------------------------------------------------------------- one image per seed (sampling)

SAMPLING = """
import sys
from pathlib import Path
from mnistgen.serving.sampler import Sampler, row_seeds
import numpy as np
sampler = Sampler(Path(sys.argv[1]))
small, large = sampler.sample(16, seed=3), sampler.sample(200, seed=3)
seeds = row_seeds(200, 3)
labels = None if not sampler.classes else (np.arange(200) % sampler.classes)[[150, 7, 99]]
moved = sampler.decode(sampler.noise(seeds[[150, 7, 99]]), labels)  # the same seeds, elsewhere
print(int(np.array_equal(small, large[:16])), int(np.array_equal(moved, large[[150, 7, 99]])))
"""


def same_image_per_seed(model_dir: Path) -> tuple[bool, bool]:
    """(image k of a request of 16 is image k of a request of 200; a seed's image does not depend on where
    in a request it stands), checked in a fresh process as `mnistgen sample` and the pyfunc run."""
    done = subprocess.run(
        [sys.executable, "-c", SAMPLING, str(model_dir)], capture_output=True, text=True, env=cli_env()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sizes, positions = done.stdout.split()
    return sizes == "1", positions == "1"
