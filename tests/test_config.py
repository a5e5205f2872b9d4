"""`--set` overrides of the profiled params: typed values, nested keys, and typos refused."""

from __future__ import annotations

import pytest

from mnistgen.config import ConfigError, apply_overrides

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
