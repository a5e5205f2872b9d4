"""Self-conditioned GAN (beyond the seeds: Liu et al. 2020, "Diverse image generation via self-conditioned
GANs"): cgan's networks conditioned on k-means clusters of the training images instead of digit labels.

Why: an unconditional GAN trained for minutes drops and blurs modes; conditioning on a partition of the
data gives the discriminator one easier question per cluster and the generator a reason to cover every
cluster, as labels do for cgan, without using any label (`data.clusters` makes them from the pixels).
Training is cgan's (projection discriminator, fakes carry the real batch's clusters). The saved generator
takes z plus one more N(0, 1) coordinate, u, and picks cluster c where u falls between the normal
quantiles of the clusters' cumulative shares, so it draws each cluster as often as the data holds it and
samples like any unconditional model: from noise alone (`routed_generator`).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import keras

from mnistgen.models import cgan
from mnistgen.models.base import AdversarialSpec


def build(cfg: dict[str, Any]) -> AdversarialSpec:
    # Normal noise: the saved generator reads its cluster coordinate as a N(0, 1) draw, like the rest of z.
    return cgan.conditional_spec(cfg, cfg["clusters"], "normal", self_conditioned=True)


def routed_generator(generator: keras.Model, shares: list[float]) -> keras.Model:
    """[z, label] -> image made into (z, u) -> image: u ~ N(0, 1) picks cluster c with probability
    shares[c] (u below the normal quantile of shares[0] is cluster 0, and so on).

    Built from Keras' own layers only (cropping, reshaping, `Discretization` on fixed bin boundaries), so
    the saved file loads in safe mode like every other network here."""
    z_dim = generator.inputs[0].shape[-1]
    cumulative = [sum(shares[: c + 1]) for c in range(len(shares) - 1)]
    boundaries = [NormalDist().inv_cdf(min(max(p, 1e-12), 1 - 1e-12)) for p in cumulative]
    noise = keras.Input((z_dim + 1,), name="z")
    column = keras.layers.Reshape((z_dim + 1, 1))(noise)
    z = keras.layers.Reshape((z_dim,))(keras.layers.Cropping1D((0, 1))(column))
    u = keras.layers.Reshape((1,))(keras.layers.Cropping1D((z_dim, 0))(column))
    cluster = keras.layers.Discretization(bin_boundaries=boundaries, output_mode="int", name="cluster")(u)
    return keras.Model(noise, generator([z, cluster]), name="generator")
