"""DCGAN (tutorial 003, after Radford et al. 2016).

Generator: z as a 1x1x100 map, a 7x7 valid transposed convolution, then two stride-2 transposed
convolutions up to 28x28, batch norm and leaky ReLU between, tanh out (pixels in [-1, 1]).
Discriminator: two stride-2 convolutions with batch norm and leaky ReLU, then a 7x7 valid convolution
to one logit. Non-saturating loss, Adam 2e-4 with beta1 0.5, uniform noise in [-1, 1].
The stride-2 layers' `kernel` is 5 as in the tutorial; 4, a multiple of the stride, covers each output
pixel evenly. `discriminator.batch_norm: false` leaves the discriminator's batch norm out (the convolutions
then have biases): batch norm normalises the real and the fake batch apart, so on small batches the
discriminator partly judges a batch's statistics rather than each image.
The tutorial generates with batch norm in training mode (it found the moving averages blurrier and prone
to one digit), which makes every image depend on the rest of its batch. Here the generator samples in
inference mode with statistics re-estimated on a fixed reference batch of `reference_batch` noise
vectors (what training mode sees on a large batch): the tutorial's look, and one image per seed.
"""

from __future__ import annotations

import keras

from mnistgen.models.base import OUTPUT_DTYPE, AdversarialSpec, activation, optimizer
from mnistgen.settings import Dcgan


def build(cfg: Dcgan) -> AdversarialSpec:
    z_dim = cfg.z_dim
    g_wide, g_narrow = cfg.generator.filters
    d_narrow, d_wide = cfg.discriminator.filters
    g_kernel, d_kernel = cfg.generator.kernel, cfg.discriminator.kernel
    d_norm = cfg.discriminator.batch_norm

    def normalised() -> list[keras.layers.Layer]:  # the discriminator's batch norm, if it has one
        return [keras.layers.BatchNormalization()] if d_norm else []

    generator = keras.Sequential(
        [
            keras.Input((z_dim,)),
            keras.layers.Reshape((1, 1, z_dim)),
            keras.layers.Conv2DTranspose(g_wide, 7, padding="valid", use_bias=False),
            keras.layers.BatchNormalization(),
            activation("leaky_relu"),
            keras.layers.Conv2DTranspose(g_narrow, g_kernel, strides=2, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            activation("leaky_relu"),
            keras.layers.Conv2DTranspose(1, g_kernel, strides=2, padding="same", dtype=OUTPUT_DTYPE),
            keras.layers.Activation("tanh", dtype=OUTPUT_DTYPE),
        ],
        name="generator",
    )
    discriminator = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(d_narrow, d_kernel, strides=2, padding="same", use_bias=not d_norm),
            *normalised(),
            activation("leaky_relu"),
            keras.layers.Conv2D(d_wide, d_kernel, strides=2, padding="same", use_bias=not d_norm),
            *normalised(),
            activation("leaky_relu"),
            keras.layers.Conv2D(1, 7, padding="valid", dtype=OUTPUT_DTYPE),
            keras.layers.Flatten(dtype=OUTPUT_DTYPE),  # (batch, 1): a logit
        ],
        name="discriminator",
    )
    return AdversarialSpec(
        generator=generator,
        discriminator=discriminator,
        g_optimizer=optimizer(cfg.generator.optimizer),
        d_optimizer=optimizer(cfg.discriminator.optimizer),
        loss="bce",
        z_dim=z_dim,
        noise=cfg.noise,
        reference_batch=cfg.reference_batch or 0,
    )
