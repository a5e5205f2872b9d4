"""A run's folder: where each of its files lives, its record (`run.json`), its loss history, its lock,
what is there to resume, and publishing it.

A run is built in a staging folder (`.mnistgen/runs/VARIANT/`) and moved to `runs/VARIANT/` only when it
ended normally, so nothing of the previous run is touched until the new one is complete.
"""

from __future__ import annotations

import csv
import json
import shutil
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from mnistgen import lineage, locks
from mnistgen.errors import MnistgenError
from mnistgen.folders import swap_in

RECORD_FILE = "run.json"  # the run's `RunRecord`
METRICS_FILE = "metrics.json"  # its final losses, written when it ends
HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"
MODEL_DIR = "model"
FIGURE_DIR = "figures"  # the loss curves and a kind's last plots, in a run folder and among its artifacts
SAMPLES_DIR = "samples"  # the sample grids from fixed noise, in a run folder and among its MLflow artifacts
FINAL_GRID = "final"  # the name of the last of them (`samples_final.png`), which the registered model carries
STAGING_DIR = ".mnistgen/runs"  # runs in progress; moved into `train.runs_dir` when they end

# How a run ended (`RunRecord.stopped_by`).
COMPLETED = "completed"  # the run reached its step budget
STEP_LIMIT = "step limit"  # `--max-steps` stopped it first
TIME_CAP = "time cap"  # the `max_minutes` safety cap stopped it first


def grid_file(name: str) -> str:
    """The file of one sample grid (`samples_epoch_003.png`, `samples_final.png`) under SAMPLES_DIR."""
    return f"samples_{name}.png"


class RunBusy(MnistgenError):
    """Another process is training the same variant in the same project."""


class ResumeError(MnistgenError):
    """`--resume` cannot continue the run on disk."""


@dataclass(frozen=True)
class RunRecord:
    """What `run.json` says of a run: its MLflow run, what it depends on, how far it got and how it ended.

    Written at the start, at each checkpoint and at the end; `stopped_by` and `failed` are absent from
    the file while they do not apply.
    """

    run_id: str
    fingerprint: dict[str, Any]  # what the result depends on (see `mnistgen.lineage`)
    digest: str  # of the fingerprint
    total_steps: int
    step: int = 0
    step_seconds: float = 0.0  # time in train steps, reported, never used to decide
    first_step_seconds: float | None = None  # the first step's part of it (tracing, compilation)
    stopped_by: str | None = None  # COMPLETED, STEP_LIMIT or TIME_CAP once it has ended
    failed: str | None = None  # why it failed, if it did

    def write(self, folder: Path) -> None:
        """Write the record atomically: a crash mid-write leaves the previous record, not half of one."""
        shown = {key: value for key, value in asdict(self).items() if value is not None}
        partial = folder / f".{RECORD_FILE}.partial"
        partial.write_text(json.dumps(shown, indent=2) + "\n")
        partial.replace(folder / RECORD_FILE)

    @classmethod
    def read(cls, folder: Path) -> RunRecord | None:
        """The record in `folder`, or None when there is none (or one cut short by a crash)."""
        record_file = folder / RECORD_FILE
        if not record_file.is_file():
            return None
        try:
            values = json.loads(record_file.read_text())
        except json.JSONDecodeError:
            return None
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{key: value for key, value in values.items() if key in known})
        except TypeError:
            return None  # a record without a field every run writes: not a run of this project


class RunLog:
    """A training run's record and loss history as it goes, in the folder it is built in: the record is
    written when the run starts, with the history at each checkpoint, and when the run ends or fails.

    Args:
        folder: the staging folder the run is built in.
        fingerprint: what the run depends on (`plan.RunPlan.fingerprint`).
        total_steps: its step budget.
    """

    def __init__(self, folder: Path, fingerprint: dict[str, Any], total_steps: int) -> None:
        self.folder, self.fingerprint, self.total_steps = folder, fingerprint, total_steps
        self.run_id = ""
        self.step_seconds = 0.0  # time in train steps, reported, never used to decide
        self.history: list[dict[str, float]] = []

    @property
    def digest(self) -> str:
        """Of the fingerprint: the run's settings, code and data in a word."""
        return lineage.digest(self.fingerprint)

    def carry_on(self, record: RunRecord, step: int) -> None:
        """Continue `record`'s run from its checkpoint at `step`: its time, and its history up to there."""
        self.run_id, self.step_seconds = record.run_id, record.step_seconds
        self.history = read_history(self.folder / HISTORY_FILE, step)

    def add(self, step: int, epoch: int, values: dict[str, float]) -> bool:
        """Add the losses of `step` (in `epoch`, counted from 1) to the history; False if it has them."""
        if self.history and self.history[-1]["step"] == step:
            return False
        self.history.append({"step": step, "epoch": epoch, **values})
        return True

    def write(self, step: int, **ending: Any) -> None:
        """The record as of `step`; `ending` says how the run stopped, or why it failed."""
        RunRecord(
            run_id=self.run_id,
            fingerprint=self.fingerprint,
            digest=self.digest,
            total_steps=self.total_steps,
            step=step,
            step_seconds=round(self.step_seconds, 3),
            **ending,
        ).write(self.folder)

    def checkpointed(self, step: int) -> None:
        """The history and the record beside a checkpoint at `step`, which a resumed run carries on from."""
        write_history(self.folder / HISTORY_FILE, self.history)
        self.write(step)


