"""Class-conditional DCGAN-style GAN (beyond the seeds: Mirza & Osindero 2014; Miyato & Koyama 2018).

Generator: the digit's learned embedding is concatenated to z, a dense layer makes a 7x7 map, two
stride-2 transposed convolutions with batch norm and leaky ReLU bring it to 28x28, tanh out.
Discriminator: a projection discriminator. Strided convolutions give features phi(x); the logit is
psi(phi(x)) + <embed(y), phi(x)>. Why projection rather than label channels stacked onto the image: the
log density ratio that the optimal discriminator estimates splits exactly into a class-independent term
and an inner product with a class embedding, so the label costs one embedding table instead of ten extra
input channels, and it conditions much more strongly (the papers' class-accuracy gains), which is what
label accuracy measures. Non-saturating or hinge loss (`loss`), Adam (each network has its own optimizer
settings); fake images in the discriminator step carry the real batch's labels (so both sides see the
same class mix), the generator step draws labels uniformly. Batch norm (momentum 0.9, so its moving
statistics settle within a short CPU run) samples in inference mode, on those moving statistics unless
`reference_batch` re-estimates them: one image depends only on its own z and label. The stride-2 layers'
`kernel` is 5 as in DCGAN; 4, a multiple of the stride, covers each output pixel evenly (no checkerboard).
`projection_rank` (null: off) factors the class vectors as W e_y, one matrix shared by every class times a
small per-class embedding: with scgan's 200 clusters, a class's own 6,272-D vector is trained only by the
steps whose batch holds that cluster, while the shared W learns from every step. `mode_seeking` (0: off)
adds MSGAN's diversity term to the generator's loss (`training.losses.mode_seeking`).
"""

from __future__ import annotations

from typing import Any

import keras

from mnistgen.models.base import CLASSES, OUTPUT_DTYPE, AdversarialSpec, Noise, activation, optimizer


def build(cfg: dict[str, Any]) -> AdversarialSpec:
    return conditional_spec(cfg, CLASSES, cfg["noise"])


def conditional_spec(
    cfg: dict[str, Any], classes: int, noise: Noise, self_conditioned: bool = False
) -> AdversarialSpec:
    """The spec of a GAN on these networks for labels 0..classes-1 (digits here; k-means clusters in
    `scgan`, which is `self_conditioned`)."""
    generator, discriminator = networks(cfg, classes)
    return AdversarialSpec(
        generator=generator,
        discriminator=discriminator,
        g_optimizer=optimizer(cfg["generator"]["optimizer"]),
        d_optimizer=optimizer(cfg["discriminator"]["optimizer"]),
        loss=cfg["loss"],
        z_dim=cfg["z_dim"],
        noise=noise,
        reference_batch=cfg["reference_batch"] or 0,
        classes=classes,
        self_conditioned=self_conditioned,
        mode_seeking=cfg["mode_seeking"],
    )


def networks(cfg: dict[str, Any], classes: int) -> tuple[keras.Model, keras.Model]:
    """The generator ([z, label] -> image) and the projection discriminator ([image, label] -> logit)."""
    z_dim, embedding = cfg["z_dim"], cfg["generator"]["label_embedding"]
    g_wide, g_narrow = cfg["generator"]["filters"]
    d_narrow, d_wide = cfg["discriminator"]["filters"]
    g_kernel, d_kernel = cfg["generator"]["kernel"], cfg["discriminator"]["kernel"]

    z, label = keras.Input((z_dim,), name="z"), keras.Input((1,), dtype="int32", name="label")
    wanted = keras.layers.Flatten()(keras.layers.Embedding(classes, embedding)(label))
    x = keras.layers.Concatenate()([z, wanted])
    x = keras.layers.Dense(7 * 7 * g_wide, use_bias=False)(x)
    x = keras.layers.Reshape((7, 7, g_wide))(x)
    x = activation("leaky_relu")(keras.layers.BatchNormalization(momentum=0.9)(x))
    x = keras.layers.Conv2DTranspose(g_narrow, g_kernel, strides=2, padding="same", use_bias=False)(x)
    x = activation("leaky_relu")(keras.layers.BatchNormalization(momentum=0.9)(x))
    x = keras.layers.Conv2DTranspose(1, g_kernel, strides=2, padding="same", dtype=OUTPUT_DTYPE)(x)
    image = keras.layers.Activation("tanh", dtype=OUTPUT_DTYPE)(x)
    generator = keras.Model([z, label], image, name="generator")

    seen, claimed = keras.Input((28, 28, 1), name="image"), keras.Input((1,), dtype="int32", name="label")
    h = activation("leaky_relu")(keras.layers.Conv2D(d_narrow, d_kernel, strides=2, padding="same")(seen))
    h = activation("leaky_relu")(keras.layers.Conv2D(d_wide, d_kernel, strides=2, padding="same")(h))
    features = keras.layers.Flatten(dtype=OUTPUT_DTYPE)(h)
    unconditional = keras.layers.Dense(1, dtype=OUTPUT_DTYPE)(features)
    rank = cfg["discriminator"]["projection_rank"]
    if rank:  # <W e_y, phi(x)> computed as <e_y, W^T phi(x)>: one shared matrix, a rank-D vector per class
        features = keras.layers.Dense(rank, use_bias=False, dtype=OUTPUT_DTYPE, name="shared_projection")(
            features
        )
    class_vector = keras.layers.Flatten(dtype=OUTPUT_DTYPE)(
        keras.layers.Embedding(classes, rank or 7 * 7 * d_wide, dtype=OUTPUT_DTYPE)(claimed)
    )
    projection = keras.layers.Dot(axes=1, dtype=OUTPUT_DTYPE)([class_vector, features])
    logit = keras.layers.Add(dtype=OUTPUT_DTYPE)([unconditional, projection])
    discriminator = keras.Model([seen, claimed], logit, name="discriminator")
    return generator, discriminator
