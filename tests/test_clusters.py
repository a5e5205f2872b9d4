"""scgan's cluster labels: k-means on the images' principal components, a pure function of its inputs."""

from __future__ import annotations

import numpy as np
import pytest

from mnistgen.data.clusters import ClusterError, cluster_labels, relabel, shares
from mnistgen.data.idx import Split


def two_kinds_of_image(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images with a block of ink in the top-left or the bottom-right corner (which: the returned kind)."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, 2, rows)
    images = rng.integers(0, 30, (rows, 28, 28)).astype(np.uint8)  # faint noise everywhere
    for image, kind in zip(images, kinds, strict=True):
        corner = slice(2, 12) if kind == 0 else slice(16, 26)
        image[corner, corner] = 255
    return images, kinds


def test_clusters_separate_what_differs_and_ignore_the_noise() -> None:
    images, kinds = two_kinds_of_image(400, seed=0)
    labels = cluster_labels(images, 2, seed=0)
    assert set(labels.tolist()) == {0, 1}
    # the same partition as the kinds, whichever number each cluster got
    assert len(set(zip(labels.tolist(), kinds.tolist(), strict=True))) == 2


def test_the_same_seed_gives_the_same_clusters() -> None:
    images, _ = two_kinds_of_image(300, seed=1)
    rng = np.random.default_rng(2)
    images[:150] = rng.integers(0, 256, (150, 28, 28)).astype(np.uint8)  # a part with no clear clusters
    first, again = cluster_labels(images, 5, seed=3), cluster_labels(images, 5, seed=3)
    np.testing.assert_array_equal(first, again)


def test_relabel_keeps_the_images_and_shares_count_the_clusters() -> None:
    images, digits = two_kinds_of_image(200, seed=4)
    clustered = relabel(Split(images, digits.astype(np.uint8)), 2, seed=0)
    assert clustered.images is images
    counts = np.bincount(clustered.labels, minlength=2)
    assert shares(clustered.labels, 2) == [counts[0] / 200, counts[1] / 200]
    assert shares(np.array([0, 0, 2, 2], np.uint8), 4) == [0.5, 0.0, 0.5, 0.0]


def test_clusters_within_digits_number_each_digits_own_clusters_after_it() -> None:
    """cgan's `subclusters`: each digit's images are clustered on their own (the same k-means as scgan's)
    and labelled digit x clusters + cluster, so label // clusters is the digit."""
    images, kinds = two_kinds_of_image(300, seed=7)
    digits = np.random.default_rng(8).integers(0, 3, 300).astype(np.uint8)
    clustered = relabel(Split(images, digits), 2, seed=0, within_digits=True)
    np.testing.assert_array_equal(clustered.labels // 2, digits)
    for digit in range(3):
        rows = digits == digit
        own = cluster_labels(images[rows], 2, seed=0)
        np.testing.assert_array_equal(clustered.labels[rows], digit * 2 + own)
        # within a digit, the two clusters are the two kinds of image
        assert len(set(zip(own.tolist(), kinds[rows].tolist(), strict=True))) == 2


def test_more_clusters_than_images_is_refused_with_the_fix() -> None:
    images, _ = two_kinds_of_image(20, seed=5)
    refused = r"30 clusters of 20 training images.*Fix: set variants.scgan.clusters"
    with pytest.raises(ClusterError, match=refused):
        cluster_labels(images, 30, seed=0)


def test_cluster_numbers_above_255_survive() -> None:
    """Labels are not squeezed into uint8: cluster 300 stays 300 (a wrap-around merged clusters once)."""
    images = np.random.default_rng(6).integers(0, 256, (400, 28, 28)).astype(np.uint8)
    labels = cluster_labels(images, 300, seed=0)
    assert labels.max() == 299 and len(set(labels.tolist())) == 300
