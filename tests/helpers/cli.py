"""`mnistgen` in a process of its own, as users and the pipeline run it, and the docs build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.paths import REPO

RUN_THE_CLI = "import sys\nfrom mnistgen.cli import app\napp(sys.argv[1:], prog_name='mnistgen')"


def cli_env() -> dict[str, str]:
    """The environment of a `mnistgen` child process: the project's own MLflow store, quiet TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def run_cli(
    project: Path,
    *args: str,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    fault: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`mnistgen ARGS` in a process of its own, as the pipeline trains (TensorFlow state is per process);
    `env` adds to its environment; `fault`, Python code run in that process first, plants a fault."""
    env = {**cli_env(), **(env or {})}
    quiet = ["--no-progress"] if args[0] in ("data", "train", "classifier") else []
    program = ["-m", "mnistgen"] if fault is None else ["-c", f"{fault}\n{RUN_THE_CLI}"]
    return subprocess.run(
        [sys.executable, *program, *args, "--project-dir", str(project), *quiet],
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
