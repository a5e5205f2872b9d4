"""Wasserstein GAN with weight clipping (tutorial 001, after Arjovsky et al. 2017).

A linear critic (no sigmoid) scores real images above generated ones; the Wasserstein loss is the
difference of mean scores. The Lipschitz constraint is enforced by clipping every critic weight to
[-clip, clip] after each critic update, with several critic updates per generator update. RMSprop.
"""

from __future__ import annotations

from mnistgen.models import gdl_blocks
from mnistgen.models.base import AdversarialSpec
from mnistgen.settings import Wgan


def build(cfg: Wgan) -> AdversarialSpec:
    return gdl_blocks.adversarial_spec(
        cfg, cfg.critic, "wasserstein", d_steps=cfg.critic_steps, clip=cfg.clip
    )
