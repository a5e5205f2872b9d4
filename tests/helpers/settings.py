"""The project's settings as a test takes them: a profile and `--set` overrides, merged and checked."""

from __future__ import annotations

from helpers.paths import REPO
from mnistgen.config import apply_overrides, load_params, validate, with_profile
from mnistgen.settings import RegistrySection, Settings, Variant


def settings(profile: str = "smoke", *overrides: str) -> Settings:
    """params.yaml with `profile` and the `KEY.PATH=VALUE` overrides, as `mnistgen train --set` takes them."""
    return validate(apply_overrides(with_profile(load_params(REPO), profile), list(overrides)))


def variant_settings(name: str, *overrides: str, profile: str = "smoke") -> Variant:
    """The settings of variant `name`, with overrides of its own keys (`clusters=5`, `generator.kernel=4`)."""
    return settings(profile, *(f"variants.{name}.{override}" for override in overrides)).variants.of(name)


def registry_settings(**changes: object) -> RegistrySection:
    """The smoke profile's `registry` section with `changes`, checked as params.yaml's would be."""
    return RegistrySection.model_validate({**settings().registry.plain(), **changes})
