"""The settings of `params.yaml` as typed, frozen objects: one class per section and per variant family,
each field with its type and the rule its values must follow.

`params.yaml` holds every value (the classes hold no defaults but for settings a section may leave out),
so the file stays the one source; `config.validate` turns it, once its profile and `--set` overrides are
merged, into a `Settings`, and the rest of the code reads attributes. A field's rule names what a value
must be, in words, for the error that lists every value out of range at once; a class's `_agree` check
names two settings that clash.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, model_validator
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

# ------------------------------------------------------------------------------------------- rules

Check = Callable[[Any], bool]


def number(low: float, high: float = math.inf, *, whole: bool = False, low_open: bool = False) -> Check:
    """A finite number in the range; `whole`: an integer as written (`64`, not `64.0` or `1e2`)."""

    def check(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        if whole and not isinstance(value, int):
            return False
        return (value > low if low_open else value >= low) and value <= high

    return check


def optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def list_of(check: Check, length: int | None = None) -> Check:
    """A non-empty list (of exactly `length` items, if given) whose every item passes `check`."""
    return lambda value: (
        isinstance(value, list)
        and len(value) > 0
        and (length is None or len(value) == length)
        and all(check(item) for item in value)
    )


def _inside_project(value: Any) -> bool:
    """A relative path that stays inside the project folder (no `/...`, no `..`)."""
    return (
        isinstance(value, str)
        and bool(value.strip())
        and not Path(value).is_absolute()
        and ".." not in Path(value).parts
    )


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


@dataclass(frozen=True)
class Rule:
    """A field's rule: values pass as they are written (never converted: `64.0` is not a whole number),
    or fail saying `what` they must be (`config.validate` names the setting and the value)."""

    what: str
    check: Check

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)

    def _validate(self, value: Any) -> Any:
        if not self.check(value):
            raise PydanticCustomError("setting", "it must be {what}", {"what": self.what})
        return value


def one_of(*choices: str) -> Rule:
    return Rule(f"one of {', '.join(choices)}", lambda value: isinstance(value, str) and value in choices)


def clash(*problems: str) -> PydanticCustomError:
    """Settings of one section that do not go together: each problem starts with the key it is about
    (`config.validate` names the section)."""
    return PydanticCustomError("clash", "{problems}", {"problems": list(problems)})


def _below_one(value: Any) -> bool:
    return number(0, 1)(value) and value < 1


WHOLE = Rule("a whole number of at least 1", number(1, whole=True))
Whole = Annotated[int, WHOLE]
WholeOrNull = Annotated[
    int | None, Rule("null or a whole number of at least 1", optional(number(1, whole=True)))
]
Wholes = Annotated[list[int], Rule("a list of whole numbers of at least 1", list_of(number(1, whole=True)))]
Positive = Annotated[float, Rule("a number above 0", number(0, low_open=True))]
# Above 1 a step moves every weight by more than the weights' own size: a slip such as 2e4 for 2e-4.
LearningRate = Annotated[float, Rule("a learning rate above 0 and at most 1", number(0, 1, low_open=True))]
NotNegative = Annotated[float, Rule("a number of at least 0", number(0))]
Share = Annotated[float, Rule("a number from 0 to 1", number(0, 1))]
BELOW_ONE = Rule("a number in [0, 1)", _below_one)
BelowOneOrNull = Annotated[float | None, Rule("null or a number in [0, 1)", optional(_below_one))]
Flag = Annotated[bool, Rule("true or false", lambda value: isinstance(value, bool))]
Folder = Annotated[str, Rule("a folder inside the project, as a relative path (e.g. runs)", _inside_project)]
Seed = Annotated[int, Rule("a whole number from 0 to 2**32 - 1", number(0, 2**32 - 1, whole=True))]
SeedOrNull = Annotated[
    int | None, Rule("null or a whole number from 0 to 2**32 - 1", optional(number(0, 2**32 - 1, whole=True)))
]
Noise = Annotated[
    Literal["normal", "uniform", "uniform01", "stratified"],
    one_of("normal", "uniform", "uniform01", "stratified"),
]


def _range_pair(low: float, high: float) -> Check:
    """`[a, b]` with low <= a <= b <= high."""
    return lambda value: list_of(number(low, high), 2)(value) and value[0] <= value[1]


class Section(BaseModel):
    """A section of settings: every key one of its fields (a misspelt key is an error), read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def plain(self) -> dict[str, Any]:
        """The settings as plain values, in the order of the class's fields (a field a section may leave
        out only where params.yaml sets it): what MLflow logs and `mnistgen params` prints."""
        return self.model_dump(exclude_unset=True)


