"""Choosing the best generator and handing it to users through the MLflow model registry.

The best evaluated run (by `registry.primary_metric`, among runs that pass the guards) becomes a new
version of `mnist-generator`. It takes the alias `champion` only if it beats the current champion measured
with the same feature-extractor version by more than its sampling noise (the champion's score lies outside
its bootstrap interval); otherwise it becomes the `challenger` and the champion stays.
Every decision is written on the model version (tags and description). Registrations that run at the same
time on one store (two pipelines) leave `champion` on the best of them (`settle_champion`).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistgen import locks, model_card
from mnistgen.errors import MnistgenError
from mnistgen.serving.sampler import DIGEST_TAG, INFO_FILE, generator_digest
from mnistgen.settings import RegistrySection, Settings, Variants
from mnistgen.training.run_folder import COMPLETED, FINAL_GRID, SAMPLES_DIR, grid_file

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
IMAGE_KINDS = ("adversarial", "reconstruction")
PYFUNC_FILE = Path(__file__).parent / "serving" / "generator_model.py"
PACKAGE_DIR = Path(__file__).parent
REGISTRATION_FILE = "registration.json"  # the last decision, beside the leaderboard it was made from
CLAIM_TAG = "claims"  # on a version that was decided champion and generates (see settle_champion)
SETTLE_ATTEMPTS = 10


class RegistryError(MnistgenError):
    """Nothing can be registered, or the registered model does not work."""


@dataclass(frozen=True)
class Candidate:
    run_id: str
    variant: str
    score: float
    extractor: str
    interval: tuple[float, float] | None = None  # bootstrap confidence interval of the score, if measured


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    version: str | None  # the registered version; None when the best run is already the champion
    alias: str
    reason: str

    def as_dict(self, model_name: str) -> dict[str, Any]:
        return {
            "model": model_name,
            "version": self.version,
            "alias": self.alias,
            "variant": self.candidate.variant,
            "run_id": self.candidate.run_id,
            "score": self.candidate.score,
            "score_interval": list(self.candidate.interval) if self.candidate.interval else None,
            "extractor_version": self.candidate.extractor,
            "reason": self.reason,
        }


def eligible(run: Any, cfg: RegistrySection, extractor: str) -> tuple[bool, str]:
    """Whether an evaluated run may be registered, and why not."""
    metrics, tags = run.data.metrics, run.data.tags
    primary = f"eval/{cfg.primary_metric}"
    if tags.get("eval/extractor_version") != extractor:
        return False, f"not evaluated with classifier {extractor}"
    if tags.get("kind") not in IMAGE_KINDS:
        return False, "not an image model"
    if tags.get("stopped_by") != COMPLETED:
        return False, (
            f"cut short ({tags.get('stopped_by', 'no end recorded')} at step {tags.get('steps', '?')}): only "
            "runs that reached their step budget are registered"
        )
    if primary not in metrics or not math.isfinite(metrics[primary]):
        return False, f"{primary} missing or not finite"
    entropy, copying = metrics.get("eval/mode_entropy", 0.0), metrics.get("eval/memorisation_ratio", 0.0)
    if entropy < cfg.min_mode_entropy:
        return False, f"mode entropy {entropy:.3f} < {cfg.min_mode_entropy} (collapsed)"
    if copying < cfg.min_memorisation_ratio:
        return False, f"memorisation ratio {copying:.3f} < {cfg.min_memorisation_ratio}"
    return True, ""


def better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "lower" else a > b


def best_candidate(runs: list[Any], cfg: RegistrySection, extractor: str) -> Candidate:
    candidates, refused = [], []
    for run in runs:
        ok, why = eligible(run, cfg, extractor)
        variant = run.data.tags.get("variant", "?")
        if ok:
            metric = f"eval/{cfg.primary_metric}"
            score, low, high = (run.data.metrics.get(f"{metric}{end}") for end in ("", "_ci_low", "_ci_high"))
            interval = (low, high) if low is not None and high is not None else None
            candidates.append(Candidate(run.info.run_id, variant, score, extractor, interval))
        else:
            refused.append(f"{variant} ({run.info.run_id[:8]}): {why}")
    if not candidates:
        raise RegistryError(
            "no evaluated run passes the guards:\n  - "
            + "\n  - ".join(refused or ["no evaluated runs"])
            + "\nFix: run `mnistgen evaluate` after training (guards are in params.yaml under registry)."
        )
    for line in refused:
        log.info("not eligible: %s", line)
    sign = 1 if cfg.direction == "lower" else -1
    return min(candidates, key=lambda c: sign * c.score)


def current_champion(client: Any, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(err).lower():
            return None
        raise


def champion_of(project_dir: Path, params: Settings) -> Any | None:
    """The project's registered champion (an MLflow model version), or None."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from mnistgen import tracking

    tracking.use_store(project_dir, params.mlflow)
    try:
        return current_champion(mlflow.MlflowClient(), params.registry.model_name)
    except MlflowException as err:  # the store itself failed (a full disk, a server gone)
        raise tracking.store_failed(project_dir, params.mlflow, err) from err
    except Exception as err:  # the database before MLflow (locked, broken), as SQLAlchemy raises it
        raise tracking.unusable_store(project_dir, params.mlflow, err) from err


