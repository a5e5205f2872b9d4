"""Convolutional autoencoder (tutorial 001, Generative Deep Learning ch. 3).

Encoder: Conv2D [32, 64, 64, 64], kernel 3, strides [1, 2, 2, 1], leaky ReLU, then a dense layer to a
2-D latent point. Decoder: its mirror in transposed convolutions, sigmoid out (pixels in [0, 1]).
Trained on per-pixel mean squared error with Adam 5e-4. It is not a generative model by design: nothing
pulls its codes towards a known distribution. The book samples points where the training codes lie;
`latent_prior: fitted` does the same with a Gaussian fitted to the codes (mean and covariance), or a
mixture of `latent_components` Gaussians, while `normal` draws from N(0, I), which may decode to nothing
recognisable (the faithful profile shows it).
"""

from __future__ import annotations

import keras
import numpy as np

from mnistgen.models.base import OUTPUT_DTYPE, ReconstructionSpec, optimizer
from mnistgen.settings import Autoencoder

IMAGE_SHAPE = (28, 28, 1)


def encoder_features(cfg: Autoencoder) -> tuple[keras.KerasTensor, keras.KerasTensor, tuple[int, ...]]:
    """The convolutional trunk shared with the VAE: (input, flattened features, shape before flattening)."""
    image = keras.Input(IMAGE_SHAPE, name="encoder_input")
    x = image
    for filters, stride in zip(cfg.encoder_filters, cfg.encoder_strides, strict=True):
        x = keras.layers.Conv2D(filters, cfg.kernel, strides=stride, padding="same")(x)
        x = keras.layers.LeakyReLU()(x)  # Keras' default slope (0.3), as in the book
        if cfg.batch_norm:
            x = keras.layers.BatchNormalization()(x)
        if cfg.dropout:
            x = keras.layers.Dropout(cfg.dropout)(x)
    shape = tuple(int(d) for d in x.shape[1:])
    return image, keras.layers.Flatten()(x), shape


def decoder(cfg: Autoencoder, shape: tuple[int, ...]) -> keras.Model:
    z = keras.Input((cfg.z_dim,), name="decoder_input")
    x = keras.layers.Dense(int(np.prod(shape)))(z)
    x = keras.layers.Reshape(shape)(x)
    last = len(cfg.decoder_filters) - 1
    for i, (filters, stride) in enumerate(zip(cfg.decoder_filters, cfg.decoder_strides, strict=True)):
        if i < last:
            x = keras.layers.Conv2DTranspose(filters, cfg.kernel, strides=stride, padding="same")(x)
            x = keras.layers.LeakyReLU()(x)
            if cfg.batch_norm:
                x = keras.layers.BatchNormalization()(x)
            if cfg.dropout:
                x = keras.layers.Dropout(cfg.dropout)(x)
        else:
            x = keras.layers.Conv2DTranspose(
                filters, cfg.kernel, strides=stride, padding="same", dtype=OUTPUT_DTYPE
            )(x)
            x = keras.layers.Activation("sigmoid", dtype=OUTPUT_DTYPE)(x)
    return keras.Model(z, x, name="decoder")


def build(cfg: Autoencoder) -> ReconstructionSpec:
    image, features, shape = encoder_features(cfg)
    point = keras.layers.Dense(cfg.z_dim, dtype=OUTPUT_DTYPE, name="encoder_output")(features)
    return ReconstructionSpec(
        encoder=keras.Model(image, point, name="encoder"),
        decoder=decoder(cfg, shape),
        optimizer=optimizer(cfg.optimizer),
        z_dim=cfg.z_dim,
        variational=False,
        latent_prior=cfg.latent_prior,
        latent_components=cfg.latent_components,
    )
