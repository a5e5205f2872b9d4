"""Turn a saved generator (or decoder) into images, from `model_info.json` beside it.

Deliberately free of the training code: the registered MLflow model ships this file and loads the
`.keras` networks in safe mode.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

STRATIFIED_DOMAIN = (-5.0, 5.0)
INFO_FILE = "model_info.json"  # beside the saved networks: how to sample them (models.base.sampling_info)


def use_row_invariant_kernels() -> None:
    """Make each image independent of its place in a request, to the last bit: call before TensorFlow is
    imported. oneDNN's matrix kernels (TensorFlow's default on x86) sum the rows at the tail of a batch in
    another order than the rest, so one seed's image moved between requests of different sizes by up to
    4e-7; TensorFlow's own (Eigen) kernels compute every row alike, at about 1.3x the time when sampling.
    Training keeps oneDNN (its results are deterministic per batch shape, and it is faster)."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def row_seeds(n: int, seed: int) -> np.ndarray:
    """The per-image seeds of a request for `n` images with one `seed` (disjoint for different seeds)."""
    return np.arange(n, dtype=np.int64) + np.int64(seed) * 1_000_003


def grid_labels(n: int, classes: int) -> np.ndarray:
    """Labels for a square grid of `n` conditional samples: one digit per row."""
    side = int(np.ceil(np.sqrt(n)))
    return (np.arange(n) // side) % classes


def from_standard_normal(z: np.ndarray, mean: list[float], cov: list[list[float]]) -> np.ndarray:
    """N(0, I) draws -> draws from N(mean, cov)."""
    cov_matrix = np.asarray(cov, np.float64)
    root = np.linalg.cholesky(cov_matrix + 1e-6 * np.eye(len(cov_matrix)))
    return (np.asarray(mean) + z @ root.T).astype(np.float32)


def to_unit_range(values: np.ndarray, pixel_range: tuple[float, float]) -> np.ndarray:
    low, high = pixel_range
    return np.clip((np.asarray(values, dtype=np.float32) - low) / (high - low), 0.0, 1.0)


class Sampler:
    """`sample(n, seed)` -> float32 images in [0, 1], shape (n, 28, 28) (toy GAN: values, shape (n,)).

    A class-conditional model (`classes` in model_info.json) draws the digits it is given; without labels,
    the digit of row i is i mod 10, so any n rows are (nearly) balanced.
    """

    def __init__(self, model_dir: Path) -> None:
        import keras

        self.info = json.loads((Path(model_dir) / INFO_FILE).read_text())
        network = "decoder" if self.info["kind"] == "reconstruction" else "generator"
        self.network = keras.saving.load_model(Path(model_dir) / f"{network}.keras", safe_mode=True)

    @property
    def is_image_model(self) -> bool:
        return self.info["kind"] != "toy"

    @property
    def classes(self) -> int:
        return int(self.info.get("classes", 0))

    def noise(self, seeds: np.ndarray) -> np.ndarray:
        """One latent vector per seed, drawn from the model's prior: the same seed, the same vector."""
        dim, prior = self.info["z_dim"], self.info["noise"]
        if len(seeds) and np.min(seeds) < 0:
            raise ValueError("seeds must be non-negative integers")
        rows = []
        for seed in seeds:
            rng = np.random.default_rng(int(seed))
            if prior == "normal":
                rows.append(rng.normal(size=dim))
            elif prior == "uniform":
                rows.append(rng.uniform(-1.0, 1.0, dim))
            elif prior == "uniform01":
                rows.append(rng.uniform(0.0, 1.0, dim))
            else:  # stratified: a single draw is uniform over the grid's domain
                rows.append(rng.uniform(*STRATIFIED_DOMAIN, dim))
        z = np.asarray(rows, np.float32).reshape(len(seeds), dim)
        fit = self.info.get("latent_fit")  # an autoencoder's Gaussian over its training codes
        return z if fit is None else from_standard_normal(z, fit["mean"], fit["cov"])

    def decode(self, z: np.ndarray, labels: np.ndarray | None = None, batch: int = 1000) -> np.ndarray:
        """Images from latent vectors, in inference mode: each depends only on its own z and label, never on
        the rest of the request (batch norm uses the statistics saved with the network)."""
        wanted = len(z)
        column = None
        if self.classes:
            labels = np.arange(wanted) % self.classes if labels is None else np.asarray(labels)
            if len(labels) != wanted or labels.min(initial=0) < 0 or labels.max(initial=0) >= self.classes:
                raise ValueError(f"need one label in 0..{self.classes - 1} per row")
            column = np.asarray(labels, np.int32)[:, None]
        outputs = []
        for i in range(0, wanted, batch):
            rows = z[i : i + batch] if column is None else [z[i : i + batch], column[i : i + batch]]
            outputs.append(np.asarray(self.network(rows, training=False)))
        values = (
            np.concatenate(outputs) if outputs else np.zeros((0, *self.network.output_shape[1:]), np.float32)
        )
        if not self.is_image_model:
            return values[:, 0].astype(np.float32)
        return to_unit_range(values[..., 0], self.info["pixel_range"])

    def sample(self, n: int, seed: int = 0, labels: np.ndarray | None = None) -> np.ndarray:
        return self.decode(self.noise(row_seeds(n, seed)), labels)
