"""Reading `params.yaml`, the one configuration shared by the CLI, the flows and DVC."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mnistgen.errors import MnistgenError, has_credentials
from mnistgen.settings import Settings, Variant, Variants, number, rule_of, section_at

PARAMS_FILE = "params.yaml"
MIRRORS_ENV = "MNISTGEN_MIRRORS"
DVC_EXPERIMENT_ENV = "DVC_EXP_NAME"  # set by `dvc exp run` for the stages of an experiment
MAX_PARAMS_BYTES = 1 << 20  # params.yaml is about 25 kB; a file far larger is not a settings file


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


def load_project(project_dir: str | Path | None, profile: str | None = None) -> tuple[Path, Settings]:
    """The project's root and its settings with the profile applied (see `with_profile`), checked."""
    root = project_root(project_dir)
    return root, validate(with_profile(load_params(root), profile))


# The sections of params.yaml: the typed settings' (`settings.Settings`), then the profiles merged into them.
SECTIONS = (*(name for name in Settings.model_fields if name != "profile"), "profiles")
TOP_LEVEL_KEYS = ("profile", *SECTIONS)
# `train` settings a variant's section may set for itself: the ones its class lets it leave out.
VARIANT_MAY_OVERRIDE = tuple(name for name, field in Variant.model_fields.items() if not field.is_required())


def load_params(project_dir: Path) -> dict[str, Any]:
    """`params.yaml`, with every section present and no key outside them (a typo is an error, not a
    setting silently ignored)."""
    path = project_dir / PARAMS_FILE
    try:
        if path.is_file() and path.stat().st_size > MAX_PARAMS_BYTES:
            raise ConfigError(
                f"{path} is {path.stat().st_size:,} bytes, more than a settings file holds "
                f"({MAX_PARAMS_BYTES:,} at most). Fix: compare it with the project's params.yaml."
            )
        params = read_yaml(path.read_text(), str(path))
    except FileNotFoundError as err:
        raise ConfigError(
            f"{path} does not exist. Pass the project folder that holds {PARAMS_FILE}."
        ) from err
    if not isinstance(params, dict):
        raise ConfigError(f"{path} is not a mapping of sections; compare it with the project's params.yaml.")
    missing = [name for name in SECTIONS if not isinstance(params.get(name), dict)]
    unknown = [str(key) for key in params if key not in TOP_LEVEL_KEYS]
    if missing or unknown:
        problems = [f"no '{name}' section" for name in missing] + [f"unknown key '{k}'" for k in unknown]
        raise ConfigError(
            f"{path}: {'; '.join(problems)}. Fix: compare it with the project's params.yaml (sections: "
            f"{', '.join(TOP_LEVEL_KEYS)})."
        )
    return params


MAX_VALUES = 100_000  # values in params.yaml once its aliases are expanded (the project's holds about 1,500)


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping: the later would silently win,
    and DVC refuses such a file. A number with an exponent and no dot (`1e9`, `2E-4`) is a number, as
    for DVC (YAML 1.2) and `--set`; YAML 1.1 would read it as text."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                raise yaml.YAMLError(
                    f"the key {key!r} is written twice (again at line {line}, column {column})"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def read_yaml(text: str, where: str) -> Any:
    """`text` as YAML by the rules of `_StrictLoader`, and at most MAX_VALUES values once its aliases are
    expanded (a few lines of nested aliases stand for billions, which merging the profile would then
    build); one ConfigError naming `where` otherwise."""
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as err:
        problem = " ".join(str(err).split())
        raise ConfigError(f"{where} is not valid YAML: {problem}. Fix: correct it and run again.") from err
    if (size := _expanded_size(value, {})) > MAX_VALUES:
        raise ConfigError(
            f"{where} stands for {size:,} values once its aliases (*name) are expanded, more than settings "
            f"hold ({MAX_VALUES:,} at most). Fix: write the settings out instead of nesting aliases."
        )
    return value


