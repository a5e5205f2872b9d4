"""Every variant builds with the right shapes and its networks round-trip through `.keras` (safe mode)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers.settings import settings, variant_settings

from mnistgen.models import VARIANTS
from mnistgen.models.base import AdversarialSpec
from mnistgen.settings import ImageGan
from mnistgen.training.engine import build_model, sample_noise

PARAMS = settings("smoke")


@pytest.fixture(autouse=True)
def fresh_keras_state():
    keras.backend.clear_session()
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.backend.clear_session()


def _probe(network: keras.Model, rows: int = 4) -> list[np.ndarray]:
    """Random inputs for every input of `network`: noise or images, and digits for label inputs."""
    rng = np.random.default_rng(1)
    return [
        rng.integers(0, 10, (rows, *tensor.shape[1:])).astype("int32")
        if "int" in str(tensor.dtype)
        else rng.normal(size=(rows, *tensor.shape[1:])).astype("float32")
        for tensor in network.inputs
    ]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_shapes_and_safe_round_trip(variant: str, tmp_path: Path) -> None:
    import tensorflow as tf

    spec = VARIANTS[variant].build(PARAMS.variants.of(variant))
    model = build_model(spec, tf.random.Generator.from_seed(0))
    sample_shape = (1,) if spec.kind == "toy" else (28, 28, 1)
    labels = tf.constant(np.arange(8, dtype=np.int32)[:, None] % 10) if spec.classes else None
    if isinstance(spec, AdversarialSpec):
        z = sample_noise(model.rng, spec.noise, 8, spec.z_dim)
        images = model.generate(z, labels, training=False)
        scores = model.discriminate(images, labels, training=False)
        assert tuple(images.shape) == (8, *sample_shape)
        assert tuple(scores.shape) == (8, 1)
        networks = {"generator": model.generator, "discriminator": model.discriminator}
    else:
        images = model.decode(tf.random.normal((8, spec.z_dim), seed=0), labels)
        assert tuple(images.shape) == (8, 28, 28, 1)
        encoded = model.encoder(images if labels is None else [images, labels], training=False)
        codes = encoded if not spec.variational else encoded[0]
        assert tuple(codes.shape) == (8, spec.z_dim)
        networks = {"encoder": model.encoder, "decoder": model.decoder}
    if spec.kind != "toy":
        low, high = spec.pixel_range
        assert float(np.min(images)) >= low and float(np.max(images)) <= high

    for name, network in networks.items():
        path = tmp_path / f"{name}.keras"
        network.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        probe = _probe(network)
        probe = probe[0] if len(probe) == 1 else probe
        expected, actual = network(probe, training=False), loaded(probe, training=False)
        for want, got in zip(keras.tree.flatten(expected), keras.tree.flatten(actual), strict=True):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_conditional_generators_depend_on_the_label() -> None:
    import tensorflow as tf

    for variant in ("cgan", "cvae"):
        spec = VARIANTS[variant].build(PARAMS.variants.of(variant))
        model = build_model(spec, tf.random.Generator.from_seed(0))
        z = tf.repeat(sample_noise(model.rng, "normal", 1, spec.z_dim), 2, axis=0)
        digits = tf.constant([[3], [8]], tf.int32)
        images = np.asarray(
            model.generate(z, digits, False) if spec.kind == "adversarial" else model.decode(z, digits)
        )
        assert not np.allclose(images[0], images[1]), f"{variant}: same z, different digit, same image"


def test_a_low_rank_projection_is_the_full_one_with_class_vectors_w_times_e() -> None:
    """`projection_rank` r: the class term <e_y, W^T phi(x)> is the full-rank <v_y, phi(x)> with v_y = W e_y,
    so the full discriminator with the same convolutions and the table (W E^T)^T gives the same logits."""
    cfg = variant_settings("scgan", "clusters=5")
    low_rank = (
        VARIANTS["scgan"]
        .build(variant_settings("scgan", "clusters=5", "discriminator.projection_rank=3"))
        .discriminator
    )
    full = VARIANTS["scgan"].build(cfg).discriminator
    assert cfg.discriminator.projection_rank is None

    def layers(network: keras.Model, kind: type) -> list[keras.layers.Layer]:
        return [layer for layer in network.layers if type(layer) is kind]

    convolutions = zip(layers(low_rank, keras.layers.Conv2D), layers(full, keras.layers.Conv2D), strict=True)
    for source, target in convolutions:
        target.set_weights(source.get_weights())
    shared = low_rank.get_layer("shared_projection").kernel.numpy()  # (features, 3)
    (unconditional,) = [
        layer for layer in layers(low_rank, keras.layers.Dense) if layer.name != "shared_projection"
    ]
    layers(full, keras.layers.Dense)[0].set_weights(unconditional.get_weights())
    (embedding,) = layers(low_rank, keras.layers.Embedding)
    table = embedding.embeddings.numpy()  # (5, 3)
    assert table.shape == (5, 3)
    layers(full, keras.layers.Embedding)[0].set_weights([table @ shared.T])

    images = np.random.default_rng(0).normal(size=(10, 28, 28, 1)).astype("float32")
    clusters = np.arange(10, dtype="int32")[:, None] % 5
    expected = np.asarray(full([images, clusters], training=False))
    np.testing.assert_allclose(
        np.asarray(low_rank([images, clusters], training=False)), expected, rtol=1e-4, atol=1e-5
    )
    assert np.ptp(expected) > 0  # the logits are not all equal: the comparison has something to compare


def test_a_routed_generator_draws_the_cluster_its_last_coordinate_falls_in(tmp_path: Path) -> None:
    """scgan's saved generator: u, the last noise coordinate, picks cluster c where Phi(u) falls among the
    cumulative shares (0.1, 0.3, 0.6 here), and the image is the trained generator's for that cluster."""
    from statistics import NormalDist

    from mnistgen.models.cgan import routed_generator

    spec = VARIANTS["scgan"].build(variant_settings("scgan", "clusters=4"))
    routed = routed_generator(spec.generator, [0.1, 0.2, 0.3, 0.4])
    path = tmp_path / "generator.keras"
    routed.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    z = np.random.default_rng(0).normal(size=(6, spec.z_dim)).astype("float32")
    probabilities = [0.05, 0.0999, 0.1001, 0.45, 0.59, 0.8]
    u = np.array([[NormalDist().inv_cdf(p)] for p in probabilities], "float32")
    expected = spec.generator([z, np.array([[0], [0], [1], [2], [2], [3]], "int32")], training=False)
    np.testing.assert_array_equal(np.asarray(loaded(np.hstack([z, u]), training=False)), np.asarray(expected))


