"""`--set` overrides of the profiled params: typed values, nested keys, and typos refused."""

from __future__ import annotations

import re

import pytest
from helpers.paths import REPO

from mnistgen.config import (
    ConfigError,
    apply_overrides,
    check_flow_mirrors,
    check_options,
    load_params,
    read_yaml,
    validate,
    with_profile,
)
from mnistgen.errors import redact

PARAMS = {"variants": {"cgan": {"epochs": 3, "ema_decay": None, "optimizer": {"lr": 0.0002}}}, "train": {}}


def test_overrides_parse_yaml_values_into_nested_settings_without_touching_the_input() -> None:
    result = apply_overrides(
        PARAMS,
        ["variants.cgan.ema_decay=0.999", "variants.cgan.optimizer.lr=1e-3", "variants.cgan.epochs=[1, 2]"],
    )
    assert result["variants"]["cgan"] == {"epochs": [1, 2], "ema_decay": 0.999, "optimizer": {"lr": 0.001}}
    assert (
        PARAMS["variants"]["cgan"]["ema_decay"] is None
        and PARAMS["variants"]["cgan"]["optimizer"]["lr"] == 0.0002
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "variants.cgan.ema_decy=0.9",
            r"variants.cgan.ema_decy is not a setting .*known here: epochs, ema_decay",
        ),
        ("variants.cgan.epochs.inner=1", r"variants.cgan.epochs.inner is not a setting .*not a section"),
        ("variants.cgan.epochs", r"expected KEY.PATH=VALUE"),
        ("variants..epochs=1", r"expected KEY.PATH=VALUE"),
    ],
)
def test_overrides_refuse_unknown_keys_and_malformed_settings(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(PARAMS, [override])


def test_every_gan_has_one_section_per_network_each_with_its_optimizer() -> None:
    variants = load_params(REPO)["variants"]
    gans = [name for name in variants if "gan" in name]
    assert gans == ["mlp_gan", "dcgan", "conv_gan", "wgan", "wgan_gp", "toy_gan_1d", "cgan", "scgan"]
    for name in gans:
        sections = {key for key, value in variants[name].items() if isinstance(value, dict)}
        assert sections in ({"generator", "discriminator"}, {"generator", "critic"}), f"{name}: {sections}"
        assert all("optimizer" in variants[name][section] for section in sections), name


@pytest.mark.parametrize("profile", ["smoke", "cpu", "faithful", "gpu"])
def test_every_profile_is_in_range(profile: str) -> None:
    validate(with_profile(load_params(REPO), profile))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "variants.mlp_gan.generator.optimizer.lr=-0.1",
            "variants.mlp_gan.generator.optimizer.lr is -0.1; it must be a learning rate above 0 and at most",
        ),
        (
            "variants.dcgan.discriminator.optimizer.lr=2e4",
            "variants.dcgan.discriminator.optimizer.lr is 20000.0; it must be a learning rate above 0",
        ),
        (
            "classifier.lr=1e9",
            "classifier.lr is 1000000000.0; it must be a learning rate above 0 and at most 1",
        ),
        (
            "variants.mlp_gan.batch_size=abc",
            "variants.mlp_gan.batch_size is 'abc'; it must be a whole number",
        ),
        ("variants.mlp_gan.batch_size=0", "variants.mlp_gan.batch_size is 0"),
        ("variants.mlp_gan.epochs=0", "variants.mlp_gan.epochs is 0"),
        ("variants.mlp_gan.steps_per_epoch=2.5", "variants.mlp_gan.steps_per_epoch is 2.5"),
        (
            "variants.wgan.ema_decay=2",
            "variants.wgan.ema_decay is 2; it must be null or a number between 0 and 1",
        ),
        ("variants.mlp_gan.noise=cauchy", "variants.mlp_gan.noise is 'cauchy'; it must be one of normal"),
        (
            "variants.autoencoder.latent_prior=fited",
            "latent_prior is 'fited'; it must be one of normal, fitted",
        ),
        (
            "variants.vae.latent_components=0",
            "variants.vae.latent_components is 0; it must be a whole number from 1 to 1000",
        ),
        ("variants.wgan_gp.critic.batch_norm_momentum=0.9", "must not use batch norm"),
        (
            "variants.cgan.mode_seeking=-1",
            "variants.cgan.mode_seeking is -1; it must be a number of at least 0",
        ),
        (
            "variants.cgan.auxiliary_classifier=-0.5",
            "variants.cgan.auxiliary_classifier is -0.5; it must be a number of at least 0",
        ),
        (
            "variants.cgan.auxiliary_margin=-0.1",
            "variants.cgan.auxiliary_margin is -0.1; it must be a number of at least 0",
        ),
        (
            "variants.cgan.digit_vectors=1",
            "variants.cgan.digit_vectors is 1; it must be true or false",
        ),
        (
            "variants.cgan.shared_fakes=maybe",
            "variants.cgan.shared_fakes is 'maybe'; it must be true or false",
        ),
        (
            "variants.cgan.subclusters=1",
            "variants.cgan.subclusters is 1; it must be null or a whole number from 2 to 100",
        ),
        (
            "variants.scgan.discriminator.projection_rank=0",
            "variants.scgan.discriminator.projection_rank is 0; it must be null or a whole number",
        ),
        ("variants.wgan.generator.optimizer.lr=.nan", "variants.wgan.generator.optimizer.lr is nan"),
        ("train.seed=abc", "train.seed is 'abc'; it must be a whole number"),
        (
            "train.precision=float16",
            "train.precision is 'float16'; it must be one of auto, float32, bfloat16",
        ),
        ("train.max_minutes=-1", "train.max_minutes is -1"),
        ("workers.timeout_minutes=0", "workers.timeout_minutes is 0; it must be a number of minutes above 0"),
        (
            "evaluation.bootstrap.resamples=5",
            "evaluation.bootstrap.resamples is 5; it must be a whole number",
        ),
        ("evaluation.bootstrap.confidence=95", "evaluation.bootstrap.confidence is 95; it must be a number"),
        (
            "variants.vae.optimizer.name=sgd",
            "variants.vae.optimizer.momentum is missing; the sgd optimizer needs lr, momentum",
        ),
        (
            "variants.cgan.discriminator.optimizer={name: adam, lr: 0.001}",
            "variants.cgan.discriminator.optimizer.beta_1 is missing; the adam optimizer needs lr, beta_1",
        ),
        (
            "variants.mlp_gan.batch_size=64.0",
            "variants.mlp_gan.batch_size is 64.0; it must be a whole number",
        ),
        ("variants.mlp_gan.z_dim=1e2", "variants.mlp_gan.z_dim is 100.0; it must be a whole number"),
        ("variants.mlp_gan.generator.init=glorot_unifrom", "init is 'glorot_unifrom'; it must be one of"),
        ("variants.conv_gan.generator.activation=relux", "activation is 'relux'; it must be one of relu"),
        ("variants.dcgan.generator.filters=[]", "variants.dcgan.generator.filters is []; it must be a list"),
        (
            "variants.wgan.generator.initial_shape=[7, 7]",
            "initial_shape is [7, 7]; it must be a list of three",
        ),
        (
            "variants.mlp_gan.bf16=yes please",
            "variants.mlp_gan.bf16 is 'yes please'; it must be true or false",
        ),
        ("train.variants=[mlp_gan, mlp_gan]", "train.variants names 'mlp_gan' (unknown, or twice)"),
        ("train.variants=[gan9]", "train.variants names 'gan9' (unknown, or twice)"),
        ("train.variants=[]", "train.variants is []; it must be a list of variants"),
        ("train.runs_dir=/tmp/runs", "train.runs_dir is '/tmp/runs'; it must be a folder inside the project"),
        ("data.dir=../elsewhere", "data.dir is '../elsewhere'; it must be a folder inside the project"),
        ("data.download.attempts=0", "data.download.attempts is 0; it must be a whole number of at least 1"),
        ("classifier.batch_size=0", "classifier.batch_size is 0; it must be a whole number of at least 1"),
        ("classifier.filters=[]", "classifier.filters is []; it must be a list of whole numbers"),
        ("classifier.min_accuracy=99", "classifier.min_accuracy is 99; it must be a number from 0 to 1"),
        ("evaluation.samples=1", "evaluation.samples is 1; it must be a whole number of at least 2"),
        ("evaluation.seed=null", "evaluation.seed is None; it must be a whole number from 0"),
        ("registry.direction=Lower", "registry.direction is 'Lower'; it must be one of lower, higher"),
        ("registry.direction=higher", "registry.direction is 'higher', but fid is better lower"),
        ("registry.primary_metric=FID", "registry.primary_metric is 'FID'; it must be one of fid, kid"),
        ("registry.min_mode_entropy=.nan", "registry.min_mode_entropy is nan; it must be a number from 0"),
        ("registry.min_memorisation_ratio=-1", "registry.min_memorisation_ratio is -1"),
        ("registry.model_name=a' or name = 'b", "registry.model_name is \"a' or name = 'b\"; it must be a"),
    ],
)
def test_settings_out_of_range_are_refused_by_name(override: str, message: str) -> None:
    params = apply_overrides(with_profile(load_params(REPO), "smoke"), [override])
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(params)


