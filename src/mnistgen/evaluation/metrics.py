"""Sample-quality metrics on feature vectors and class probabilities (numpy/scipy, no framework).

Features come from the MNIST classifier's penultimate layer, so a metric is only comparable with
another computed by the same classifier version.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CHUNK = 1024


class Gaussian(NamedTuple):
    """A real feature set as FID sees it: its mean and the symmetric root of its covariance."""

    mean: np.ndarray
    root: np.ndarray


def gaussian(real: np.ndarray) -> Gaussian:
    """The Gaussian of `real` that `frechet_distance` and `fid_interval` compare with; computed once, it
    serves every model measured against the same real set."""
    return Gaussian(real.mean(axis=0), _psd_root(np.cov(real, rowvar=False)))


def frechet_distance(real: np.ndarray | Gaussian, fake: np.ndarray) -> float:
    """FID: ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) between Gaussians fitted to the features
    (`real` as features, or as their `gaussian`)."""
    mu_r, root_r = real if isinstance(real, Gaussian) else gaussian(real)
    return _frechet(mu_r, root_r, fake)


def _psd_root(cov: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance matrix (its tiny negative eigenvalues, rounding, as 0)."""
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _frechet(mu_r: np.ndarray, root_r: np.ndarray, fake: np.ndarray) -> float:
    """FID against a real set given by its mean and covariance root R. Tr((S_r S_f)^(1/2)) is the sum of
    the square roots of the eigenvalues of R S_f R, a symmetric matrix with the same eigenvalues as S_r S_f:
    exact, and faster and steadier than `scipy.linalg.sqrtm` of the product, which is not symmetric (the
    bootstrap below computes it hundreds of times)."""
    mu_f, cov_f = fake.mean(axis=0), np.cov(fake, rowvar=False)
    product = np.clip(np.linalg.eigvalsh(root_r @ cov_f @ root_r), 0.0, None)
    trace_r = float(np.sum(root_r**2))  # Tr(S_r) = Tr(R R) = sum of R's squared entries (R symmetric)
    return float(np.sum((mu_r - mu_f) ** 2) + trace_r + np.trace(cov_f) - 2.0 * np.sum(np.sqrt(product)))


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central `confidence` share of bootstrap replicates: (lower, upper) percentile bounds."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(values, dtype=np.float64), [tail, 1.0 - tail])
    return float(low), float(high)


