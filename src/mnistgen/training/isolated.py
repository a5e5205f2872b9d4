"""Training a variant in a process of its own.

TensorFlow keeps its precision policy, seeds, determinism switch and memory per process, so the pipeline
never trains two variants in one interpreter: it runs `python -m mnistgen train ...` and reads back the
run's record.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from mnistgen.errors import MnistgenError
from mnistgen.training.run import METRICS_FILE, RECORD_FILE, TrainRequest, plan_run, previous_run

log = logging.getLogger(__name__)


class TrainingFailed(MnistgenError):
    """A training process exited with an error."""


def train_in_subprocess(
    project_dir: Path,
    variant: str,
    profile: str | None = None,
    seed: int | None = None,
    resume: bool = False,
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
    for flag, value in (("--profile", profile), ("--seed", seed)):
        if value is not None:
            command += [flag, str(value)]
    if resume:
        command.append("--resume")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise TrainingFailed(f"training {variant} failed (exit {done.returncode}):\n{tail}")
    return {**run_summary(project_dir, variant, profile, seed), "log": done.stdout.strip()}


def run_summary(project_dir: Path, variant: str, profile: str | None, seed: int | None) -> dict[str, Any]:
    """The variant, MLflow run id and final metrics of the run in the variant's run folder."""
    run_dir = plan_run(TrainRequest(project_dir, variant, profile, seed)).run_dir(project_dir)
    return {
        "variant": variant,
        "run_id": json.loads((run_dir / RECORD_FILE).read_text())["run_id"],
        "metrics": json.loads((run_dir / METRICS_FILE).read_text()),
    }


def train_unless_current(
    project_dir: Path,
    variant: str,
    profile: str | None = None,
    seed: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The pipeline's training step: reuse a finished run with the same settings and data, resume an
    interrupted one from its checkpoint, otherwise train afresh. `action` in the result says which."""
    state, _ = previous_run(TrainRequest(project_dir, variant, profile, seed))
    if state == "finished" and not force:
        log.info(
            "%s: the run in runs/%s is current (same settings and data); not retraining", variant, variant
        )
        return {**run_summary(project_dir, variant, profile, seed), "action": "reused", "log": ""}
    resume = state == "interrupted" and not force
    result = train_in_subprocess(project_dir, variant, profile, seed, resume=resume)
    return {**result, "action": "resumed" if resume else "trained"}