def decide(best: Candidate, champion: Any | None, cfg: RegistrySection) -> tuple[str, str]:
    """(alias, reason) for the best candidate against the current champion's recorded score."""
    metric = cfg.primary_metric
    if champion is None:
        return CHAMPION, f"first registration: {best.variant} with {metric} {best.score:.4g}"
    tags = champion.tags
    if tags.get("extractor_version") != best.extractor:
        return CHALLENGER, (
            f"the champion was scored with classifier {tags.get('extractor_version')}, not {best.extractor}: "
            "not comparable, champion kept (evaluate it again to compare)"
        )
    held = float(tags["score"])
    said = f"{best.variant} {metric} {best.score:.4g}"
    if not better(best.score, held, cfg.direction):
        return CHALLENGER, f"{said} does not beat champion v{champion.version} ({held:.4g})"
    if best.interval is None:
        return CHAMPION, (
            f"{said} beats champion v{champion.version} ({held:.4g}); no confidence interval was measured"
        )
    low, high = best.interval
    said += f" (bootstrap interval {low:.4g} to {high:.4g})"
    if better(high if cfg.direction == "lower" else low, held, cfg.direction):
        return CHAMPION, f"{said} beats champion v{champion.version} ({held:.4g}) beyond its interval"
    return CHALLENGER, (
        f"{said} is better than champion v{champion.version} ({held:.4g}) only within its interval, "
        "which sampling noise alone could give: champion kept"
    )


