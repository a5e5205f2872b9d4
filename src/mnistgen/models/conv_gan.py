"""Tutorial 001's "first GAN": an upsampling convolutional generator against a convolutional discriminator.

Generator: dense to 7x7x64, two UpSampling2D + Conv2D blocks to 28x28, batch norm (momentum 0.9) and
ReLU, tanh out. Discriminator: four strided convolutions with ReLU and dropout 0.4, one output.
Binary cross-entropy; RMSprop with a faster discriminator (8e-4) than generator (4e-4); normal noise.
The generator step only updates the generator, which is what the book's "frozen discriminator" achieves.
"""

from __future__ import annotations

from mnistgen.models import gdl_blocks
from mnistgen.models.base import AdversarialSpec
from mnistgen.settings import ConvGan


def build(cfg: ConvGan) -> AdversarialSpec:
    return gdl_blocks.adversarial_spec(cfg, cfg.discriminator, "bce")