def _expanded_size(value: Any, sizes: dict[int, int]) -> int:
    """How many values `value` holds with every alias expanded, counted once per shared object."""
    if not isinstance(value, dict | list):
        return 1
    if id(value) not in sizes:
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        sizes[id(value)] = 1 + sum(_expanded_size(item, sizes) for item in items)
    return sizes[id(value)]


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


def check_flow_mirrors(mirrors: list[str] | None) -> None:
    """Refuse mirrors with credentials given as a flow's parameter: Prefect keeps every flow run's
    parameters in its database, in clear, for anyone with its UI to read."""
    if mirrors and any(has_credentials(mirror) for mirror in mirrors):
        raise ConfigError(
            "a mirror URL with credentials was passed as a flow parameter, which Prefect stores in its "
            f"database. Fix: give it in {MIRRORS_ENV} (the worker's environment) instead, or run "
            "`mnistgen pipeline --mirror URL`, which passes it that way."
        )


def with_profile(params: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
    """`params` with the chosen profile's overrides merged in (`--profile` beats the `profile:` key).

    The base values are the sources' budgets; a profile states only what it changes, and only settings
    the base defines (a misspelt key would otherwise be a new setting nothing reads).
    """
    name = profile or params.get("profile", "cpu")
    profiles = params.get("profiles", {})
    if name not in profiles:
        raise ConfigError(
            f"unknown profile {name!r}; {PARAMS_FILE} defines: {', '.join(profiles) or 'none'}. Fix: name "
            "one of them (--profile NAME, or `profile:` in params.yaml); profile names are exact."
        )
    base = {key: value for key, value in params.items() if key != "profiles"}
    validate(base)  # the base itself: a bad value the profile overrides would surface under another one
    overrides = profiles[name] or {}
    schema = deep_merge(
        base, {"variants": {v: dict.fromkeys(VARIANT_MAY_OVERRIDE) for v in base.get("variants", {})}}
    )
    unknown = [key for key in flatten(overrides) if not _defined(schema, key.split("."))]
    if unknown:
        raise ConfigError(
            f"profile {name!r} in {PARAMS_FILE} sets {', '.join(unknown)}, which the base settings do not "
            "define. Fix: correct the key (compare `mnistgen params VARIANT`), or add it to the base."
        )
    return {**deep_merge(base, overrides), "profile": name}


def _defined(tree: dict[str, Any], keys: list[str]) -> bool:
    """Whether the key path exists in `tree` (a profile may replace a section by a value, not add keys)."""
    node: Any = tree
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return False
        if not isinstance(node[key], dict):
            return True  # a value (or a list): the profile may set it to anything the rules allow
        node = node[key]
    return True


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
            raise ConfigError(
                f"--set {override!r}: expected KEY.PATH=VALUE. Fix: write it as e.g. variants.cgan.epochs=5"
            )
        if keys == ["profile"]:  # the profile's settings are merged in before --set applies
            raise ConfigError(f"--set {override!r}: the profile is not a setting here. Fix: pass --profile.")
        node = result
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                known = ", ".join(node) if isinstance(node, dict) else "none: not a section"
                raise ConfigError(
                    f"--set {override!r}: {'.'.join(keys[: depth + 1])} is not a setting of {PARAMS_FILE} "
                    f"(known here: {known}). Fix: correct the key; `mnistgen params VARIANT` prints them all."
                )
            if depth == len(keys) - 1:
                value = _yaml_value(raw)
                if isinstance(node[key], dict) and not isinstance(value, dict):  # a section stays one
                    raise ConfigError(
                        f"--set {override!r}: {path.strip()} is a section, not a setting. Fix: set one of "
                        f"its settings, e.g. --set {path.strip()}.{next(iter(node[key]), 'KEY')}=VALUE"
                    )
                node[key] = value
            else:
                node[key] = dict(node[key]) if isinstance(node[key], dict) else node[key]
                node = node[key]
    return result


def _yaml_value(raw: str) -> Any:
    """A YAML scalar or list (`1e-3` is a number, see `_StrictLoader`); text that Python reads as a
    number (`inf`, `nan`) is one too."""
    value = read_yaml(raw, f"the --set value {raw!r}")
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


# ---------------------------------------------------------------------------------------- validation

OptionRule = tuple[str, Callable[[Any], bool]]  # (what a value must be, the check)
OPTION_RULES: dict[str, OptionRule] = {  # command-line values that stand for a setting
    "seed": ("a whole number from 0 to 2**32 - 1", number(0, 2**32 - 1, whole=True)),
    "max_steps": ("a whole number of at least 1", number(1, whole=True)),
    "max_minutes": ("a number of minutes above 0", number(0, low_open=True)),
    # `mnistgen sample --n`: a million images (3 GB as .npy, about an hour one row at a time) at most
    "n": ("a whole number from 1 to 1,000,000", number(1, 1_000_000, whole=True)),
}


def validate(params: dict[str, Any]) -> Settings:
    """`params` (profile and overrides merged) as typed `Settings`, if every key of every section is a
    setting mnistgen reads, every value follows its field's rule and the settings agree with each other;
    else one error naming them all (`variants.mlp_gan.generator.optimizer.lr is -0.1; it must be a number
    above 0`)."""
    try:
        return Settings.model_validate({key: value for key, value in params.items() if key != "profiles"})
    except ValidationError as err:
        problems = [line for error in err.errors() for line in _problems(error)]
    raise ConfigError(
        "settings misspelt or out of range (params.yaml, its profile or --set):\n  - "
        + "\n  - ".join(problems)
        + "\nFix: correct them and run again; nothing was changed."
        + (  # `-S` writes the value into the workspace's params.yaml, and DVC leaves it there
            " `dvc exp run -S` wrote the value into params.yaml: `git checkout params.yaml` restores it."
            if os.environ.get(DVC_EXPERIMENT_ENV)
            else ""
        )
    )


def _problems(error: Any) -> list[str]:
    """The lines for one of pydantic's errors, each naming a setting by its path in params.yaml."""
    path = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "setting":
        return [f"{path} is {error['input']!r}; {error['msg']}"]
    if kind == "clash":  # a section's check: each problem starts with a key of the section
        return [f"{path}.{problem}" for problem in error["ctx"]["problems"]]
    if kind == "extra_forbidden":
        parent, key = path.rpartition(".")[::2]
        known = list(getattr(section_at(error["loc"][:-1]), "model_fields", []))
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        meant = f" (did you mean {parent}.{close[0]}?)" if close else ""
        return [f"{path} is not a setting mnistgen reads{meant}"]
    if kind == "missing":
        rule = rule_of(path)
        return [f"{path} is missing; add it{f' ({rule.what})' if rule else ''}"]
    if kind in ("model_type", "model_attributes_type"):
        return [f"{path} is {error['input']!r}; it must be a section of settings"]
    return [f"{path}: {error['msg']}"]


def check_variants(names: list[str] | None) -> None:
    """Refuse names that are not variants (None: all of them), naming the known ones."""
    if unknown := sorted(set(names or ()) - set(Variants.names())):
        raise ConfigError(
            f"unknown variants {', '.join(unknown)}; params.yaml defines {', '.join(Variants.names())}. Fix: "
            "name some of those (--variants mlp_gan,cgan), or leave it out for all."
        )


def check_options(**options: Any) -> None:
    """Command-line values that stand for a setting (`seed=...`, `max_steps=...`), by the same rules;
    None means "not given". One error naming each bad option as the user typed it (`--max-steps`)."""
    problems = []
    for name, value in options.items():
        what, check = OPTION_RULES[name]
        if value is not None and not check(value):
            problems.append(f"--{name.replace('_', '-')} is {value!r}; it must be {what}")
    if problems:
        raise ConfigError("; ".join(problems) + ". Fix: correct it and run again; nothing was changed.")
