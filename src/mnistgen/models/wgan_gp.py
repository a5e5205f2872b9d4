"""WGAN with gradient penalty (seed 001, after Gulrajani et al. 2017).

The critic's Lipschitz constraint becomes a penalty: `gp_weight * (||grad critic(x_hat)|| - 1)^2` at
random interpolates x_hat between real and generated images (one uniform weight per image). No weight
clipping, and no batch norm in the critic, whose per-image gradients batch norm would couple.
"""

from __future__ import annotations

from typing import Any

from mnistgen.config import ConfigError
from mnistgen.models import gdl_blocks
from mnistgen.models.base import AdversarialSpec, optimizer


def build(cfg: dict[str, Any]) -> AdversarialSpec:
    if cfg["critic"]["batch_norm_momentum"]:
        raise ConfigError(
            "wgan_gp: the critic must not use batch norm (set critic.batch_norm_momentum: null)"
        )
    return AdversarialSpec(
        generator=gdl_blocks.generator(cfg["generator"], cfg["z_dim"]),
        discriminator=gdl_blocks.critic(cfg["critic"]),
        g_optimizer=optimizer(cfg["generator"]["optimizer"]),
        d_optimizer=optimizer(cfg["critic"]["optimizer"]),
        loss="wasserstein",
        z_dim=cfg["z_dim"],
        noise=cfg["noise"],
        d_steps=cfg["critic_steps"],
        gp_weight=cfg["gp_weight"],
    )
