"""Cluster labels for a self-conditioned GAN (`scgan`; Liu et al. 2020, "Diverse image generation via
self-conditioned GANs"): k-means clusters of the training images stand in for the digit labels, so an
unconditional model gets the conditional GAN's machinery without using a single label. cgan's
`subclusters` uses the same clusters inside each digit: a digit's images split into styles, so the networks
are conditioned on (digit, style) pairs and the digit still decides what is drawn.

The clusters are k-means on the images' first principal components (the pixels' distances in 784
dimensions are mostly noise), a pure function of (images, clusters, seed): the same seed gives the same
labels on any machine whose arithmetic agrees, so a run stays reproducible.
"""

from __future__ import annotations

import logging

import numpy as np

from mnistgen.data.idx import Split
from mnistgen.errors import MnistgenError

PCA_COMPONENTS = 50
KMEANS_STARTS = 3  # k-means++ starts; the lowest inertia wins

log = logging.getLogger(__name__)


class ClusterError(MnistgenError):
    """More clusters asked for than there are images to put in them."""


def cluster_labels(images: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """The k-means cluster (0..clusters-1, uint16) of each image, uint8 images of shape (n, 28, 28)."""
    if clusters > len(images):
        raise ClusterError(
            f"{clusters} clusters of {len(images)} training images: each cluster needs an image at least. "
            "Fix: set variants.scgan.clusters (or variants.cgan.subclusters, per digit) below the number of "
            "training images (e.g. 100)."
        )
    from sklearn.cluster import KMeans  # late: scikit-learn takes a second to import, and only scgan needs it
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    pixels = images.reshape(len(images), -1).astype(np.float64) / 255.0
    # One BLAS thread: the number of threads changes how sums are rounded, and a rounding can move an image
    # that sits on a cluster boundary (seen with 1 and 2 threads in float32); float64 for the same reason.
    with threadpool_limits(1):
        codes = PCA(PCA_COMPONENTS, svd_solver="randomized", random_state=seed).fit_transform(pixels)
        kmeans = KMeans(clusters, n_init=KMEANS_STARTS, random_state=seed).fit(codes)
    # up to 1,000 clusters (settings.Scgan.clusters): more than uint8 holds
    return kmeans.labels_.astype(np.uint16)


def relabel(train: Split, clusters: int, seed: int, within_digits: bool = False) -> Split:
    """The training split with its digit labels replaced by cluster labels: the k-means clusters of all its
    images (scgan), or `within_digits` each digit's own `clusters`, numbered digit x clusters + cluster
    (cgan's `subclusters`: label // clusters is still the digit)."""
    if not within_digits:
        return Split(train.images, cluster_labels(train.images, clusters, seed))
    labels = np.zeros(len(train.labels), np.uint16)
    for digit in np.unique(train.labels):
        rows = train.labels == digit
        labels[rows] = int(digit) * clusters + cluster_labels(train.images[rows], clusters, seed)
    return Split(train.images, labels)


def shares(labels: np.ndarray, clusters: int) -> list[float]:
    """Each cluster's share of the training images: how often the saved generator draws it."""
    return (np.bincount(labels, minlength=clusters) / len(labels)).tolist()


def clustered(train: Split, classes: int, groups: int, seed: int, variant: str) -> Split:
    """A GAN's training split labelled by k-means cluster instead of digit: `classes` clusters of all the
    images (scgan, `groups` 1), or `classes // groups` of each digit's (cgan's `subclusters`, `groups` 10);
    logged with how far the clusters follow the digits.

    Args:
        train: the training split, labelled by digit.
        classes: the labels the networks are conditioned on.
        groups: 1 for clusters of all the images, else the number of digits.
        seed: the run's seed (PCA and k-means).
        variant: the variant's name, for the log.

    Returns:
        The split with its cluster labels.
    """
    within_digits = groups > 1
    clusters = classes // groups
    result = relabel(train, clusters, seed, within_digits)
    if within_digits:
        log.info("%s: %d k-means clusters in each digit's training images (seed %d)", variant, clusters, seed)
        return result
    # How far the clusters follow the digits (read, never used: the labels stay out of training).
    purity = sum(np.bincount(train.labels[result.labels == c]).max(initial=0) for c in range(clusters))
    log.info(
        "%s: %d k-means clusters of the training images (seed %d); %.0f%% of the images share their "
        "cluster's most common digit",
        variant,
        clusters,
        seed,
        100 * purity / len(train.labels),
    )
    return result
