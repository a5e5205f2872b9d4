"""What a training run is before it starts: its settings, its step budget, its fingerprint, its folders.

Everything here is decided from (code, data, params, seed) alone, never from the clock. A run ends at its
step budget (`epochs` x `steps_per_epoch`); `train.max_minutes` is only a safety cap against runaways, and a
run it cuts short is marked as such (`stopped_by`), shown on the leaderboard and never registered.

A run is built in a staging folder (`.mnistgen/runs/VARIANT/`) and moved to `runs/VARIANT/` only when it
ended normally, so nothing of the previous run is touched until the new one is complete.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mnistgen import lineage
from mnistgen.config import (
    ConfigError,
    apply_overrides,
    check_options,
    load_params,
    validate,
    with_profile,
)
from mnistgen.errors import MnistgenError

RECORD_FILE = "run.json"  # the MLflow run id, fingerprint and end of the run in a run folder
METRICS_FILE = "metrics.json"  # its final losses, written when it ends
HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"
MODEL_DIR = "model"
SAMPLES_DIR = "samples"  # the sample grids from fixed noise, in a run folder and among its MLflow artifacts
FINAL_GRID = "final"  # the name of the last of them (`samples_final.png`), which the registered model carries
STAGING_DIR = ".mnistgen/runs"  # runs in progress; moved into `train.runs_dir` when they end
LOCK_DIR = ".mnistgen/locks"


def grid_file(name: str) -> str:
    """The file of one sample grid (`samples_epoch_003.png`, `samples_final.png`) under SAMPLES_DIR."""
    return f"samples_{name}.png"


COMPLETED = "completed"  # the run reached its step budget
STEP_LIMIT = "step limit"  # `--max-steps` stopped it first
TIME_CAP = "time cap"  # the `max_minutes` safety cap stopped it first


class TrainingDiverged(MnistgenError):
    """A loss became NaN or infinite."""


class ResumeError(MnistgenError):
    """`--resume` cannot continue the run on disk."""


class RunFailed(MnistgenError):
    """A started run failed (a file that could not be written, memory): marked FAILED, nothing kept."""


class RunBusy(MnistgenError):
    """Another process is training the same variant in the same project."""


@dataclass(frozen=True)
class TrainRequest:
    project_dir: Path
    variant: str
    profile: str | None = None
    seed: int | None = None
    resume: bool = False
    max_minutes: float | None = None
    max_steps: int | None = None
    progress: bool = True
    overrides: tuple[str, ...] = ()  # KEY.PATH=VALUE settings over the profiled params (experiments)


Generate = Callable[[], np.ndarray]  # the run's fixed noise (and labels) -> images in [0, 1], (n, 28, 28)


class QualityClock(Protocol):
    """Measures a model's sample quality while it trains (the evaluation's time-to-quality clock)."""

    measuring_seconds: float  # spent measuring: not training, so not counted against the safety cap

    def tick(self, seconds: float) -> None:
        """Count `seconds` of training; measure when a mark is passed."""

    def measure(self) -> float:
        """Measure now (the run's last point)."""


# Starts a run's clock, or returns None when there is nothing to measure with. The caller hands it to
# `train_variant` (the CLI gives `mnistgen.evaluation.quality_clock.start`), so training needs no
# evaluation code and runs without a classifier.
StartClock = Callable[["RunPlan", Generate, np.ndarray], QualityClock | None]


@dataclass
class TrainResult:
    variant: str
    run_id: str
    status: str  # COMPLETED, STEP_LIMIT or TIME_CAP
    step: int
    total_steps: int
    precision: str
    device: str
    run_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunPlan:
    """Everything a run depends on, resolved from params.yaml and the request."""

    variant: str
    profile: str
    seed: int
    cfg: dict[str, Any]  # the variant's section
    train: dict[str, Any]  # the shared `train` section
    params: dict[str, Any]  # everything, profile and overrides applied
    fingerprint: dict[str, Any]  # what the result depends on (see `mnistgen.lineage`)
    project_dir: Path

    @property
    def run_dir(self) -> Path:
        """Where the variant's last finished run lives."""
        return self.project_dir / self.train["runs_dir"] / self.variant

    @property
    def staging_dir(self) -> Path:
        """Where a run is built until it ends."""
        return self.project_dir / STAGING_DIR / self.variant

    @property
    def max_minutes(self) -> float | None:
        return self.train["max_minutes"]


def plan_run(request: TrainRequest) -> RunPlan:
    check_options(seed=request.seed, max_steps=request.max_steps, max_minutes=request.max_minutes)
    raw = load_params(request.project_dir)
    params = validate(apply_overrides(with_profile(raw, request.profile), request.overrides))
    if request.variant not in params["variants"]:
        raise ConfigError(
            f"unknown variant {request.variant!r}; choose one of: {', '.join(params['variants'])}"
        )
    train, cfg = params["train"], params["variants"][request.variant]
    seed = int(next(s for s in (request.seed, cfg["seed"], train["seed"]) if s is not None))
    return RunPlan(
        variant=request.variant,
        profile=params["profile"],
        seed=seed,
        cfg=cfg,
        train=train,
        params=params,
        fingerprint=lineage.fingerprint(
            request.project_dir,
            raw,
            "train",
            params["profile"],
            request.variant,
            seed=seed,
            overrides=list(request.overrides),
        ),
        project_dir=request.project_dir,
    )


@dataclass(frozen=True)
class Budget:
    """A run's length in steps: `epochs` x `steps_per_epoch`, each step `rows_per_step` training rows."""

    epochs: int
    steps_per_epoch: int
    rows_per_step: int

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def budget(variant: str, cfg: dict[str, Any], rows_per_step: int, train_rows: int | None) -> Budget:
    """The step budget; `steps_per_epoch` defaults to one pass over the training set (`train_rows`)."""
    if train_rows is None:  # data drawn as it trains (the toy GAN): the budget must be explicit
        return Budget(int(cfg["epochs"]), int(cfg["steps_per_epoch"]), rows_per_step)
    available = train_rows // rows_per_step
    if available == 0:
        raise ConfigError(
            f"{variant}: one step takes {rows_per_step} training images (batch_size x critic steps) but "
            f"there are {train_rows}. Fix: lower batch_size."
        )
    wanted = cfg["steps_per_epoch"] or available
    if wanted > available:
        raise ConfigError(
            f"{variant}: steps_per_epoch is {wanted}, but an epoch of {train_rows} images has only "
            f"{available} steps of {rows_per_step}. Fix: lower steps_per_epoch or raise epochs."
        )
    return Budget(int(cfg["epochs"]), int(wanted), rows_per_step)


# ---------------------------------------------------------------------------------------- what is on disk


def read_record(folder: Path) -> dict[str, Any] | None:
    record_file = folder / RECORD_FILE
    if not record_file.is_file():
        return None
    try:
        return json.loads(record_file.read_text())
    except json.JSONDecodeError:
        return None  # a record cut short by a crash while it was written: treated as no run


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Write the record atomically: a crash mid-write leaves the previous record, not half of one."""
    partial = folder / f".{RECORD_FILE}.partial"
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(folder / RECORD_FILE)


def has_checkpoint(folder: Path) -> bool:
    return any((folder / CHECKPOINT_DIR).glob("ckpt-*.index"))


def previous_run(plan: RunPlan) -> tuple[str, dict[str, Any] | None]:
    """What is on disk for this plan, and its record:

    - "interrupted": a run with this fingerprint stopped mid-way (killed, Ctrl-C) in the staging folder;
      resume it from its last checkpoint (a run that failed, a NaN say, is not resumed: it would fail again);
    - "incomplete": the finished run in `runs/VARIANT` has this fingerprint but was stopped before its
      step budget (`--max-steps`, the time cap); resume it to its budget;
    - "finished": the run in `runs/VARIANT` has this fingerprint, reached its budget and has every
      output `dvc.yaml` lists: it is current, nothing to redo;
    - "stale": a run exists but with other settings, code or data; "none": nothing on disk.
    """
    staged = read_record(plan.staging_dir)
    resumable = staged and "failed" not in staged and has_checkpoint(plan.staging_dir)
    if resumable and staged.get("fingerprint") == plan.fingerprint:
        return "interrupted", staged
    record = read_record(plan.run_dir)
    if record is None:
        return ("stale", staged) if staged else ("none", None)
    if record.get("fingerprint") != plan.fingerprint:
        return "stale", record
    if record.get("stopped_by") != COMPLETED:
        return ("incomplete", record) if has_checkpoint(plan.run_dir) else ("stale", record)
    inputs = lineage.stage_inputs(plan.project_dir, "train", plan.profile, plan.variant)
    outputs = [plan.project_dir / out for out in inputs.outs] + [plan.run_dir / METRICS_FILE]
    return ("finished", record) if all(path.exists() for path in outputs) else ("stale", record)


def publish(plan: RunPlan) -> None:
    """Move the finished run from its staging folder into `runs/VARIANT`, replacing the previous run."""
    plan.run_dir.parent.mkdir(parents=True, exist_ok=True)
    if plan.run_dir.exists():
        retired = plan.staging_dir.with_name(f"{plan.variant}.retired")
        shutil.rmtree(retired, ignore_errors=True)
        plan.run_dir.replace(retired)
        plan.staging_dir.replace(plan.run_dir)
        shutil.rmtree(retired)
    else:
        plan.staging_dir.replace(plan.run_dir)


@contextmanager
def exclusive(plan: RunPlan) -> Iterator[None]:
    """Hold the variant's lock for the whole run: two trainings of one variant would corrupt each other's
    folder. The lock is the kernel's (`flock`), so a killed process never leaves it behind."""
    lock_file = plan.project_dir / LOCK_DIR / f"{plan.variant}.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunBusy(
                f"{plan.variant} is already training in {plan.project_dir} (pid {holder}). Fix: wait for "
                "it to end, or stop that process; then run this again."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


# ---------------------------------------------------------------------------------------- losses


def check_finite(values: dict[str, float], variant: str, step: int) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"{variant}: loss '{name}' became {value} at step {step}; the run is marked FAILED and no "
                "model was saved. Fix: lower the learning rate, use precision: float32, or check the data."
            )


def tensorflow_message(err: Exception) -> str:
    """A TensorFlow error's message without its graph-node prefix (`{{function_node ...}} `)."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(getattr(err, "message", err))).strip()
    return text.splitlines()[0] if text else type(err).__name__


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def read_history(path: Path, up_to_step: int) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
    return [row for row in rows if row["step"] <= up_to_step]
