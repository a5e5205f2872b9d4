"""Class-conditional DCGAN-style GAN (beyond the tutorials: Mirza & Osindero 2014; Miyato & Koyama 2018).

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
`auxiliary_classifier` (0: off) gives the discriminator AC-GAN's second head (Odena et al. 2017): a linear
classifier of the digit on the same features, trained on the real images' digits only, whose cross-entropy
on the fakes' wanted digits joins the generator's loss. Why: the projection term asks "is this a real
image of label y", which a fake can pass while still looking a little like another digit; the head asks
"which digit is this" outright, so the generator is pushed away from images between two digits, which is
what every digit's label accuracy measures. Trained on real images only (the original AC-GAN trains
it on the fakes too), the head does not learn to read a digit into a poor fake, which would let the
generator collapse onto the easiest few images of each digit (Gong et al. 2019). `auxiliary_margin` (nats;
0: off) hinges the generator's half: a fake already read as its digit with probability at least
exp(-margin) adds nothing, so the head corrects the misread fakes without pulling every fake towards the
digit's most typical image, which costs recall.
`subclusters` (null: off) conditions both networks on (digit, style) instead of the digit alone: k-means
splits each digit's training images into that many clusters (`data.clusters`, as scgan's clusters of all
images), one label per pair. Why: one digit's images still span several styles (a slanted or an upright
1, a looped or an open 2), and the finer label gives the discriminator one easier question per style, as
scgan's clusters do; the digit still decides what is drawn. The saved generator takes the digit and one
more N(0, 1) noise coordinate that picks the digit's style as often as its images hold it
(`routed_generator`), so it samples, serves and is evaluated as any conditional model.
`digit_vectors` (with `subclusters`) makes each label's generator embedding and discriminator class vector
the sum of its digit's and its style's. Why: a style's own vector learns only from the steps whose batch
holds that style (one in 250 labels), so 250 labels start much slower than 10 digits do; the digit's
vector learns from every image of the digit, so the networks learn the digits as fast as a ten-digit
model would, and the styles' own parts (initialised as any embedding, small and random, so the styles
differ from the first step) tell the styles apart.
`shared_fakes` (false: off) lets one batch of fakes serve both updates of a step (`AdversarialSpec`). Why:
the generator is the costlier network (its 7x7 to 14x14 transposed convolution is most of a step's
arithmetic), and a second forward pass for the generator's update repeats the first on other noise; with
one, a step takes about a sixth less time, so a minute of CPU holds more steps.
"""

from __future__ import annotations

from statistics import NormalDist

import keras

from mnistgen.models.base import CLASSES, OUTPUT_DTYPE, AdversarialSpec, Noise, activation, optimizer
from mnistgen.settings import Cgan, ConditionalGan

# How far apart the digits' stretches of the style coordinate lie in `routed_generator`: the coordinate is a
# N(0, 1) draw, and |u| > 10 has probability 1.5e-23.
ROUTING_SPAN = 20.0


def build(cfg: Cgan) -> AdversarialSpec:
    styles = cfg.subclusters
    options = {
        "auxiliary_classifier": cfg.auxiliary_classifier,
        "auxiliary_margin": cfg.auxiliary_margin,
        "shared_fakes": cfg.shared_fakes,
    }
    if styles:  # labels digit x styles + style (`data.clusters.relabel`); normal noise (`settings.Cgan`)
        return conditional_spec(
            cfg, CLASSES * styles, cfg.noise, CLASSES, digit_vectors=cfg.digit_vectors, **options
        )
    return conditional_spec(cfg, CLASSES, cfg.noise, **options)


def conditional_spec(
    cfg: ConditionalGan,
    classes: int,
    noise: Noise,
    cluster_groups: int = 0,
    auxiliary_classifier: float = 0.0,
    auxiliary_margin: float = 0.0,
    digit_vectors: bool = False,
    shared_fakes: bool = False,
) -> AdversarialSpec:
    """The spec of a GAN on these networks for labels 0..classes-1: digits, or k-means clusters in
    `cluster_groups` groups (`AdversarialSpec.cluster_groups`: scgan's 1, `subclusters`' 10 digits);
    `auxiliary_classifier` > 0 (labels that are digits or digits' styles): D's digit head, at that weight,
    with G's term hinged at `auxiliary_margin` nats; `digit_vectors` (labels that are digits' styles): each
    label's vectors are its digit's plus its style's; `shared_fakes`: one batch of fakes a step serves both
    updates (`AdversarialSpec.shared_fakes`)."""
    digit_groups = CLASSES if digit_vectors else 0
    generator, discriminator = networks(cfg, classes, auxiliary_classifier > 0, digit_groups)
    return AdversarialSpec(
        generator=generator,
        discriminator=discriminator,
        g_optimizer=optimizer(cfg.generator.optimizer),
        d_optimizer=optimizer(cfg.discriminator.optimizer),
        loss=cfg.loss,
        z_dim=cfg.z_dim,
        noise=noise,
        reference_batch=cfg.reference_batch or 0,
        classes=classes,
        cluster_groups=cluster_groups,
        mode_seeking=cfg.mode_seeking,
        auxiliary_classifier=auxiliary_classifier,
        auxiliary_margin=auxiliary_margin,
        shared_fakes=shared_fakes,
    )


