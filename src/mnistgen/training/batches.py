"""The training batches of one epoch: their order is a function of (seed, epoch) alone.

So a resumed run sees exactly the batches an uninterrupted one would have seen, and two runs with the same
seed see the same batches in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from mnistgen.data.idx import Split
from mnistgen.images import PixelRange, to_model_range, to_unit
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
    (n, 1)) for a conditional model.

    Plain numpy slicing, one batch at a time: MNIST is in memory, and a tf.data pipeline here cost more
    than the step itself for the convolutional variants (its threads waited on the training's).
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(train.images))[: steps * rows]
    for step in range(skip, steps):
        chosen = order[step * rows : (step + 1) * rows]
        images = tf.constant(to_model_range(to_unit(train.images[chosen]), pixel_range)[..., None])
        if conditional:
            yield images, tf.constant(train.labels[chosen].astype(np.int32)[:, None])
        else:
            yield images
