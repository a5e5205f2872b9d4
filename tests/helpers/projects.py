"""Project folders for the tests: params.yaml around synthetic data, git and DVC, a migrated MLflow store."""

from __future__ import annotations

import atexit
import copy
import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from helpers.mirror import ROWS, TRAINING_ROWS, Mirror, publish_synthetic_mnist, training_mirror
from helpers.paths import REPO


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


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below `folder` with the SHA-256 of its bytes: equal snapshots mean an untouched folder."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


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


# One variant of each kind the engine and the reporters treat apart: a GAN with batch-norm reference
# statistics, a Wasserstein GAN with gradient penalty, a VAE, a conditional GAN, the 1-D toy GAN, and the
# self-conditioned GAN (trained on clusters, saved as a generator that picks its own). The other variants
# differ from these only in their networks, which test_models.py trains in-process.
SMOKE_KINDS = ("dcgan", "wgan_gp", "vae", "cgan", "toy_gan_1d", "scgan")
