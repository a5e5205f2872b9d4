"""What a run shows and saves besides its losses, one reporter per kind of model.

The training loop asks every kind the same things: the periodic figure (`show`), the
time-to-quality clock's images (`quality_samples`) and the run's outputs at its end (`finish`: the loss
curves, the final grid, what the kind adds (`final`), the saved model (`export`) and the metrics file).
An image GAN answers with sample grids from the run's fixed noise; an autoencoder or VAE also with
reconstructions, a map of its codes and, for a fitted prior, a Gaussian over those codes; the 1-D toy GAN
with the densities of its data, samples and discriminator. Every draw here uses its own generator seeded
from the run's seed, so reporting never moves the training's random stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnistgen import figures
from mnistgen.config import ConfigError
from mnistgen.data import clusters
from mnistgen.data.idx import Split
from mnistgen.images import grid_labels, labels_in_turn, to_model_range, to_unit, to_unit_range
from mnistgen.models.base import CLASSES, GRID_SAMPLES, AdversarialSpec, Spec
from mnistgen.models.cgan import routed_generator
from mnistgen.models.toy_gan_1d import DOMAIN, data_density
from mnistgen.serving.sampler import fitted_noise_dim, from_standard_normal
from mnistgen.training import export
from mnistgen.training.engine import reference_statistics, sample_noise
from mnistgen.training.run_folder import (
    FIGURE_DIR,
    FINAL_GRID,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_DIR,
    SAMPLES_DIR,
    grid_file,
)
from mnistgen.training.tracker import Tracker

TOY_SAMPLES = 10_000
FIT_IMAGES = 10_000  # training images whose codes a fitted latent prior is estimated from
CODE_BATCH = 1000  # images encoded per call
# Offsets from the run's seed of its fixed noise: sample grids, toy samples, time-to-quality, BN reference.
GRID_SEED, TOY_SEED, QUALITY_SEED, REFERENCE_SEED = 1, 2, 3, 4


@dataclass(frozen=True)
class Ending:
    """How a run ended: what its last figures, saved model and metrics file are made with."""

    variant: str
    status: str  # how it stopped (`run_folder.COMPLETED`, STEP_LIMIT, TIME_CAP)
    step: int
    total_steps: int
    step_seconds: float
    title: str  # of the loss curves: variant, profile, seed, precision
    model_info: dict[str, Any]  # `model_info.json` (the schema is `models.base.sampling_info`)


class Reporter:
    """An image GAN's: grids from fixed noise drawn by the sampling network (the weight average, if any),
    with batch norm on the statistics of a fixed reference batch where the variant asks for them."""

    measures_quality = True  # the time-to-quality clock applies (image models)

    def __init__(
        self,
        seed: int,
        spec: Spec,
        model: keras.Model,
        splits: dict[str, Split] | None,
        step: tf.Variable,
        quality_samples: int = 0,
    ) -> None:
        """A reporter for one run.

        Args:
            seed: the run's seed, which its fixed noise is drawn from.
            spec: the variant's networks and losses.
            model: the model being trained.
            splits: the MNIST splits it trains on (None for the toy GAN).
            step: the run's step counter.
            quality_samples: how many images the time-to-quality clock measures (0: no clock).
        """
        self.seed, self.spec, self.model, self.splits, self.step = seed, spec, model, splits, step
        # A conditional model's grid: one row per digit (per cluster, for the first ten of an scgan's)
        self.grid_noise = self.fixed_noise(GRID_SEED, min(spec.classes, CLASSES) ** 2 or GRID_SAMPLES)
        self.reference = self._reference_batch()
        # The time-to-quality clock's: a conditional model's digits in turn, clusters as often as the
        # saved model draws them.
        self.quality_noise = self.fixed_noise(QUALITY_SEED, quality_samples)
        self.quality_labels = labels_in_turn(quality_samples, spec.classes) if spec.classes else None
        if isinstance(spec, AdversarialSpec) and spec.cluster_groups:
            self.quality_labels = splits["train"].labels[:quality_samples]

    @property
    def prior(self) -> str:
        """The noise the model generates from."""
        return self.spec.noise

    @property
    def noise_dim(self) -> int:
        """The size of one noise vector `sample` takes."""
        return self.spec.z_dim

    def fixed_noise(self, offset: int, n: int) -> tf.Tensor:
        return sample_noise(tf.random.Generator.from_seed(self.seed + offset), self.prior, n, self.noise_dim)

    def _reference_batch(self) -> list[tf.Tensor] | tf.Tensor | None:
        """The fixed batch batch norm takes its sampling statistics from (`reference_batch` rows), if any."""
        rows = getattr(self.spec, "reference_batch", 0)
        if not rows:
            return None
        z = self.fixed_noise(REFERENCE_SEED, rows)
        if not self.spec.classes:
            return z
        return [z, tf.constant(labels_in_turn(rows, self.spec.classes).astype(np.int32)[:, None])]

    @contextmanager
    def _sampling(self) -> Iterator[None]:
        """How the sampling network is set while it generates (or is saved): reference statistics or as is."""
        if self.reference is None:
            yield
            return
        with reference_statistics(self.model.sampler, self.reference):
            yield

    def _labels(self, n: int, labels: np.ndarray | None) -> tf.Tensor | None:
        """A conditional model draws `labels` (default: a row of each digit in turn, as in the grids); an
        unconditional one ignores them."""
        if not self.spec.classes:
            return None
        if labels is None:
            groups = self.spec.cluster_groups if isinstance(self.spec, AdversarialSpec) else 0
            # cgan's subclusters: a digit per row in its styles; scgan's: its first ten clusters in turn
            labels = (
                grid_labels(n, groups, self.spec.classes // groups)
                if groups > 1
                else grid_labels(n, self.spec.classes)
            )
        return tf.constant(np.asarray(labels, np.int32)[:, None])

    def generate(self, z: tf.Tensor, labels: np.ndarray | None = None) -> np.ndarray:
        """Images in [0, 1], shape (n, 28, 28), from the network's own input `z`."""
        column = self._labels(len(z), labels)
        with self._sampling():
            outputs = self.model.sample(z, column)
        return to_unit_range(np.asarray(outputs)[..., 0], self.spec.pixel_range)

    def sample(self, noise: tf.Tensor, labels: np.ndarray | None = None) -> np.ndarray:
        """Images from prior noise (`prior`)."""
        return self.generate(self._latent(noise, labels), labels)

    def _latent(self, noise: tf.Tensor, labels: np.ndarray | None) -> tf.Tensor:
        """The network's input for prior noise: the noise itself."""
        return noise

    def figure(self, folder: Path, name: str, title: str) -> Path:
        """The tutorials' periodic look at the generator."""
        return figures.image_grid(self.sample(self.grid_noise), folder / grid_file(name), title)

    def show(self, folder: Path, name: str, title: str, tracker: Tracker) -> None:
        """The periodic figure (`figure`) into the run folder's samples and its tracked run's."""
        tracker.log_file(self.figure(folder / SAMPLES_DIR, name, title), SAMPLES_DIR)

    def quality_samples(self) -> np.ndarray:
        """The time-to-quality clock's images (`plan.Generate`), drawn anew from the same noise each call."""
        return self.sample(self.quality_noise, self.quality_labels)

    def final(self, figure_dir: Path) -> dict[str, float]:
        """The run's last figures, and any metrics of its own beside the losses."""
        return {}

    def finish(
        self, folder: Path, history: list[dict[str, float]], ending: Ending, tracker: Tracker
    ) -> dict[str, float]:
        """A run's outputs once its last step is checkpointed: the loss curves, the final sample grid, the
        kind's last figures (`final`), the saved model (`export`) and the metrics file, each also logged
        to the tracked run with its ending. Returns the final metrics: the last losses and the kind's own."""
        figure_dir, model_dir = folder / FIGURE_DIR, folder / MODEL_DIR
        losses = [k for k in (history[-1] if history else {}) if k not in ("step", "epoch")]
        figures.loss_curves(history, losses, figure_dir / "loss_curves.png", ending.title)
        metrics = dict(history[-1]) if history else {}
        self.show(
            folder, FINAL_GRID, f"{ending.variant} after {ending.step} steps ({ending.status})", tracker
        )
        metrics.update(self.final(figure_dir))
        self.export(model_dir, ending.model_info)
        metrics = {k: float(v) for k, v in metrics.items() if k not in ("step", "epoch")}
        export.write_json(folder / METRICS_FILE, metrics)
        tracker.log_metrics(
            {f"final/{k}": v for k, v in metrics.items()} | {"time/step_seconds": ending.step_seconds}
        )
        tracker.set_tags({"stopped_by": ending.status, "steps": f"{ending.step}/{ending.total_steps}"})
        tracker.log_folder(figure_dir, FIGURE_DIR)
        tracker.log_folder(model_dir, MODEL_DIR)
        tracker.log_file(folder / HISTORY_FILE)
        return metrics

    def export(self, model_dir: Path, info: dict[str, Any]) -> None:
        """The sampling network as it samples, with the discriminator beside it; a GAN trained on clusters
        (scgan's, or cgan's styles of each digit) draws each as often as the training images fall in it."""
        generator = self.model.sampler
        if self.spec.cluster_groups:
            shares = clusters.shares(self.splits["train"].labels, self.spec.classes)
            generator = routed_generator(generator, shares, self.spec.cluster_groups)
            info = {**info, "cluster_shares": shares}
        with self._sampling():
            export.save_networks(
                model_dir, {"generator": generator, "discriminator": self.model.discriminator}, info
            )