def test_the_registry_may_rank_by_a_figure_that_is_better_higher() -> None:
    params = with_profile(load_params(REPO), "smoke")
    ranked = validate(
        apply_overrides(params, ["registry.primary_metric=recall", "registry.direction=higher"])
    )
    assert ranked.registry.direction == "higher"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.seed=[1", r"the --set value '\[1' is not valid YAML"),
        (
            "train.seed=!!python/object/apply:os.system [echo planted]",
            r"is not valid YAML: could not determine",
        ),
        ("variants.mlp_gan=5", r"variants.mlp_gan is a section, not a setting. Fix: set one of its settings"),
        ("train=[]", r"train is a section, not a setting"),
    ],
)
def test_overrides_that_are_not_settings_are_refused_with_the_fix(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(with_profile(load_params(REPO), "smoke"), [override])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "profile: smoke\n",
            r"params.yaml is not valid YAML: the key 'profile' is written twice \(again at "
            r"line \d+, column 1\)\. Fix",
        ),
        (
            "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else '1'] * 10)}]\n" for i in range(6)),
            r"stands for [\d,]{9} values once its aliases \(\*name\) are expanded",
        ),
    ],
    ids=["duplicate-key", "alias-bomb"],
)
def test_a_params_file_with_a_key_twice_or_an_alias_bomb_is_refused(
    tmp_path, extra: str, message: str
) -> None:
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text() + "\n" + extra)
    with pytest.raises(ConfigError, match=message):
        load_params(tmp_path)


