"""The training loop of one run, with its checkpoints and its tracked run (MLflow, through `tracker.py`;
see `run.py`); what the run shows and saves besides its losses is its reporter's (`reporters.py`).

The loop is written out rather than handed to `fit()` because runs resume at the exact step they
stopped: a checkpoint holds the step, the networks, the optimisers and the noise generator, and the data
order is a pure function of (seed, epoch), so a resumed run sees the batches an uninterrupted one would
have seen. A run ends at its step budget; the wall clock only reports, except for the `max_minutes`
safety cap, whose cut is recorded (`stopped_by`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from tqdm.auto import tqdm

from mnistgen import tracking
from mnistgen.config import flatten
from mnistgen.data.idx import Split
from mnistgen.datasets import TRAINING, mnist_input
from mnistgen.models.base import AdversarialSpec, Spec, sampling_info
from mnistgen.training import batches, export
from mnistgen.training.plan import (
    QualityClock,
    RunFailed,
    RunPlan,
    StartClock,
    TrainRequest,
    TrainResult,
    budget,
    check_finite,
)
from mnistgen.training.reporters import Ending, reporter_kind
from mnistgen.training.run_folder import (
    CHECKPOINT_DIR,
    COMPLETED,
    MODEL_DIR,
    STEP_LIMIT,
    TIME_CAP,
    ResumeError,
    RunLog,
    RunRecord,
    publish,
)
from mnistgen.training.tracker import Tracker

log = logging.getLogger(__name__)


class Session:
    def __init__(
        self,
        plan: RunPlan,
        spec: Spec,
        model: keras.Model,
        splits: dict[str, Split] | None,
        precision: str,
        device: str,
        request: TrainRequest,
        tracker: Tracker,
        start_clock: StartClock | None = None,
    ) -> None:
        self.plan, self.spec, self.model, self.splits = plan, spec, model, splits
        self.tracker = tracker
        self.start_clock = start_clock
        self.folder = plan.staging_dir  # the run is built here, and moved to runs/ when it ends
        self.precision, self.device, self.request = precision, device, request
        self.adversarial = isinstance(spec, AdversarialSpec)
        rows = plan.cfg.batch_size * (spec.d_steps if self.adversarial else 1)
        self.budget = budget(
            plan.variant, plan.cfg, rows, None if splits is None else len(splits["train"].images)
        )

        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(step=self.step, rng=model.rng, **model.checkpointed())
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.folder / CHECKPOINT_DIR, max_to_keep=2
        )
        # Its record and loss history; its time in train steps, reported (run record, MLflow, the
        # pipeline's table), never used to decide.
        self.log = RunLog(self.folder, plan.fingerprint, self.budget.total_steps)
        self.first_step_seconds = 0.0  # this process's first step: it traces the step function
        self.reporter = reporter_kind(spec)(
            plan.seed, spec, model, splits, self.step, plan.train.quality_samples if start_clock else 0
        )
        self.clock: QualityClock | None = None

    # ------------------------------------------------------------------ the run

    def run(self, record: RunRecord | None) -> TrainResult:
        """Train from scratch, or on from `record`'s checkpoint; returns when the run has ended."""
        with self._ending():
            if record:
                self._resume(record)
            else:
                self._start_new_run()
            self.clock = self._quality_clock()
            status = self._loop()
            metrics = self._finish(status)
            self.log.write(
                int(self.step), stopped_by=status, first_step_seconds=round(self.first_step_seconds, 3)
            )
            self._publish()  # before the run is FINISHED: a run that cannot be published is FAILED
            self.tracker.end("FINISHED")
        return TrainResult(
            self.plan.variant,
            self.log.run_id,
            status,
            int(self.step),
            self.budget.total_steps,
            self.precision,
            self.device,
            self.plan.run_dir,
            metrics,
        )

    @contextmanager
    def _ending(self) -> Iterator[None]:
        """How a run that does not finish ends: an interrupted one checkpointed and KILLED (`--resume`
        continues it), a failed one FAILED with no model kept (`_mark_failed`); the error goes on."""
        try:
            yield
        except KeyboardInterrupt:
            if self.tracker.active:
                try:
                    self._checkpoint()
                    self.tracker.set_tags({"stopped_by": "interrupted"})
                finally:  # KILLED even if the checkpoint or the tag failed: never left to end FINISHED
                    self.tracker.end("KILLED")
            log.warning(
                "%s: interrupted at step %d; `--resume` continues from here",
                self.plan.variant,
                int(self.step),
            )
            raise
        except BaseException as err:
            self._mark_failed(f"{type(err).__name__}: {err}"[:5000])
            raise

    def _publish(self) -> None:
        try:
            publish(self.plan)
        except OSError as err:
            where = self.plan.run_dir
            raise RunFailed(
                f"{self.plan.variant}: the finished run could not be moved to {where} and is marked FAILED "
                f"(no model kept; the previous run is untouched): {err}\nFix: free space or fix permissions "
                f"under {where.parent}, then run again."
            ) from err

    def _mark_failed(self, failure: str) -> None:
        """A run that failed after it started leaves no model to pick up, and its record and MLflow run
        say why, as far as the disk and the store still allow (a full disk may be what failed). One that
        could not start (the store refused it) leaves what was on disk as it was: resumable as before."""
        if not self.tracker.active:
            return
        export.discard(self.folder / MODEL_DIR)
        try:
            self.log.write(int(self.step), failed=failure)
        except OSError as err:
            log.warning("%s: could not write the failed run's record: %s", self.plan.variant, err)
        for report in (
            lambda: self.tracker.set_tags({"failure": failure}),
            lambda: self.tracker.end("FAILED"),
        ):
            try:  # each on its own: a run whose tag could not be written still ends FAILED
                report()
            except Exception as err:  # noqa: BLE001 - the store itself may be what failed
                log.warning(
                    "%s: could not mark %s run %s FAILED: %s",
                    self.plan.variant,
                    self.tracker.label,
                    self.log.run_id,
                    err,
                )

    def _start_new_run(self, resumed_from: str | None = None) -> None:
        plan = self.plan
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.adversarial and self.spec.pretrain and not resumed_from:
            self.spec.pretrain(plan.seed)
        experiment = tracking.dvc_experiment()
        self.log.run_id = self.tracker.start(
            tracking.run_name(
                plan.variant, plan.profile, f"seed {plan.seed}", *([experiment] if experiment else [])
            ),
            {
                "variant": plan.variant,
                "profile": plan.profile,
                "seed": str(plan.seed),
                "git_commit": tracking.git_commit(plan.project_dir),
                "data_version": tracking.data_version(plan.project_dir),
                "fingerprint": self.log.digest,
                "precision": self.precision,
                "device": self.device,
                "kind": self.spec.kind,
                **({"overrides": " ".join(self.request.overrides)} if self.request.overrides else {}),
                **({"resumed_from": resumed_from} if resumed_from else {}),
                **({"dvc_experiment": experiment} if experiment else {}),
            },
        )
        if not resumed_from:
            self.tracker.log_params(
                flatten({"variant": plan.cfg.plain(), "train": plan.train.plain(), "seed": plan.seed})
            )
            self.tracker.log_params(
                {"steps_per_epoch": self.budget.steps_per_epoch, "total_steps": self.budget.total_steps}
            )
        if self.splits is not None:  # the toy GAN draws its data as it trains
            rows = len(self.splits["train"].images)
            self.tracker.log_input(mnist_input(plan.project_dir, plan.params, "train", rows, TRAINING))
        self.log.write(int(self.step))
        log.info(
            "%s: %s run %s on %s in %s",
            plan.variant,
            self.tracker.label,
            self.log.run_id,
            self.device,
            self.precision,
        )

    def _resume(self, record: RunRecord) -> None:
        restored = self._restore()
        self.log.carry_on(record, int(self.step))
        missing = self.tracker.resume(record.run_id)
        if missing is not None:
            log.warning(
                "%s: %s run %s is not in the store any more (%s); continuing in a new run",
                self.plan.variant,
                self.tracker.label,
                record.run_id,
                missing,
            )
            self._start_new_run(resumed_from=record.run_id)
        log.info(
            "%s: resuming run %s at step %d (%s)",
            self.plan.variant,
            self.log.run_id,
            int(self.step),
            restored,
        )

    def _restore(self) -> str:
        """Restore the newest intact checkpoint: a truncated last one falls back to the one before."""
        for path in reversed(self.manager.checkpoints):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
                return Path(path).name
            except (tf.errors.OpError, ValueError, AssertionError, IndexError) as err:
                # a damaged file surfaces as any of these (a truncated shard: IndexError, "Read less
                # bytes than requested")
                log.warning(
                    "%s: checkpoint %s is unreadable (%s); trying the one before",
                    self.plan.variant,
                    path,
                    err,
                )
        raise ResumeError(
            f"{self.plan.variant}: no intact checkpoint in {self.folder / CHECKPOINT_DIR}. "
            "Fix: drop --resume to start a new run."
        )

    def _loop(self) -> str:
        train, budget = self.plan.train, self.budget
        step_fn = tf.function(self._train_step, jit_compile=self.device.startswith("GPU") and train.xla)
        limit = min(budget.total_steps, self.request.max_steps or budget.total_steps)
        minutes = self.request.max_minutes or self.plan.max_minutes
        deadline = time.monotonic() + minutes * 60 if minutes else None
        start = int(self.step)
        values: dict[str, float] = {}  # the losses of the last step this process ran
        stop = None
        for epoch in range(start // budget.steps_per_epoch, budget.epochs):
            done_in_epoch = (
                start - epoch * budget.steps_per_epoch if epoch == start // budget.steps_per_epoch else 0
            )
            began, images = time.monotonic(), 0
            bar = tqdm(
                total=budget.steps_per_epoch,
                initial=done_in_epoch,
                disable=not self.request.progress,
                desc=f"{self.plan.variant} epoch {epoch + 1}/{budget.epochs}",
                unit="step",
                leave=False,
            )
            with bar:
                for batch in self._batches(epoch, done_in_epoch):
                    stepped = time.monotonic()
                    values = {name: float(v) for name, v in step_fn(batch).items()}
                    took = time.monotonic() - stepped
                    self.first_step_seconds = self.first_step_seconds or took
                    self.log.step_seconds += took
                    if self.clock:
                        self.clock.tick(took)
                    step = int(self.step)
                    check_finite(values, self.plan.variant, step)
                    images += budget.rows_per_step
                    bar.update()
                    bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
                    if step % train.log_every_steps == 0:
                        self._add(step, epoch, values)
                    if step % train.checkpoint_every_steps == 0:
                        self._checkpoint()
                    if step >= limit and step < budget.total_steps:
                        stop = STEP_LIMIT
                    elif deadline and time.monotonic() - self._measuring_seconds() > deadline:
                        stop = TIME_CAP
                        log.warning(
                            "%s: the %s-minute safety cap stopped the run at step %d of %d; it is marked, "
                            "shown on the leaderboard and not registered (`--resume` finishes it)",
                            self.plan.variant,
                            minutes,
                            step,
                            budget.total_steps,
                        )
                    if stop:
                        break
            if int(self.step) == (epoch + 1) * budget.steps_per_epoch:
                self._end_epoch(epoch, values, images / max(time.monotonic() - began, 1e-9))
            if stop:
                break
        if values:  # the last step this process ran, unless its log or its epoch's end added it
            self._add(int(self.step), (int(self.step) - 1) // budget.steps_per_epoch, values)
        if stop:
            self._checkpoint()
        return stop or COMPLETED

    def _measuring_seconds(self) -> float:
        """Time-to-quality measurements do not count against the safety cap: they are not training."""
        return self.clock.measuring_seconds if self.clock else 0.0

    def _train_step(self, batch: tf.Tensor) -> dict[str, tf.Tensor]:
        logs = self.model.train_step(batch)
        self.step.assign_add(1)  # in the same graph call, so an interrupt never splits a step from its count
        return logs

    def _add(self, step: int, epoch: int, values: dict[str, float]) -> None:
        """The losses of `step` into the history and the tracked run, unless they are there already."""
        if self.log.add(step, epoch + 1, values):
            # Under `train/` in MLflow, as the evaluation's are under `eval/`: the compare view groups them.
            self.tracker.log_metrics({f"train/{k}": v for k, v in values.items()}, step=step)

    def _checkpoint(self) -> None:
        self.manager.save(checkpoint_number=int(self.step))
        self.log.checkpointed(int(self.step))

    def _end_epoch(self, epoch: int, values: dict[str, float], images_per_second: float) -> None:
        number = epoch + 1
        self.tracker.log_metrics(
            {**{f"epoch/{k}": v for k, v in values.items()}, "epoch/images_per_second": images_per_second},
            step=number,
        )
        self._add(int(self.step), epoch, values)
        every = self.plan.cfg.samples_every_epochs or self.plan.train.samples_every_epochs
        if number % every == 0 or number == self.budget.epochs:
            self.reporter.show(
                self.folder, f"epoch_{number:03d}", f"{self.plan.variant}, epoch {number}", self.tracker
            )
        for metric in self.model.metrics:
            metric.reset_state()
        self._checkpoint()

    def _quality_clock(self) -> QualityClock | None:
        """The time-to-quality clock the caller handed in, on fixed noise (image models only)."""
        if self.start_clock is None or not self.reporter.measures_quality:
            return None
        return self.start_clock(self.plan, self.reporter.quality_samples, self.splits["test"].images)

    # ------------------------------------------------------------------ data and samples

    def _batches(self, epoch: int, skip: int) -> Iterator[Any]:
        budget = self.budget
        if self.splits is None:
            return batches.toy_batches(
                self.plan.seed, epoch, skip, budget.steps_per_epoch, budget.rows_per_step
            )
        return batches.image_batches(
            self.splits["train"],
            self.plan.seed,
            epoch,
            skip,
            budget.steps_per_epoch,
            budget.rows_per_step,
            self.spec.pixel_range,
            bool(self.spec.classes),
        )

    # ------------------------------------------------------------------ the end of a run

    def _finish(self, status: str) -> dict[str, float]:
        """The last step checkpointed, the last time-to-quality point, then the reporter's
        finishing: figures, the saved model, the metrics file and their MLflow copies."""
        step = int(self.step)
        self._checkpoint()
        if self.clock:
            self.clock.measure()  # the curve's last point: the model as saved
        plan = self.plan
        ending = Ending(
            variant=plan.variant,
            status=status,
            step=step,
            total_steps=self.budget.total_steps,
            step_seconds=self.log.step_seconds,
            title=f"{plan.variant} ({plan.profile}, seed {plan.seed}, {self.precision})",
            model_info={
                "variant": plan.variant,
                **sampling_info(self.spec),
                "precision": self.precision,
                "seed": plan.seed,
                "profile": plan.profile,
                "step": step,
            },
        )
        return self.reporter.finish(self.folder, self.log.history, ending, self.tracker)
