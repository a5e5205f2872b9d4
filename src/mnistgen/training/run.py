"""A training run around the engine: data, precision, checkpoints, resume, NaN guard, MLflow, figures.

The loop is written out rather than handed to `fit()` because runs resume at the exact step they
stopped: a checkpoint holds the step, the networks, the optimisers and the noise generator, and the
data order is a pure function of (seed, epoch), so a resumed run sees the batches an uninterrupted
one would have seen.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistgen.config import ConfigError, apply_overrides, load_params, with_profile
from mnistgen.errors import MnistgenError
from mnistgen.training import hardware

log = logging.getLogger(__name__)


RECORD_FILE = "run.json"  # the MLflow run id and the fingerprint of the run in a run folder
METRICS_FILE = "metrics.json"  # its final losses, written when it ends
CHECKPOINT_DIR = "checkpoints"


class TrainingDiverged(MnistgenError):
    """A loss became NaN or infinite."""


class ResumeError(MnistgenError):
    """`--resume` cannot continue the run on disk."""


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


@dataclass
class TrainResult:
    variant: str
    run_id: str
    status: str  # "completed", "time budget" or "step limit"
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
    params: dict[str, Any]  # everything, profile applied
    data_version: str  # the md5 in data.dvc

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What must not change between a run and its resumption (and what makes a finished run current)."""
        return {
            "variant": self.variant,
            "profile": self.profile,
            "seed": self.seed,
            "cfg": self.cfg,
            "data_version": self.data_version,
        }

    def run_dir(self, project_dir: Path) -> Path:
        return project_dir / self.train["runs_dir"] / self.variant


def plan_run(request: TrainRequest) -> RunPlan:
    from mnistgen.tracking import data_version

    params = apply_overrides(
        with_profile(load_params(request.project_dir), request.profile), request.overrides
    )
    if request.variant not in params["variants"]:
        raise ConfigError(
            f"unknown variant {request.variant!r}; choose one of: {', '.join(params['variants'])}"
        )
    train = params["train"]
    return RunPlan(
        variant=request.variant,
        profile=params["profile"],
        seed=int(request.seed if request.seed is not None else train["seed"]),
        cfg=params["variants"][request.variant],
        train=train,
        params=params,
        data_version=data_version(request.project_dir),
    )


def previous_run(request: TrainRequest) -> tuple[str, dict[str, Any] | None]:
    """What is on disk for this request: ("none" | "stale" | "interrupted" | "finished", its record).

    "finished" means a run with the same fingerprint ended normally (it is current: nothing to redo);
    "interrupted" means it stopped mid-way with a checkpoint to resume from; "stale" means it was
    started with other settings or data.
    """
    plan = plan_run(request)
    run_dir = plan.run_dir(request.project_dir)
    record_file = run_dir / RECORD_FILE
    if not record_file.is_file():
        return "none", None
    record = json.loads(record_file.read_text())
    if record.get("fingerprint") != json.loads(json.dumps(plan.fingerprint)):
        return "stale", record
    if record.get("finished") and (run_dir / METRICS_FILE).is_file():
        return "finished", record
    if not list((run_dir / CHECKPOINT_DIR).glob("ckpt-*.index")):
        return "stale", record  # killed before its first checkpoint: nothing to resume
    return "interrupted", record


def mark_finished(run_dir: Path, status: str) -> None:
    """Note in the run's record that it ended (after MLflow has the run FINISHED)."""
    record_file = run_dir / RECORD_FILE
    record = json.loads(record_file.read_text())
    record["finished"] = status
    record_file.write_text(json.dumps(record, indent=2) + "\n")


def train_variant(request: TrainRequest) -> TrainResult:
    """Train one variant as `params.yaml` describes it; resumable, tracked in MLflow."""
    plan = plan_run(request)
    from mnistgen.data.prepare import DataSettings, load_mnist
    from mnistgen.models import VARIANTS

    module = VARIANTS[plan.variant]
    needs_mnist = getattr(module, "NEEDS_MNIST", True)
    splits = load_mnist(DataSettings.from_params(request.project_dir, plan.params)) if needs_mnist else None

    run_dir = plan.run_dir(request.project_dir)
    record_file = run_dir / RECORD_FILE
    record = _load_record(record_file, plan) if request.resume else None

    device = hardware.device()
    precision = hardware.choose_precision(plan.train["precision"], plan.cfg.get("bf16", False), device)
    # Precision, seeds and determinism are process-wide in TensorFlow: one variant per process.
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(plan.seed)
    if plan.train["deterministic"]:
        tf.config.experimental.enable_op_determinism()

    from mnistgen.training.engine import build_model
    from mnistgen.training.session import Session

    spec = module.build(plan.cfg)  # before anything on disk changes: a bad setting loses no earlier run
    if not request.resume and run_dir.exists():
        log.info("starting %s afresh: removing the previous run's files in %s", plan.variant, run_dir)
        shutil.rmtree(run_dir)
    model = build_model(spec, tf.random.Generator.from_seed(plan.seed), plan.cfg.get("ema_decay"))
    session = Session(plan, spec, model, splits, run_dir, precision, device, request)
    return session.run(record)


def _load_record(record_file: Path, plan: RunPlan) -> dict[str, Any]:
    if not record_file.is_file():
        raise ResumeError(
            f"nothing to resume for {plan.variant}: {record_file} does not exist. "
            "Fix: drop --resume to start a new run."
        )
    record = json.loads(record_file.read_text())
    if record["fingerprint"] != json.loads(json.dumps(plan.fingerprint)):
        changed = [k for k in plan.fingerprint if record["fingerprint"].get(k) != plan.fingerprint[k]]
        raise ResumeError(
            f"{plan.variant}: the run on disk was started with different settings ({', '.join(changed)} "
            "changed). Fix: restore them, or drop --resume to start a new run."
        )
    return record


def check_finite(values: dict[str, float], variant: str, step: int) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"{variant}: loss '{name}' became {value} at step {step}; the run is marked FAILED and no "
                "model was saved. Fix: lower the learning rate, use precision: float32, or check the data."
            )


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
