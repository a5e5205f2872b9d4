"""The 1-D toy GAN of tutorial 002: learn to sample N(-1, 1) from noise.

G and D are three-layer tanh perceptrons with 11 hidden units each (6 + 5); the tutorial found ReLU units
saturating and bigger nets failing to converge. Plain gradient descent. Two of its tricks are options:
- manifold alignment (`noise: stratified`, `sort_batches`): noise on an evenly spaced, jittered grid over
  [-5, 5] and real samples sorted, so neighbouring z map to neighbouring x and the map stays smooth;
- pre-training D (`discriminator.pretrain_steps`) by least squares against the data density before the
  game starts.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from mnistgen.models.base import OUTPUT_DTYPE, AdversarialSpec, optimizer
from mnistgen.settings import ToyGan

NEEDS_MNIST = False  # its data is drawn from N(-1, 1) as it trains
DATA_MEAN, DATA_STD = -1.0, 1.0
DOMAIN = (-5.0, 5.0)  # where N(-1, 1) keeps practically all its mass


def mlp(name: str, hidden: list[int]) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((1,)),
            *[keras.layers.Dense(units, activation="tanh") for units in hidden],
            keras.layers.Dense(1, dtype=OUTPUT_DTYPE),
        ],
        name=name,
    )


def data_density(x: tf.Tensor) -> tf.Tensor:
    return tf.exp(-0.5 * ((x - DATA_MEAN) / DATA_STD) ** 2) / (DATA_STD * math.sqrt(2 * math.pi))


def sort_batch(real: tf.Tensor) -> tf.Tensor:
    """Manifold alignment: real samples in ascending order, as the stratified noise is."""
    return tf.sort(real, axis=0)


def pretrain_discriminator(discriminator: keras.Model, cfg: ToyGan, seed: int) -> None:
    """Fit sigmoid(D(x)) to p_data(x) at uniform points of the domain, by mean squared error, with an
    optimizer of D's settings (its own: the game's starts fresh)."""
    rng = tf.random.Generator.from_seed(seed)
    opt = optimizer(cfg.discriminator.optimizer)

    @tf.function
    def step() -> tf.Tensor:
        x = rng.uniform((cfg.batch_size, 1), *DOMAIN)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((tf.sigmoid(discriminator(x, training=True)) - data_density(x)) ** 2)
        grads = tape.gradient(loss, discriminator.trainable_variables)
        opt.apply_gradients(zip(grads, discriminator.trainable_variables, strict=True))
        return loss

    for _ in range(cfg.discriminator.pretrain_steps):
        step()


def build(cfg: ToyGan) -> AdversarialSpec:
    g, d = cfg.generator, cfg.discriminator
    discriminator = mlp("discriminator", d.hidden)
    return AdversarialSpec(
        generator=mlp("generator", g.hidden),
        discriminator=discriminator,
        g_optimizer=optimizer(g.optimizer),
        d_optimizer=optimizer(d.optimizer),
        loss="bce",
        z_dim=1,
        noise=cfg.noise,
        align_real=sort_batch if cfg.sort_batches else None,
        pretrain=(lambda seed: pretrain_discriminator(discriminator, cfg, seed))
        if d.pretrain_steps
        else None,
        kind="toy",
    )
