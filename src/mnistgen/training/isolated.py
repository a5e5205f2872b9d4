"""Training a variant in a process of its own.

TensorFlow keeps its precision policy, seeds, determinism switch and memory per process, so the pipeline
never trains two variants in one interpreter: it runs `python -m mnistgen train ...` and reads back the
run's record.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from mnistgen.config import load_params, with_profile
from mnistgen.errors import MnistgenError


class TrainingFailed(MnistgenError):
    """A training process exited with an error."""


def train_in_subprocess(
    project_dir: Path,
    variant: str,
    profile: str | None = None,
    seed: int | None = None,
    resume: bool = False,
    max_minutes: float | None = None,
) -> dict[str, Any]:
    """Run one training to its end; returns the variant, its MLflow run id and final metrics."""
    command = [
        sys.executable,
        "-m",
        "mnistgen",
        "train",
        variant,
        "--project-dir",
        str(project_dir),
        "--no-progress",
    ]
    for flag, value in (("--profile", profile), ("--seed", seed), ("--max-minutes", max_minutes)):
        if value is not None:
            command += [flag, str(value)]
    if resume:
        command.append("--resume")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise TrainingFailed(f"training {variant} failed (exit {done.returncode}):\n{tail}")
    params = with_profile(load_params(project_dir), profile)
    run_dir = project_dir / params["train"]["runs_dir"] / variant
    return {
        "variant": variant,
        "run_id": json.loads((run_dir / "run.json").read_text())["run_id"],
        "metrics": json.loads((run_dir / "metrics.json").read_text()),
        "log": done.stdout.strip(),
    }