def test_a_routed_conditional_generator_draws_a_style_of_the_digit_it_is_given(tmp_path: Path) -> None:
    """cgan's saved generator with `subclusters` 2: labels digit x 2 + style, and for digit d, u picks style
    0 while Phi(u) is below the style's share of the digit's images (shares 0.05 / 0.05 for digit 0: 0.5;
    0.02 / 0.08 for digit 1: 0.2; ...), style 1 above it. Loads in safe mode and takes [z + u, digit]."""
    from statistics import NormalDist

    from mnistgen.models.cgan import routed_generator

    spec = VARIANTS["cgan"].build(variant_settings("cgan", "subclusters=2"))
    assert spec.classes == 20 and spec.cluster_groups == 10
    shares = [0.05, 0.05, 0.02, 0.08] + [0.1 / 2] * 16  # digits 0 and 1 uneven, the rest even
    routed = routed_generator(spec.generator, shares, groups=10)
    path = tmp_path / "generator.keras"
    routed.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    digits = np.array([[0], [0], [1], [1], [9], [9], [5]], "int32")
    probabilities = [0.49, 0.51, 0.19, 0.21, 0.01, 0.99, 0.5001]
    styles = np.array([[0], [1], [0], [1], [0], [1], [1]], "int32")
    u = np.array([[NormalDist().inv_cdf(p)] for p in probabilities], "float32")
    z = np.random.default_rng(0).normal(size=(7, spec.z_dim)).astype("float32")
    expected = spec.generator([z, digits * 2 + styles], training=False)
    drawn = loaded([np.hstack([z, u]), digits], training=False)
    np.testing.assert_array_equal(np.asarray(drawn), np.asarray(expected))


def test_stratified_noise_is_sorted_and_spans_the_domain() -> None:
    import tensorflow as tf

    z = np.asarray(sample_noise(tf.random.Generator.from_seed(0), "stratified", 200, 1))[:, 0]
    assert np.all(np.diff(z) > 0)
    assert -5.0 <= z[0] < -4.98 and 4.99 < z[-1] <= 5.01


