"""The pluggable losses against cases with a known answer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnistgen.training import losses


def test_bce_losses_match_the_log_formulas() -> None:
    real, fake = tf.constant([[2.0], [-1.0]]), tf.constant([[0.5], [-3.0]])
    sigmoid = lambda x: 1 / (1 + np.exp(-np.asarray(x)))  # noqa: E731
    expected_d = -np.mean(np.log(sigmoid(real))) - np.mean(np.log(1 - sigmoid(fake)))
    expected_g = -np.mean(np.log(sigmoid(fake)))
    assert float(losses.bce_discriminator(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    assert float(losses.bce_generator(fake)) == pytest.approx(expected_g, rel=1e-6)


def test_bce_stays_finite_for_extreme_logits() -> None:
    assert np.isfinite(float(losses.bce_discriminator(tf.constant([[1e4]]), tf.constant([[-1e4]]))))
    assert float(losses.bce_generator(tf.constant([[-1e4]]))) == pytest.approx(1e4)


def test_wasserstein_losses() -> None:
    real, fake = tf.constant([[3.0], [1.0]]), tf.constant([[0.0], [-2.0]])
    assert float(losses.wasserstein_critic(real, fake)) == pytest.approx(-1.0 - 2.0)
    assert float(losses.wasserstein_generator(fake)) == pytest.approx(1.0)


def test_hinge_losses_count_only_the_samples_inside_the_margin() -> None:
    """D(x) = 2 and D(G(z)) = -3 are past their margins (no loss); 0.5 and 0 are inside it by 0.5 and 1."""
    real, fake = tf.constant([[2.0], [0.5]]), tf.constant([[-3.0], [0.0]])
    assert float(losses.hinge_discriminator(real, fake)) == pytest.approx((0 + 0.5) / 2 + (0 + 1.0) / 2)
    discriminator_loss, generator_loss = losses.LOSSES["hinge"]
    assert discriminator_loss is losses.hinge_discriminator
    assert float(generator_loss(fake)) == pytest.approx(1.5)  # -E[D(G(z))]


@pytest.mark.parametrize("weight_norm", [0.5, 1.0, 3.0])
def test_gradient_penalty_of_a_linear_critic(weight_norm: float) -> None:
    """A linear critic f(x) = w.x has gradient w everywhere, so the penalty is (||w|| - 1)^2 exactly."""
    critic = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)]
    )
    w = np.random.default_rng(0).normal(size=(16, 1)).astype("float32")
    critic.layers[-1].set_weights([w / np.linalg.norm(w) * weight_norm])
    real = tf.random.normal((8, 4, 4, 1), seed=1)
    fake = tf.random.normal((8, 4, 4, 1), seed=2)
    penalty = losses.gradient_penalty(critic, real, fake, tf.random.Generator.from_seed(3))
    assert float(penalty) == pytest.approx((weight_norm - 1.0) ** 2, abs=1e-5)


def test_mode_seeking_is_the_weight_over_the_image_to_noise_distance_ratio() -> None:
    """Images 0.5 apart in every pixel from noise 2 apart in every coordinate: ratio 0.25, so weight 0.2
    gives 0.2 / (0.25 + eps); images twice as far apart halve it, identical images give weight / eps."""
    z_a, z_b = tf.ones((4, 3)), -tf.ones((4, 3))
    images = tf.zeros((4, 2, 2, 1))
    eps = losses.MODE_SEEKING_EPS
    assert float(losses.mode_seeking(images + 0.5, images, z_a, z_b, 0.2)) == pytest.approx(
        0.2 / (0.25 + eps)
    )
    assert float(losses.mode_seeking(images + 1.0, images, z_a, z_b, 0.2)) == pytest.approx(0.2 / (0.5 + eps))
    assert float(losses.mode_seeking(images, images, z_a, z_b, 0.2)) == pytest.approx(0.2 / eps)


def test_classification_is_the_mean_negative_log_softmax_of_each_label() -> None:
    """Equal logits over ten digits: log 10 whatever the label; logits (2, 0, 0) read as class 0 cost
    -log(e^2 / (e^2 + 2)) = log(1 + 2 e^-2), as class 1 cost log(e^2 + 2); labels of shape (n, 1) as the
    engine's."""
    assert float(losses.classification(tf.zeros((3, 10)), tf.constant([[0], [4], [9]]))) == pytest.approx(
        np.log(10.0)
    )
    logits = tf.constant([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    expected = (np.log(1 + 2 * np.exp(-2.0)) + np.log(np.exp(2.0) + 2)) / 2
    assert float(losses.classification(logits, tf.constant([[0], [1]]))) == pytest.approx(expected, rel=1e-6)


def test_a_margin_leaves_rows_read_confidently_enough_alone() -> None:
    """Margin 0.5: the row read as its class 0 (cross-entropy log(1 + 2 e^-2) = 0.2395) adds nothing, the
    misread row adds log(e^2 + 2) - 0.5; the mean is over both rows. Only the misread row gets a gradient."""
    logits = tf.Variable([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    labels = tf.constant([[0], [1]])
    with tf.GradientTape() as tape:
        hinged = losses.classification(logits, labels, margin=0.5)
    assert float(hinged) == pytest.approx((np.log(np.exp(2.0) + 2) - 0.5) / 2, rel=1e-6)
    gradient = tape.gradient(hinged, logits).numpy()
    np.testing.assert_array_equal(gradient[0], [0.0, 0.0, 0.0])
    softmax = np.exp([2.0, 0.0, 0.0]) / (np.exp(2.0) + 2)
    np.testing.assert_allclose(gradient[1], (softmax - [0.0, 1.0, 0.0]) / 2, rtol=1e-6)


def test_kl_to_standard_normal() -> None:
    mu = tf.constant([[0.0, 0.0], [1.0, 0.0]])
    log_var = tf.constant([[0.0, 0.0], [0.0, np.log(2.0)]])
    expected_second = 0.5 * (1.0 + 1.0 - 1.0 - 0.0) + 0.5 * (
        2.0 + 0.0 - 1.0 - np.log(2.0)
    )  # per dim: (var + mu^2 - 1 - log var) / 2
    np.testing.assert_allclose(losses.kl_to_standard_normal(mu, log_var), [0.0, expected_second], rtol=1e-6)
