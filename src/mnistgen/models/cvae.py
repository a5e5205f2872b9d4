"""Conditional VAE (beyond the tutorials: Sohn et al. 2015), on the VAE's convolutional trunk.

The one-hot digit joins the encoder's flattened features before the mean and log-variance heads, and
joins z before the decoder's first dense layer, so q(z | x, y) and p(x | z, y): the latent space is left
to hold the style (slant, thickness) while the label decides the digit. Same loss as the VAE, and the
same `latent_prior: fitted`, fitted for each digit (one Gaussian or a mixture) over that digit's training
images encoded with it: a drawn code is a style that digit's images have, even where a short run has left
some of the digit in the code.
"""

from __future__ import annotations

import keras

from mnistgen.models.autoencoder import decoder, encoder_features
from mnistgen.models.base import CLASSES, OUTPUT_DTYPE, ReconstructionSpec, optimizer
from mnistgen.settings import Vae


def one_hot(label: keras.KerasTensor) -> keras.KerasTensor:
    return keras.layers.Flatten()(keras.layers.CategoryEncoding(CLASSES, output_mode="one_hot")(label))


def build(cfg: Vae) -> ReconstructionSpec:
    image, features, shape = encoder_features(cfg)
    label = keras.Input((1,), dtype="int32", name="label")
    joined = keras.layers.Concatenate()([features, one_hot(label)])
    mu = keras.layers.Dense(cfg.z_dim, dtype=OUTPUT_DTYPE, name="mu")(joined)
    log_var = keras.layers.Dense(cfg.z_dim, dtype=OUTPUT_DTYPE, name="log_var")(joined)

    z, wanted = keras.Input((cfg.z_dim,), name="z"), keras.Input((1,), dtype="int32", name="label")
    trunk = decoder(cfg.model_copy(update={"z_dim": cfg.z_dim + CLASSES}), shape)
    conditioned = keras.layers.Concatenate()([z, one_hot(wanted)])
    return ReconstructionSpec(
        encoder=keras.Model([image, label], [mu, log_var], name="encoder"),
        decoder=keras.Model([z, wanted], trunk(conditioned), name="decoder"),
        optimizer=optimizer(cfg.optimizer),
        z_dim=cfg.z_dim,
        variational=True,
        r_loss_factor=cfg.r_loss_factor,
        classes=CLASSES,
        latent_prior=cfg.latent_prior,
        latent_components=cfg.latent_components,
    )
