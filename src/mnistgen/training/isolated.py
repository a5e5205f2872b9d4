"""Training a variant in a process of its own: the one way the pipeline, the benchmarks and tuning start one.

TensorFlow keeps its precision policy, seeds, determinism switch and memory per process, so nothing
trains two variants in one interpreter: it runs `python -m mnistgen train ...` and reads back the run's
record.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from mnistgen.errors import MnistgenError, redact
from mnistgen.training.plan import TrainRequest, plan_run
from mnistgen.training.run_folder import METRICS_FILE, RunRecord, RunState, previous_run

log = logging.getLogger(__name__)

Action = Literal["reused", "resumed", "trained"]


class TrainingFailed(MnistgenError):
    """A training process exited with an error."""


def train_command(request: TrainRequest) -> list[str]:
    """The `mnistgen train` command line that carries out `request`."""
    command = [
        sys.executable,
        "-m",
        "mnistgen",
        "train",
        request.variant,
        "--project-dir",
        str(request.project_dir),
    ]
    for flag, value in (
        ("--profile", request.profile),
        ("--seed", request.seed),
        ("--max-steps", request.max_steps),
        ("--max-minutes", request.max_minutes),
    ):
        if value is not None:
            command += [flag, str(value)]
    for override in request.overrides:
        command += ["--set", override]
    if request.resume:
        command.append("--resume")
    if not request.progress:
        command.append("--no-progress")
    return command


_RUNNING: set[subprocess.Popen] = set()  # the trainings this process has started and not yet seen end


def train_in_subprocess(request: TrainRequest) -> dict[str, Any]:
    """Run one training to its end in a fresh process; returns its summary (see `run_summary`) and log."""
    with subprocess.Popen(
        train_command(request), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        _RUNNING.add(process)
        try:
            stdout, stderr = process.communicate()
        finally:
            _RUNNING.discard(process)
    if process.returncode != 0:
        errors = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
        tail = errors[-1] if errors else "\n".join(stderr.strip().splitlines()[-15:])
        raise TrainingFailed(f"training {request.variant} failed (exit {process.returncode}): {tail}")
    return {**run_summary(request), "log": redact(stdout.strip())}


def interrupt_trainings() -> None:
    """Stop every training this process started as Ctrl-C stops one: checkpointed, its MLflow run KILLED,
    resumable (`mnistgen train` takes the first signal and ignores the ones after it)."""
    for process in list(_RUNNING):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)


def run_summary(request: TrainRequest) -> dict[str, Any]:
    """The variant, MLflow run id, how it ended and its final metrics, from its published run folder."""
    run_dir = plan_run(request).run_dir
    record = RunRecord.read(run_dir)
    if record is None:
        raise TrainingFailed(f"training {request.variant} left no run record in {run_dir}")
    return {
        "variant": request.variant,
        "run_id": record.run_id,
        "stopped_by": record.stopped_by,
        "step": record.step,
        "total_steps": record.total_steps,
        "metrics": json.loads((run_dir / METRICS_FILE).read_text()),
    }


def next_action(request: TrainRequest, force: bool = False) -> Action:
    """What the pipeline's training step does with the variant's run on disk: reuse a finished run with
    the same fingerprint (the rule `dvc status` follows), resume an interrupted or cut-short one from its
    checkpoint, otherwise (or with `force`) train afresh."""
    if force:
        return "trained"
    state, _ = previous_run(plan_run(request))
    actions: dict[RunState, Action] = {
        RunState.FINISHED: "reused",
        RunState.INTERRUPTED: "resumed",
        RunState.INCOMPLETE: "resumed",
    }
    return actions.get(state, "trained")


def train_unless_current(
    project_dir: Path,
    variant: str,
    profile: str | None = None,
    seed: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The pipeline's training step (see `next_action`); `action` in the result says what it did."""
    began = time.monotonic()
    request = TrainRequest(project_dir, variant, profile, seed, progress=False)
    action = next_action(request, force)
    if action == "reused":
        log.info(
            "%s: the run in runs/%s is current (same settings, code and data); not retraining",
            variant,
            variant,
        )
        return {**run_summary(request), "action": action, "log": "", "seconds": time.monotonic() - began}
    result = train_in_subprocess(replace(request, resume=action == "resumed"))
    return {**result, "action": action, "seconds": time.monotonic() - began}