def test_a_params_file_far_larger_than_settings_is_refused_unread(tmp_path) -> None:
    (tmp_path / "params.yaml").write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match=r"more than a settings file holds"):
        load_params(tmp_path)


@pytest.mark.parametrize(
    ("clash", "message", "fix"),
    [
        (  # only a fitted prior is a mixture
            ["variants.vae.latent_components=3", "variants.vae.latent_prior=normal"],
            "variants.vae.latent_components is 3 with latent_prior 'normal'; a mixture needs latent_prior",
            ["variants.vae.latent_prior=fitted"],
        ),
        (  # the saved generator reads its style coordinate as a N(0, 1) draw
            ["variants.cgan.subclusters=4", "variants.cgan.noise=uniform"],
            "variants.cgan.subclusters is 4 with noise 'uniform'; subclusters need noise: normal",
            ["variants.cgan.noise=normal"],
        ),
        (  # the diversity term compares two images of a batch
            ["variants.scgan.mode_seeking=0.2", "variants.scgan.batch_size=1"],
            "variants.scgan.mode_seeking is 0.2 with batch_size 1; mode seeking needs",
            ["variants.scgan.batch_size=2"],
        ),
        (  # the margin hinges the digit head's term in G's loss: without the head it would do nothing
            ["variants.cgan.auxiliary_margin=0.1", "variants.cgan.auxiliary_classifier=0.0"],
            "variants.cgan.auxiliary_margin is 0.1 with auxiliary_classifier 0.0; a margin needs the digit",
            ["variants.cgan.auxiliary_classifier=1.0"],
        ),
        (  # a digit's vector is shared by its styles: without `subclusters` there are none
            ["variants.cgan.digit_vectors=true", "variants.cgan.subclusters=null"],
            "variants.cgan.digit_vectors is true with subclusters None; digit vectors need styles",
            ["variants.cgan.subclusters=3"],
        ),
    ],
)
def test_settings_that_clash_are_refused_by_name_and_fine_once_fixed(
    clash: list[str], message: str, fix: list[str]
) -> None:
    """A setting that needs another gets one line naming both and the fix; with the fix, it is valid."""
    params = apply_overrides(with_profile(load_params(REPO), "smoke"), clash)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(params)
    validate(apply_overrides(params, fix))


