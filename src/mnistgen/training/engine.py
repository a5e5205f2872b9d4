"""One training engine for every variant: the algorithm lives in `train_step`, the losses are plugged in.

`AdversarialModel` covers the GANs (non-saturating and Wasserstein losses, critic steps, clipping,
gradient penalty, a variant's own hooks); `ReconstructionModel` covers the autoencoder and VAE.
Both own a `tf.random.Generator`, so noise is a function of the seed and checkpoints restore it.
A class-conditional spec (`classes > 0`) gets batches of (images, labels) and networks that take
[input, label]; everything else is the same loop. With `ema_decay`, a GAN also keeps an exponential moving
average of its generator's weights, and samples from that average (see `AdversarialModel`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras
import tensorflow as tf

from mnistgen.models.base import CLASSES, AdversarialSpec, Noise, ReconstructionSpec
from mnistgen.training import losses

STRATIFIED_DOMAIN = (-5.0, 5.0)
STRATIFIED_JITTER = 0.01


def sample_noise(rng: tf.random.Generator, kind: Noise, n: int | tf.Tensor, dim: int) -> tf.Tensor:
    if kind == "normal":
        return rng.normal((n, dim))
    if kind == "uniform":
        return rng.uniform((n, dim), -1.0, 1.0)
    if kind == "uniform01":
        return rng.uniform((n, dim), 0.0, 1.0)
    if kind == "stratified":
        # Tutorial 002: an evenly spaced grid over the data's domain, jittered, so it stays sorted.
        grid = tf.linspace(*STRATIFIED_DOMAIN, n)
        return (grid + rng.uniform((n,), 0.0, STRATIFIED_JITTER))[:, None]
    raise ValueError(f"unknown noise prior {kind!r}")


class AdversarialModel(keras.Model):
    """A generator and a discriminator; one `train_step` = `d_steps` discriminator updates + one G update.

    A batch holds `d_steps` real minibatches back to back, so every critic update sees fresh real data.
    With `shared_fakes` (one discriminator update a step), one batch of fakes serves both updates.

    Generator EMA (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training"): the
    generator's iterates orbit the equilibrium rather than settle on it, so two checkpoints a few dozen steps
    apart can differ by 2x in FID; the running average of the weights (batch-norm statistics included) sits
    near the centre of that orbit. Training never reads it; `sampler` is what every sample, figure and saved
    model uses. The decay ramps up as min(ema_decay, (1 + t) / (10 + t)) so a short run is not dominated by
    its random initial weights.
    """

    def __init__(
        self, spec: AdversarialSpec, rng: tf.random.Generator, ema_decay: float | None = None
    ) -> None:
        super().__init__(name="adversarial")
        self.spec = spec
        self.generator = spec.generator
        self.discriminator = spec.discriminator
        self.rng = rng
        self.ema_decay = ema_decay
        self.ema_generator: keras.Model | None = None
        if ema_decay:
            self.ema_generator = keras.models.clone_model(spec.generator)
            self.ema_generator.set_weights(spec.generator.get_weights())
        self.d_loss_fn, self.g_loss_fn = losses.LOSSES[spec.loss]
        names = ["d_loss", "g_loss", "d_real", "d_fake"] + (["gp"] if spec.gp_weight else [])
        names += ["mode_seeking"] if spec.mode_seeking else []
        names += ["d_digit", "g_digit"] if spec.auxiliary_classifier else []
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def noise(self, n: int | tf.Tensor) -> tf.Tensor:
        return sample_noise(self.rng, self.spec.noise, n, self.spec.z_dim)

    def compile(
        self, g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer
    ) -> None:
        """One optimizer per network (as keras-io's GAN examples do): the model owns and tracks both."""
        super().compile()
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer

    def checkpointed(self) -> dict[str, object]:
        """What a checkpoint holds besides the step and the noise generator. The optimizers' slots are
        built first: a Keras 3 optimizer restores only into slots that exist."""
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
            **({"ema_generator": self.ema_generator} if self.ema_generator is not None else {}),
        }

    @property
    def sampler(self) -> keras.Model:
        """The network that makes the run's samples: the weight average when there is one."""
        return self.generator if self.ema_generator is None else self.ema_generator

    def generate(self, z: tf.Tensor, labels: tf.Tensor | None, training: bool) -> tf.Tensor:
        return self.generator(z if labels is None else [z, labels], training=training)

    def sample(self, z: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
        """Images from the sampling network in inference mode: each depends only on its own z (and label)."""
        return self.sampler(z if labels is None else [z, labels], training=False)

    def discriminate(self, x: tf.Tensor, labels: tf.Tensor | None, training: bool = True) -> tf.Tensor:
        """D's logit (or the critic's score) for each image."""
        return self._judge(x, labels, training)[0]

    def _judge(
        self, x: tf.Tensor, labels: tf.Tensor | None, training: bool = True
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(D's logits, the digit logits of its auxiliary classifier, or None without one)."""
        outputs = self.discriminator(x if labels is None else [x, labels], training=training)
        return (outputs[0], outputs[1]) if self.spec.auxiliary_classifier else (outputs, None)

    def _digits(self, labels: tf.Tensor) -> tf.Tensor:
        """The digit of each label: labels are digits, or digit x styles + style (cgan's subclusters)."""
        return labels // (self.spec.classes // CLASSES)

    def train_step(self, batch: tf.Tensor | tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        spec = self.spec
        real, labels = batch if spec.classes else (batch, None)
        if spec.shared_fakes:
            self._shared_fakes_step(real, labels)
        else:
            chunks = tf.split(real, spec.d_steps)
            label_chunks = tf.split(labels, spec.d_steps) if spec.classes else [None] * spec.d_steps
            for chunk, chunk_labels in zip(chunks, label_chunks, strict=True):
                if spec.align_real:
                    chunk = spec.align_real(chunk)
                self._discriminator_step(chunk, chunk_labels)
            self._generator_step(tf.shape(real)[0] // spec.d_steps)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _discriminator_step(self, real: tf.Tensor, labels: tf.Tensor | None) -> None:
        # Fakes carry the real batch's labels, so both halves of the loss see the same class mix.
        fake = self.generate(self.noise(tf.shape(real)[0]), labels, training=True)
        self._update_discriminator(real, labels, fake, labels)

    def _update_discriminator(
        self, real: tf.Tensor, labels: tf.Tensor | None, fake: tf.Tensor, fake_labels: tf.Tensor | None
    ) -> None:
        spec = self.spec
        with tf.GradientTape() as tape:
            real_out, real_digits = self._judge(real, labels)
            fake_out = self.discriminate(fake, fake_labels)
            d_loss = self.d_loss_fn(real_out, fake_out)
            if spec.auxiliary_classifier:  # the digit head learns from real images only
                misread = losses.classification(real_digits, self._digits(labels))
                d_loss += spec.auxiliary_classifier * misread
                self.trackers["d_digit"].update_state(misread)
            if spec.gp_weight:
                critic = lambda x: self.discriminate(x, labels)  # noqa: E731
                gp = losses.gradient_penalty(critic, real, fake, self.rng)
                d_loss += spec.gp_weight * gp
                self.trackers["gp"].update_state(gp)
        weights = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, weights), weights, strict=True))
        if spec.clip:
            for weight in weights:
                weight.assign(tf.clip_by_value(weight, -spec.clip, spec.clip))
        self.trackers["d_loss"].update_state(d_loss)
        self.trackers["d_real"].update_state(tf.reduce_mean(real_out))
        self.trackers["d_fake"].update_state(tf.reduce_mean(fake_out))

    def _generator_step(self, n: tf.Tensor) -> None:
        spec = self.spec
        labels = self.rng.uniform((n, 1), 0, spec.classes, dtype=tf.int32) if spec.classes else None
        labels = self._paired(labels, n)
        z = self.noise(n)
        with tf.GradientTape() as tape:
            # Only G's weights are updated: D is "frozen" for this step without touching trainable flags.
            fake = self.generate(z, labels, training=True)
            g_loss = self._generator_loss(fake, z, labels)
        self._update_generator(tape, g_loss)

    def _shared_fakes_step(self, real: tf.Tensor, labels: tf.Tensor | None) -> None:
        """One batch of fakes for both updates (`AdversarialSpec.shared_fakes`): D learns from G's fakes,
        then G learns from the updated D's reading of the same fakes, through the same forward pass."""
        wanted = self._paired(labels, tf.shape(real)[0])
        z = self.noise(tf.shape(real)[0])
        with tf.GradientTape() as tape:
            fake = self.generate(z, wanted, training=True)
            with tape.stop_recording():  # D's update is no part of G's gradient
                self._update_discriminator(real, labels, fake, wanted)
            g_loss = self._generator_loss(fake, z, wanted)
        self._update_generator(tape, g_loss)

    def _paired(self, labels: tf.Tensor | None, n: tf.Tensor) -> tf.Tensor | None:
        """With mode seeking, rows i and n // 2 + i share a label: the regulariser compares two noise
        vectors for one label."""
        if not self.spec.mode_seeking or labels is None:
            return labels
        pairs = n // 2
        return tf.concat([labels[:pairs], labels[: n - pairs]], 0)

    def _generator_loss(self, fake: tf.Tensor, z: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
        """G's loss on its fakes as D reads them now, with the variant's digit and diversity terms."""
        spec = self.spec
        fake_out, fake_digits = self._judge(fake, labels)
        g_loss = self.g_loss_fn(fake_out)
        if spec.auxiliary_classifier:  # the fakes should read as their wanted digit
            misread = losses.classification(fake_digits, self._digits(labels), spec.auxiliary_margin)
            g_loss += spec.auxiliary_classifier * misread
            self.trackers["g_digit"].update_state(misread)
        if spec.mode_seeking:
            pairs = tf.shape(fake)[0] // 2
            first, second = slice(0, pairs), slice(pairs, 2 * pairs)
            spread = losses.mode_seeking(fake[first], fake[second], z[first], z[second], spec.mode_seeking)
            g_loss += spread
            self.trackers["mode_seeking"].update_state(spread)
        return g_loss

    def _update_generator(self, tape: tf.GradientTape, g_loss: tf.Tensor) -> None:
        weights = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights, strict=True))
        self.trackers["g_loss"].update_state(g_loss)
        if self.ema_generator is not None:
            self._update_average()

    def _update_average(self) -> None:
        updates = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + updates) / (10.0 + updates))
        for average, weight in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            if tf.as_dtype(average.dtype).is_floating:
                average.assign(decay * average + (1.0 - decay) * weight)


