"""Turn a saved generator (or decoder) into images, from `model_info.json` beside it.

Deliberately free of the training code: the registered MLflow model ships this file and loads the
`.keras` networks in safe mode.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from mnistgen.errors import MnistgenError
from mnistgen.images import labels_in_turn, to_unit_range

STRATIFIED_DOMAIN = (-5.0, 5.0)
INFO_FILE = "model_info.json"  # beside the saved networks: how to sample them (models.base.sampling_info)
DIGEST_TAG = "generator_sha256"  # on a registered version: the `generator_digest` of its networks
EVALUATION_BATCH = 1000  # rows per call when throughput matters more than row-exactness (evaluation)
ROWS_IN_FLIGHT = 16  # one-row calls computed at once when serving (64 cgan images: 114 ms -> 34 ms)


MODEL_KINDS = ("adversarial", "reconstruction", "toy")  # models.base.Spec.kind
PRIORS = ("normal", "uniform", "uniform01", "stratified")  # the draws `Sampler.noise` makes
MAX_CLASSES = 1000  # the most labels a conditional variant is trained on (scgan's clusters, cgan's styles)


class ModelFolderError(MnistgenError):
    """A folder that does not hold a generator as `mnistgen train` saves it."""


def read_info(model_dir: Path) -> dict[str, Any]:
    """`model_info.json` of `model_dir`, checked: what sampling reads from it has the type and range a
    saved generator's has, so a planted or damaged file is refused before any network loads or any array
    is allocated.

    Args:
        model_dir: a saved generator's folder.

    Returns:
        The parsed file.
    """
    path = Path(model_dir) / INFO_FILE
    _check_regular(path)
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise _not_a_generator(path, f"it cannot be read ({err})") from err
    problems = _info_problems(info)
    if problems:
        raise _not_a_generator(path, "; ".join(problems))
    return info


def _check_regular(path: Path) -> None:
    """Refuse what is not a regular file (a FIFO would hang the read, a link to a device fill memory)."""
    if path.exists() and not path.is_file():
        raise ModelFolderError(
            f"{path} is not a regular file (a pipe, a device or a link to one), so not a file mnistgen "
            f"saved.\nFix: {_USE_SAVED}; nothing was sampled."
        )


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _info_problems(info: Any) -> list[str]:
    if not isinstance(info, dict):
        return [f"it holds {type(info).__name__}, not the mapping a saved generator's does"]
    problems = []
    if info.get("kind") not in MODEL_KINDS:
        problems.append(f"kind is {info.get('kind')!r}, not one of {', '.join(MODEL_KINDS)}")
    if not _whole(info.get("z_dim"), 1, 65_536):
        problems.append(f"z_dim is {info.get('z_dim')!r}, not a whole number from 1 to 65,536")
    if info.get("noise") not in PRIORS:
        problems.append(f"noise is {info.get('noise')!r}, not one of {', '.join(PRIORS)}")
    if not _whole(info.get("classes", 0), 0, MAX_CLASSES):
        problems.append(f"classes is {info.get('classes')!r}, not a whole number from 0 to {MAX_CLASSES}")
    pixels = info.get("pixel_range")
    if not (
        isinstance(pixels, list)
        and len(pixels) == 2
        and all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in pixels)
        and pixels[0] < pixels[1]
    ):
        problems.append(f"pixel_range is {pixels!r}, not a pair [low, high] with low < high")
    return problems


_USE_SAVED = (
    "use a runs/VARIANT/model folder as `mnistgen train` wrote it, a training run's model "
    "(runs:/RUN_ID/model) or a registered version"
)


def _not_a_generator(path: Path, problem: str) -> ModelFolderError:
    return ModelFolderError(
        f"{path} is not the model_info.json of a generator mnistgen saved: {problem}.\nFix: {_USE_SAVED}; "
        "nothing was sampled."
    )


def generator_digest(model_dir: Path) -> str:
    """SHA-256 of what sampling reads: `model_info.json` and the `.keras` networks beside it (names and
    bytes). Recorded on a registered version, so a changed artifact is refused rather than sampled."""
    digest = hashlib.sha256()
    for file in sorted([Path(model_dir) / INFO_FILE, *Path(model_dir).glob("*.keras")]):
        _check_regular(file)
        digest.update(f"{file.name}\n".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def row_seeds(n: int, seed: int) -> np.ndarray:
    """The per-image seeds of a request for `n` images with one `seed` (disjoint for different seeds)."""
    return np.arange(n, dtype=np.int64) + np.int64(seed) * 1_000_003


def fitted_noise_dim(z_dim: int, mixture: bool) -> int:
    """How many N(0, 1) coordinates a draw from a fitted prior takes: a mixture's one more than its codes,
    the coordinate that picks the component (`from_standard_normal`)."""
    return z_dim + 1 if mixture else z_dim


def is_mixture(fit: dict[str, Any]) -> bool:
    """Whether a fitted prior (or each digit's, all alike) is a mixture of Gaussians."""
    return "weights" in fit.get("per_class", [fit])[0]


def from_standard_normal(z: np.ndarray, fit: dict[str, Any], labels: np.ndarray | None = None) -> np.ndarray:
    """N(0, I) draws -> draws from a fitted prior: one Gaussian (`mean`, `cov`), or a mixture (`weights`,
    `means`, `covs`) whose component a row's last coordinate picks, by where it falls among the normal
    quantiles of the weights' running sums (each component as often as its weight), the other
    coordinates becoming a draw from that component; a conditional model's (`per_class`) from the fit of
    each row's digit in `labels`."""
    if "per_class" in fit:
        if labels is None or len(labels) != len(z):
            raise ValueError("a prior fitted per digit needs one label per row")
        codes = np.zeros((len(z), z.shape[1] - is_mixture(fit)), np.float32)
        for digit in np.unique(labels):
            rows = labels == digit
            codes[rows] = from_standard_normal(z[rows], fit["per_class"][digit])
        return codes
    if "weights" not in fit:
        return _from_gaussian(z, fit["mean"], fit["cov"])
    bounds = np.cumsum(fit["weights"])[:-1]
    cuts = [NormalDist().inv_cdf(min(max(b, 1e-12), 1 - 1e-12)) for b in bounds]
    component = np.searchsorted(cuts, z[:, -1], side="right")
    codes = np.zeros((len(z), z.shape[1] - 1), np.float32)
    for c in np.unique(component):
        rows = component == c
        codes[rows] = _from_gaussian(z[rows, :-1], fit["means"][c], fit["covs"][c])
    return codes


def _from_gaussian(z: np.ndarray, mean: list[float], cov: list[list[float]]) -> np.ndarray:
    """N(0, I) draws -> draws from N(mean, cov)."""
    cov_matrix = np.asarray(cov, np.float64)
    root = np.linalg.cholesky(cov_matrix + 1e-6 * np.eye(len(cov_matrix)))
    return (np.asarray(mean) + z @ root.T).astype(np.float32)


class Sampler:
    """`sample(n, seed)` -> float32 images in [0, 1], shape (n, 28, 28) (toy GAN: values, shape (n,)).

    A class-conditional model (`classes` in model_info.json) draws the digits it is given; without labels,
    the digit of row i is i mod 10, so any n rows are (nearly) balanced.
    """

    def __init__(self, model_dir: Path) -> None:
        import keras

        self.info = read_info(model_dir)
        network = "decoder" if self.info["kind"] == "reconstruction" else "generator"
        path = Path(model_dir) / f"{network}.keras"
        _check_regular(path)
        try:  # safe mode: a planted file's code (a Lambda layer, a pickled function) is refused, never run
            self.network = keras.saving.load_model(path, safe_mode=True)
        except Exception as err:  # noqa: BLE001 - Keras raises many types for a damaged or foreign file
            raise ModelFolderError(
                f"{path} cannot be loaded as a Keras network: {str(err).strip().splitlines()[0]}\nFix: use "
                "a model folder as `mnistgen train` wrote it (or train the variant again); nothing was "
                "sampled."
            ) from err
        width = self.network.inputs[0].shape[-1]
        if width != self.info["z_dim"]:
            raise _not_a_generator(
                Path(model_dir) / INFO_FILE, f"z_dim is {self.info['z_dim']}, but {path.name} takes {width}"
            )
        self._forward: dict[bool, Any] = {}  # the network's inference calls, compiled on first use

    @property
    def is_image_model(self) -> bool:
        return self.info["kind"] != "toy"

    @property
    def classes(self) -> int:
        return int(self.info.get("classes", 0))

    def row_labels(self, n: int, labels: np.ndarray | None) -> np.ndarray | None:
        """The digit of each of `n` rows of a class-conditional model (None for an unconditional one):
        `labels`, checked, or row i's digit i mod `classes`."""
        if not self.classes:
            return None
        labels = labels_in_turn(n, self.classes) if labels is None else np.asarray(labels)
        if len(labels) != n or labels.min(initial=0) < 0 or labels.max(initial=0) >= self.classes:
            raise ValueError(f"need one label in 0..{self.classes - 1} per row")
        return labels

    def noise(self, seeds: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """One latent vector per seed, drawn from the model's prior: the same seed (and digit), the same
        vector. A prior fitted per digit draws from each row's digit's (`labels`, as in `decode`)."""
        fit = self.info.get("latent_fit")  # an autoencoder's or VAE's Gaussian(s) over its training codes
        mixture = fit is not None and is_mixture(fit)
        dim, prior = fitted_noise_dim(self.info["z_dim"], mixture), self.info["noise"]
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
        return z if fit is None else from_standard_normal(z, fit, self.row_labels(len(seeds), labels))

    def decode(self, z: np.ndarray, labels: np.ndarray | None = None, batch: int | None = None) -> np.ndarray:
        """Images from latent vectors, in inference mode (batch norm uses the statistics saved with the
        network), so an image depends only on its own z and label.

        `batch=None` (serving: `mnistgen sample`, the pyfunc) computes each image as a batch of one row, so
        a row's image is the same to the last bit whatever else the request holds: a matrix kernel may
        round a row differently by where it stands in a batch (up to 4e-7, seen on wgan, wgan_gp and cgan
        with oneDNN and with Eigen), and a batch of one leaves it no choice. The rows go through one
        compiled `tf.map_fn` of one-row calls (the same kernels as a call per row, a few running at once),
        about 0.05-0.7 ms an image. `batch=N` computes N rows per call for throughput (evaluation's 10,000
        images): deterministic for the same request, but a row may differ in its last bits from the
        one-row image."""
        wanted = len(z)
        labels = self.row_labels(wanted, labels)
        column = None if labels is None else np.asarray(labels, np.int32)[:, None]
        parts = (z,) if column is None else (z, column)
        forward = self._compiled(one_row_at_a_time=batch is None)
        step = batch or max(wanted, 1)
        values = np.concatenate(
            [np.zeros((0, *self.network.output_shape[1:]), np.float32)]
            + [forward(*(part[i : i + step] for part in parts)).numpy() for i in range(0, wanted, step)]
        )
        if not self.is_image_model:
            return values[:, 0].astype(np.float32)
        return to_unit_range(values[..., 0], self.info["pixel_range"])

    def _compiled(self, one_row_at_a_time: bool) -> Any:
        """The network's inference call on (z,) or (z, label column), compiled once per mode.

        One row at a time: a `tf.map_fn` of one-row calls, traced once for any number of rows. Batched:
        traced once per batch shape (evaluation asks for one or two)."""
        import tensorflow as tf

        if one_row_at_a_time in self._forward:
            return self._forward[one_row_at_a_time]
        network = self.network

        def batched(*parts: Any) -> Any:
            return network(list(parts) if len(parts) > 1 else parts[0], training=False)

        def one_row(row: tuple) -> Any:
            return batched(*(part[None] for part in row))[0]

        def rows_one_by_one(*parts: Any) -> Any:
            shape = tf.TensorSpec(network.output_shape[1:], tf.float32)
            return tf.map_fn(one_row, parts, fn_output_signature=shape, parallel_iterations=ROWS_IN_FLIGHT)

        if one_row_at_a_time:
            signature = [tf.TensorSpec([None, self.info["z_dim"]], tf.float32)]
            signature += [tf.TensorSpec([None, 1], tf.int32)] if self.classes else []
            self._forward[True] = tf.function(rows_one_by_one, input_signature=signature)
        else:
            self._forward[False] = tf.function(batched)
        return self._forward[one_row_at_a_time]

    def sample(
        self, n: int, seed: int = 0, labels: np.ndarray | None = None, batch: int | None = None
    ) -> np.ndarray:
        return self.decode(self.noise(row_seeds(n, seed), labels), labels, batch)
