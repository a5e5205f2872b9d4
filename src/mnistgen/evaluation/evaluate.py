"""Evaluate the latest finished run of each variant, log the scores into that run, build the leaderboard."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnistgen.data.idx import Split
from mnistgen.errors import MnistgenError
from mnistgen.evaluation import metrics, quality
from mnistgen.evaluation.classifier import Classifier, inference
from mnistgen.evaluation.leaderboard import FLOOR, Entry, describe_entries
from mnistgen.evaluation.leaderboard import write as write_leaderboard
from mnistgen.evaluation.quality_clock import METRIC as QUALITY_METRIC
from mnistgen.images import labels_in_turn, to_unit
from mnistgen.models.base import GRID_SAMPLES
from mnistgen.models.toy_gan_1d import DATA_MEAN, DATA_STD
from mnistgen.serving.sampler import EVALUATION_BATCH, Sampler
from mnistgen.settings import EvaluationSection, Settings

log = logging.getLogger(__name__)

FLOOR_TAG = "eval/floor"  # an experiment tag: the floor's scores and the key of their evaluation
Usefulness = Callable[[np.ndarray, np.ndarray], float]  # (images in [0, 1], labels) -> CAS


class EvaluationError(MnistgenError):
    """An evaluation that could not be completed: no run to evaluate, a run that could not be, or reports
    that could not be written; the previous reports stay as they were."""


SEED_REPORTS = "seed-{seed}"  # under evaluation.reports_dir: the reports of runs trained with another seed


def reports_folder(project_dir: Path, params: Settings, seed: int | None) -> Path:
    """Where the reports of runs trained with `seed` go: `evaluation.reports_dir` for `train.seed` (the
    pipeline's, which DVC tracks), its `seed-N/` for any other, so a trial's scores are written beside
    the pipeline's, never over them."""
    reports = project_dir / params.evaluation.reports_dir
    if seed is None or seed == params.train.seed:
        return reports
    return reports / SEED_REPORTS.format(seed=seed)


def current_runs(
    client: Any, experiment_ids: list[str], project_dir: Path, params: Settings, seed: int | None
) -> dict[str, Any]:
    """Each variant's current run: the latest FINISHED training run whose fingerprint matches today's
    settings, code and data (the same rule that makes `dvc status` call a stage current). Variants with
    none are skipped, with a warning that says how to make one."""
    from mnistgen import lineage
    from mnistgen.training.plan import TrainRequest, plan_run

    runs = {}
    for variant in params.train.variants:
        plan = plan_run(TrainRequest(project_dir, variant, params.profile, seed))
        found = client.search_runs(
            experiment_ids,
            filter_string=(
                f"tags.variant = '{variant}' and tags.fingerprint = '{lineage.digest(plan.fingerprint)}' "
                "and attributes.status = 'FINISHED'"
            ),
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if found:
            runs[variant] = found[0]
        else:
            log.warning(
                "%s: no finished run for the current settings, code and data; not evaluated "
                "(run `mnistgen train %s`)",
                variant,
                variant,
            )
    return runs


def evaluate_run(
    client: Any,
    run: Any,
    reference: quality.Reference,
    test: Split,
    classifier: Classifier,
    cfg: EvaluationSection,
    usefulness: Usefulness,
    key: str,
) -> Entry:
    """Sample the run's model, measure it, and log `eval/*` metrics, the extractor version and the
    evaluation's `key` into the run. A run already measured under the same key (same classifier,
    evaluation settings and code) keeps its scores: evaluation is deterministic, so measuring it again
    would give the same numbers."""
    from mnistgen import tracking

    with tempfile.TemporaryDirectory(prefix="mnistgen-evaluate-") as scratch:
        model_dir = tracking.download(run.info.run_id, "model", scratch)
        sampler = Sampler(model_dir)
        kind = sampler.info["kind"]
        if run.data.tags.get("eval/key") == key:
            log.info("%s: measured before under the same evaluation; scores reused", run.data.tags["variant"])
            scores = {
                k.removeprefix("eval/"): v for k, v in run.data.metrics.items() if k.startswith("eval/")
            }
            grid = (
                sampler.sample(GRID_SAMPLES, seed=cfg.seed, batch=EVALUATION_BATCH) if kind != "toy" else None
            )
            return _entry(client, run, kind, scores, grid)
        samples = sampler.sample(cfg.samples, seed=cfg.seed, batch=EVALUATION_BATCH)
        if kind == "toy":
            scores = quality.toy_quality(samples, mean=DATA_MEAN, std=DATA_STD)
        else:
            reading = classifier.read(samples)
            scores = quality.image_quality(samples, reading, reference, cfg)
        if sampler.classes:  # the sampler's default labels: row i draws digit i mod 10
            labels = labels_in_turn(len(samples), sampler.classes)
            scores.update(quality.conditional_quality(reading, labels, reference))
            # CAS learns from the first of these samples, as the floor's from the first of its images
            scores["cas"] = usefulness(samples[: cfg.cas.images], labels[: cfg.cas.images])
        if kind == "reconstruction":
            scores["reconstruction_mse"] = reconstruction_error(model_dir, test, bool(sampler.classes))
    log_scores(client, run.info.run_id, scores, classifier.version, cfg.samples, key)
    return _entry(client, run, kind, scores, samples[:GRID_SAMPLES] if kind != "toy" else None)


def log_scores(
    client: Any, run_id: str, scores: dict[str, float], extractor: str, samples: int, key: str
) -> None:
    """The scores and the key they were measured under, in one write (one transaction of the store): an
    evaluation killed mid-way leaves the run's earlier scores with their own key, never new scores under
    an old key or old scores under a new one."""
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(f"eval/{name}", float(value), now, 0) for name, value in scores.items()],
        tags=[
            RunTag("eval/extractor_version", extractor),
            RunTag("eval/samples", str(samples)),
            RunTag("eval/key", key),
        ],
    )