# -------------------------------------------------------------------------------------------- data


class DataFile(Section):
    name: Annotated[
        str,
        Rule("a file name", lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9._-]+", v) is not None),
    ]
    bytes: Whole
    sha256: Annotated[
        str,
        Rule(
            "64 hexadecimal digits",
            lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
        ),
    ]


class DataFiles(Section):
    """The published facts of MNIST's four files (checked on the decompressed files)."""

    train_images: DataFile
    train_labels: DataFile
    test_images: DataFile
    test_labels: DataFile


class Download(Section):
    attempts: Whole
    backoff_seconds: Annotated[float, Rule("a number of seconds from 0 to 600", number(0, 600))]
    timeout_seconds: Annotated[float, Rule("a number of seconds above 0", number(0, low_open=True))]


class Rows(Section):
    train: Whole
    test: Whole


class DataRules(Section):
    """The Great Expectations suite's bounds (`data.validation`)."""

    rows: Rows
    class_share: Annotated[list[float], Rule("a pair [low, high] of shares from 0 to 1", _range_pair(0, 1))]
    image_mean: Annotated[list[float], Rule("a pair [low, high] from 0 to 255", _range_pair(0, 255))]
    split_mean: Annotated[list[float], Rule("a pair [low, high] from 0 to 255", _range_pair(0, 255))]
    min_peak: Annotated[int, Rule("a whole number from 0 to 255", number(0, 255, whole=True))]


class DataVersioning(Section):
    push: Flag


class DataSection(Section):
    dir: Folder
    reports_dir: Folder
    # read only, so it may lie outside the project
    docs_assets: Annotated[str | None, Rule("null or a folder", optional(_text))]
    mirrors: Annotated[
        list[str],
        Rule(
            "a list of mirrors (URLs or folders)", lambda v: isinstance(v, list) and all(_text(m) for m in v)
        ),
    ]
    download: Download
    files: DataFiles
    validation: DataRules
    dvc: DataVersioning


# ------------------------------------------------------------------------------- mlflow, workers


class MlflowSection(Section):
    tracking_uri: Annotated[str, Rule("a tracking URI, e.g. sqlite:///mlflow/mlflow.db", _text)]
    experiment: Annotated[str, Rule("an experiment name", _text)]
    tuning_experiment: Annotated[str, Rule("an experiment name", _text)]
    artifact_location: Annotated[str, Rule("a folder or a URI", _text)]


class WorkersSection(Section):
    timeout_minutes: Annotated[float, Rule("a number of minutes above 0", number(0, low_open=True))]
    poll_seconds: Annotated[float, Rule("a number of seconds above 0", number(0, low_open=True))]


# ---------------------------------------------------------------------------- classifier, evaluation


class ClassifierSection(Section):
    dir: Folder
    filters: Wholes
    features: Whole
    lr: LearningRate
    batch_size: Whole
    epochs: Whole
    train_images: WholeOrNull
    min_accuracy: Share
    seed: Seed


class Bootstrap(Section):
    resamples: Annotated[int, Rule("a whole number of at least 10", number(10, whole=True))]
    confidence: Annotated[
        float, Rule("a number between 0 and 1, e.g. 0.95", lambda v: number(0, 1, low_open=True)(v) and v < 1)
    ]


class Cas(Section):
    images: Annotated[int, Rule("a whole number of at least 10", number(10, whole=True))]
    epochs: Whole


AtLeastTwo = Annotated[int, Rule("a whole number of at least 2", number(2, whole=True))]


class EvaluationSection(Section):
    samples: AtLeastTwo
    kid_subsets: Whole
    kid_subset_size: AtLeastTwo
    pr_samples: AtLeastTwo
    pr_k: Whole
    memorisation_samples: Whole
    bootstrap: Bootstrap
    cas: Cas
    seed: Seed
    reports_dir: Folder


# -------------------------------------------------------------------------------------- registry