class RunState(StrEnum):
    """What is on disk for a run about to start (see `previous_run`)."""

    NONE = "none"  # nothing
    STALE = "stale"  # a run with other settings, code or data
    INTERRUPTED = "interrupted"  # this run, stopped mid-way (killed, Ctrl-C) in the staging folder
    INCOMPLETE = "incomplete"  # this run, finished before its step budget (`--max-steps`, the time cap)
    FINISHED = "finished"  # this run, at its budget, with every output `dvc.yaml` lists: current


class RunPlace(Protocol):
    """Where a planned run's folders are and what it depends on (`plan.RunPlan`)."""

    variant: str
    profile: str
    project_dir: Path
    fingerprint: dict[str, Any]

    @property
    def run_dir(self) -> Path: ...

    @property
    def staging_dir(self) -> Path: ...


def has_checkpoint(folder: Path) -> bool:
    return any((folder / CHECKPOINT_DIR).glob("ckpt-*.index"))


def previous_run(plan: RunPlace) -> tuple[RunState, RunRecord | None]:
    """What is on disk for `plan`, and its record.

    An interrupted run is resumed from its last checkpoint, but not one that failed (a NaN, say: it would
    fail again); an incomplete one is resumed to its budget; a finished one is reused.
    """
    staged = RunRecord.read(plan.staging_dir)
    resumable = staged is not None and staged.failed is None and has_checkpoint(plan.staging_dir)
    if resumable and staged.fingerprint == plan.fingerprint:
        return RunState.INTERRUPTED, staged
    record = RunRecord.read(plan.run_dir)
    if record is None:
        return (RunState.STALE, staged) if staged else (RunState.NONE, None)
    if record.fingerprint != plan.fingerprint:
        return RunState.STALE, record
    if record.stopped_by != COMPLETED:
        return (RunState.INCOMPLETE if has_checkpoint(plan.run_dir) else RunState.STALE), record
    inputs = lineage.stage_inputs(plan.project_dir, "train", plan.profile, plan.variant)
    outputs = [plan.project_dir / out for out in inputs.outs] + [plan.run_dir / METRICS_FILE]
    return (RunState.FINISHED if all(path.exists() for path in outputs) else RunState.STALE), record


def resume_point(plan: RunPlace) -> RunRecord:
    """The record `--resume` continues, with its checkpoints in the staging folder.

    Args:
        plan: the run about to start.

    Returns:
        The interrupted or incomplete run's record.

    Raises:
        ResumeError: nothing on disk to resume, naming why (finished, other settings, nothing there).
    """
    state, record = previous_run(plan)
    if state == RunState.INTERRUPTED:
        return record
    if state == RunState.INCOMPLETE:  # resumed beside the published run, which stays until the end
        shutil.rmtree(plan.staging_dir, ignore_errors=True)
        shutil.copytree(plan.run_dir, plan.staging_dir)
        return record
    if state == RunState.FINISHED:
        raise ResumeError(
            f"{plan.variant}: the run in {plan.run_dir} is complete ({record.total_steps} steps); "
            "nothing to resume. Fix: drop --resume to train it afresh."
        )
    if state == RunState.STALE:
        changed = ", ".join(lineage.changes(record.fingerprint, plan.fingerprint)) or "unknown"
        raise ResumeError(
            f"{plan.variant}: the run on disk was started with different settings, code or data ({changed} "
            "changed). Fix: restore them (repeat its --seed and --set options too), or drop --resume to "
            "start a new run."
        )
    raise ResumeError(
        f"nothing to resume for {plan.variant} in {plan.run_dir}. Fix: drop --resume to start a new run."
    )


def publish(plan: RunPlace) -> None:
    """Move the finished run from its staging folder into `runs/VARIANT`, replacing the previous run."""
    swap_in(plan.staging_dir, plan.run_dir)


def exclusive(plan: RunPlace) -> AbstractContextManager[None]:
    """Hold the variant's lock for the whole run: two trainings of one variant would corrupt each other's
    folder; a second is refused, naming the first."""

    def busy(holder: str) -> RunBusy:
        return RunBusy(
            f"{plan.variant} is already training in {plan.project_dir} (pid {holder}). Fix: wait for it to "
            "end, or stop that process; then run this again."
        )

    return locks.held(plan.project_dir, plan.variant, busy)


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    """The loss history (one row per logged step) as CSV."""
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def read_history(path: Path, up_to_step: int) -> list[dict[str, float]]:
    """The rows of the loss history up to `up_to_step` (a resumed run carries on from its checkpoint)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
    return [row for row in rows if row["step"] <= up_to_step]