def _entry(client: Any, run: Any, kind: str, scores: dict[str, float], grid: np.ndarray | None) -> Entry:
    curve = [(float(m.step), m.value) for m in client.get_metric_history(run.info.run_id, QUALITY_METRIC)]
    return Entry(run.data.tags["variant"], run.info.run_id, kind, scores, grid, dict(run.data.tags), curve)


def evaluation_key(project_dir: Path, params: Settings, extractor: str) -> str:
    """What an evaluation's scores depend on besides the run: the `evaluate` stage's params and code (as
    dvc.yaml lists them) and the classifier's version, the hash of its weights. The runs are left out,
    and so are the classifier's files, whose bytes hold the time they were saved: the same classifier
    trained in two clones sharing one store gives one key."""
    from mnistgen import lineage
    from mnistgen.config import load_params

    inputs = lineage.fingerprint(project_dir, load_params(project_dir), "evaluate", params.profile)
    inputs["deps"].pop(params.train.runs_dir, None)
    inputs["deps"].pop(params.classifier.dir, None)
    return lineage.digest({**inputs, "extractor": extractor})


def reconstruction_error(model_dir: Path, test: Split, conditional: bool) -> float:
    """Mean per-pixel squared error of test images through encoder (its mean, for the VAE) and decoder;
    a conditional model is given each image's true digit on both sides."""
    import keras

    encoder = inference(keras.saving.load_model(model_dir / "encoder.keras", safe_mode=True))
    decoder = inference(keras.saving.load_model(model_dir / "decoder.keras", safe_mode=True))
    images = to_unit(test.images)[..., None]
    labels = test.labels.astype(np.int32)[:, None]
    errors = []
    for start in range(0, len(images), EVALUATION_BATCH):
        rows = slice(start, start + EVALUATION_BATCH)
        batch, digits = images[rows], labels[rows]
        codes = encoder([batch, digits] if conditional else batch)
        codes = np.asarray(codes[0] if isinstance(codes, (list, tuple)) else codes)
        decoded = decoder([codes, digits] if conditional else codes)
        errors.append(np.mean((np.asarray(decoded) - batch) ** 2))
    return float(np.mean(errors))


def floor_entry(
    reference: quality.Reference,
    classifier: Classifier,
    cfg: EvaluationSection,
    usefulness: Usefulness,
    measured: dict[str, float] | None = None,
) -> Entry:
    """The same scores for real training images: how good "perfect" looks in these metrics; its CAS is
    the same classifier trained on as many real images as a conditional model is asked for. `measured`:
    the scores of an earlier evaluation under the same key (they would come out the same).

    The slice is left out of the memorisation reference, or real digits would look like perfect copies.
    """
    rng = np.random.default_rng(cfg.seed)
    chosen = rng.choice(len(reference.train_images), cfg.samples, replace=False)
    if measured is not None:
        return Entry(FLOOR, None, "real", measured, reference.train_images[chosen[:GRID_SAMPLES]])
    rest = np.setdiff1d(np.arange(len(reference.train_images)), chosen)
    held_out = quality.Reference(
        reference.test_images,
        reference.test_features,
        reference.test_labels,
        reference.train_flat[rest],
        reference.train_images[rest],
        reference.train_labels[rest],
    )
    real = reference.train_images[chosen]
    reading = classifier.read(real)
    scores = quality.image_quality(real, reading, held_out, cfg)
    scores |= metrics.label_accuracies(reading[1].argmax(axis=1), reference.train_labels[chosen])
    few = chosen[: cfg.cas.images]
    scores["cas"] = usefulness(reference.train_images[few], reference.train_labels[few])
    return Entry(FLOOR, None, "real", scores, real[:GRID_SAMPLES])


def measured_floor(client: Any, experiment_ids: list[str], key: str) -> dict[str, float] | None:
    """The floor's scores from an earlier evaluation under the same `key` (real data, classifier, settings
    and code), kept as a tag of the experiment it was logged in; None if there is none."""
    for experiment_id in experiment_ids:
        stored = json.loads(client.get_experiment(experiment_id).tags.get(FLOOR_TAG, "{}"))
        if stored.get("key") == key and "scores" in stored:
            log.info("%s: measured before under the same evaluation; scores reused", FLOOR)
            return stored["scores"]
    return None