def register_best(
    client: Any,
    runs: list[Any],
    cfg: RegistrySection,
    extractor: str,
    bases: dict[str, dict[str, Any]] | None = None,
) -> Decision:
    """Register the best eligible run and move the aliases as `decide` says; checks the model generates,
    and writes the version's model card (`bases`: each variant's settings before any profile, flattened
    as a run logs them, which the card compares the run's with)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    best = best_candidate(runs, cfg, extractor)
    name = cfg.model_name
    champion = current_champion(client, name)
    if champion is not None and champion.run_id == best.run_id:
        return Decision(best, None, CHAMPION, f"{best.variant} run {best.run_id} is already the champion")
    alias, reason = decide(best, champion, cfg)
    tags = {
        "variant": best.variant,
        "extractor_version": extractor,
        "metric": cfg.primary_metric,
        "score": str(best.score),
        "decision": reason,
    }
    if best.interval is not None:
        tags["score_interval"] = f"{best.interval[0]:.6g} to {best.interval[1]:.6g}"
    # A version of this run already registered by an attempt that failed after `register_model` (the
    # task's retry, or a second `mnistgen register`) is taken over, not registered twice.
    earlier = client.search_model_versions(f"name = '{name}' and run_id = '{best.run_id}'")
    if earlier:
        version = max(earlier, key=lambda v: int(v.version))
        for key, value in tags.items():  # as of now: the run may have been evaluated again since
            client.set_model_version_tag(name, version.version, key, value)
        if CLAIM_TAG in version.tags:  # claimed by the failed attempt; decided again below
            client.delete_model_version_tag(name, version.version, CLAIM_TAG)
    else:
        info, digest = log_generator(best.run_id)
        version = mlflow.register_model(info.model_uri, name, tags={**tags, DIGEST_TAG: digest})
    try:
        check_generates(f"models:/{name}/{version.version}")
    except Exception as err:
        client.delete_model_version(name, version.version)
        if isinstance(err.__cause__, MlflowException):  # the store could not hand it back: not the model
            raise err.__cause__ from err
        raise RegistryError(f"the registered model did not generate images ({err}); version removed") from err
    if alias == CHAMPION:  # claimed only now that it is known to generate
        client.set_model_version_tag(name, version.version, CLAIM_TAG, CHAMPION)
        holder = settle_champion(client, name, cfg, extractor)
        if holder.version != version.version:
            alias = CHALLENGER
            reason += (
                f"; but v{holder.version} ({holder.tags['variant']}, {cfg.primary_metric} "
                f"{float(holder.tags['score']):.4g}), which claimed it too (registered at the same time), "
                "is better"
            )
            client.set_model_version_tag(name, version.version, "decision", reason)
    write_card(client, name, version.version, alias, reason, best.run_id, (bases or {}).get(best.variant))
    if alias == CHALLENGER:
        client.set_registered_model_alias(name, CHALLENGER, version.version)
    log.info("%s v%s -> %s: %s", name, version.version, alias, reason)
    return Decision(best, version.version, alias, reason)


def write_card(
    client: Any, name: str, version: str, alias: str, reason: str, run_id: str, base: dict[str, Any] | None
) -> None:
    """The version's model card as its description, and the family's description on the registered model."""
    from mnistgen.evaluation.evaluate import FLOOR_TAG

    run = client.get_run(run_id)
    floor = model_card.floor_scores(client.get_experiment(run.info.experiment_id).tags, FLOOR_TAG)
    client.update_model_version(
        name, version, description=model_card.card(name, version, alias, reason, run, floor, base)
    )
    client.update_registered_model(name, description=model_card.MODEL_DESCRIPTION)


def settle_champion(client: Any, name: str, cfg: RegistrySection, extractor: str) -> Any:
    """Point `champion` at the best version that claimed it (scored with the same classifier and metric),
    read back until the alias stays there; returns that version.

    Two pipelines may register on one store at the same time, and MLflow has no compare-and-set for an
    alias: the one that decided against an older champion may write last. So every registration, after
    its claim (made only once its version is known to generate), reads the claims and the alias again
    and corrects the alias until they agree. The last registration to read sees every claim, so the alias
    ends on the best one and no version is lost. A claim is never taken back by this, so a champion set by
    hand is kept only until the next champion-worthy registration."""
    metric, sign = cfg.primary_metric, 1 if cfg.direction == "lower" else -1
    for _ in range(SETTLE_ATTEMPTS):
        claims = [
            v
            for v in client.search_model_versions(f"name = '{name}'")
            if v.tags.get(CLAIM_TAG) == CHAMPION
            and v.tags.get("extractor_version") == extractor
            and v.tags.get("metric") == metric
        ]
        best = min(claims, key=lambda v: (sign * float(v.tags["score"]), int(v.version)))
        holder = current_champion(client, name)
        if holder is not None and holder.version == best.version:
            return holder
        client.set_registered_model_alias(name, CHAMPION, best.version)
    raise RegistryError(
        f"the `{CHAMPION}` alias of {name} kept changing under {SETTLE_ATTEMPTS} attempts to settle it "
        "(registrations scored with another classifier at the same time?). Fix: run `mnistgen register` "
        "again once the other registrations have ended."
    )


def log_generator(run_id: str) -> tuple[Any, str]:
    """Log the run's trained networks as a generating pyfunc into that run, with the training's last sample
    grid beside them (so the registered model shows what it draws); returns it and the networks' digest
    (`generator_digest`), which the registered version records."""
    import keras
    import mlflow
    import numpy as np
    import pandas as pd
    import tensorflow as tf
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    from mnistgen import tracking

    # Logged beside the run with `Model.log(run_id=...)`, never by opening it again: a registration killed
    # mid-way must leave the training run FINISHED, as evaluation and the next registration look for it.
    with tempfile.TemporaryDirectory(prefix="mnistgen-log-") as scratch:
        model_dir = tracking.download(run_id, "model", scratch)
        info = json.loads((model_dir / INFO_FILE).read_text())
        grid = tracking.download(run_id, f"{SAMPLES_DIR}/{grid_file(FINAL_GRID)}", scratch)
        # `seed` and `label` are integers, which the model checks itself: declared as `long`, a server
        # would turn 1.5 or `true` into 1 while parsing the request, before the model could refuse them.
        # The outputs are those of the default `pixels="float"` (generator_model.py).
        signature = ModelSignature(
            inputs=Schema([ColSpec(AnyType(), "seed"), ColSpec(AnyType(), "label", required=False)]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 28, 28))]),
            params=ParamSchema([ParamSpec("pixels", "string", "float")]),
        )
        classes = int(info.get("classes", 0))
        example = {"seed": [0, 1, 2, 3]}  # what a request holds: `label` only for a class-conditional model
        if classes:
            example["label"] = [digit % classes for digit in range(4)]
        run = mlflow.MlflowClient().get_run(run_id)
        entry = mlflow.initialize_logged_model(  # in the run's experiment, whatever is active here
            name="generator",
            source_run_id=run_id,
            params=run.data.params,
            experiment_id=run.info.experiment_id,
        )
        logged = Model.log(
            None,  # `artifact_path`, which MLflow 3 replaced by `name`
            name="generator",
            flavor=mlflow.pyfunc,
            run_id=run_id,
            model_id=entry.model_id,
            python_model=str(PYFUNC_FILE),
            artifacts={"generator": str(model_dir), "samples": str(grid)},
            code_paths=[str(PACKAGE_DIR)],
            signature=signature,
            input_example=pd.DataFrame(example),
            metadata={"classes": classes, "variant": info["variant"]},
            pip_requirements=[
                f"tensorflow-cpu=={tf.__version__}",
                f"keras=={keras.__version__}",
                f"mlflow=={mlflow.__version__}",
                f"numpy=={np.__version__}",
                f"pandas=={pd.__version__}",
            ],
        )
        return logged, generator_digest(model_dir)


def check_generates(model_uri: str) -> None:
    """The registered version generates images: read with the project's own sampler (safe-mode `.keras`
    files and `model_info.json`), so registering never executes code shipped inside a model artifact."""
    import numpy as np

    from mnistgen.serving.generate import model_folder
    from mnistgen.serving.sampler import Sampler

    with tempfile.TemporaryDirectory(prefix="mnistgen-check-") as scratch:
        sampler = Sampler(model_folder(model_uri, Path(scratch)))
    images = sampler.sample(4)
    if images.shape != (4, 28, 28) or not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise RegistryError(f"expected 4 images of 28x28 in [0, 1], got shape {images.shape}")


def register(project_dir: Path, params: Settings, seed: int | None = None) -> Decision | None:
    """Register the best of the variants' current runs (trained with `seed`, default `train.seed`),
    evaluated with the current classifier (see `register_best`). Inside a DVC experiment nothing is
    registered (returns None): trials are compared, and the winner is applied, then registered."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from mnistgen import tracking
    from mnistgen.config import flatten, load_params, validate
    from mnistgen.evaluation.classifier import INFO_FILE
    from mnistgen.evaluation.evaluate import current_runs, evaluation_key, reports_folder

    name = params.registry.model_name
    record_file = reports_folder(project_dir, params, seed) / REGISTRATION_FILE
    record_file.parent.mkdir(parents=True, exist_ok=True)
    if experiment := tracking.dvc_experiment():
        reason = (
            f"DVC experiment {experiment}: a trial is compared (`dvc exp show`, MLflow experiment "
            f"{params.mlflow.tuning_experiment}), not registered; to keep it: `dvc exp apply "
            f"{experiment}`, then `mnistgen register`"
        )
        record_file.write_text(
            json.dumps({"model": name, "version": None, "skipped": reason}, indent=2) + "\n"
        )
        log.info(reason)
        return None
    info_file = project_dir / params.classifier.dir / INFO_FILE
    if not info_file.is_file():
        raise RegistryError(
            f"no classifier at {info_file.parent}. Fix: run `mnistgen classifier` and `mnistgen evaluate`."
        )
    extractor = json.loads(info_file.read_text())["version"]
    experiments = tracking.experiment_ids(project_dir, params.mlflow)  # points MLflow at the store
    client = mlflow.MlflowClient()
    # one registration at a time: a second waits, then finds what the first registered; registrations
    # from other hosts on a shared store are reconciled by `settle_champion`
    with locks.held(project_dir, "register"):
        runs = current_runs(client, experiments, project_dir, params, seed)
        check_evaluated(runs, evaluation_key(project_dir, params, extractor), extractor)
        base = validate(load_params(project_dir))  # the sources' settings, before any profile
        bases = {
            v: flatten({"variant": base.variants.of(v).plain(), "train": base.train.plain()})
            for v in Variants.names()
        }
        try:
            decision = register_best(client, list(runs.values()), params.registry, extractor, bases)
        except MlflowException as err:  # the server, its database or its artifact store failed mid-way
            raise tracking.store_failed(project_dir, params.mlflow, err) from err
        record_file.write_text(json.dumps(decision.as_dict(name), indent=2) + "\n")
    return decision


def check_evaluated(runs: dict[str, Any], key: str, extractor: str) -> None:
    """Refuse to decide while a variant's current run lacks scores from the current evaluation (never
    evaluated, its evaluation failed or cut short, or measured under other settings): the champion must
    never change because another variant's scores are missing."""
    missing = [
        f"{variant} (run {run.info.run_id})"
        for variant, run in runs.items()
        if run.data.tags.get("eval/key") != key or run.data.tags.get("eval/extractor_version") != extractor
    ]
    if missing:
        raise RegistryError(
            f"not registered: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no scores from "
            f"the current evaluation (classifier {extractor}, today's evaluation settings and code), so the "
            "best generator cannot be told. Fix: run `mnistgen evaluate`, then `mnistgen register`."
        )
