"""What a training run is before it starts: the request, its settings, its step budget, its fingerprint;
and how a started run fails (a loss that is not finite, a TensorFlow error).

Everything here is decided from (code, data, params, seed) alone, never from the clock. A run ends at its
step budget (`epochs` x `steps_per_epoch`); `train.max_minutes` is only a safety cap against runaways, and a
run it cuts short is marked as such (`stopped_by`), shown on the leaderboard and never registered. Its
folders are `run_folder`'s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
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
from mnistgen.settings import Settings, TrainSection, Variant, Variants
from mnistgen.training.run_folder import STAGING_DIR


class TrainingDiverged(MnistgenError):
    """A loss became NaN or infinite."""


class RunFailed(MnistgenError):
    """A started run failed (a file that could not be written, memory): marked FAILED, nothing kept."""


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
    status: str  # COMPLETED, STEP_LIMIT or TIME_CAP (run_folder)
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
    cfg: Variant  # the variant's section
    train: TrainSection  # the shared `train` section
    params: Settings  # everything, profile and overrides applied
    fingerprint: dict[str, Any]  # what the result depends on (see `mnistgen.lineage`)
    project_dir: Path

    @property
    def run_dir(self) -> Path:
        """Where the variant's last finished run lives."""
        return self.project_dir / self.train.runs_dir / self.variant

    @property
    def staging_dir(self) -> Path:
        """Where a run is built until it ends."""
        return self.project_dir / STAGING_DIR / self.variant

    @property
    def max_minutes(self) -> float | None:
        return self.train.max_minutes


def plan_run(request: TrainRequest) -> RunPlan:
    check_options(seed=request.seed, max_steps=request.max_steps, max_minutes=request.max_minutes)
    raw = load_params(request.project_dir)
    params = validate(apply_overrides(with_profile(raw, request.profile), request.overrides))
    if request.variant not in Variants.names():
        raise ConfigError(
            f"unknown variant {request.variant!r}; choose one of: {', '.join(Variants.names())}"
        )
    train, cfg = params.train, params.variants.of(request.variant)
    seed = int(next(s for s in (request.seed, cfg.seed, train.seed) if s is not None))
    return RunPlan(
        variant=request.variant,
        profile=params.profile,
        seed=seed,
        cfg=cfg,
        train=train,
        params=params,
        fingerprint=lineage.fingerprint(
            request.project_dir,
            raw,
            "train",
            params.profile,
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


def budget(variant: str, cfg: Variant, rows_per_step: int, train_rows: int | None) -> Budget:
    """The step budget; `steps_per_epoch` defaults to one pass over the training set (`train_rows`)."""
    if train_rows is None:  # data drawn as it trains (the toy GAN): the budget must be explicit
        if cfg.steps_per_epoch is None:
            raise ConfigError(
                f"{variant}: steps_per_epoch is null, but {variant} draws its data as it trains: there is no "
                "training set to make one pass over. Fix: set steps_per_epoch."
            )
        return Budget(cfg.epochs, cfg.steps_per_epoch, rows_per_step)
    available = train_rows // rows_per_step
    if available == 0:
        raise ConfigError(
            f"{variant}: one step takes {rows_per_step} training images (batch_size x critic steps) but "
            f"there are {train_rows}. Fix: lower batch_size."
        )
    wanted = cfg.steps_per_epoch or available
    if wanted > available:
        raise ConfigError(
            f"{variant}: steps_per_epoch is {wanted}, but an epoch of {train_rows} images has only "
            f"{available} steps of {rows_per_step}. Fix: lower steps_per_epoch or raise epochs."
        )
    return Budget(cfg.epochs, wanted, rows_per_step)


# ---------------------------------------------------------------------------------------- failures


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
