"""Vanilla GAN with one-hidden-layer MLPs (tutorials 000 and 004; tutorial 003's baseline).

Goodfellow et al.'s original model: flattened images in [0, 1] (sigmoid output), Xavier-initialised
dense layers, a discriminator that outputs a logit trained with sigmoid cross-entropy, and the
non-saturating generator loss (maximise log D(G(z))). Adam with TensorFlow's defaults.
"""

from __future__ import annotations

import keras

from mnistgen.models.base import OUTPUT_DTYPE, AdversarialSpec, optimizer
from mnistgen.settings import MlpGan

IMAGE_PIXELS = 28 * 28


def build(cfg: MlpGan) -> AdversarialSpec:
    z_dim, g, d = cfg.z_dim, cfg.generator, cfg.discriminator
    generator = keras.Sequential(
        [
            keras.Input((z_dim,)),
            keras.layers.Dense(g.hidden, activation="relu", kernel_initializer=g.init),
            keras.layers.Dense(IMAGE_PIXELS, kernel_initializer=g.init, dtype=OUTPUT_DTYPE),
            keras.layers.Activation("sigmoid", dtype=OUTPUT_DTYPE),
            keras.layers.Reshape((28, 28, 1), dtype=OUTPUT_DTYPE),
        ],
        name="generator",
    )
    discriminator = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(d.hidden, activation="relu", kernel_initializer=d.init),
            keras.layers.Dense(1, kernel_initializer=d.init, dtype=OUTPUT_DTYPE),  # a logit
        ],
        name="discriminator",
    )
    return AdversarialSpec(
        generator=generator,
        discriminator=discriminator,
        g_optimizer=optimizer(g.optimizer),
        d_optimizer=optimizer(d.optimizer),
        loss="bce",
        z_dim=z_dim,
        noise=cfg.noise,
        pixel_range=(0.0, 1.0),
    )