class ToyReporter(Reporter):
    """The 1-D toy GAN's: the data density, a histogram of samples and the discriminator's output."""

    measures_quality = False

    def _samples(self) -> np.ndarray:
        z = sample_noise(tf.random.Generator.from_seed(self.seed + TOY_SEED), self.spec.noise, TOY_SAMPLES, 1)
        return np.asarray(self.model.sample(z, None))[:, 0]

    def figure(self, folder: Path, name: str, title: str) -> Path:
        x = np.linspace(*DOMAIN, 400, dtype=np.float32)[:, None]
        decision = np.asarray(tf.sigmoid(self.model.discriminator(x, training=False)))[:, 0]
        return figures.toy_densities(
            x[:, 0],
            np.asarray(data_density(x))[:, 0],
            self._samples(),
            decision,
            folder / f"densities_{name}.png",
            title,
        )

    def final(self, figure_dir: Path) -> dict[str, float]:
        samples = self._samples()
        return {"sample_mean": float(samples.mean()), "sample_std": float(samples.std())}


class ReconstructionReporter(Reporter):
    """An autoencoder's or VAE's: the decoder's samples from N(0, I), moved onto a Gaussian (or a mixture)
    fitted to the codes of the training images when the prior is `fitted`; reconstructions, the codes of
    the test set and an interpolation at the end."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._fit: tuple[int, dict[str, Any] | None] | None = None  # (step, latent fit)
        if self.spec.latent_prior == "fitted":
            self._check_fit_images()

    def _check_fit_images(self) -> None:
        """Refused before the first step: a prior with fewer codes to fit than it has Gaussians."""
        digits = self.splits["train"].labels[:FIT_IMAGES]
        counts = np.bincount(digits, minlength=self.spec.classes) if self.spec.classes else [len(digits)]
        fewest = int(min(counts))
        wanted = max(self.spec.latent_components, 2)
        if fewest < wanted:
            each = " of a digit" if self.spec.classes else ""
            raise ConfigError(
                f"latent_components is {self.spec.latent_components}: a fitted prior needs {wanted} training "
                f"images{each} to fit it to, and there are {fewest}. Fix: lower latent_components or train "
                "on more images."
            )

    @property
    def prior(self) -> str:
        return "normal"

    @property
    def noise_dim(self) -> int:
        return fitted_noise_dim(self.spec.z_dim, self.spec.latent_components > 1)

    def _latent(self, noise: tf.Tensor, labels: np.ndarray | None) -> tf.Tensor:
        """The decoder's codes for N(0, I) noise: moved onto the fitted prior, if there is one."""
        fit = self.latent_fit()
        if fit is None:
            return noise
        column = self._labels(len(noise), labels)
        digits = None if column is None else np.asarray(column)[:, 0]
        return tf.constant(from_standard_normal(np.asarray(noise), fit, digits))

    def latent_fit(self) -> dict[str, Any] | None:
        """A fitted prior over the encoder's codes of the first FIT_IMAGES training images, at this step
        (computed once a step: the figures, the time-to-quality point and the export share it): one
        Gaussian (`mean`, `cov`) or a mixture of `latent_components` (`weights`, `means`, `covs`; by EM
        from the run's seed); a conditional model's, one per digit (`per_class`), over the codes of that
        digit's images, each encoded with its own digit: p(z | digit), so a drawn style suits its digit."""
        if self.spec.latent_prior != "fitted":
            return None
        if self._fit is None or self._fit[0] != int(self.step):
            train = self.splits["train"]
            images = to_model_range(to_unit(train.images[:FIT_IMAGES, ..., None]), self.spec.pixel_range)
            digits = train.labels[:FIT_IMAGES].astype(np.int32)
            codes, log_vars = self._encode(images, digits[:, None] if self.spec.classes else None)
            if not self.spec.classes:
                fit = self._gaussians(codes, log_vars)
            else:
                fit = {
                    "per_class": [
                        self._gaussians(
                            codes[digits == d], None if log_vars is None else log_vars[digits == d]
                        )
                        for d in range(self.spec.classes)
                    ]
                }
            self._fit = (int(self.step), fit)
        return self._fit[1]

    def _gaussians(self, codes: np.ndarray, log_vars: np.ndarray | None) -> dict[str, list]:
        """One Gaussian or a mixture of `latent_components` over these codes (see `latent_fit`)."""
        codes = codes.astype(np.float64)
        components = self.spec.latent_components
        # A VAE's aggregate posterior: the spread of the means plus each code's own variance (on
        # average); the means alone sample too narrowly (recall 0.45 -> 0.32 in a trial).
        own = 0.0 if log_vars is None else np.diag(np.exp(log_vars.astype(np.float64)).mean(axis=0))
        if components == 1:
            cov = np.atleast_2d(np.cov(codes, rowvar=False)) + own
            return {"mean": codes.mean(axis=0).tolist(), "cov": cov.tolist()}
        from sklearn.mixture import GaussianMixture  # seconds to import: only for a mixture
        from threadpoolctl import threadpool_limits

        # One BLAS thread, as for the clusters (data.clusters): the thread count would change how sums
        # round, and EM carries a rounding on through its iterations.
        with threadpool_limits(1):
            mixture = GaussianMixture(components, covariance_type="full", random_state=self.seed).fit(codes)
        return {
            "weights": mixture.weights_.tolist(),
            "means": mixture.means_.tolist(),
            "covs": (mixture.covariances_ + own).tolist(),
        }

    def _encode(self, images: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """The encoder's points (autoencoder) or means and log-variances (VAE; None for an autoencoder),
        no sampling, CODE_BATCH images a call: one pass gives the fit both."""
        outputs = [
            self.model.encoder(
                images[i : i + CODE_BATCH]
                if labels is None
                else [images[i : i + CODE_BATCH], labels[i : i + CODE_BATCH]],
                training=False,
            )
            for i in range(0, len(images), CODE_BATCH)
        ]
        if not self.spec.variational:
            return np.concatenate([np.asarray(out) for out in outputs]), None
        means, log_vars = ([np.asarray(out[k]) for out in outputs] for k in (0, 1))
        return np.concatenate(means), np.concatenate(log_vars)

    def final(self, figure_dir: Path) -> dict[str, float]:
        test = self.splits["test"]
        images = to_model_range(to_unit(test.images[..., None]), self.spec.pixel_range)
        codes, _ = self._encode(images, test.labels.astype(np.int32)[:, None] if self.spec.classes else None)
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
        return {}

    def export(self, model_dir: Path, info: dict[str, Any]) -> None:
        fit = self.latent_fit()
        export.save_networks(
            model_dir,
            {"encoder": self.model.encoder, "decoder": self.model.decoder},
            {**info, **({"latent_fit": fit} if fit else {})},
        )


def reporter_kind(spec: Spec) -> type[Reporter]:
    """The reporter class of `spec`'s kind of model: an image GAN's, the toy GAN's or an autoencoder's."""
    if not isinstance(spec, AdversarialSpec):
        return ReconstructionReporter
    return ToyReporter if spec.kind == "toy" else Reporter
