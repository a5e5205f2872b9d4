"""The training loop of one run, with its checkpoints, MLflow run and figures (see `run.py`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from mnistgen import tracking
from mnistgen.config import ConfigError, flatten
from mnistgen.data.idx import Split
from mnistgen.evaluation.classifier import MODEL_FILE as CLASSIFIER_FILE
from mnistgen.evaluation.classifier import load as load_classifier
from mnistgen.models.base import AdversarialSpec, Spec, sampling_info
from mnistgen.models.toy_gan_1d import DATA_MEAN, DATA_STD, DOMAIN, data_density
from mnistgen.serving.sampler import from_standard_normal, grid_labels, to_unit_range
from mnistgen.training import figures
from mnistgen.training.engine import sample_noise
from mnistgen.training.quality_clock import CSV_FILE as QUALITY_CSV
from mnistgen.training.quality_clock import QualityClock
from mnistgen.training.run import (
    CHECKPOINT_DIR,
    METRICS_FILE,
    RECORD_FILE,
    RunPlan,
    TrainingDiverged,
    TrainRequest,
    TrainResult,
    check_finite,
    mark_finished,
    read_history,
    write_history,
)

log = logging.getLogger(__name__)

GRID_SAMPLES = 64
TOY_SAMPLES = 10_000
FIT_IMAGES = 10_000  # training images whose codes a fitted latent prior is estimated from


class Session:
    def __init__(
        self,
        plan: RunPlan,
        spec: Spec,
        model: keras.Model,
        splits: dict[str, Split] | None,
        run_dir: Path,
        precision: str,
        device: str,
        request: TrainRequest,
    ) -> None:
        self.plan, self.spec, self.model, self.splits = plan, spec, model, splits
        self.run_dir, self.precision, self.device, self.request = run_dir, precision, device, request
        self.adversarial = isinstance(spec, AdversarialSpec)
        self.rows_per_step = plan.cfg["batch_size"] * (spec.d_steps if self.adversarial else 1)
        if splits is None:
            self.steps_per_epoch = int(plan.cfg["steps_per_epoch"])
        else:
            available = len(splits["train"].images) // self.rows_per_step
            if available == 0:
                raise ConfigError(
                    f"{plan.variant}: one step takes {self.rows_per_step} training images (batch_size x "
                    f"critic steps) but there are {len(splits['train'].images)}. Fix: lower batch_size."
                )
            self.steps_per_epoch = min(int(plan.cfg.get("steps_per_epoch") or available), available)
        self.epochs = int(plan.cfg["epochs"])
        self.total_steps = self.epochs * self.steps_per_epoch

        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        objects = self._checkpointed()
        for name, opt in objects.items():
            if isinstance(opt, keras.optimizers.Optimizer):
                opt.build(self._optimized_variables(name))  # so a restore fills existing slots
        self.checkpoint = tf.train.Checkpoint(step=self.step, rng=model.rng, **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, run_dir / CHECKPOINT_DIR, max_to_keep=2)
        self.history: list[dict[str, float]] = []
        self.clock = self._quality_clock()
        self.eval_noise = sample_noise(
            tf.random.Generator.from_seed(plan.seed + 1),
            self.eval_prior,
            spec.classes**2 or GRID_SAMPLES,  # conditional: a 10x10 grid, a row per digit
            spec.z_dim,
        )

    @property
    def eval_prior(self) -> str:
        """The noise a model generates from: its prior, N(0, I) for a decoder."""
        return self.spec.noise if self.adversarial else "normal"

    # ------------------------------------------------------------------ the run

    def run(self, record: dict[str, Any] | None) -> TrainResult:
        tracking.use_experiment(self.request.project_dir, self.plan.params["mlflow"])
        if record:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.history = read_history(self.run_dir / "history.csv", int(self.step))
            mlflow.start_run(run_id=record["run_id"])
            log.info("%s: resuming run %s at step %d", self.plan.variant, record["run_id"], int(self.step))
        else:
            self._start_new_run()
        try:
            status = self._loop()
        except TrainingDiverged as err:
            mlflow.set_tag("failure", str(err))
            mlflow.end_run(status="FAILED")
            raise
        except KeyboardInterrupt:
            self.manager.save(checkpoint_number=int(self.step))
            write_history(self.run_dir / "history.csv", self.history)
            mlflow.end_run(status="KILLED")
            log.warning(
                "%s: interrupted at step %d; `--resume` continues from here",
                self.plan.variant,
                int(self.step),
            )
            raise
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
        metrics = self._finish(status)
        run_id = mlflow.active_run().info.run_id
        mlflow.end_run(status="FINISHED")
        mark_finished(self.run_dir, status)
        return TrainResult(
            self.plan.variant,
            run_id,
            status,
            int(self.step),
            self.total_steps,
            self.precision,
            self.device,
            self.run_dir,
            metrics,
        )

    def _start_new_run(self) -> None:
        plan = self.plan
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.adversarial and self.spec.pretrain:
            self.spec.pretrain(plan.seed)
        run = mlflow.start_run(
            run_name=f"{plan.variant}-{plan.profile}-seed{plan.seed}",
            tags={
                "variant": plan.variant,
                "profile": plan.profile,
                "seed": str(plan.seed),
                "git_commit": tracking.git_commit(self.request.project_dir),
                "data_version": tracking.data_version(self.request.project_dir),
                "precision": self.precision,
                "device": self.device,
                "kind": self.spec.kind,
                **({"overrides": " ".join(self.request.overrides)} if self.request.overrides else {}),
            },
        )
        mlflow.log_params(flatten({"variant": plan.cfg, "train": plan.train, "seed": plan.seed}))
        mlflow.log_params({"steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps})
        record = {"run_id": run.info.run_id, "fingerprint": plan.fingerprint}
        (self.run_dir / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
        log.info("%s: MLflow run %s on %s in %s", plan.variant, run.info.run_id, self.device, self.precision)

    def _loop(self) -> str:
        train = self.plan.train
        step_fn = tf.function(self._train_step, jit_compile=self.device.startswith("GPU") and train["xla"])
        limit = min(self.total_steps, self.request.max_steps or self.total_steps)
        minutes = self.request.max_minutes or train["max_minutes"]
        deadline = time.monotonic() + minutes * 60 if minutes else None
        start = int(self.step)
        for epoch in range(start // self.steps_per_epoch, self.epochs):
            done_in_epoch = (
                start - epoch * self.steps_per_epoch if epoch == start // self.steps_per_epoch else 0
            )
            began, images = time.monotonic(), 0
            bar = tqdm(
                total=self.steps_per_epoch,
                initial=done_in_epoch,
                disable=not self.request.progress,
                desc=f"{self.plan.variant} epoch {epoch + 1}/{self.epochs}",
                unit="step",
                leave=False,
            )
            stop = None
            with bar:
                for batch in self._batches(epoch, done_in_epoch):
                    stepped = time.monotonic()
                    values = {name: float(v) for name, v in step_fn(batch).items()}
                    if self.clock:
                        self.clock.tick(time.monotonic() - stepped)
                    step = int(self.step)
                    check_finite(values, self.plan.variant, step)
                    images += self.rows_per_step
                    bar.update()
                    bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
                    if step % train["log_every_steps"] == 0:
                        self._record(step, epoch, values)
                    if step % train["checkpoint_every_steps"] == 0:
                        self._checkpoint()
                    if step >= limit and step < self.total_steps:
                        stop = "step limit"
                    elif deadline and time.monotonic() - self._measuring_seconds() > deadline:
                        stop = "time budget"
                    if stop:
                        break
            if int(self.step) == (epoch + 1) * self.steps_per_epoch:
                self._end_epoch(epoch, values, images / max(time.monotonic() - began, 1e-9))
            if stop:
                self._checkpoint()
                return stop
        return "completed"

    def _measuring_seconds(self) -> float:
        """Time-to-quality measurements do not count against the time budget: they are not training."""
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
        write_history(self.run_dir / "history.csv", self.history)

    def _end_epoch(self, epoch: int, values: dict[str, float], images_per_second: float) -> None:
        number = epoch + 1
        mlflow.log_metrics(
            {**{f"epoch/{k}": v for k, v in values.items()}, "epoch/images_per_second": images_per_second},
            step=number,
        )
        if not self.history or self.history[-1]["step"] != int(self.step):
            self._record(int(self.step), epoch, values)
        every = self.plan.cfg.get("samples_every_epochs", self.plan.train["samples_every_epochs"])
        if number % every == 0 or number == self.epochs:
            self._sample_figure(f"epoch_{number:03d}", f"{self.plan.variant}, epoch {number}")
        for metric in self.model.metrics:
            metric.reset_state()
        self._checkpoint()

    def _quality_clock(self) -> QualityClock | None:
        """A FID every `train.quality_every_seconds` of training (image models, once a classifier exists)."""
        every = self.plan.train.get("quality_every_seconds")
        folder = self.request.project_dir / self.plan.params["classifier"]["dir"]
        if not every or self.spec.kind == "toy":
            return None
        if not (folder / CLASSIFIER_FILE).is_file():
            log.info(
                "%s: no feature classifier in %s yet: no time-to-quality curve", self.plan.variant, folder
            )
            return None
        n = int(self.plan.train["quality_samples"])
        noise = sample_noise(
            tf.random.Generator.from_seed(self.plan.seed + 3), self.eval_prior, n, self.spec.z_dim
        )
        labels = np.arange(n) % self.spec.classes if self.spec.classes else None
        return QualityClock(
            float(every),
            load_classifier(folder),
            self.splits["test"].images,
            lambda: self.sample(noise, labels),
            self.run_dir / QUALITY_CSV,
        )

    # ------------------------------------------------------------------ data and samples

    def _batches(self, epoch: int, skip: int) -> Iterator[tf.Tensor]:
        """The epoch's batches after the first `skip`; the order depends only on (seed, epoch)."""
        if self.splits is None:  # the toy GAN's data: fresh N(-1, 1) samples
            for i in range(skip, self.steps_per_epoch):
                rng = np.random.default_rng([self.plan.seed, epoch, i])
                yield tf.constant(rng.normal(DATA_MEAN, DATA_STD, (self.rows_per_step, 1)), tf.float32)
            return
        train = self.splits["train"]
        order = np.random.default_rng([self.plan.seed, epoch]).permutation(len(train.images))
        order = order[: self.steps_per_epoch * self.rows_per_step]
        low, high = self.spec.pixel_range

        def scale(x: tf.Tensor) -> tf.Tensor:
            return tf.cast(x, tf.float32)[..., None] / 255.0 * (high - low) + low

        if self.spec.classes:  # (images, labels of shape (n, 1)) for the conditional networks
            rows = (train.images[order], train.labels[order].astype(np.int32)[:, None])
            transform = lambda x, y: (scale(x), y)  # noqa: E731
        else:
            rows, transform = train.images[order], scale
        dataset = (
            tf.data.Dataset.from_tensor_slices(rows)
            .batch(self.rows_per_step, drop_remainder=True)
            .skip(skip)
            .map(transform, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
        )
        yield from dataset

    def generate(self, z: tf.Tensor, labels: np.ndarray | None = None) -> np.ndarray:
        """Images in [0, 1], shape (n, 28, 28); a conditional model draws `labels` (default: a row of each
        digit in turn, as in the grids), an unconditional one ignores them."""
        wanted = None
        if self.spec.classes:  # an unconditional model ignores labels
            labels = grid_labels(len(z), self.spec.classes) if labels is None else labels
            wanted = tf.constant(np.asarray(labels, np.int32)[:, None])
        if self.adversarial:
            images = self.model.sample(z, wanted, training=self.spec.sample_in_training_mode)
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
        """A fitted prior's Gaussian over the current encoder's codes of the first FIT_IMAGES images."""
        if self.adversarial or self.spec.latent_prior != "fitted":
            return None
        low, high = self.spec.pixel_range
        images = self.splits["train"].images[:FIT_IMAGES, ..., None].astype(np.float32) / 255.0
        codes = np.concatenate(
            [
                self._mean_code(images[i : i + 1000] * (high - low) + low, None)
                for i in range(0, len(images), 1000)
            ]
        ).astype(np.float64)
        return {
            "mean": codes.mean(axis=0).tolist(),
            "cov": np.atleast_2d(np.cov(codes, rowvar=False)).tolist(),
        }

    def _sample_figure(self, name: str, title: str) -> None:
        """The seeds' periodic look at the generator: a grid from fixed noise (the toy GAN: its densities)."""
        sample_dir = self.run_dir / "samples"
        if self.spec.kind == "toy":
            path = self._toy_figure(sample_dir / f"densities_{name}.png", title)
        else:
            path = figures.image_grid(self.sample(self.eval_noise), sample_dir / f"samples_{name}.png", title)
        mlflow.log_artifact(str(path), artifact_path="samples")

    def _toy_samples(self) -> np.ndarray:
        z = sample_noise(tf.random.Generator.from_seed(self.plan.seed + 2), self.spec.noise, TOY_SAMPLES, 1)
        return np.asarray(self.model.sampler(z, training=False))[:, 0]

    def _toy_figure(self, path: Path, title: str) -> Path:
        x = np.linspace(*DOMAIN, 400, dtype=np.float32)[:, None]
        samples = self._toy_samples()
        decision = np.asarray(tf.sigmoid(self.model.discriminator(x, training=False)))[:, 0]
        return figures.toy_densities(
            x[:, 0], np.asarray(data_density(x))[:, 0], samples, decision, path, title
        )

    # ------------------------------------------------------------------ the end of a run

    def _finish(self, status: str) -> dict[str, float]:
        self._checkpoint()
        if self.clock:
            self.clock.measure()  # the curve's last point: the model as saved
        figure_dir, model_dir = self.run_dir / "figures", self.run_dir / "model"
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
            metrics.update(self._toy_summary())
        elif not self.adversarial:
            self._reconstruction_figures(figure_dir)
        self._save_networks(model_dir)
        metrics = {k: float(v) for k, v in metrics.items() if k not in ("step", "epoch")}
        (self.run_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        mlflow.log_metrics({f"final/{k}": v for k, v in metrics.items()})
        mlflow.set_tag("stopped_by", status)
        mlflow.log_artifacts(str(figure_dir), artifact_path="figures")
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        mlflow.log_artifact(str(self.run_dir / "history.csv"))
        return metrics

    def _toy_summary(self) -> dict[str, float]:
        samples = self._toy_samples()
        return {"sample_mean": float(samples.mean()), "sample_std": float(samples.std())}

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
        model_dir.mkdir(parents=True, exist_ok=True)
        networks = (
            {"generator": self.model.sampler, "discriminator": self.model.discriminator}
            if self.adversarial
            else {"encoder": self.model.encoder, "decoder": self.model.decoder}
        )
        for name, network in networks.items():
            network.save(model_dir / f"{name}.keras")
        info = {
            "variant": self.plan.variant,
            **sampling_info(self.spec),
            "precision": self.precision,
            "seed": self.plan.seed,
            "profile": self.plan.profile,
            "step": int(self.step),
            **({"latent_fit": fit} if (fit := self._latent_fit()) else {}),
        }
        (model_dir / "model_info.json").write_text(json.dumps(info, indent=2) + "\n")

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