# The scores a champion may be chosen by (`registry.primary_metric`): every image model has them. Each
# with the way it is better, which `registry.direction` must name.
RANKING_METRICS = {
    "fid": "lower",
    "kid": "lower",
    "inception_score": "higher",
    "precision": "higher",
    "recall": "higher",
}


class RegistrySection(Section):
    model_name: Annotated[
        str,
        Rule(
            "a name of letters, digits, '.', '_' and '-' (at most 100), e.g. mnist-generator",
            lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", v) is not None,
        ),
    ]
    primary_metric: Annotated[str, one_of(*RANKING_METRICS)]
    direction: Annotated[Literal["lower", "higher"], one_of("lower", "higher")]
    min_mode_entropy: Share
    min_memorisation_ratio: NotNegative

    @model_validator(mode="after")
    def _agree(self) -> RegistrySection:
        better = RANKING_METRICS[self.primary_metric]
        if self.direction != better:  # a wrong way round would crown the worst generator
            raise clash(
                f"direction is {self.direction!r}, but {self.primary_metric} is better {better}; it must be "
                f"{better!r}"
            )
        return self


# ------------------------------------------------------------------------------------- networks

# What each optimizer needs, besides its `name`.
OPTIMIZER_SETTINGS = {"adam": ("lr", "beta_1"), "rmsprop": ("lr",), "sgd": ("lr", "momentum")}


class Optimizer(Section):
    """`{name: adam, lr, beta_1}`, `{name: rmsprop, lr}` or `{name: sgd, lr, momentum}`."""

    name: Annotated[Literal["adam", "rmsprop", "sgd"], one_of(*OPTIMIZER_SETTINGS)]
    lr: LearningRate
    beta_1: Annotated[float | None, BELOW_ONE] = None  # left out where the optimizer has none; never null
    momentum: Annotated[float | None, BELOW_ONE] = None

    @model_validator(mode="after")
    def _agree(self) -> Optimizer:
        needs = OPTIMIZER_SETTINGS[self.name]
        missing = [setting for setting in needs if getattr(self, setting) is None]
        if missing:
            raise clash(
                *(f"{key} is missing; the {self.name} optimizer needs {', '.join(needs)}" for key in missing)
            )
        return self


Activation = Annotated[str, one_of("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid")]


class Network(Section):
    optimizer: Optimizer


class Mlp(Network):
    """Dense layers of `hidden` units (one width, or one per layer)."""

    hidden: Annotated[
        int | list[int],
        Rule(
            "a whole number of at least 1, or a list of them",
            lambda v: all(number(1, whole=True)(x) for x in (v if isinstance(v, list) and v else [v])),
        ),
    ]


class MlpGanNetwork(Mlp):
    init: Annotated[
        str,
        one_of(
            "glorot_uniform",
            "glorot_normal",
            "he_uniform",
            "he_normal",
            "lecun_uniform",
            "lecun_normal",
            "orthogonal",
        ),
    ]


class ToyDiscriminator(Mlp):
    pretrain_steps: Annotated[int, Rule("a whole number of at least 0", number(0, whole=True))]


class DcganNetwork(Network):
    filters: Wholes
    kernel: Whole


class DcganDiscriminator(DcganNetwork):
    batch_norm: Flag


class ConvNetwork(Network):
    """Tutorial 001's configurable convolutional blocks (`models.gdl_blocks`)."""

    filters: Wholes
    strides: Wholes
    kernel: Whole
    batch_norm_momentum: BelowOneOrNull
    activation: Activation
    dropout: BelowOneOrNull


class ConvGenerator(ConvNetwork):
    initial_shape: Annotated[
        list[int], Rule("a list of three whole numbers of at least 1", list_of(number(1, whole=True), 3))
    ]
    upsample: Wholes


class PenaltyCritic(ConvNetwork):
    batch_norm_momentum: Annotated[  # type: ignore[assignment]
        None,
        Rule(
            "null: a gradient-penalty critic must not use batch norm (it couples the per-image gradients)",
            lambda value: value is None,
        ),
    ]


class LabelledGenerator(Network):
    label_embedding: Whole
    filters: Wholes
    kernel: Whole


class ProjectionDiscriminator(Network):
    filters: Wholes
    kernel: Whole
    projection_rank: WholeOrNull


# -------------------------------------------------------------------------------------- variants