def test_every_problem_is_named_at_once() -> None:
    bad = ["variants.dcgan.epochs=0", "variants.cgan.generator.optimizer.lr=0"]
    with pytest.raises(ConfigError) as refused:
        validate(apply_overrides(with_profile(load_params(REPO), "smoke"), bad))
    assert "variants.dcgan.epochs" in str(refused.value) and "variants.cgan.generator.optimizer.lr" in str(
        refused.value
    )


def _params_with(edit) -> dict:
    import copy

    params = copy.deepcopy(load_params(REPO))
    edit(params)
    return params


def test_a_profile_may_only_set_what_the_base_defines() -> None:
    typo = _params_with(lambda p: p["profiles"]["smoke"]["variants"]["cgan"].update(ema_decy=0.9))
    with pytest.raises(ConfigError, match=r"profile 'smoke' in params.yaml sets variants.cgan.ema_decy"):
        with_profile(typo, "smoke")
    with pytest.raises(ConfigError, match=r"sets evaluation.sampels"):
        with_profile(_params_with(lambda p: p["profiles"]["cpu"]["evaluation"].update(sampels=5)), "cpu")
    # a variant may set a `train` setting for itself (the tutorial's "plot every N epochs")
    ok = _params_with(lambda p: p["profiles"]["smoke"]["variants"]["cgan"].update(samples_every_epochs=2))
    assert with_profile(ok, "smoke")["variants"]["cgan"]["samples_every_epochs"] == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("data: {}\n", r"no 'train' section; no 'mlflow' section"),
        ("- a list\n", r"is not a mapping of sections"),
    ],
)
def test_a_params_file_without_its_sections_is_refused_by_name(tmp_path, content: str, message: str) -> None:
    (tmp_path / "params.yaml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_params(tmp_path)


def test_an_unknown_top_level_key_is_refused(tmp_path) -> None:
    text = (REPO / "params.yaml").read_text() + "\ntrian: {seed: 1}\n"
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"unknown key 'trian'"):
        load_params(tmp_path)


def test_command_line_options_are_checked_by_the_settings_rules() -> None:
    check_options(seed=0, max_steps=1, max_minutes=0.5, n=1_000_000)
    check_options(seed=None, max_steps=None)  # not given
    with pytest.raises(ConfigError, match=r"--max-steps is 0; .*--seed is -1"):
        check_options(max_steps=0, seed=-1)
    with pytest.raises(ConfigError, match=r"--n is 1000001; it must be a whole number from 1 to 1,000,000"):
        check_options(n=1_000_001)


def test_credentials_in_urls_are_redacted_everywhere_an_error_goes() -> None:
    text = "at http://bob:pw@127.0.0.1:5000/x and postgresql+psycopg2://u:p@db/m, s3://bucket/k, a@b.org"
    assert (
        redact(text)
        == "at http://***@127.0.0.1:5000/x and postgresql+psycopg2://***@db/m, s3://bucket/k, a@b.org"
    )
    assert str(ConfigError("cannot use https://token@host/")) == "cannot use https://***@host/"


def test_a_flow_refuses_a_mirror_password_as_its_parameter() -> None:
    """Prefect keeps flow-run parameters in its database: a mirror with credentials must come through
    MNISTGEN_MIRRORS (which `mnistgen pipeline --mirror` uses), never as the `mirrors` parameter."""
    check_flow_mirrors(None)
    check_flow_mirrors(["https://storage.example/mnist/", "/srv/mnist", "file:///srv/mnist"])
    with pytest.raises(ConfigError, match=r"Fix: give it in MNISTGEN_MIRRORS") as refused:
        check_flow_mirrors(["/srv/mnist", "https://alice:pw@host/mnist/"])
    assert "pw" not in str(refused.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda p: p["variants"]["conv_gan"]["generator"].update(actvation="relu"),
            "variants.conv_gan.generator.actvation is not a setting mnistgen reads (did you mean "
            "variants.conv_gan.generator.activation?)",
        ),
        (
            lambda p: p["data"]["files"]["train_images"].update(sha265="0" * 64),
            "(did you mean data.files.train_images.sha256?)",
        ),
        (lambda p: p["evaluation"].update(sampels=5), "evaluation.sampels is not a setting"),
        (lambda p: p["workers"].update(gpus=2), "workers.gpus is not a setting mnistgen reads\n"),
        (lambda p: p["data"]["files"]["train_images"].update(sha256="not hex"), "it must be 64 hexadecimal"),
    ],
)
def test_every_key_of_every_section_is_one_mnistgen_reads(edit, expected: str) -> None:
    for profile in load_params(REPO)["profiles"]:  # what the project ships passes in every profile
        validate(with_profile(load_params(REPO), profile))
    with pytest.raises(ConfigError) as refused:
        validate(with_profile(_params_with(edit), "smoke"))
    assert expected in str(refused.value) and "Fix: correct them" in str(refused.value)


