"""The configurable convolutional generator and critic of tutorial 001 (Generative Deep Learning, ch. 4).

Its GAN, WGAN and WGAN-GP share these two builders and differ only in settings and losses, so the
variant files pass their own `cfg` sections through. Values are the book's notebooks', adapted to 28x28.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from mnistgen.models.base import OUTPUT_DTYPE, AdversarialSpec, activation, normal_init, optimizer
from mnistgen.settings import ConvGan, ConvGenerator, ConvNetwork, Wgan, WganGp


def generator(cfg: ConvGenerator, z_dim: int) -> keras.Model:
    """Dense -> reshape -> [UpSampling2D + Conv2D | Conv2DTranspose] blocks -> tanh."""
    layers: list[keras.layers.Layer] = [
        keras.Input((z_dim,)),
        keras.layers.Dense(int(np.prod(cfg.initial_shape)), kernel_initializer=normal_init()),
    ]
    if cfg.batch_norm_momentum:
        layers.append(keras.layers.BatchNormalization(momentum=cfg.batch_norm_momentum))
    layers += [activation(cfg.activation), keras.layers.Reshape(tuple(cfg.initial_shape))]
    if cfg.dropout:
        layers.append(keras.layers.Dropout(cfg.dropout))
    last = len(cfg.filters) - 1
    for i, (filters, upsample, stride) in enumerate(zip(cfg.filters, cfg.upsample, cfg.strides, strict=True)):
        dtype = OUTPUT_DTYPE if i == last else None
        if upsample == 2:
            # Repeat pixels, then convolve: the book's alternative to transposed convolutions'
            # checkerboard artefacts.
            layers += [
                keras.layers.UpSampling2D(),
                keras.layers.Conv2D(
                    filters, cfg.kernel, padding="same", kernel_initializer=normal_init(), dtype=dtype
                ),
            ]
        else:
            layers.append(
                keras.layers.Conv2DTranspose(
                    filters,
                    cfg.kernel,
                    strides=stride,
                    padding="same",
                    kernel_initializer=normal_init(),
                    dtype=dtype,
                )
            )
        if i < last:
            if cfg.batch_norm_momentum:
                layers.append(keras.layers.BatchNormalization(momentum=cfg.batch_norm_momentum))
            layers.append(activation(cfg.activation))
    layers.append(keras.layers.Activation("tanh", dtype=OUTPUT_DTYPE))
    return keras.Sequential(layers, name="generator")


def critic(cfg: ConvNetwork) -> keras.Model:
    """Strided Conv2D blocks (batch norm after the first when set, optional dropout) -> one linear unit.

    The output is a logit for the GAN (sigmoid cross-entropy) and an unbounded score for the WGANs.
    """
    layers: list[keras.layers.Layer] = [keras.Input((28, 28, 1))]
    for i, (filters, stride) in enumerate(zip(cfg.filters, cfg.strides, strict=True)):
        layers.append(
            keras.layers.Conv2D(
                filters, cfg.kernel, strides=stride, padding="same", kernel_initializer=normal_init()
            )
        )
        if cfg.batch_norm_momentum and i > 0:
            layers.append(keras.layers.BatchNormalization(momentum=cfg.batch_norm_momentum))
        layers.append(activation(cfg.activation))
        if cfg.dropout:
            layers.append(keras.layers.Dropout(cfg.dropout))
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(1, kernel_initializer=normal_init(), dtype=OUTPUT_DTYPE),
    ]
    return keras.Sequential(layers, name="discriminator")


def adversarial_spec(
    cfg: ConvGan | Wgan | WganGp, critic_cfg: ConvNetwork, loss: str, **rules: Any
) -> AdversarialSpec:
    """The spec of one of the book's GANs: these networks, each with its own optimizer, plus `rules`."""
    return AdversarialSpec(
        generator=generator(cfg.generator, cfg.z_dim),
        discriminator=critic(critic_cfg),
        g_optimizer=optimizer(cfg.generator.optimizer),
        d_optimizer=optimizer(critic_cfg.optimizer),
        loss=loss,
        z_dim=cfg.z_dim,
        noise=cfg.noise,
        **rules,
    )