def evaluate_all(
    project_dir: Path, params: Settings, seed: int | None = None, champion: Any | None = None
) -> tuple[list[Entry], str, tuple[Path, Path]]:
    """Evaluate every variant's current run (trained with `seed`, default `train.seed`), add the floor, and
    write the leaderboard under `reports_folder`. `champion`, the registered champion's model
    version if any, is scored again when its score came from another classifier, so the registry can
    compare like with like. A store that fails mid-way (a full disk, a server gone) is one error naming it."""
    from mlflow.exceptions import MlflowException

    from mnistgen import tracking

    try:
        return _evaluate_all(project_dir, params, seed, champion)
    except MlflowException as err:
        raise tracking.store_failed(project_dir, params.mlflow, err) from err


def _evaluate_all(
    project_dir: Path, params: Settings, seed: int | None, champion: Any | None
) -> tuple[list[Entry], str, tuple[Path, Path]]:
    import mlflow

    from mnistgen import runtime, tracking
    from mnistgen.data.prepare import load_mnist
    from mnistgen.datasets import EVALUATION, log_inputs, mnist_input
    from mnistgen.evaluation import classifier as classifier_module

    cfg = params.evaluation
    runtime.configure(cfg.seed, params.train.deterministic)  # CAS trains classifiers
    classifier = classifier_module.load(project_dir / params.classifier.dir)
    splits = load_mnist(project_dir, params)
    experiment_ids = tracking.experiment_ids(project_dir, params.mlflow)
    client = mlflow.MlflowClient()
    runs = current_runs(client, experiment_ids, project_dir, params, seed)
    if not runs:
        raise EvaluationError(
            "no finished training run for the current settings, code and data. Fix: run "
            "`mnistgen train VARIANT` (or `mnistgen pipeline`) first."
        )
    rescore = (
        champion is not None
        and champion.tags.get("extractor_version") != classifier.version
        and champion.run_id not in {r.info.run_id for r in runs.values()}
    )
    reference = quality.Reference.build(splits, classifier)

    def usefulness(images: np.ndarray, labels: np.ndarray) -> float:
        return quality.classification_accuracy_score(
            images, labels, reference, params.classifier, cfg.cas, cfg.seed
        )

    key = evaluation_key(project_dir, params, classifier.version)
    test_input = mnist_input(project_dir, params, "test", len(splits["test"].images), EVALUATION)
    entries, failed = [], []
    for variant, run in runs.items():
        log.info("evaluating %s (run %s)", variant, run.info.run_id)
        try:
            entries.append(
                evaluate_run(client, run, reference, splits["test"], classifier, cfg, usefulness, key)
            )
            if run.data.tags.get("kind") != "toy":  # the toy GAN is measured against N(-1, 1)
                log_inputs(client, run.info.run_id, [test_input])
        except Exception as err:  # a broken model must not cost the other variants their evaluation
            log.error("%s (run %s) could not be evaluated: %s", variant, run.info.run_id, err)
            client.set_tag(run.info.run_id, "eval/failure", f"{type(err).__name__}: {err}"[:5000])
            failed.append(f"{variant} (run {run.info.run_id}): {type(err).__name__}: {err}")
    if rescore:
        log.info("scoring the champion v%s again with classifier %s", champion.version, classifier.version)
        champion_run = client.get_run(champion.run_id)
        entry = evaluate_run(
            client, champion_run, reference, splits["test"], classifier, cfg, usefulness, key
        )
        log_inputs(client, champion.run_id, [test_input])
        entry.name, entry.rescored = f"{entry.name} (champion v{champion.version})", True
        entries.append(entry)
    floor = floor_entry(reference, classifier, cfg, usefulness, measured_floor(client, experiment_ids, key))
    entries.append(floor)
    scores = {name: float(value) for name, value in floor.metrics.items()}
    client.set_experiment_tag(experiment_ids[0], FLOOR_TAG, json.dumps({"key": key, "scores": scores}))
    folder = reports_folder(project_dir, params, seed)
    if failed:  # the reports stay whole: a variant missing from them would look as if it had gone
        raise EvaluationError(
            f"{len(failed)} of {len(runs)} runs could not be evaluated, so the reports in {folder} are left "
            "as they were (the others' scores are logged in their MLflow runs):\n  - "
            + "\n  - ".join(failed)
            + "\nFix: restore what the error names, or retrain those variants (`mnistgen train VARIANT`, "
            "or `mnistgen pipeline --force`); then evaluate again."
        )
    describe_entries(entries, params.variants)
    try:
        paths = write_leaderboard(entries, params.registry.primary_metric, classifier.version, folder)
    except OSError as err:
        raise EvaluationError(
            f"the reports could not be written to {folder}: {err}; the previous reports are as they were "
            "(every score is logged in MLflow).\nFix: free space, raise the file-size limit (`ulimit -f`) "
            "or fix permissions there, then evaluate again (the scores are reused)."
        ) from err
    return entries, classifier.version, paths
