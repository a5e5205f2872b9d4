"""The training loop of one run, with its checkpoints, MLflow run and figures (see `run.py`).

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
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from mnistgen import figures, lineage, tracking
from mnistgen.config import flatten
from mnistgen.data.idx import Split
from mnistgen.evaluation.classifier import MODEL_FILE as CLASSIFIER_FILE
from mnistgen.evaluation.classifier import load as load_classifier
from mnistgen.models.base import GRID_SAMPLES, AdversarialSpec, Spec, sampling_info
from mnistgen.models.toy_gan_1d import DOMAIN, data_density
from mnistgen.serving.sampler import from_standard_normal, grid_labels, to_unit_range
from mnistgen.training import batches, export
from mnistgen.training.engine import reference_statistics, sample_noise
from mnistgen.training.plan import (
    CHECKPOINT_DIR,
    COMPLETED,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_DIR,
    STEP_LIMIT,
    TIME_CAP,
    ResumeError,
    RunPlan,
    TrainRequest,
    TrainResult,
    budget,
    check_finite,
    read_history,
    write_history,
    write_record,
)
from mnistgen.training.quality_clock import CSV_FILE as QUALITY_CSV
from mnistgen.training.quality_clock import QualityClock

log = logging.getLogger(__name__)

TOY_SAMPLES = 10_000
FIT_IMAGES = 10_000  # training images whose codes a fitted latent prior is estimated from
# Offsets from the run's seed of its fixed noise: sample grids, toy samples, time-to-quality, BN reference.
GRID_SEED, TOY_SEED, QUALITY_SEED, REFERENCE_SEED = 1, 2, 3, 4


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
    ) -> None:
        self.plan, self.spec, self.model, self.splits = plan, spec, model, splits
        self.folder = plan.staging_dir  # the run is built here, and moved to runs/ when it ends
        self.precision, self.device, self.request = precision, device, request
        self.adversarial = isinstance(spec, AdversarialSpec)
        rows = plan.cfg["batch_size"] * (spec.d_steps if self.adversarial else 1)
        self.budget = budget(
            plan.variant, plan.cfg, rows, None if splits is None else len(splits["train"].images)
        )

        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        objects = self._checkpointed()
        for name, opt in objects.items():
            if isinstance(opt, keras.optimizers.Optimizer):
                opt.build(self._optimized_variables(name))  # so a restore fills existing slots
        self.checkpoint = tf.train.Checkpoint(step=self.step, rng=model.rng, **objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.folder / CHECKPOINT_DIR, max_to_keep=2
        )
        self.history: list[dict[str, float]] = []
        self.last_values: dict[str, float] = {}  # the losses of the last step run by this process
        self.run_id = ""
        # Time in train steps, reported (run record, MLflow, the pipeline's table), never used to decide.
        self.step_seconds = 0.0
        self.first_step_seconds = 0.0  # this process's first step: it traces the step function
        self.eval_noise = self._fixed_noise(GRID_SEED, spec.classes**2 or GRID_SAMPLES)
        self.reference = self._reference_batch()
        self._fit: tuple[int, dict[str, list] | None] | None = None  # (step, latent fit) cache
        self.clock: QualityClock | None = None

    @property
    def eval_prior(self) -> str:
        """The noise a model generates from: its prior, N(0, I) for a decoder."""
        return self.spec.noise if self.adversarial else "normal"

    def _fixed_noise(self, offset: int, n: int) -> tf.Tensor:
        return sample_noise(
            tf.random.Generator.from_seed(self.plan.seed + offset), self.eval_prior, n, self.spec.z_dim
        )

    # ------------------------------------------------------------------ the run

    def run(self, record: dict[str, Any] | None) -> TrainResult:
        """Train from scratch, or on from `record`'s checkpoint; returns when the run has ended."""
        try:
            if record:
                self._resume(record)
            else:
                self._start_new_run()
            self.clock = self._quality_clock()
            status = self._loop()
            metrics = self._finish(status)
            write_record(
                self.folder,
                {
                    **self._record_base(),
                    "stopped_by": status,
                    "step": int(self.step),
                    "step_seconds": round(self.step_seconds, 3),
                    "first_step_seconds": round(self.first_step_seconds, 3),
                },
            )
            mlflow.end_run(status="FINISHED")
        except KeyboardInterrupt:
            if mlflow.active_run():
                self._checkpoint()
                mlflow.set_tag("stopped_by", "interrupted")
                mlflow.end_run(status="KILLED")
            log.warning(
                "%s: interrupted at step %d; `--resume` continues from here",
                self.plan.variant,
                int(self.step),
            )
            raise
        except BaseException as err:
            self._mark_failed(f"{type(err).__name__}: {err}"[:5000])
            raise
        return TrainResult(
            self.plan.variant,
            self.run_id,
            status,
            int(self.step),
            self.budget.total_steps,
            self.precision,
            self.device,
            self.plan.run_dir,
            metrics,
        )

    def _mark_failed(self, failure: str) -> None:
        """A run that failed after it started leaves no model to pick up, and its record and MLflow run
        say why, as far as the disk and the store still allow (a full disk may be what failed). One that
        could not start (the store refused it) leaves what was on disk as it was: resumable as before."""
        if not mlflow.active_run():
            return
        export.discard(self.folder / MODEL_DIR)
        try:
            write_record(self.folder, {**self._record_base(), "failed": failure, "step": int(self.step)})
        except OSError as err:
            log.warning("%s: could not write the failed run's record: %s", self.plan.variant, err)
        try:
            mlflow.set_tag("failure", failure)
            mlflow.end_run(status="FAILED")
        except Exception as err:  # noqa: BLE001 - the store itself may be what failed
            log.warning("%s: could not mark MLflow run %s FAILED: %s", self.plan.variant, self.run_id, err)

    def _record_base(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "fingerprint": self.plan.fingerprint,
            "digest": lineage.digest(self.plan.fingerprint),
            "total_steps": self.budget.total_steps,
        }

    def _start_new_run(self, resumed_from: str | None = None) -> None:
        plan = self.plan
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.adversarial and self.spec.pretrain and not resumed_from:
            self.spec.pretrain(plan.seed)
        experiment = tracking.dvc_experiment()
        run = mlflow.start_run(
            run_name=" · ".join(
                [plan.variant, plan.profile, f"seed {plan.seed}", *([experiment] if experiment else [])]
            ),
            tags={
                "variant": plan.variant,
                "profile": plan.profile,
                "seed": str(plan.seed),
                "git_commit": tracking.git_commit(plan.project_dir),
                "data_version": tracking.data_version(plan.project_dir),
                "fingerprint": lineage.digest(plan.fingerprint),
                "precision": self.precision,
                "device": self.device,
                "kind": self.spec.kind,
                **({"overrides": " ".join(self.request.overrides)} if self.request.overrides else {}),
                **({"resumed_from": resumed_from} if resumed_from else {}),
                **({"dvc_experiment": experiment} if experiment else {}),
            },
        )
        self.run_id = run.info.run_id
        if not resumed_from:
            mlflow.log_params(flatten({"variant": plan.cfg, "train": plan.train, "seed": plan.seed}))
            mlflow.log_params(
                {"steps_per_epoch": self.budget.steps_per_epoch, "total_steps": self.budget.total_steps}
            )
        write_record(self.folder, self._record_base())
        log.info("%s: MLflow run %s on %s in %s", plan.variant, self.run_id, self.device, self.precision)

    def _resume(self, record: dict[str, Any]) -> None:
        restored = self._restore()
        self.step_seconds = record.get("step_seconds", 0.0)
        self.history = read_history(self.folder / HISTORY_FILE, int(self.step))
        try:
            mlflow.start_run(run_id=record["run_id"])
            self.run_id = record["run_id"]
        except mlflow.exceptions.MlflowException as err:
            log.warning(
                "%s: MLflow run %s is not in the store any more (%s); continuing in a new MLflow run",
                self.plan.variant,
                record["run_id"],
                str(err).splitlines()[0],
            )
            self._start_new_run(resumed_from=record["run_id"])
        log.info(
            "%s: resuming run %s at step %d (%s)", self.plan.variant, self.run_id, int(self.step), restored
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
        step_fn = tf.function(self._train_step, jit_compile=self.device.startswith("GPU") and train["xla"])
        limit = min(budget.total_steps, self.request.max_steps or budget.total_steps)
        minutes = self.request.max_minutes or self.plan.max_minutes
        deadline = time.monotonic() + minutes * 60 if minutes else None
        start = int(self.step)
        values: dict[str, float] = {}
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
            stop = None
            with bar:
                for batch in self._batches(epoch, done_in_epoch):
                    stepped = time.monotonic()
                    values = {name: float(v) for name, v in step_fn(batch).items()}
                    self.last_values = values
                    took = time.monotonic() - stepped
                    self.first_step_seconds = self.first_step_seconds or took
                    self.step_seconds += took
                    if self.clock:
                        self.clock.tick(took)
                    step = int(self.step)
                    check_finite(values, self.plan.variant, step)
                    images += budget.rows_per_step
                    bar.update()
                    bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
                    if step % train["log_every_steps"] == 0:
                        self._record(step, epoch, values)
                    if step % train["checkpoint_every_steps"] == 0:
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
                self._checkpoint()
                return stop
        return COMPLETED

    def _measuring_seconds(self) -> float:
        """Time-to-quality measurements do not count against the safety cap: they are not training."""
        return self.clock.measuring_seconds if self.clock else 0.0

    def _train_step(self, batch: tf.Tensor) -> dict[str, tf.Tensor]:
        logs = self.model.train_step(batch)
        self.step.assign_add(1)  # in the same graph call, so an interrupt never splits a step from its count
        return logs

    def _record(self, step: int, epoch: int, values: dict[str, float]) -> None:
        self.history.append({"step": step, "epoch": epoch + 1, **values})
        mlflow.log_metrics(values, step=step)

    def _checkpoint(self) -> None:
        self.manager.save(checkpoint_number=int(self.step))
        write_history(self.folder / HISTORY_FILE, self.history)
        write_record(self.folder, {**self._record_base(), "step_seconds": round(self.step_seconds, 3)})

    def _end_epoch(self, epoch: int, values: dict[str, float], images_per_second: float) -> None:
        number = epoch + 1
        mlflow.log_metrics(
            {**{f"epoch/{k}": v for k, v in values.items()}, "epoch/images_per_second": images_per_second},
            step=number,
        )
        if not self.history or self.history[-1]["step"] != int(self.step):
            self._record(int(self.step), epoch, values)
        every = self.plan.cfg.get("samples_every_epochs", self.plan.train["samples_every_epochs"])
        if number % every == 0 or number == self.budget.epochs:
            self._sample_figure(f"epoch_{number:03d}", f"{self.plan.variant}, epoch {number}")
        for metric in self.model.metrics:
            metric.reset_state()
        self._checkpoint()

    def _quality_clock(self) -> QualityClock | None:
        """A FID every `train.quality_every_seconds` of training (image models, once a classifier exists)."""
        every = self.plan.train.get("quality_every_seconds")
        folder = self.plan.project_dir / self.plan.params["classifier"]["dir"]
        if not every or self.spec.kind == "toy":
            return None
        if not (folder / CLASSIFIER_FILE).is_file():
            log.info(
                "%s: no feature classifier in %s yet: no time-to-quality curve", self.plan.variant, folder
            )
            return None
        n = int(self.plan.train["quality_samples"])
        noise = self._fixed_noise(QUALITY_SEED, n)
        labels = np.arange(n) % self.spec.classes if self.spec.classes else None
        return QualityClock(
            float(every),
            load_classifier(folder),
            self.splits["test"].images,
            lambda: self.sample(noise, labels),
            self.folder / QUALITY_CSV,
        )

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

    def _reference_batch(self) -> list[tf.Tensor] | tf.Tensor | None:
        """The fixed batch batch norm takes its sampling statistics from (`reference_batch` rows), if any."""
        rows = getattr(self.spec, "reference_batch", 0)
        if not rows:
            return None
        z = self._fixed_noise(REFERENCE_SEED, rows)
        if not self.spec.classes:
            return z
        return [z, tf.constant((np.arange(rows) % self.spec.classes).astype(np.int32)[:, None])]

    @contextmanager
    def sampling(self) -> Iterator[None]:
        """How the sampling network is set while it generates (or is saved): reference statistics or as is."""
        if self.reference is None:
            yield
            return
        with reference_statistics(self.model.sampler, self.reference):
            yield

    def generate(self, z: tf.Tensor, labels: np.ndarray | None = None) -> np.ndarray:
        """Images in [0, 1], shape (n, 28, 28); a conditional model draws `labels` (default: a row of each
        digit in turn, as in the grids), an unconditional one ignores them."""
        wanted = None
        if self.spec.classes:  # an unconditional model ignores labels
            labels = grid_labels(len(z), self.spec.classes) if labels is None else labels
            wanted = tf.constant(np.asarray(labels, np.int32)[:, None])
        if self.adversarial:
            with self.sampling():
                images = self.model.sample(z, wanted)
        else:
            images = self.model.decode(z, wanted)
        return to_unit_range(np.asarray(images)[..., 0], self.spec.pixel_range)

    def sample(self, noise: tf.Tensor, labels: np.ndarray | None = None) -> np.ndarray:
        """Images from prior noise (`eval_prior`): a fitted latent prior moves it onto the codes first."""
        fit = self._latent_fit()
        if fit is not None:
            noise = tf.constant(from_standard_normal(np.asarray(noise), fit["mean"], fit["cov"]))
        return self.generate(noise, labels)

    def _latent_fit(self) -> dict[str, list] | None:
        """A fitted prior's Gaussian over the encoder's codes of the first FIT_IMAGES images, at this step
        (computed once a step: the figures, the time-to-quality point and the export share it)."""
        if self.adversarial or self.spec.latent_prior != "fitted":
            return None
        if self._fit is None or self._fit[0] != int(self.step):
            low, high = self.spec.pixel_range
            images = self.splits["train"].images[:FIT_IMAGES, ..., None].astype(np.float32) / 255.0
            codes = np.concatenate(
                [
                    self._mean_code(images[i : i + 1000] * (high - low) + low, None)
                    for i in range(0, len(images), 1000)
                ]
            ).astype(np.float64)
            fit = {
                "mean": codes.mean(axis=0).tolist(),
                "cov": np.atleast_2d(np.cov(codes, rowvar=False)).tolist(),
            }
            self._fit = (int(self.step), fit)
        return self._fit[1]

    def _sample_figure(self, name: str, title: str) -> None:
        """The seeds' periodic look at the generator: a grid from fixed noise (the toy GAN: its densities)."""
        sample_dir = self.folder / "samples"
        if self.spec.kind == "toy":
            path = self._toy_figure(sample_dir / f"densities_{name}.png", title)
        else:
            path = figures.image_grid(self.sample(self.eval_noise), sample_dir / f"samples_{name}.png", title)
        mlflow.log_artifact(str(path), artifact_path="samples")

    def _toy_samples(self) -> np.ndarray:
        z = sample_noise(
            tf.random.Generator.from_seed(self.plan.seed + TOY_SEED), self.spec.noise, TOY_SAMPLES, 1
        )
        return np.asarray(self.model.sample(z, None))[:, 0]

    def _toy_figure(self, path: Path, title: str) -> Path:
        x = np.linspace(*DOMAIN, 400, dtype=np.float32)[:, None]
        samples = self._toy_samples()
        decision = np.asarray(tf.sigmoid(self.model.discriminator(x, training=False)))[:, 0]
        return figures.toy_densities(
            x[:, 0], np.asarray(data_density(x))[:, 0], samples, decision, path, title
        )

    # ------------------------------------------------------------------ the end of a run

    def _finish(self, status: str) -> dict[str, float]:
        step = int(self.step)
        if self.last_values and (not self.history or self.history[-1]["step"] != step):
            self._record(step, (step - 1) // self.budget.steps_per_epoch, self.last_values)  # the last step
        self._checkpoint()
        if self.clock:
            self.clock.measure()  # the curve's last point: the model as saved
        figure_dir, model_dir = self.folder / "figures", self.folder / MODEL_DIR
        losses = [k for k in (self.history[-1] if self.history else {}) if k not in ("step", "epoch")]
        figures.loss_curves(
            self.history,
            losses,
            figure_dir / "loss_curves.png",
            f"{self.plan.variant} ({self.plan.profile}, seed {self.plan.seed}, {self.precision})",
        )
        metrics = dict(self.history[-1]) if self.history else {}
        self._sample_figure("final", f"{self.plan.variant} after {int(self.step)} steps ({status})")
        if self.spec.kind == "toy":
            samples = self._toy_samples()
            metrics.update({"sample_mean": float(samples.mean()), "sample_std": float(samples.std())})
        elif not self.adversarial:
            self._reconstruction_figures(figure_dir)
        self._save_networks(model_dir)
        metrics = {k: float(v) for k, v in metrics.items() if k not in ("step", "epoch")}
        export.write_json(self.folder / METRICS_FILE, metrics)
        mlflow.log_metrics(
            {f"final/{k}": v for k, v in metrics.items()} | {"time/step_seconds": self.step_seconds}
        )
        mlflow.set_tags({"stopped_by": status, "steps": f"{int(self.step)}/{self.budget.total_steps}"})
        mlflow.log_artifacts(str(figure_dir), artifact_path="figures")
        mlflow.log_artifacts(str(model_dir), artifact_path=MODEL_DIR)
        mlflow.log_artifact(str(self.folder / HISTORY_FILE))
        return metrics

    def _reconstruction_figures(self, figure_dir: Path) -> None:
        test = self.splits["test"]
        low, high = self.spec.pixel_range
        images = test.images[..., None].astype(np.float32) / 255.0 * (high - low) + low
        labels = test.labels.astype(np.int32)[:, None] if self.spec.classes else None
        codes = np.concatenate(
            [
                self._mean_code(images[i : i + 1000], None if labels is None else labels[i : i + 1000])
                for i in range(0, len(images), 1000)
            ]
        )
        figures.latent_space(codes, test.labels, figure_dir / "latent_space.png")
        originals = to_unit_range(images[:10, ..., 0], self.spec.pixel_range)
        figures.reconstructions(
            originals,
            self.generate(tf.constant(codes[:10]), test.labels[:10]),
            figure_dir / "reconstructions.png",
        )
        first, second = (int(np.argmax(test.labels == digit)) for digit in (1, 7))
        path = np.linspace(0.0, 1.0, 10, dtype=np.float32)[:, None]
        line = codes[first] * (1 - path) + codes[second] * path
        # A conditional model's code holds the style, not the digit: each point is decoded as a 7.
        sevens = np.full(10, 7) if self.spec.classes else None
        figures.interpolation(
            self.generate(tf.constant(line), sevens),
            figure_dir / "interpolation.png",
            "latent interpolation from a test 1 to a test 7"
            + (" (decoded as 7)" if sevens is not None else ""),
        )

    def _mean_code(self, images: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """The encoder's point (autoencoder) or mean (VAE): no sampling."""
        encoded = self.model.encoder(images if labels is None else [images, labels], training=False)
        return np.asarray(encoded[0] if self.spec.variational else encoded)

    def _save_networks(self, model_dir: Path) -> None:
        if self.adversarial:
            networks = {"generator": self.model.sampler, "discriminator": self.model.discriminator}
        else:
            networks = {"encoder": self.model.encoder, "decoder": self.model.decoder}
        info = {
            "variant": self.plan.variant,
            **sampling_info(self.spec),
            "precision": self.precision,
            "seed": self.plan.seed,
            "profile": self.plan.profile,
            "step": int(self.step),
            **({"latent_fit": fit} if (fit := self._latent_fit()) else {}),
        }
        with self.sampling() if self.adversarial else nullcontext():
            export.save_networks(model_dir, networks, info)

    # ------------------------------------------------------------------ checkpoint contents

    def _checkpointed(self) -> dict[str, Any]:
        if self.adversarial:
            average = self.model.ema_generator
            return {
                "generator": self.model.generator,
                "discriminator": self.model.discriminator,
                "g_optimizer": self.spec.g_optimizer,
                "d_optimizer": self.spec.d_optimizer,
                **({"ema_generator": average} if average is not None else {}),
            }
        return {
            "encoder": self.model.encoder,
            "decoder": self.model.decoder,
            "optimizer": self.spec.optimizer,
        }

    def _optimized_variables(self, optimizer_name: str) -> list[tf.Variable]:
        if optimizer_name == "g_optimizer":
            return self.model.generator.trainable_variables
        if optimizer_name == "d_optimizer":
            return self.model.discriminator.trainable_variables
        return self.model.encoder.trainable_variables + self.model.decoder.trainable_variables
