"""Reading `params.yaml`, the one configuration shared by the CLI, the flows and DVC."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from mnistgen.errors import MnistgenError

PARAMS_FILE = "params.yaml"
MIRRORS_ENV = "MNISTGEN_MIRRORS"


class ConfigError(MnistgenError):
    """The configuration is missing or malformed."""


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder, from `start` upwards, that holds `params.yaml`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PARAMS_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {PARAMS_FILE} in {here} or any folder above it. "
        "Run mnistgen from inside the project, or pass --project-dir."
    )


def project_root(project_dir: str | Path | None = None) -> Path:
    """`project_dir` made absolute, or the nearest folder above the working directory with params.yaml."""
    return Path(project_dir).resolve() if project_dir else find_project_root()


def load_project(project_dir: str | Path | None, profile: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The project's root and its parameters with the profile applied (see `with_profile`)."""
    root = project_root(project_dir)
    return root, with_profile(load_params(root), profile)


def load_params(project_dir: Path) -> dict[str, Any]:
    path = project_dir / PARAMS_FILE
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(
            f"{path} does not exist. Pass the project folder that holds {PARAMS_FILE}."
        ) from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(params, dict) or "data" not in params:
        raise ConfigError(f"{path} has no 'data' section; compare it with the project's params.yaml.")
    return params


def resolve_mirrors(cli_mirrors: list[str] | None, configured: list[str]) -> list[str]:
    """Mirrors in order of precedence: `--mirror`, then `MNISTGEN_MIRRORS`, then `params.yaml`."""
    if cli_mirrors:
        return list(cli_mirrors)
    from_env = [m.strip() for m in os.environ.get(MIRRORS_ENV, "").split(",") if m.strip()]
    if from_env:
        return from_env
    if not configured:
        raise ConfigError(f"no MNIST mirror configured: set data.mirrors in {PARAMS_FILE} or {MIRRORS_ENV}.")
    return list(configured)


def with_profile(params: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
    """`params` with the chosen profile's overrides merged in (`--profile` beats the `profile:` key).

    The base values are the sources' budgets; a profile states only what it changes.
    """
    name = profile or params.get("profile", "cpu")
    profiles = params.get("profiles", {})
    if name not in profiles:
        raise ConfigError(
            f"unknown profile {name!r}; {PARAMS_FILE} defines: {', '.join(profiles) or 'none'}."
        )
    base = {key: value for key, value in params.items() if key != "profiles"}
    return {**deep_merge(base, profiles[name] or {}), "profile": name}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_overrides(params: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`params` with `KEY.PATH=VALUE` settings applied (values in YAML: `0.5`, `[64, 32]`, `null`).

    For experiments (`mnistgen train --set`): only settings that exist can be changed, so a typo is an
    error rather than a silently ignored key.
    """
    result = dict(params)  # copied along each overridden path below, so `params` is never changed
    for override in overrides:
        path, sep, raw = override.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise ConfigError(f"--set {override!r}: expected KEY.PATH=VALUE, e.g. variants.cgan.epochs=5")
        node = result
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                known = ", ".join(node) if isinstance(node, dict) else "none: not a section"
                raise ConfigError(
                    f"--set {override!r}: {'.'.join(keys[: depth + 1])} is not a setting of {PARAMS_FILE} "
                    f"(known here: {known})"
                )
            if depth == len(keys) - 1:
                node[key] = _yaml_value(raw)
            else:
                node[key] = dict(node[key]) if isinstance(node[key], dict) else node[key]
                node = node[key]
    return result


def _yaml_value(raw: str) -> Any:
    """A YAML scalar or list; also `1e-3`, which YAML 1.1 (PyYAML) would leave a string."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`: how parameters are logged to MLflow."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