def networks(
    cfg: ConditionalGan, classes: int, digit_head: bool = False, digit_groups: int = 0
) -> tuple[keras.Model, keras.Model]:
    """The generator ([z, label] -> image) and the projection discriminator ([image, label] -> logit, or
    [logit, digit logits] with `digit_head`). `digit_groups` G > 0: the labels are G digits' styles (label
    // (classes / G) is the digit), and each label's embedding and class vector add the digit's own."""
    z_dim, embedding = cfg.z_dim, cfg.generator.label_embedding
    g_wide, g_narrow = cfg.generator.filters
    d_narrow, d_wide = cfg.discriminator.filters
    g_kernel, d_kernel = cfg.generator.kernel, cfg.discriminator.kernel

    z, label = keras.Input((z_dim,), name="z"), keras.Input((1,), dtype="int32", name="label")
    wanted = keras.layers.Flatten()(_label_vector(label, classes, embedding, digit_groups))
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
    image_features = features  # phi(x), before any projection
    rank = cfg.discriminator.projection_rank
    if rank:  # <W e_y, phi(x)> computed as <e_y, W^T phi(x)>: one shared matrix, a rank-D vector per class
        features = keras.layers.Dense(rank, use_bias=False, dtype=OUTPUT_DTYPE, name="shared_projection")(
            features
        )
    class_vector = keras.layers.Flatten(dtype=OUTPUT_DTYPE)(
        _label_vector(claimed, classes, rank or 7 * 7 * d_wide, digit_groups, dtype=OUTPUT_DTYPE)
    )
    projection = keras.layers.Dot(axes=1, dtype=OUTPUT_DTYPE)([class_vector, features])
    logit = keras.layers.Add(dtype=OUTPUT_DTYPE)([unconditional, projection])
    outputs = logit
    if digit_head:  # built last: without it, every other weight is initialised as before
        outputs = [logit, keras.layers.Dense(CLASSES, dtype=OUTPUT_DTYPE, name="digit")(image_features)]
    discriminator = keras.Model([seen, claimed], outputs, name="discriminator")
    return generator, discriminator


def _label_vector(
    label: keras.KerasTensor, classes: int, width: int, digit_groups: int, dtype: str | None = None
) -> keras.KerasTensor:
    """A learned vector per label; with `digit_groups` G, the label's group's vector plus the label's own.
    The group is found by fixed bin boundaries (`Discretization`), a Keras layer that loads in safe mode."""
    if not digit_groups:
        return keras.layers.Embedding(classes, width, dtype=dtype)(label)
    per_group = classes // digit_groups
    group = keras.layers.Discretization(
        bin_boundaries=[float(per_group * g) for g in range(1, digit_groups)], output_mode="int"
    )(label)
    shared = keras.layers.Embedding(digit_groups, width, dtype=dtype)(group)
    own = keras.layers.Embedding(classes, width, dtype=dtype)(label)
    return keras.layers.Add(dtype=dtype)([shared, own])


def routed_generator(generator: keras.Model, shares: list[float], groups: int = 1) -> keras.Model:
    """The saved generator of a GAN trained on cluster labels: [z, label] -> image made into one that draws
    its own cluster from u, one more N(0, 1) noise coordinate, cluster c with probability `shares[c]`.

    `groups` 1 (scgan): (z, u) -> image, u below the normal quantile of shares[0] is cluster 0, and so on.
    `groups` G (cgan's `subclusters`, G digits of k = len(shares) / G clusters each): [(z, u), digit] ->
    image, a cluster among the digit's own (labels digit x k .. digit x k + k - 1), each with its share of
    that digit's images. The digits' bin boundaries lie side by side, ROUTING_SPAN apart, with one more
    boundary between two digits, and u is moved by ROUTING_SPAN x digit: the bin it lands in is the label.

    Built from Keras' own layers only (cropping, reshaping, rescaling, `Discretization` on fixed bin
    boundaries), so the saved file loads in safe mode like every other network here."""
    z_dim = generator.inputs[0].shape[-1]
    per_group = len(shares) // groups
    boundaries: list[float] = []
    for group in range(groups):
        own = shares[group * per_group : (group + 1) * per_group]
        cumulative = [sum(own[: c + 1]) / sum(own) for c in range(per_group - 1)]
        boundaries += [group * ROUTING_SPAN + _normal_quantile(p) for p in cumulative]
        boundaries += [(group + 0.5) * ROUTING_SPAN] if group < groups - 1 else []
    noise = keras.Input((z_dim + 1,), name="z")
    column = keras.layers.Reshape((z_dim + 1, 1))(noise)
    z = keras.layers.Reshape((z_dim,))(keras.layers.Cropping1D((0, 1))(column))
    u = keras.layers.Reshape((1,))(keras.layers.Cropping1D((z_dim, 0))(column))
    inputs: keras.KerasTensor | list[keras.KerasTensor] = noise
    if groups > 1:
        digit = keras.Input((1,), dtype="int32", name="label")
        offset = keras.layers.Rescaling(ROUTING_SPAN, dtype="float32")(digit)
        u = keras.layers.Add(dtype="float32")([u, offset])
        inputs = [noise, digit]
    cluster = keras.layers.Discretization(bin_boundaries=boundaries, output_mode="int", name="cluster")(u)
    return keras.Model(inputs, generator([z, cluster]), name="generator")


def _normal_quantile(p: float) -> float:
    return NormalDist().inv_cdf(min(max(p, 1e-12), 1 - 1e-12))
