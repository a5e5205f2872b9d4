"""`--set` overrides of the profiled params: typed values, nested keys, and typos refused."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from mnistgen.config import ConfigError, apply_overrides, load_params, validate, with_profile

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


@pytest.mark.parametrize("profile", ["smoke", "cpu", "faithful", "gpu"])
def test_every_profile_is_in_range(profile: str) -> None:
    validate(with_profile(load_params(REPO), profile))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "variants.mlp_gan.optimizer.lr=-0.1",
            "variants.mlp_gan.optimizer.lr is -0.1; it must be a number above 0",
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
        ("variants.wgan_gp.critic.batch_norm_momentum=0.9", "must not use batch norm"),
        ("variants.wgan.generator.optimizer.lr=.nan", "variants.wgan.generator.optimizer.lr is nan"),
        ("train.seed=abc", "train.seed is 'abc'; it must be a whole number"),
        (
            "train.precision=float16",
            "train.precision is 'float16'; it must be one of auto, float32, bfloat16",
        ),
        ("train.max_minutes=-1", "train.max_minutes is -1"),
    ],
)
def test_settings_out_of_range_are_refused_by_name(override: str, message: str) -> None:
    params = apply_overrides(with_profile(load_params(REPO), "smoke"), [override])
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(params)


def test_every_problem_is_named_at_once() -> None:
    bad = ["variants.dcgan.epochs=0", "variants.cgan.optimizer.lr=0"]
    with pytest.raises(ConfigError) as refused:
        validate(apply_overrides(with_profile(load_params(REPO), "smoke"), bad))
    assert "variants.dcgan.epochs" in str(refused.value) and "variants.cgan.optimizer.lr" in str(
        refused.value
    )
