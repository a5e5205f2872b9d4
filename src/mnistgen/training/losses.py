"""The losses the variants plug into the engine. Discriminator outputs are logits or critic scores."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf


def bce_discriminator(real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
    """-log D(x) - log(1 - D(G(z))) with D = sigmoid(logit); softplus keeps it finite for large logits."""
    return tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake))


def bce_generator(fake: tf.Tensor) -> tf.Tensor:
    """The non-saturating generator loss -log D(G(z)): strong gradients while D still wins easily."""
    return tf.reduce_mean(tf.nn.softplus(-fake))


def wasserstein_critic(real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
    """The critic maximises E[f(x)] - E[f(G(z))]; as a loss, its negative."""
    return tf.reduce_mean(fake) - tf.reduce_mean(real)


def wasserstein_generator(fake: tf.Tensor) -> tf.Tensor:
    return -tf.reduce_mean(fake)


def hinge_discriminator(real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
    """The hinge loss of SNGAN and BigGAN (Lim & Ye 2017; Miyato et al. 2018): E[max(0, 1 - D(x))] +
    E[max(0, 1 + D(G(z)))]. A sample already past its margin gives no gradient, so D stops pushing on
    what it tells apart and spends its updates on the rest; the generator's loss is -E[D(G(z))]."""
    return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))


LOSSES: dict[str, tuple[Callable[[tf.Tensor, tf.Tensor], tf.Tensor], Callable[[tf.Tensor], tf.Tensor]]] = {
    "bce": (bce_discriminator, bce_generator),
    "wasserstein": (wasserstein_critic, wasserstein_generator),
    "hinge": (hinge_discriminator, wasserstein_generator),  # the same generator loss: -E[D(G(z))]
}


def gradient_penalty(
    critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor, rng: tf.random.Generator
) -> tf.Tensor:
    """Mean of (||grad_x critic(x)|| - 1)^2 at random points on the lines between real and fake samples.

    One interpolation weight per sample, drawn uniformly from [0, 1] (not from a normal, a known slip in
    some tutorials).
    """
    weight_shape = tf.concat([tf.shape(real)[:1], tf.ones(tf.rank(real) - 1, tf.int32)], axis=0)
    alpha = rng.uniform(weight_shape)
    between = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(between)
        score = critic(between)
    grads = tape.gradient(score, between)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=tf.range(1, tf.rank(grads))) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


MODE_SEEKING_EPS = 1e-5  # MSGAN's: keeps the term finite when two images coincide


def mode_seeking(
    images_a: tf.Tensor, images_b: tf.Tensor, z_a: tf.Tensor, z_b: tf.Tensor, weight: float
) -> tf.Tensor:
    """MSGAN's regulariser (Mao et al. 2019, "Mode seeking generative adversarial networks for diverse image
    synthesis"): weight / (d_images / d_z + eps), d the mean absolute difference between the images of
    paired noise vectors z_a, z_b (with the same label) and between the vectors. A conditional generator
    learns to lean on its label and ignore z, so one label's images look alike (recall falls as the labels
    get finer); the term grows as two noise vectors give similar images, so minimising it spreads them."""
    ratio = tf.reduce_mean(tf.abs(images_a - images_b)) / tf.reduce_mean(tf.abs(z_a - z_b))
    return weight / (ratio + MODE_SEEKING_EPS)


def classification(logits: tf.Tensor, labels: tf.Tensor, margin: float = 0.0) -> tf.Tensor:
    """Mean cross-entropy -log softmax(logits)[label] of integer labels (any shape holding one per row):
    the auxiliary classifier's term (AC-GAN, Odena et al. 2017; `AdversarialSpec.auxiliary_classifier`).
    With a `margin` (nats) each row counts only max(0, cross-entropy - margin): a row already read as its
    label with probability at least exp(-margin) adds nothing (`AdversarialSpec.auxiliary_margin`)."""
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    each = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(tf.nn.relu(each - margin) if margin else each)


def kl_to_standard_normal(mu: tf.Tensor, log_var: tf.Tensor) -> tf.Tensor:
    """KL(N(mu, exp(log_var)) || N(0, I)) per sample, summed over latent dimensions."""
    return -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mu) - tf.exp(log_var), axis=1)
