"""WGAN with gradient penalty (tutorial 001, after Gulrajani et al. 2017).

The critic's Lipschitz constraint becomes a penalty: `gp_weight * (||grad critic(x_hat)|| - 1)^2` at
random interpolates x_hat between real and generated images (one uniform weight per image). No weight
clipping, and no batch norm in the critic, whose per-image gradients batch norm would couple (its settings,
`settings.PenaltyCritic`, refuse batch norm).
"""

from __future__ import annotations

from mnistgen.models import gdl_blocks
from mnistgen.models.base import AdversarialSpec
from mnistgen.settings import WganGp


def build(cfg: WganGp) -> AdversarialSpec:
    return gdl_blocks.adversarial_spec(
        cfg, cfg.critic, "wasserstein", d_steps=cfg.critic_steps, gp_weight=cfg.gp_weight
    )
