"""WGAN with gradient penalty (seed 001, after Gulrajani et al. 2017).

The critic's Lipschitz constraint becomes a penalty: `gp_weight * (||grad critic(x_hat)|| - 1)^2` at
random interpolates x_hat between real and generated images (one uniform weight per image). No weight
clipping, and no batch norm in the critic, whose per-image gradients batch norm would couple.
"""

from __future__ import annotations

from typing import Any

from mnistgen.config import ConfigError
from mnistgen.models import gdl_blocks
from mnistgen.models.base import AdversarialSpec


def build(cfg: dict[str, Any]) -> AdversarialSpec:
    if cfg["critic"]["batch_norm_momentum"]:
        raise ConfigError(
            "wgan_gp: the critic must not use batch norm (set critic.batch_norm_momentum: null)"
        )
    return gdl_blocks.adversarial_spec(
        cfg, "critic", "wasserstein", d_steps=cfg["critic_steps"], gp_weight=cfg["gp_weight"]
    )