def test_the_settings_are_typed_sections_read_as_attributes() -> None:
    """`validate` turns params.yaml into frozen, typed sections: each variant's settings are its family's
    class, every value as params.yaml wrote it, and a section cannot be changed once checked."""
    import pydantic

    from mnistgen.settings import Cgan, ConvGenerator, Settings, Vae

    settings = validate(with_profile(load_params(REPO), "cpu"))
    assert isinstance(settings, Settings)
    assert isinstance(settings.variants.cgan, Cgan) and isinstance(settings.variants.cvae, Vae)
    assert isinstance(settings.variants.wgan.generator, ConvGenerator)
    assert settings.variants.cgan.generator.kernel == 4 and settings.registry.direction == "lower"
    raw = with_profile(load_params(REPO), "cpu")
    assert settings.variants.cgan.plain() == raw["variants"]["cgan"]
    assert settings.train.plain() == raw["train"]
    with pytest.raises(pydantic.ValidationError):
        settings.train.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        (  # every clash of one section, not only the first
            [
                "variants.cgan.subclusters=2",
                "variants.cgan.noise=uniform",
                "variants.cgan.auxiliary_margin=0.1",
                "variants.cgan.auxiliary_classifier=0.0",
            ],
            [
                "variants.cgan.subclusters is 2 with noise 'uniform'",
                "variants.cgan.auxiliary_margin is 0.1 with auxiliary_classifier 0.0",
            ],
        ),
        (  # an unknown variant beside a value out of range in another section
            ["train.variants=[foo]", "variants.cgan.epochs=0"],
            ["train.variants names 'foo' (unknown, or twice)", "variants.cgan.epochs is 0"],
        ),
        (  # an optimizer's setting may be left out where it has none, never set to null
            ["variants.cgan.generator.optimizer.beta_1=null"],
            ["variants.cgan.generator.optimizer.beta_1 is None; it must be a number in [0, 1)"],
        ),
        (
            ["variants.toy_gan_1d.generator.optimizer.momentum=null"],
            ["variants.toy_gan_1d.generator.optimizer.momentum is None; it must be a number in [0, 1)"],
        ),
    ],
)
def test_every_problem_of_every_kind_is_named_at_once(overrides: list[str], messages: list[str]) -> None:
    params = apply_overrides(with_profile(load_params(REPO), "smoke"), overrides)
    with pytest.raises(ConfigError) as refused:
        validate(params)
    assert all(message in str(refused.value) for message in messages), str(refused.value)


def test_a_missing_or_null_setting_is_named_with_what_it_must_be() -> None:
    missing = _params_with(lambda p: p["variants"]["dcgan"].pop("z_dim"))
    with pytest.raises(
        ConfigError, match=re.escape("variants.dcgan.z_dim is missing; add it (a whole number")
    ):
        validate(with_profile(missing, "smoke"))
    null = _params_with(
        lambda p: p["profiles"]["smoke"]["variants"]["cgan"].update(samples_every_epochs=None)
    )
    with pytest.raises(
        ConfigError, match=re.escape("variants.cgan.samples_every_epochs is None; it must be")
    ):
        validate(with_profile(null, "smoke"))


def test_a_number_with_an_exponent_is_a_number_in_params_yaml_as_in_set_and_dvc() -> None:
    """`2e-4` and `1E9` are numbers (YAML 1.2, as DVC reads params.yaml), not text; `1e` stays text."""
    assert read_yaml("lr: 2e-4\nbig: 1E9\nword: 1e\n", "params.yaml") == {
        "lr": 2e-4,
        "big": 1e9,
        "word": "1e",
    }
    assert apply_overrides({"lr": 0.1}, ["lr=2e-4"]) == {"lr": 2e-4}


def test_a_bad_base_setting_is_refused_even_where_the_profile_overrides_it() -> None:
    hidden = _params_with(lambda p: p["registry"].update(min_mode_entropy=float("nan")))
    assert hidden["profiles"]["smoke"]["registry"]["min_mode_entropy"] == 0.0, "smoke sets its own"
    with pytest.raises(ConfigError, match=r"registry.min_mode_entropy is nan"):
        with_profile(hidden, "smoke")
