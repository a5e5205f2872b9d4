"""The variants, one module each, in one table.

Each module exposes `build(cfg) -> Spec` (see `base.py`) for its section of `params.yaml`, and trains on
MNIST unless it sets `NEEDS_MNIST = False`.
"""

from __future__ import annotations

from types import ModuleType

from mnistgen.models import (
    autoencoder,
    cgan,
    conv_gan,
    cvae,
    dcgan,
    mlp_gan,
    scgan,
    toy_gan_1d,
    vae,
    wgan,
    wgan_gp,
)

VARIANTS: dict[str, ModuleType] = {
    "mlp_gan": mlp_gan,
    "dcgan": dcgan,
    "conv_gan": conv_gan,
    "wgan": wgan,
    "wgan_gp": wgan_gp,
    "autoencoder": autoencoder,
    "vae": vae,
    "toy_gan_1d": toy_gan_1d,
    "cgan": cgan,
    "cvae": cvae,
    "scgan": scgan,
}