class ReconstructionModel(keras.Model):
    """Encoder + decoder on per-pixel MSE; the variational case adds sampling and the KL term."""

    def __init__(self, spec: ReconstructionSpec, rng: tf.random.Generator) -> None:
        super().__init__(name="reconstruction")
        self.spec = spec
        self.encoder = spec.encoder
        self.decoder = spec.decoder
        self.rng = rng
        names = ["loss", "reconstruction"] + (["kl"] if spec.variational else [])
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def checkpointed(self) -> dict[str, object]:
        """What a checkpoint holds besides the step and the noise generator (slots built, as above)."""
        self.optimizer.build(self.encoder.trainable_variables + self.decoder.trainable_variables)
        return {"encoder": self.encoder, "decoder": self.decoder, "optimizer": self.optimizer}

    def encode(
        self, images: tf.Tensor, labels: tf.Tensor | None = None, training: bool = False
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """(z, per-sample KL); z is sampled by reparameterisation for the VAE, KL is 0 for the autoencoder."""
        inputs = images if labels is None else [images, labels]
        if not self.spec.variational:
            z = self.encoder(inputs, training=training)
            return z, tf.zeros(tf.shape(z)[:1])
        mu, log_var = self.encoder(inputs, training=training)
        z = mu + tf.exp(log_var / 2.0) * self.rng.normal(tf.shape(mu))
        return z, losses.kl_to_standard_normal(mu, log_var)

    def decode(self, z: tf.Tensor, labels: tf.Tensor | None, training: bool = False) -> tf.Tensor:
        return self.decoder(z if labels is None else [z, labels], training=training)

    def sample(self, z: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
        """Images from codes, the decoder in inference mode (as `AdversarialModel.sample` from noise)."""
        return self.decode(z, labels)

    def train_step(self, batch: tf.Tensor | tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        images, labels = batch if self.spec.classes else (batch, None)
        weights = self.encoder.trainable_variables + self.decoder.trainable_variables
        with tf.GradientTape() as tape:
            z, kl = self.encode(images, labels, training=True)
            reconstruction = self.decode(z, labels, training=True)
            r_loss = tf.reduce_mean(tf.square(images - reconstruction), axis=[1, 2, 3])
            loss = tf.reduce_mean(self.spec.r_loss_factor * r_loss + kl)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
        self.trackers["loss"].update_state(loss)
        self.trackers["reconstruction"].update_state(tf.reduce_mean(r_loss))
        if self.spec.variational:
            self.trackers["kl"].update_state(tf.reduce_mean(kl))
        return {name: tracker.result() for name, tracker in self.trackers.items()}


@contextmanager
def reference_statistics(network: keras.Model, inputs: tf.Tensor | list[tf.Tensor]) -> Iterator[None]:
    """Batch norm's moving statistics replaced, for the duration, by those of one fixed reference batch.

    Calling the network in training mode with every batch-norm momentum at 0 sets each layer's moving mean
    and variance to the batch's own (layer by layer, as training mode computes them); inference mode then
    gives each image what training mode would give it inside that batch, without depending on its
    neighbours. The previous statistics come back afterwards, so measuring during training changes nothing
    a checkpoint holds; what is saved inside the context keeps the reference statistics.
    """
    layers = [
        layer for layer in network._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)
    ]
    # Every non-trainable variable comes back afterwards: the statistics and any dropout seed state.
    kept = [(variable, variable.numpy()) for variable in network.non_trainable_variables]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        network(inputs, training=True)  # eager: the momentum is read at call time
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    try:
        yield
    finally:
        for variable, value in kept:
            variable.assign(value)


def build_model(
    spec: AdversarialSpec | ReconstructionSpec, rng: tf.random.Generator, ema_decay: float | None = None
) -> keras.Model:
    """The trainable model of a spec, compiled with the spec's optimizers (the model owns them from here)."""
    if isinstance(spec, AdversarialSpec):
        adversarial = AdversarialModel(spec, rng, ema_decay)
        adversarial.compile(g_optimizer=spec.g_optimizer, d_optimizer=spec.d_optimizer)
        return adversarial
    reconstruction = ReconstructionModel(spec, rng)
    reconstruction.compile(optimizer=spec.optimizer)
    return reconstruction
