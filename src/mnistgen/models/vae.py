"""Variational autoencoder (tutorial 001, Generative Deep Learning ch. 3).

The autoencoder's trunk, but the encoder outputs the mean and log-variance of a diagonal Gaussian;
training samples z = mu + exp(log_var / 2) * eps (the reparameterisation trick, done by the engine so
no Lambda layer ends up in the saved model), and the loss is r_loss_factor * MSE + KL(q(z|x) || N(0, I)).
The large factor (1000 in the book) keeps the KL term from washing out the reconstructions.
Beyond the tutorial, `latent_prior: fitted` samples from a Gaussian fitted to the aggregate posterior over the
training images (the means' covariance plus the average posterior variance): where the decoder learnt to
decode, which a short run leaves far from N(0, I) ("ex-post density estimation", Ghosh et al. 2020);
`latent_components: K` fits a mixture of K Gaussians instead, as that paper does: one Gaussian over ten
digits' codes also covers the space between them, which decodes to blurred hybrids.
"""

from __future__ import annotations

import keras

from mnistgen.models.autoencoder import decoder, encoder_features
from mnistgen.models.base import OUTPUT_DTYPE, ReconstructionSpec, optimizer
from mnistgen.settings import Vae


def build(cfg: Vae) -> ReconstructionSpec:
    image, features, shape = encoder_features(cfg)
    mu = keras.layers.Dense(cfg.z_dim, dtype=OUTPUT_DTYPE, name="mu")(features)
    log_var = keras.layers.Dense(cfg.z_dim, dtype=OUTPUT_DTYPE, name="log_var")(features)
    return ReconstructionSpec(
        encoder=keras.Model(image, [mu, log_var], name="encoder"),
        decoder=decoder(cfg, shape),
        optimizer=optimizer(cfg.optimizer),
        z_dim=cfg.z_dim,
        variational=True,
        r_loss_factor=cfg.r_loss_factor,
        latent_prior=cfg.latent_prior,
        latent_components=cfg.latent_components,
    )