def test_generator_average_follows_the_ramped_decay_and_is_what_samples_come_from() -> None:
    import tensorflow as tf

    spec = VARIANTS["dcgan"].build(PARAMS.variants.of("dcgan"))
    model = build_model(spec, tf.random.Generator.from_seed(0), ema_decay=0.999)
    before = [w.copy() for w in model.generator.get_weights()]
    model.train_step(tf.random.uniform((PARAMS.variants.dcgan.batch_size, 28, 28, 1), -1.0, 1.0))
    after = model.generator.get_weights()
    decay = (1.0 + 1.0) / (10.0 + 1.0)  # after one generator update the ramp, not 0.999, is the decay
    for average, old, new in zip(model.ema_generator.get_weights(), before, after, strict=True):
        np.testing.assert_allclose(average, decay * old + (1.0 - decay) * new, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(model.ema_generator.get_weights(), after, strict=True))
    assert model.sampler is model.ema_generator
    assert build_model(spec, tf.random.Generator.from_seed(0)).sampler is spec.generator


def test_reference_statistics_sample_one_image_as_its_reference_batch_would() -> None:
    """DCGAN's seed samples on batch statistics: with a fixed reference batch, each image gets what training
    mode gives it inside that batch, whatever else is asked for, and the model is left as it was."""
    import tensorflow as tf

    from mnistgen.training.engine import reference_statistics

    spec = VARIANTS["dcgan"].build(PARAMS.variants.of("dcgan"))
    generator = build_model(spec, tf.random.Generator.from_seed(0)).generator
    reference = sample_noise(tf.random.Generator.from_seed(1), spec.noise, 256, spec.z_dim)
    before = [w.copy() for w in generator.get_weights()]
    in_batch = np.asarray(generator(reference, training=True))
    generator.set_weights(before)  # that call moved the moving averages a little: put them back
    with reference_statistics(generator, reference):
        whole = np.asarray(generator(reference, training=False))
        alone = np.asarray(generator(reference[5:6], training=False))
    np.testing.assert_array_equal(whole, in_batch)
    np.testing.assert_allclose(alone[0], in_batch[5], atol=1e-5)
    for kept, now in zip(before, generator.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_takes_training_steps(variant: str) -> None:
    """Every variant's networks and losses train: finite losses, and every network's weights move. The
    plumbing around a step (checkpoints, MLflow, figures, export) is the same for a kind, and
    test_training.py runs it once per kind (helpers.projects.SMOKE_KINDS)."""
    import tensorflow as tf

    cfg = PARAMS.variants.of(variant)
    spec = VARIANTS[variant].build(cfg)
    model = build_model(
        spec, tf.random.Generator.from_seed(0), cfg.ema_decay if isinstance(cfg, ImageGan) else None
    )
    model.checkpointed()  # builds the optimizers' slots, as a run does before its first step
    rng = np.random.default_rng(0)
    rows = cfg.batch_size * (spec.d_steps if isinstance(spec, AdversarialSpec) else 1)
    if spec.kind == "toy":
        images = rng.normal(-1.0, 1.0, (rows, 1))
    else:
        images = rng.uniform(*spec.pixel_range, (rows, 28, 28, 1))
    batch = tf.constant(images.astype(np.float32))
    if spec.classes:
        batch = (batch, tf.constant(rng.integers(0, spec.classes, (rows, 1)).astype(np.int32)))
    networks = (
        [model.generator, model.discriminator]
        if isinstance(spec, AdversarialSpec)
        else [model.encoder, model.decoder]
    )
    before = [[np.array(w) for w in network.trainable_weights] for network in networks]
    for _ in range(2):
        logs = model.train_step(batch)
    assert logs and all(np.isfinite(float(value)) for value in logs.values()), logs
    # A Wasserstein critic's output bias cancels in mean(f(fake)) - mean(f(real)) (and in the gradient
    # penalty): its gradient is zero by construction.
    wasserstein = getattr(spec, "loss", None) == "wasserstein"
    invariant = {model.discriminator.trainable_weights[-1].path} if wasserstein else set()
    for network, weights in zip(networks, before, strict=True):
        still = [
            new.path
            for old, new in zip(weights, network.trainable_weights, strict=True)
            if np.array_equal(old, np.array(new)) and new.path not in invariant
        ]
        assert not still, f"{variant}: weights of {network.name} that did not train: {still}"


def test_the_cpu_profiles_cgan_trains_a_step_with_the_hinge_loss_and_4x4_kernels() -> None:
    """The champion's settings (not the smoke profile's): the hinge loss and the 4x4 kernels build, keep
    the image shape and give finite losses on a step."""
    import tensorflow as tf

    cfg = settings("cpu").variants.cgan
    assert cfg.loss == "hinge" and cfg.generator.kernel == cfg.discriminator.kernel == 4
    spec = VARIANTS["cgan"].build(cfg)
    model = build_model(spec, tf.random.Generator.from_seed(0))
    images = tf.random.uniform((8, 28, 28, 1), -1.0, 1.0, seed=0)
    labels = tf.constant(np.arange(8, dtype=np.int32)[:, None])
    figures = model.train_step((images, labels))
    drawn = model.generate(sample_noise(model.rng, spec.noise, 8, spec.z_dim), labels, training=False)
    assert tuple(drawn.shape) == (8, 28, 28, 1)
    assert all(np.isfinite(float(value)) for value in figures.values()), figures


def _record_generator_labels(model: keras.Model) -> list[np.ndarray]:
    """The labels of every generator call the model's training steps make from now on, in order."""
    asked: list[np.ndarray] = []
    generate = model.generate
    model.generate = lambda z, labels, training: (
        asked.append(np.asarray(labels)) or generate(z, labels, training)
    )
    return asked


def test_mode_seeking_pairs_two_noise_vectors_per_label_in_the_generator_step() -> None:
    """With `mode_seeking`, the generator step's rows i and n/2 + i share a label (the regulariser compares
    two noise vectors for one label) and its figure is logged; without it, the labels are drawn freely."""
    import tensorflow as tf

    def generator_step_labels(weight: float) -> tuple[np.ndarray, dict]:
        spec = VARIANTS["scgan"].build(variant_settings("scgan", f"mode_seeking={weight}"))
        model = build_model(spec, tf.random.Generator.from_seed(0))
        asked = _record_generator_labels(model)
        images = tf.random.uniform((8, 28, 28, 1), -1.0, 1.0, seed=0)
        figures = model.train_step((images, tf.constant(np.arange(8, dtype=np.int32)[:, None])))
        return asked[-1], figures  # the discriminator step's fakes come first, with the real batch's labels

    paired, figures = generator_step_labels(0.2)
    np.testing.assert_array_equal(paired[:4], paired[4:])
    assert len(np.unique(paired)) > 1
    assert np.isfinite(float(figures["mode_seeking"])) and float(figures["mode_seeking"]) > 0
    free, figures = generator_step_labels(0.0)
    assert not np.array_equal(free[:4], free[4:]) and "mode_seeking" not in figures


def test_shared_fakes_train_d_on_gs_fakes_then_g_on_the_updated_ds_reading_of_them() -> None:
    """With `shared_fakes`, a step runs the generator once, on the real batch's labels: D's loss is that of
    the real images and those fakes under D as it was, G's loss that of the same fakes under D as the step
    left it (both recomputed from the networks before and after the step, with the step's own noise)."""
    import tensorflow as tf

    spec = VARIANTS["cgan"].build(variant_settings("cgan", "shared_fakes=true"))
    model = build_model(spec, tf.random.Generator.from_seed(0))
    images = tf.random.uniform((8, 28, 28, 1), -1.0, 1.0, seed=0)
    labels = tf.constant(np.arange(8, dtype=np.int32)[:, None])
    replay = tf.random.Generator.from_state(model.rng.state.numpy(), model.rng.algorithm)
    z = sample_noise(replay, spec.noise, 8, spec.z_dim)  # the step's noise: its only draw
    fake = model.generator([z, labels], training=True)  # on batch statistics, as in the step
    fake_before = model.discriminator([fake, labels], training=True)
    expected_d = model.d_loss_fn(model.discriminator([images, labels], training=True), fake_before)
    asked = _record_generator_labels(model)

    figures = model.train_step((images, labels))
    assert len(asked) == 1
    np.testing.assert_array_equal(asked[0], labels)
    assert float(figures["d_loss"]) == pytest.approx(float(expected_d), rel=1e-5)
    fake_after = model.discriminator([fake, labels], training=True)
    assert float(figures["g_loss"]) == pytest.approx(float(model.g_loss_fn(fake_after)), rel=1e-5)
    assert float(figures["g_loss"]) != pytest.approx(float(model.g_loss_fn(fake_before)), rel=1e-3)
    critic_steps = VARIANTS["wgan_gp"].build(PARAMS.variants.of("wgan_gp"))
    with pytest.raises(ValueError, match="one plain discriminator update"):
        dataclasses.replace(critic_steps, shared_fakes=True)


def test_shared_fakes_pair_the_real_batchs_labels_for_mode_seeking() -> None:
    """With mode seeking, the shared fakes' rows i and n/2 + i take the label of the real batch's row i,
    and the diversity term is logged."""
    import tensorflow as tf

    cfg = variant_settings("cgan", "shared_fakes=true", "mode_seeking=0.2")
    model = build_model(VARIANTS["cgan"].build(cfg), tf.random.Generator.from_seed(0))
    asked = _record_generator_labels(model)
    images = tf.random.uniform((8, 28, 28, 1), -1.0, 1.0, seed=0)
    figures = model.train_step((images, tf.constant(np.arange(8, dtype=np.int32)[:, None])))
    assert len(asked) == 1
    np.testing.assert_array_equal(asked[0][:, 0], [0, 1, 2, 3, 0, 1, 2, 3])
    assert float(figures["mode_seeking"]) > 0


def test_the_auxiliary_classifier_reads_the_digit_of_each_style_label() -> None:
    """With `auxiliary_classifier`, cgan's discriminator gives ten digit logits beside its logit; on
    subclusters (3 styles: label 3 d + s), the head is asked for label // 3, the digit: the step's
    `d_digit` is the cross-entropy of the real images' digits under the head as it was before the step (a
    closed form from its logits), and both networks' digit terms are logged."""
    import tensorflow as tf

    cfg = variant_settings("cgan", "subclusters=3", "auxiliary_classifier=0.5")
    spec = VARIANTS["cgan"].build(cfg)
    model = build_model(spec, tf.random.Generator.from_seed(0))
    images = tf.random.uniform((8, 28, 28, 1), -1.0, 1.0, seed=0)
    labels = tf.constant((np.arange(8) * 3 + np.arange(8) % 3)[:, None].astype("int32"))  # digits 0..7
    logit, digit_logits = model.discriminator([images, labels], training=True)
    assert tuple(logit.shape) == (8, 1) and tuple(digit_logits.shape) == (8, 10)
    log_softmax = np.asarray(digit_logits) - np.log(np.exp(np.asarray(digit_logits)).sum(1, keepdims=True))
    expected = -log_softmax[np.arange(8), np.arange(8)].mean()
    figures = model.train_step((images, labels))
    assert float(figures["d_digit"]) == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(float(figures["g_digit"])) and float(figures["g_digit"]) > 0
    plain = VARIANTS["cgan"].build(variant_settings("cgan", "subclusters=3", "auxiliary_classifier=0.0"))
    assert len(plain.discriminator.outputs) == 1


def test_a_mixture_prior_draws_each_component_at_its_weight_and_shape() -> None:
    """A fitted mixture's draw: the last N(0, 1) coordinate picks the component by its weight, the others
    become a draw from that component's Gaussian (its mean and covariance, checked per component)."""
    import numpy as np

    from mnistgen.serving.sampler import fitted_noise_dim, from_standard_normal

    fit = {
        "weights": [0.2, 0.5, 0.3],
        "means": [[-4.0, 0.0], [0.0, 3.0], [5.0, -1.0]],
        "covs": [[[1.0, 0.0], [0.0, 0.25]], [[0.5, 0.3], [0.3, 0.5]], [[0.04, 0.0], [0.0, 2.0]]],
    }
    z = np.random.default_rng(0).normal(size=(60_000, fitted_noise_dim(2, mixture=True))).astype(np.float32)
    codes = from_standard_normal(z, fit)
    assert codes.shape == (60_000, 2) and codes.dtype == np.float32
    nearest = np.argmin([np.sum((codes - np.asarray(m)) ** 2, axis=1) for m in fit["means"]], axis=0)
    for c, (weight, mean, cov) in enumerate(zip(fit["weights"], fit["means"], fit["covs"], strict=True)):
        rows = codes[nearest == c]
        assert abs(len(rows) / len(codes) - weight) < 0.01, (c, len(rows))
        np.testing.assert_allclose(rows.mean(axis=0), mean, atol=0.05)
        np.testing.assert_allclose(np.cov(rows, rowvar=False), cov, atol=0.05)
    one = {"mean": [1.0, -1.0], "cov": [[2.0, 0.0], [0.0, 0.5]]}  # a single Gaussian: no extra coordinate
    single = from_standard_normal(z[:, :2], one)
    np.testing.assert_allclose(single.mean(axis=0), one["mean"], atol=0.03)
    np.testing.assert_allclose(np.cov(single, rowvar=False), one["cov"], atol=0.05)


def test_a_prior_fitted_per_digit_draws_each_row_from_its_digits_fit() -> None:
    """A conditional model's prior (`per_class`): each row's code comes from its own digit's Gaussian (or
    mixture), so the same noise with another digit lands elsewhere; without labels it is refused."""
    import numpy as np

    from mnistgen.serving.sampler import from_standard_normal, is_mixture

    gaussians = [{"mean": [10.0 * d, -d], "cov": [[1.0, 0.0], [0.0, 0.25]]} for d in range(10)]
    fit = {"per_class": gaussians}
    z = np.random.default_rng(1).normal(size=(20_000, 2)).astype(np.float32)
    labels = np.arange(20_000) % 10
    codes = from_standard_normal(z, fit, labels)
    assert codes.shape == (20_000, 2) and not is_mixture(fit)
    for d, one in enumerate(gaussians):
        rows = codes[labels == d]  # 2,000 draws: the means' standard error is 0.022, the variances' 0.032
        np.testing.assert_allclose(rows.mean(axis=0), one["mean"], atol=0.1)
        np.testing.assert_allclose(np.cov(rows, rowvar=False), one["cov"], atol=0.1)
    np.testing.assert_array_equal(codes[labels == 4], from_standard_normal(z[labels == 4], gaussians[4]))
    mixtures = {
        "per_class": [{"weights": [1.0], "means": [[d, d]], "covs": [np.eye(2).tolist()]} for d in range(10)]
    }
    picked = from_standard_normal(np.zeros((3, 3)), mixtures, np.array([0, 5, 9]))  # a weight-1 component
    assert is_mixture(mixtures) and picked.tolist() == [[0.0, 0.0], [5.0, 5.0], [9.0, 9.0]]
    with pytest.raises(ValueError, match="needs one label per row"):
        from_standard_normal(z, fit)


def test_digit_vectors_add_the_digits_vector_to_each_styles_own_and_save_in_safe_mode(tmp_path: Path) -> None:
    """cgan's `digit_vectors` with `subclusters` 3: a label's vectors are its digit's (label // 3) plus its
    style's own. With the styles' own tables zeroed, the three styles of a digit draw the same image from the
    same z and get the same logit from D, while two digits differ; with them as initialised, the styles
    differ. The routed generator loads in safe mode and draws what the network draws."""
    from mnistgen.models.cgan import routed_generator

    spec = VARIANTS["cgan"].build(variant_settings("cgan", "subclusters=3", "digit_vectors=true"))
    z = np.repeat(np.random.default_rng(0).normal(size=(1, spec.z_dim)).astype("float32"), 4, axis=0)
    labels = np.array([[6], [7], [8], [9]], "int32")  # digit 2's three styles, then digit 3's first
    images = np.asarray(spec.generator([z, labels], training=False))
    assert np.abs(images[0] - images[1]).max() > 1e-6  # the styles' own vectors differ from the start

    own_tables = [  # one row per label (30), beside the digits' tables (10 rows)
        layer
        for network in (spec.generator, spec.discriminator)
        for layer in network.layers
        if isinstance(layer, keras.layers.Embedding) and layer.input_dim == 30
    ]
    assert len(own_tables) == 2
    for table in own_tables:
        table.set_weights([np.zeros_like(table.get_weights()[0])])
    images = np.asarray(spec.generator([z, labels], training=False))
    np.testing.assert_array_equal(images[0], images[1])
    np.testing.assert_array_equal(images[0], images[2])
    assert np.abs(images[0] - images[3]).max() > 1e-4
    logits = np.asarray(spec.discriminator([images, labels], training=False))
    assert logits[0, 0] == logits[1, 0] == logits[2, 0] != logits[3, 0]

    routed = routed_generator(spec.generator, [1 / 30] * 30, groups=10)
    routed.save(tmp_path / "generator.keras")
    loaded = keras.saving.load_model(tmp_path / "generator.keras", safe_mode=True)
    u = np.zeros((4, 1), "float32")  # the middle style of the digit given
    drawn = loaded([np.hstack([z, u]), np.array([[2], [2], [2], [3]], "int32")], training=False)
    expected = spec.generator([z, np.array([[7], [7], [7], [10]], "int32")], training=False)
    np.testing.assert_array_equal(np.asarray(drawn), np.asarray(expected))
