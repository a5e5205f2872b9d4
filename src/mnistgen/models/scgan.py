"""Self-conditioned GAN (beyond the tutorials: Liu et al. 2020, "Diverse image generation via self-conditioned
GANs"): cgan's networks conditioned on k-means clusters of the training images instead of digit labels.

Why: an unconditional GAN trained for minutes drops and blurs modes; conditioning on a partition of the
data gives the discriminator one easier question per cluster and the generator a reason to cover every
cluster, as labels do for cgan, without using any label (`data.clusters` makes them from the pixels).
Training is cgan's (projection discriminator, fakes carry the real batch's clusters). The saved generator
takes z plus one more N(0, 1) coordinate, u, and picks cluster c where u falls between the normal
quantiles of the clusters' cumulative shares, so it draws each cluster as often as the data holds it and
samples like any unconditional model: from noise alone (`cgan.routed_generator`).
"""

from __future__ import annotations

from mnistgen.models import cgan
from mnistgen.models.base import AdversarialSpec
from mnistgen.settings import Scgan


def build(cfg: Scgan) -> AdversarialSpec:
    # Normal noise: the saved generator reads its cluster coordinate as a N(0, 1) draw, like the rest of z.
    return cgan.conditional_spec(cfg, cfg.clusters, "normal", cluster_groups=1)
