"""Reading `params.yaml`, the one configuration shared by the CLI, the flows and DVC."""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mnistgen.errors import MnistgenError, has_credentials

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


def load_project(project_dir: str | Path | None, profile: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The project's root and its parameters with the profile applied (see `with_profile`), checked."""
    root = project_root(project_dir)
    return root, validate(with_profile(load_params(root), profile))


SECTIONS = (
    "data",
    "train",
    "mlflow",
    "classifier",
    "evaluation",
    "workers",
    "registry",
    "variants",
    "profiles",
)
TOP_LEVEL_KEYS = ("profile", *SECTIONS)
VARIANT_MAY_OVERRIDE = ("samples_every_epochs",)  # `train` settings a variant's section may set for itself


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
    and DVC refuses such a file."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.YAMLError(f"the key {key!r} is written twice (at {key_node.start_mark})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


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
            f"unknown profile {name!r}; {PARAMS_FILE} defines: {', '.join(profiles) or 'none'}."
        )
    base = {key: value for key, value in params.items() if key != "profiles"}
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
    """A YAML scalar or list; also `1e-3`, which YAML 1.1 (PyYAML) would leave a string."""
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

Rule = tuple[str, Callable[[Any], bool]]  # (what a value must be, the check)


def _number(
    low: float, high: float = math.inf, *, whole: bool = False, low_open: bool = False
) -> Callable[[Any], bool]:
    """A finite number in the range; `whole`: an integer as written (`64`, not `64.0` or `1e2`)."""

    def check(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        if whole and not isinstance(value, int):
            return False
        return (value > low if low_open else value >= low) and value <= high

    return check


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _one_of(*choices: str) -> Rule:
    return f"one of {', '.join(choices)}", lambda value: isinstance(value, str) and value in choices


def _list_of(check: Callable[[Any], bool], length: int | None = None) -> Callable[[Any], bool]:
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


def _range_pair(low: float, high: float) -> Callable[[Any], bool]:
    """`[a, b]` with low <= a <= b <= high."""
    return lambda value: _list_of(_number(low, high), 2)(value) and value[0] <= value[1]


WHOLE_POSITIVE: Rule = ("a whole number of at least 1", _number(1, whole=True))
WHOLE_LIST: Rule = ("a list of whole numbers of at least 1", _list_of(_number(1, whole=True)))
TRUE_OR_FALSE: Rule = ("true or false", lambda v: isinstance(v, bool))
INSIDE: Rule = ("a folder inside the project, as a relative path (e.g. runs)", _inside_project)
SHARE: Rule = ("a number from 0 to 1", _number(0, 1))
# Every setting with a range, by its key, wherever it appears under `train` and `variants` (a variant's
# nested `optimizer`, `generator`, `critic` sections included): checked for params.yaml, the profile and
# `--set` alike, once the three are merged, before anything runs.
RULES: dict[str, Rule] = {
    "lr": ("a number above 0", _number(0, low_open=True)),
    "beta_1": ("a number in [0, 1)", lambda v: _number(0, 1)(v) and v < 1),
    "momentum": ("a number in [0, 1)", lambda v: _number(0, 1)(v) and v < 1),
    "batch_size": WHOLE_POSITIVE,
    "epochs": WHOLE_POSITIVE,
    "steps_per_epoch": ("null or a whole number of at least 1", _optional(_number(1, whole=True))),
    "seed": ("null or a whole number from 0 to 2**32 - 1", _optional(_number(0, 2**32 - 1, whole=True))),
    "z_dim": WHOLE_POSITIVE,
    "hidden": (
        "a whole number of at least 1, or a list of them",
        lambda v: all(_number(1, whole=True)(x) for x in (v if isinstance(v, list) and v else [v])),
    ),
    "critic_steps": WHOLE_POSITIVE,
    "kernel": WHOLE_POSITIVE,
    "clip": ("a number above 0", _number(0, low_open=True)),
    "gp_weight": ("a number of at least 0", _number(0)),
    "mode_seeking": ("a number of at least 0", _number(0)),
    "auxiliary_classifier": ("a number of at least 0", _number(0)),
    "auxiliary_margin": ("a number of at least 0", _number(0)),
    "r_loss_factor": ("a number above 0", _number(0, low_open=True)),
    "ema_decay": (
        "null or a number between 0 and 1, e.g. 0.999",
        _optional(lambda v: _number(0, 1, low_open=True)(v) and v < 1),
    ),
    # one forward pass of the generator: 8 times the shipped 2,048 at most (its activations must fit)
    "reference_batch": ("null or a whole number from 2 to 16384", _optional(_number(2, 16384, whole=True))),
    "label_embedding": WHOLE_POSITIVE,
    "projection_rank": ("null or a whole number of at least 1", _optional(_number(1, whole=True))),
    "clusters": ("a whole number from 2 to 1000", _number(2, 1000, whole=True)),  # scgan's k-means clusters
    # cgan's, per digit (labels digit x subclusters + cluster: at most 1,000 labels, as scgan's)
    "subclusters": ("null or a whole number from 2 to 100", _optional(_number(2, 100, whole=True))),
    "digit_vectors": TRUE_OR_FALSE,  # cgan's, with subclusters
    "shared_fakes": TRUE_OR_FALSE,  # cgan's
    "bf16": TRUE_OR_FALSE,
    "batch_norm": TRUE_OR_FALSE,
    "sort_batches": TRUE_OR_FALSE,
    "deterministic": TRUE_OR_FALSE,
    "xla": TRUE_OR_FALSE,
    "filters": WHOLE_LIST,
    "strides": WHOLE_LIST,
    "upsample": WHOLE_LIST,
    "encoder_filters": WHOLE_LIST,
    "encoder_strides": WHOLE_LIST,
    "decoder_filters": WHOLE_LIST,
    "decoder_strides": WHOLE_LIST,
    "initial_shape": ("a list of three whole numbers of at least 1", _list_of(_number(1, whole=True), 3)),
    "runs_dir": INSIDE,
    "pretrain_steps": ("a whole number of at least 0", _number(0, whole=True)),
    "dropout": ("null or a number in [0, 1)", _optional(lambda v: _number(0, 1)(v) and v < 1)),
    "batch_norm_momentum": ("null or a number in [0, 1)", _optional(lambda v: _number(0, 1)(v) and v < 1)),
    "log_every_steps": WHOLE_POSITIVE,
    "checkpoint_every_steps": WHOLE_POSITIVE,
    "samples_every_epochs": WHOLE_POSITIVE,
    "max_minutes": ("null or a number of minutes above 0", _optional(_number(0, low_open=True))),
    "quality_every_seconds": ("null or a number of seconds above 0", _optional(_number(0, low_open=True))),
    "system_metrics_seconds": ("null or a number of seconds of at least 1", _optional(_number(1))),
    "quality_samples": ("a whole number of at least 2", _number(2, whole=True)),
    "noise": _one_of("normal", "uniform", "uniform01", "stratified"),
    "loss": _one_of("bce", "hinge"),  # cgan's: non-saturating or hinge
    "name": _one_of("adam", "rmsprop", "sgd"),  # an optimizer's
    "latent_prior": _one_of("normal", "fitted"),
    "latent_components": ("a whole number from 1 to 1000", _number(1, 1000, whole=True)),
    "precision": _one_of("auto", "float32", "bfloat16"),
    "activation": _one_of("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid"),
    "init": _one_of(
        "glorot_uniform",
        "glorot_normal",
        "he_uniform",
        "he_normal",
        "lecun_uniform",
        "lecun_normal",
        "orthogonal",
    ),
}
OPTION_RULES: dict[str, Rule] = {
    "seed": ("a whole number from 0 to 2**32 - 1", _number(0, 2**32 - 1, whole=True)),
    "max_steps": WHOLE_POSITIVE,
    "max_minutes": ("a number of minutes above 0", _number(0, low_open=True)),
    # `mnistgen sample --n`: a million images (3 GB as .npy, about an hour one row at a time) at most
    "n": ("a whole number from 1 to 1,000,000", _number(1, 1_000_000, whole=True)),
}
# What each optimizer needs, besides its `name` (an optimizer's section, wherever it appears).
OPTIMIZER_SETTINGS = {"adam": ("lr", "beta_1"), "rmsprop": ("lr",), "sgd": ("lr", "momentum")}
# The figures a champion may be chosen by (`registry.primary_metric`): every image model has them. Each
# with the way it is better, which `registry.direction` must name.
RANKING_METRICS = {
    "fid": "lower",
    "kid": "lower",
    "inception_score": "higher",
    "precision": "higher",
    "recall": "higher",
}
# Rules for one setting by its path: the sections outside `train` and `variants` (every setting of theirs
# that a value can break), and where the key alone does not say (a variant's algorithm).
PATH_RULES: dict[str, Rule] = {
    "train.seed": OPTION_RULES["seed"],
    "data.dir": INSIDE,
    "data.reports_dir": INSIDE,
    "data.docs_assets": (  # read only: it may lie outside the project
        "null or a folder",
        _optional(lambda v: isinstance(v, str) and bool(v.strip())),
    ),
    "data.mirrors": (
        "a list of mirrors (URLs or folders)",
        lambda v: isinstance(v, list) and all(isinstance(m, str) and m.strip() for m in v),
    ),
    "data.download.attempts": WHOLE_POSITIVE,
    "data.download.backoff_seconds": ("a number of seconds from 0 to 600", _number(0, 600)),
    "data.download.timeout_seconds": ("a number of seconds above 0", _number(0, low_open=True)),
    "data.validation.rows.train": WHOLE_POSITIVE,
    "data.validation.rows.test": WHOLE_POSITIVE,
    "data.validation.class_share": ("a pair [low, high] of shares from 0 to 1", _range_pair(0, 1)),
    "data.validation.image_mean": ("a pair [low, high] from 0 to 255", _range_pair(0, 255)),
    "data.validation.split_mean": ("a pair [low, high] from 0 to 255", _range_pair(0, 255)),
    "data.validation.min_peak": ("a whole number from 0 to 255", _number(0, 255, whole=True)),
    "data.dvc.push": TRUE_OR_FALSE,
    "mlflow.tracking_uri": (
        "a tracking URI, e.g. sqlite:///mlflow/mlflow.db",
        lambda v: isinstance(v, str) and bool(v.strip()),
    ),
    "mlflow.experiment": ("an experiment name", lambda v: isinstance(v, str) and bool(v.strip())),
    "mlflow.tuning_experiment": ("an experiment name", lambda v: isinstance(v, str) and bool(v.strip())),
    "mlflow.artifact_location": ("a folder or a URI", lambda v: isinstance(v, str) and bool(v.strip())),
    "classifier.dir": INSIDE,
    "classifier.filters": WHOLE_LIST,
    "classifier.features": WHOLE_POSITIVE,
    "classifier.lr": RULES["lr"],
    "classifier.batch_size": WHOLE_POSITIVE,
    "classifier.epochs": WHOLE_POSITIVE,
    "classifier.train_images": ("null or a whole number of at least 1", _optional(_number(1, whole=True))),
    "classifier.min_accuracy": SHARE,
    "classifier.seed": OPTION_RULES["seed"],
    "evaluation.samples": ("a whole number of at least 2", _number(2, whole=True)),
    "evaluation.kid_subsets": WHOLE_POSITIVE,
    "evaluation.kid_subset_size": ("a whole number of at least 2", _number(2, whole=True)),
    "evaluation.pr_samples": ("a whole number of at least 2", _number(2, whole=True)),
    "evaluation.pr_k": WHOLE_POSITIVE,
    "evaluation.memorisation_samples": WHOLE_POSITIVE,
    "evaluation.cas.images": ("a whole number of at least 10", _number(10, whole=True)),
    "evaluation.cas.epochs": WHOLE_POSITIVE,
    "evaluation.seed": OPTION_RULES["seed"],
    "evaluation.reports_dir": INSIDE,
    "registry.model_name": (
        "a name of letters, digits, '.', '_' and '-' (at most 100), e.g. mnist-generator",
        lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", v) is not None,
    ),
    "registry.primary_metric": _one_of(*RANKING_METRICS),
    "registry.direction": _one_of("lower", "higher"),
    "registry.min_mode_entropy": SHARE,
    "registry.min_memorisation_ratio": ("a number of at least 0", _number(0)),
    "workers.timeout_minutes": ("a number of minutes above 0", _number(0, low_open=True)),
    "workers.poll_seconds": ("a number of seconds above 0", _number(0, low_open=True)),
    "evaluation.bootstrap.resamples": ("a whole number of at least 10", _number(10, whole=True)),
    "evaluation.bootstrap.confidence": (
        "a number between 0 and 1, e.g. 0.95",
        lambda v: _number(0, 1, low_open=True)(v) and v < 1,
    ),
    "train.variants": (  # which ones is checked against the variants' sections below
        "a list of variants",
        lambda v: isinstance(v, list),
    ),
    "variants.wgan_gp.critic.batch_norm_momentum": (
        "null: a gradient-penalty critic must not use batch norm (it couples the per-image gradients)",
        lambda value: value is None,
    ),
}


# Rules for the settings of each of the data files (`data.files.train_images.sha256`, ...).
FILE_RULES: dict[str, Rule] = {
    "name": ("a file name", lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9._-]+", v) is not None),
    "bytes": WHOLE_POSITIVE,
    "sha256": (
        "64 hexadecimal digits",
        lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
    ),
}


def _rule(section: str, path: str) -> Rule | None:
    """The rule for the setting at `path`; None for a key mnistgen does not read."""
    key = path.rsplit(".", 1)[-1]
    if path.startswith("data.files.") and path.count(".") == 3:
        return FILE_RULES.get(key)
    return PATH_RULES.get(path) or (RULES.get(key) if section in ("train", "variants") else None)


def _unknown(path: str, section: str) -> str:
    """The problem of a key no rule knows, with the known key of its section it most resembles."""
    parent, key = path.rsplit(".", 1)
    if path.startswith("data.files.") and path.count(".") == 3:
        known = list(FILE_RULES)
    else:
        known = [p.rsplit(".", 1)[1] for p in PATH_RULES if p.rsplit(".", 1)[0] == parent]
        known += list(RULES) if section in ("train", "variants") else []
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return f"{path} is not a setting mnistgen reads{f' (did you mean {parent}.{close[0]}?)' if close else ''}"


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """`params` if every setting of every section is one mnistgen reads and is in range (by `PATH_RULES`,
    `FILE_RULES` under `data.files`, and under `train` and `variants` by `RULES` too) and the settings
    agree with each other, else one error naming them all (`variants.mlp_gan.optimizer.lr is -0.1; it must
    be a number above 0`)."""
    problems = []
    for section in SECTIONS[:-1]:  # every section but the profiles, which are merged in by now
        settings = flatten(params.get(section, {}), f"{section}.")
        for path, value in settings.items():
            key = path.rsplit(".", 1)[-1]
            rule = _rule(section, path)
            if rule is None:
                problems.append(_unknown(path, section))
            elif not rule[1](value):
                problems.append(f"{path} is {value!r}; it must be {rule[0]}")
            if key == "name" and value in OPTIMIZER_SETTINGS:  # `name` is an optimizer's
                optimizer = path.rsplit(".", 1)[0]
                needs = OPTIMIZER_SETTINGS[value]
                problems += [
                    f"{optimizer}.{setting} is missing; the {value} optimizer needs {', '.join(needs)}"
                    for setting in needs
                    if f"{optimizer}.{setting}" not in settings
                ]
    problems += [  # the term compares the images of two noise vectors: a batch must hold a pair
        f"variants.{name}.mode_seeking is {cfg['mode_seeking']!r} with batch_size 1; mode seeking needs "
        "batch_size at least 2 (or mode_seeking 0)"
        for name, cfg in params.get("variants", {}).items()
        if cfg.get("mode_seeking") and cfg.get("batch_size") == 1
    ]
    problems += [  # the saved generator reads its style coordinate as a N(0, 1) draw (cgan.routed_generator)
        f"variants.{name}.subclusters is {cfg['subclusters']!r} with noise {cfg.get('noise')!r}; subclusters "
        "need noise: normal (or subclusters: null)"
        for name, cfg in params.get("variants", {}).items()
        if cfg.get("subclusters") and cfg.get("noise") != "normal"
    ]
    problems += [  # the margin hinges the digit head's term: without the head it would do nothing
        f"variants.{name}.auxiliary_margin is {cfg['auxiliary_margin']!r} with auxiliary_classifier "
        f"{cfg.get('auxiliary_classifier')!r}; a margin needs the digit head: auxiliary_classifier above 0 "
        "(or auxiliary_margin 0)"
        for name, cfg in params.get("variants", {}).items()
        if cfg.get("auxiliary_margin") and not cfg.get("auxiliary_classifier")
    ]
    problems += [  # a digit's vector is shared by its styles: without styles there is nothing to share
        f"variants.{name}.digit_vectors is true with subclusters {cfg.get('subclusters')!r}; digit vectors "
        "need styles: subclusters of at least 2 (or digit_vectors: false)"
        for name, cfg in params.get("variants", {}).items()
        if cfg.get("digit_vectors") and not cfg.get("subclusters")
    ]
    problems += [  # only a fitted prior is a mixture; N(0, I) has nothing to fit
        f"variants.{name}.latent_components is {cfg['latent_components']!r} with latent_prior "
        f"{cfg.get('latent_prior')!r}; a mixture needs latent_prior: fitted (or latent_components: 1)"
        for name, cfg in params.get("variants", {}).items()
        if isinstance(cfg.get("latent_components"), int)
        and cfg["latent_components"] > 1
        and cfg.get("latent_prior") != "fitted"
    ]
    registry = params.get("registry", {})
    metric, direction = registry.get("primary_metric"), registry.get("direction")
    if (
        metric in RANKING_METRICS
        and direction in ("lower", "higher")
        and direction != RANKING_METRICS[metric]
    ):
        problems.append(  # a wrong way round would crown the worst generator
            f"registry.direction is {direction!r}, but {metric} is better {RANKING_METRICS[metric]}; it "
            f"must be {RANKING_METRICS[metric]!r}"
        )
    chosen = params.get("train", {}).get("variants")
    known = list(params.get("variants", {}))
    if not (isinstance(chosen, list) and chosen and all(isinstance(v, str) for v in chosen)):
        problems.append(
            f"train.variants is {chosen!r}; it must be a list of variants from: {', '.join(known)}"
        )
    else:
        wrong = [v for v in dict.fromkeys(chosen) if v not in known or chosen.count(v) > 1]
        if wrong:
            problems.append(
                f"train.variants names {', '.join(map(repr, wrong))} (unknown, or twice); it must list "
                f"each variant once, from: {', '.join(known)}"
            )
    if problems:
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
    return params


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