class Variant(Section):
    """What every variant sets: its budget, batch and seed."""

    seed: SeedOrNull
    steps_per_epoch: WholeOrNull
    batch_size: Whole
    epochs: Whole
    bf16: Flag
    # the `train` setting, for this variant alone: left out, or a number (never null)
    samples_every_epochs: Annotated[int | None, WHOLE] = None


EmaDecay = Annotated[
    float | None,
    Rule(
        "null or a number between 0 and 1, e.g. 0.999",
        optional(lambda v: number(0, 1, low_open=True)(v) and v < 1),
    ),
]
# one forward pass of the generator: 8 times the shipped 2,048 at most (its activations must fit)
ReferenceBatch = Annotated[
    int | None, Rule("null or a whole number from 2 to 16384", optional(number(2, 16384, whole=True)))
]


class ImageGan(Variant):
    """A GAN of images, sampled from a weight average of its generator when `ema_decay` is set."""

    z_dim: Whole
    ema_decay: EmaDecay


class MlpGan(ImageGan):
    noise: Noise
    generator: MlpGanNetwork
    discriminator: MlpGanNetwork


class Dcgan(ImageGan):
    noise: Noise
    reference_batch: ReferenceBatch
    generator: DcganNetwork
    discriminator: DcganDiscriminator


class ConvGan(ImageGan):
    noise: Noise
    generator: ConvGenerator
    discriminator: ConvNetwork


class Wgan(ImageGan):
    noise: Noise
    critic_steps: Whole
    clip: Positive
    generator: ConvGenerator
    critic: ConvNetwork


class WganGp(ImageGan):
    noise: Noise
    critic_steps: Whole
    gp_weight: NotNegative
    generator: ConvGenerator
    critic: PenaltyCritic


class ConditionalGan(ImageGan):
    """cgan's and scgan's: a labelled generator against a projection discriminator."""

    reference_batch: ReferenceBatch
    loss: Annotated[Literal["bce", "hinge"], one_of("bce", "hinge")]
    mode_seeking: NotNegative
    generator: LabelledGenerator
    discriminator: ProjectionDiscriminator

    @model_validator(mode="after")
    def _pairs(self) -> ConditionalGan:
        if self.mode_seeking and self.batch_size == 1:  # the term compares the images of two noise vectors
            raise clash(
                f"mode_seeking is {self.mode_seeking!r} with batch_size 1; mode seeking needs batch_size at "
                "least 2 (or mode_seeking 0)"
            )
        return self


class Cgan(ConditionalGan):
    noise: Noise
    auxiliary_classifier: NotNegative
    auxiliary_margin: NotNegative
    # per digit (labels digit x subclusters + cluster: at most 1,000 labels, as scgan's)
    subclusters: Annotated[
        int | None, Rule("null or a whole number from 2 to 100", optional(number(2, 100, whole=True)))
    ]
    digit_vectors: Flag
    shared_fakes: Flag

    @model_validator(mode="after")
    def _agree(self) -> Cgan:
        problems = []
        if self.subclusters and self.noise != "normal":  # the saved generator reads its style as N(0, 1)
            problems.append(
                f"subclusters is {self.subclusters!r} with noise {self.noise!r}; subclusters need noise: "
                "normal (or subclusters: null)"
            )
        if self.auxiliary_margin and not self.auxiliary_classifier:  # the margin hinges the head's term
            problems.append(
                f"auxiliary_margin is {self.auxiliary_margin!r} with auxiliary_classifier "
                f"{self.auxiliary_classifier!r}; a margin needs the digit head: auxiliary_classifier above 0 "
                "(or auxiliary_margin 0)"
            )
        if self.digit_vectors and not self.subclusters:  # a digit's vector is shared by its styles
            problems.append(
                f"digit_vectors is true with subclusters {self.subclusters!r}; digit vectors need styles: "
                "subclusters of at least 2 (or digit_vectors: false)"
            )
        if problems:
            raise clash(*problems)
        return self


class Scgan(ConditionalGan):
    clusters: Annotated[int, Rule("a whole number from 2 to 1000", number(2, 1000, whole=True))]  # k-means


