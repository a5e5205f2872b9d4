"""Shared fixtures: tiny synthetic MNIST files, a project folder around them, a local HTTP mirror, Prefect's
test harness; the helpers they use are in `helpers/`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers.cli import run_cli
from helpers.mirror import Mirror, MirrorServer, make_mirror, serving
from helpers.projects import init_dvc_repo, make_training_project, project_params, write_project
from helpers.servers import free_port

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


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    return make_mirror(tmp_path / "mirror")


@pytest.fixture
def project(tmp_path: Path, mirror: Mirror) -> Path:
    """A project folder (params.yaml for the synthetic mirror), not yet a DVC repository."""
    return write_project(tmp_path / "project", project_params(mirror.files))


@pytest.fixture
def dvc_project(project: Path, tmp_path: Path) -> Path:
    init_dvc_repo(project, tmp_path / "dvc-remote")
    return project


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
    """One temporary Prefect server for the whole test run (starting one takes ~10-20 s)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


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
