"""Sample-quality metrics on feature vectors and class probabilities (numpy/scipy, no framework).

Features come from the MNIST classifier's penultimate layer, so a metric is only comparable with
another computed by the same classifier version.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

CHUNK = 1024


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """FID: ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) between Gaussians fitted to the features."""
    mu_r, mu_f = real.mean(axis=0), fake.mean(axis=0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    with warnings.catch_warnings():  # dead ReLU features make the product singular; handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean, _ = linalg.sqrtm(cov_r @ cov_f, disp=False)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as the reference code does
        offset = np.eye(len(cov_r)) * 1e-6
        covmean = linalg.sqrtm((cov_r + offset) @ (cov_f + offset))
    covmean = np.real(covmean)
    return float(np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r) + np.trace(cov_f) - 2.0 * np.trace(covmean))


def kernel_inception_distance(
    real: np.ndarray, fake: np.ndarray, subsets: int = 50, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, mean and standard deviation over subsets."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(real), len(fake))
    dim = real.shape[1]
    estimates = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), size, replace=False)]
        y = fake[rng.choice(len(fake), size, replace=False)]
        k_xx, k_yy, k_xy = ((a @ b.T / dim + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        off_diagonal = size * (size - 1)
        estimates.append(
            (k_xx.sum() - np.trace(k_xx)) / off_diagonal
            + (k_yy.sum() - np.trace(k_yy)) / off_diagonal
            - 2.0 * k_xy.mean()
        )
    return float(np.mean(estimates)), float(np.std(estimates))


def inception_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), mean and std over splits: high when each sample is confidently one
    digit and the digits are varied."""
    scores = []
    for part in np.array_split(probabilities, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part + 1e-12) - np.log(marginal + 1e-12)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _pairwise_sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def _kth_neighbour_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point."""
    radii = np.empty(len(points))
    for start in range(0, len(points), CHUNK):
        distances = _pairwise_sq_distances(points[start : start + CHUNK], points)
        radii[start : start + CHUNK] = np.partition(distances, k, axis=1)[:, k]  # index 0 is the point itself
    return radii


def _coverage(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    inside = 0
    for start in range(0, len(queries), CHUNK):
        distances = _pairwise_sq_distances(queries[start : start + CHUNK], centres)
        inside += int(np.any(distances <= radii[None, :], axis=1).sum())
    return inside / len(queries)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the share of fake samples inside the real
    manifold (k-NN balls around real features), and the share of real samples inside the fake manifold."""
    precision = _coverage(fake, real, _kth_neighbour_radii(real, k))
    recall = _coverage(real, fake, _kth_neighbour_radii(fake, k))
    return precision, recall


def mode_coverage(predicted: np.ndarray, classes: int = 10) -> tuple[float, float]:
    """(entropy of the predicted-class histogram / log(classes), share of the rarest class).

    1.0 and 0.1 for a perfectly balanced sample; a collapsed generator scores near 0 on both.
    """
    shares = np.bincount(predicted, minlength=classes) / max(len(predicted), 1)
    nonzero = shares[shares > 0]
    entropy = -(nonzero * np.log(nonzero)).sum() / np.log(classes)
    return float(abs(entropy)), float(shares.min())  # abs(): a single class gives -0.0, printed "-0"


def nearest_l1(queries: np.ndarray, references: np.ndarray, candidates: int = 10) -> np.ndarray:
    """Per query, the L1 distance to its nearest reference (flattened pixels in [0, 1]).

    Exact L1 against 60,000 training images is slow; the nearest by L1 is, in practice, among the nearest
    by L2, which a matrix product finds fast: L1 is computed exactly on the `candidates` nearest by L2.
    """
    result = np.empty(len(queries))
    for start in range(0, len(queries), CHUNK // 4):
        block = queries[start : start + CHUNK // 4]
        distances = _pairwise_sq_distances(block, references)
        shortlist = np.argpartition(distances, candidates, axis=1)[:, :candidates]
        l1 = np.abs(block[:, None, :] - references[shortlist]).sum(axis=2)
        result[start : start + len(block)] = l1.min(axis=1)
    return result