class Autoencoder(Variant):
    """Tutorial 001's convolutional encoder and decoder, sampled from a prior over its codes."""

    z_dim: Whole
    encoder_filters: Wholes
    encoder_strides: Wholes
    decoder_filters: Wholes
    decoder_strides: Wholes
    kernel: Whole
    batch_norm: Flag
    dropout: BelowOneOrNull
    optimizer: Optimizer
    latent_prior: Annotated[Literal["normal", "fitted"], one_of("normal", "fitted")]
    latent_components: Annotated[int, Rule("a whole number from 1 to 1000", number(1, 1000, whole=True))]

    @model_validator(mode="after")
    def _agree(self) -> Autoencoder:
        if self.latent_components > 1 and self.latent_prior != "fitted":  # N(0, I) has nothing to fit
            raise clash(
                f"latent_components is {self.latent_components!r} with latent_prior {self.latent_prior!r}; a "
                "mixture needs latent_prior: fitted (or latent_components: 1)"
            )
        return self


class Vae(Autoencoder):
    r_loss_factor: Positive


class ToyGan(Variant):
    noise: Noise
    sort_batches: Flag
    generator: Mlp
    discriminator: ToyDiscriminator


class Variants(Section):
    """Every variant's section, typed by its family (`models.VARIANTS` builds each)."""

    mlp_gan: MlpGan
    dcgan: Dcgan
    conv_gan: ConvGan
    wgan: Wgan
    wgan_gp: WganGp
    autoencoder: Autoencoder
    vae: Vae
    toy_gan_1d: ToyGan
    cgan: Cgan
    scgan: Scgan
    cvae: Vae

    def of(self, name: str) -> Variant:
        """The settings of the variant `name` (a field of this class)."""
        return getattr(self, name)

    @classmethod
    def names(cls) -> list[str]:
        return list(cls.model_fields)


# ------------------------------------------------------------------------------------------- train


class TrainSection(Section):
    seed: Seed
    precision: Annotated[Literal["auto", "float32", "bfloat16"], one_of("auto", "float32", "bfloat16")]
    deterministic: Flag
    xla: Flag
    runs_dir: Folder
    checkpoint_every_steps: Whole
    log_every_steps: Whole
    samples_every_epochs: Whole
    max_minutes: Annotated[
        float | None, Rule("null or a number of minutes above 0", optional(number(0, low_open=True)))
    ]
    quality_every_seconds: Annotated[
        float | None, Rule("null or a number of seconds above 0", optional(number(0, low_open=True)))
    ]
    quality_samples: Annotated[int, Rule("a whole number of at least 2", number(2, whole=True))]
    system_metrics_seconds: Annotated[
        float | None, Rule("null or a number of seconds of at least 1", optional(number(1)))
    ]
    variants: Annotated[
        list[str],
        Rule(
            f"a list of variants from: {', '.join(Variants.names())}",
            lambda v: isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v),
        ),
    ]

    @model_validator(mode="after")
    def _known(self) -> TrainSection:
        chosen, known = self.variants, Variants.names()
        wrong = [v for v in dict.fromkeys(chosen) if v not in known or chosen.count(v) > 1]
        if wrong:
            raise clash(
                f"variants names {', '.join(map(repr, wrong))} (unknown, or twice); it must list each "
                f"variant once, from: {', '.join(known)}"
            )
        return self


# ------------------------------------------------------------------------------------------- all


class Settings(Section):
    """params.yaml with its profile (`profile`) and any `--set` overrides merged in, checked."""

    profile: str
    data: DataSection
    train: TrainSection
    mlflow: MlflowSection
    classifier: ClassifierSection
    evaluation: EvaluationSection
    workers: WorkersSection
    registry: RegistrySection
    variants: Variants


def section_at(keys: list[str] | tuple[Any, ...]) -> type[Section] | None:
    """The class of the section at `keys` (`["variants", "cgan"]`: `Cgan`); None where none is."""
    section: type[Section] = Settings
    for key in keys:
        field = section.model_fields.get(str(key))
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, Section)
        ):
            return None
        section = field.annotation
    return section


def rule_of(path: str) -> Rule | None:
    """The rule of the setting at `path` (`variants.cgan.generator.kernel`); None for a section or a key
    that is not a setting."""
    *parents, key = path.split(".")
    section = section_at(parents)
    field = section.model_fields.get(key) if section else None
    return next((item for item in field.metadata if isinstance(item, Rule)), None) if field else None