def fid_interval(
    real: np.ndarray | Gaussian, fake: np.ndarray, resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Bootstrap interval of FID over the generated samples (drawn again with replacement, `resamples`
    times), placed around the estimate. The real set is held fixed: every model is measured against the
    same test set, so its own noise is shared by every comparison; what separates two models is the noise
    of their samples.

    A resample repeats about a third of its samples, which makes its covariance noisier and its FID larger
    (by about 0.2 at 10,000 samples in 128 features: more than the spread itself), so the replicates'
    percentiles would miss the estimate. Their spread is about right (1.0 to 1.3 times that of FID over
    freshly drawn sample sets in Gaussian checks: a little wide, the safe side for the champion rule;
    tests/test_metrics.py), so the interval is the estimate plus the replicates' percentiles minus their
    median: the width and skew of the bootstrap, without its shift."""
    rng = np.random.default_rng(seed)
    mu_r, root_r = real if isinstance(real, Gaussian) else gaussian(real)
    replicates = np.array(
        [_frechet(mu_r, root_r, fake[rng.integers(0, len(fake), len(fake))]) for _ in range(resamples)]
    )
    low, high = percentile_interval(replicates - np.median(replicates), confidence)
    estimate = _frechet(mu_r, root_r, fake)
    return estimate + low, estimate + high


def share_interval(members: np.ndarray, resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of the share of True in `members` (e.g. which real samples fall inside
    the generated manifold: recall). Resampling n yes/no outcomes with replacement gives a count that is
    Binomial(n, share), so that is drawn directly. For recall this holds the generated manifold fixed; in
    a Gaussian check its width matched the spread of recall over freshly drawn generated sets."""
    rng = np.random.default_rng(seed)
    n = len(members)
    return percentile_interval(rng.binomial(n, float(np.mean(members)), resamples) / n, confidence)


def kernel_inception_distance(
    real: np.ndarray,
    fake: np.ndarray,
    subsets: int = 50,
    subset_size: int = 1000,
    seed: int = 0,
    real_terms: dict[bytes, float] | None = None,
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, mean and standard deviation over subsets.

    `real_terms`, if given, keeps each real subset's own kernel term by its rows: every model measured
    with the same seed and sample count draws the same real subsets, so their terms are computed once."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(real), len(fake))
    dim = real.shape[1]
    off_diagonal = size * (size - 1)
    estimates = []
    for _ in range(subsets):
        rows = rng.choice(len(real), size, replace=False)
        x, y = real[rows], fake[rng.choice(len(fake), size, replace=False)]
        key = rows.tobytes()
        if real_terms is None or key not in real_terms:
            k_xx = _cubic_kernel(x, x, dim)
            term = (k_xx.sum() - np.trace(k_xx)) / off_diagonal
            if real_terms is not None:
                real_terms[key] = term
        k_yy, k_xy = _cubic_kernel(y, y, dim), _cubic_kernel(x, y, dim)
        estimates.append(
            (real_terms[key] if real_terms is not None else term)
            + (k_yy.sum() - np.trace(k_yy)) / off_diagonal
            - 2.0 * k_xy.mean()
        )
    return float(np.mean(estimates)), float(np.std(estimates))


def _cubic_kernel(a: np.ndarray, b: np.ndarray, dim: int) -> np.ndarray:
    return (a @ b.T / dim + 1.0) ** 3


def inception_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), mean and std over splits: high when each sample is confidently one
    digit and the digits are varied."""
    scores = []
    for part in np.array_split(probabilities, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part + 1e-12) - np.log(marginal + 1e-12)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _pairwise_sq_distances(a: np.ndarray, b: np.ndarray, b_norms: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances of each row of `a` to each row of `b` (`b_norms`: `squared_norms(b)`,
    if already known)."""
    b_norms = squared_norms(b) if b_norms is None else b_norms
    return np.maximum(squared_norms(a)[:, None] + b_norms[None, :] - 2.0 * a @ b.T, 0.0)


def squared_norms(points: np.ndarray) -> np.ndarray:
    """Each row's squared length, as the distances above use it."""
    return (points**2).sum(1)


def kth_neighbour_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point."""
    radii = np.empty(len(points))
    for start in range(0, len(points), CHUNK):
        distances = _pairwise_sq_distances(points[start : start + CHUNK], points)
        radii[start : start + CHUNK] = np.partition(distances, k, axis=1)[:, k]  # index 0 is the point itself
    return radii


def _inside(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Per query, whether it falls in any of the balls (centre, squared radius)."""
    inside = np.empty(len(queries), dtype=bool)
    for start in range(0, len(queries), CHUNK):
        distances = _pairwise_sq_distances(queries[start : start + CHUNK], centres)
        inside[start : start + CHUNK] = np.any(distances <= radii[None, :], axis=1)
    return inside


def manifold_members(
    real: np.ndarray, fake: np.ndarray, k: int = 3, real_radii: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) sample by sample: which fake samples fall
    inside the real manifold (k-NN balls around real features), and which real samples inside the fake
    one. Their shares are precision and recall. `real_radii`: `kth_neighbour_radii(real, k)`, if known."""
    radii = kth_neighbour_radii(real, k) if real_radii is None else real_radii
    return _inside(fake, real, radii), _inside(real, fake, kth_neighbour_radii(fake, k))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall: the shares of `manifold_members`."""
    precise, recalled = manifold_members(real, fake, k)
    return float(np.mean(precise)), float(np.mean(recalled))


def mode_coverage(predicted: np.ndarray, classes: int = 10) -> tuple[float, float]:
    """(entropy of the predicted-class histogram / log(classes), share of the rarest class).

    1.0 and 0.1 for a perfectly balanced sample; a collapsed generator scores near 0 on both.
    """
    shares = np.bincount(predicted, minlength=classes) / max(len(predicted), 1)
    nonzero = shares[shares > 0]
    entropy = -(nonzero * np.log(nonzero)).sum() / np.log(classes)
    return float(abs(entropy)), float(shares.min())  # abs(): a single class gives -0.0, printed "-0"


def nearest_l1(
    queries: np.ndarray,
    references: np.ndarray,
    candidates: int = 10,
    reference_norms: np.ndarray | None = None,
) -> np.ndarray:
    """Per query, the L1 distance to its nearest reference (flattened pixels in [0, 1]).

    Exact L1 against 60,000 training images is slow; the nearest by L1 is, in practice, among the nearest
    by L2, which a matrix product finds fast: L1 is computed exactly on the `candidates` nearest by L2.
    `reference_norms`: `squared_norms(references)`, if known.
    """
    norms = squared_norms(references) if reference_norms is None else reference_norms
    result = np.empty(len(queries))
    for start in range(0, len(queries), CHUNK // 4):
        block = queries[start : start + CHUNK // 4]
        distances = _pairwise_sq_distances(block, references, norms)
        shortlist = np.argpartition(distances, candidates, axis=1)[:, :candidates]
        l1 = np.abs(block[:, None, :] - references[shortlist]).sum(axis=2)
        result[start : start + len(block)] = l1.min(axis=1)
    return result


def label_accuracies(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """How often the classifier reads the digit a sample was meant to be: over all samples
    (`label_accuracy`), per digit (`label_accuracy_0` ... `_9`) and for the worst digit, because a model
    can be right on average and still draw one digit badly."""
    per_digit = {
        f"label_accuracy_{digit}": float(np.mean(predicted[labels == digit] == digit))
        for digit in np.unique(labels)
    }
    return {
        "label_accuracy": float(np.mean(predicted == labels)),
        "label_accuracy_worst": min(per_digit.values()),
        **per_digit,
    }
