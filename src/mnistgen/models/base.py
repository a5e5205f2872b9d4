"""The common interface of the variants: each module's `build(cfg)` returns one of these specs.

A spec is networks plus the few facts the training engine needs (losses, update rule, noise prior,
pixel scaling). The engine trains what it is handed; the variant files only build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import keras

from mnistgen.images import PixelRange
from mnistgen.settings import Optimizer

# The last layer of every network computes in float32, so bf16 runs still give float32 logits and pixels.
OUTPUT_DTYPE = "float32"
CLASSES = 10  # MNIST's digits: what a class-conditional model is asked for
GRID_SAMPLES = 64  # the images of a sample grid (an unconditional model's; a conditional one shows 10 x 10)

Noise = Literal["normal", "uniform", "uniform01", "stratified"]


@dataclass
class AdversarialSpec:
    """A generator and a discriminator (or critic) trained against each other."""

    generator: keras.Model
    discriminator: keras.Model
    g_optimizer: keras.optimizers.Optimizer
    d_optimizer: keras.optimizers.Optimizer
    loss: Literal["bce", "hinge", "wasserstein"]
    z_dim: int
    noise: Noise
    pixel_range: PixelRange = (-1.0, 1.0)
    d_steps: int = 1  # discriminator updates per generator update
    clip: float | None = None  # WGAN weight clipping of the critic
    gp_weight: float = 0.0  # WGAN-GP gradient penalty
    # Hooks for what one variant does beyond the common loop (the toy GAN's tricks live in its module):
    align_real: Callable[[Any], Any] | None = None  # applied to each real minibatch before D sees it
    pretrain: Callable[[int], None] | None = None  # run once, with a seed, before the first step
    # > 0: batch norm samples with statistics re-estimated on a fixed batch of this many noise vectors
    # (the DCGAN seed samples on batch statistics); 0: with the moving averages kept during training.
    reference_batch: int = 0
    classes: int = 0  # > 0: class-conditional; both networks take [input, label] with labels of shape (n, 1)
    # > 0: the `classes` labels are k-means clusters (`data.clusters`), and the saved generator draws its own
    # cluster from one more noise coordinate (`cgan.routed_generator`). 1 group: scgan's clusters of all the
    # training images, so it samples, serves and is evaluated as an unconditional model; 10 (CLASSES):
    # cgan's `subclusters`, the clusters of each digit's images, so it is a class-conditional model on the
    # digits. 0: the labels are the digits (or there are none).
    cluster_groups: int = 0
    mode_seeking: float = 0.0  # > 0: the weight of MSGAN's diversity term in G's loss (`losses.mode_seeking`)
    # > 0: the discriminator has a second output, the logits of the digit it reads in an image (labels
    # // (classes / CLASSES) with cgan's subclusters); its loss adds this weight times the cross-entropy of
    # the real images' digits, and G's the same of its fakes' wanted digits (`losses.classification`).
    auxiliary_classifier: float = 0.0
    # > 0 (nats): G's digit term counts a fake only while the head reads it as its digit with probability
    # below exp(-margin) (`losses.classification`): misread fakes are corrected, well-read ones left alone.
    auxiliary_margin: float = 0.0
    # True (one discriminator update a step): the step's fakes serve both updates, as in PyTorch's DCGAN
    # example. D learns from them, then G from the updated D's reading of them, through the same forward
    # pass: the generator runs once a step instead of twice. Their labels are the real batch's (paired for
    # mode seeking), so G also learns the styles as often as the data holds them. False: G's step draws
    # fresh noise and uniform labels.
    shared_fakes: bool = False
    kind: str = "adversarial"

    def __post_init__(self) -> None:
        if self.shared_fakes and (self.d_steps != 1 or self.align_real or self.gp_weight):
            raise ValueError("shared fakes need one plain discriminator update a step")


@dataclass
class ReconstructionSpec:
    """An encoder and a decoder trained to reconstruct; variational adds the KL term and sampling."""

    encoder: keras.Model
    decoder: keras.Model
    optimizer: keras.optimizers.Optimizer
    z_dim: int
    variational: bool
    r_loss_factor: float = 1.0
    pixel_range: PixelRange = (0.0, 1.0)
    classes: int = 0  # > 0: class-conditional; encoder and decoder take [input, label]
    # Where samples come from: "normal" is N(0, I), the VAE's prior; "fitted" is a Gaussian fitted to the
    # encoded training images (an autoencoder has no prior, and its codes need not sit near the origin),
    # or a mixture of `latent_components` Gaussians (the codes of ten digits are not one blob).
    latent_prior: Literal["normal", "fitted"] = "normal"
    latent_components: int = 1
    kind: str = "reconstruction"


Spec = AdversarialSpec | ReconstructionSpec


def sampling_info(spec: Spec) -> dict[str, Any]:
    """What `serving.sampler.Sampler` needs to turn the saved network into images (`model_info.json`)."""
    adversarial = isinstance(spec, AdversarialSpec)
    routed = adversarial and spec.cluster_groups > 0  # its z has one more coordinate: the cluster's
    classes = spec.classes  # the labels it is asked for: a routed generator's digits, none for scgan's
    if routed:
        classes = spec.cluster_groups if spec.cluster_groups > 1 else 0
    return {
        "kind": spec.kind,
        "z_dim": spec.z_dim + 1 if routed else spec.z_dim,
        "noise": spec.noise if adversarial else "normal",
        "pixel_range": list(spec.pixel_range),
        "classes": classes,
    }


def optimizer(cfg: Optimizer) -> keras.optimizers.Optimizer:
    """An optimizer from `{name: adam, lr, beta_1}`, `{name: rmsprop, lr}` or `{name: sgd, lr, momentum}`
    (`settings.Optimizer` holds the settings each needs)."""
    name = cfg.name
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=cfg.lr, beta_1=cfg.beta_1)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=cfg.lr)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=cfg.lr, momentum=cfg.momentum)
    raise ValueError(f"unknown optimizer {name!r}: use adam, rmsprop or sgd")


def activation(name: str) -> keras.layers.Layer:
    """The tutorials' activations by name; leaky ReLU with the slope both tutorials use (0.2)."""
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2)
    return keras.layers.Activation(name)


def normal_init(stddev: float = 0.02) -> keras.initializers.Initializer:
    """DCGAN-style N(0, 0.02) weights, as tutorial 001's GANs use."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=stddev)
