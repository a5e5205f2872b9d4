"""The training batches of one epoch: their order is a function of (seed, epoch) alone.

So a resumed run sees exactly the batches an uninterrupted one would have seen, and two runs with the same
seed see the same batches in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from mnistgen.data.idx import Split
from mnistgen.models.base import PixelRange
from mnistgen.models.toy_gan_1d import DATA_MEAN, DATA_STD


def toy_batches(seed: int, epoch: int, skip: int, steps: int, rows: int) -> Iterator[tf.Tensor]:
    """The toy GAN's data: fresh N(-1, 1) draws, one generator per (seed, epoch, step)."""
    for i in range(skip, steps):
        rng = np.random.default_rng([seed, epoch, i])
        yield tf.constant(rng.normal(DATA_MEAN, DATA_STD, (rows, 1)), tf.float32)


def image_batches(
    train: Split,
    seed: int,
    epoch: int,
    skip: int,
    steps: int,
    rows: int,
    pixel_range: PixelRange,
    conditional: bool,
) -> Iterator[tf.Tensor | tuple[tf.Tensor, tf.Tensor]]:
    """The epoch's batches after the first `skip`: images scaled to `pixel_range`, (images, labels of shape
    (n, 1)) for a conditional model."""
    order = np.random.default_rng([seed, epoch]).permutation(len(train.images))[: steps * rows]
    low, high = pixel_range

    def scale(x: tf.Tensor) -> tf.Tensor:
        return tf.cast(x, tf.float32)[..., None] / 255.0 * (high - low) + low

    if conditional:
        slices = (train.images[order], train.labels[order].astype(np.int32)[:, None])
        transform = lambda x, y: (scale(x), y)  # noqa: E731
    else:
        slices, transform = train.images[order], scale
    dataset = (
        tf.data.Dataset.from_tensor_slices(slices)
        .batch(rows, drop_remainder=True)
        .skip(skip)
        .map(transform, num_parallel_calls=tf.data.AUTOTUNE)  # deterministic order (tf.data's default)
        .prefetch(tf.data.AUTOTUNE)
    )
    yield from dataset
