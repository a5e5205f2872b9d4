"""Evaluate the latest finished run of each variant, log the figures into that run, build the leaderboard."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistgen.data.idx import Split
from mnistgen.errors import MnistgenError
from mnistgen.evaluation import quality
from mnistgen.evaluation.classifier import Classifier
from mnistgen.serving.sampler import Sampler
from mnistgen.training.quality_clock import METRIC as QUALITY_METRIC

log = logging.getLogger(__name__)

FLOOR = "real data (floor)"
Usefulness = Callable[[np.ndarray, np.ndarray], float]  # (images in [0, 1], labels) -> CAS
GRID_SAMPLES = 64


class EvaluationError(MnistgenError):
    """Nothing could be evaluated."""


@dataclass
class Entry:
    """One leaderboard row: a variant's run (or the real-data floor) and its figures."""

    name: str
    run_id: str | None
    kind: str
    metrics: dict[str, float]
    grid: np.ndarray | None = None  # (64, 28, 28) in [0, 1] for image models
    tags: dict[str, str] = field(default_factory=dict)
    quality_curve: list[tuple[float, float]] = field(default_factory=list)  # (training seconds, FID)


def latest_runs(client: Any, experiment_id: str, variants: list[str]) -> dict[str, Any]:
    """The most recent FINISHED training run of each variant (variants never trained are skipped)."""
    runs = {}
    for variant in variants:
        found = client.search_runs(
            [experiment_id],
            filter_string=f"tags.variant = '{variant}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if found:
            runs[variant] = found[0]
        else:
            log.warning("%s: no finished training run to evaluate", variant)
    return runs


def evaluate_run(
    client: Any,
    run: Any,
    reference: quality.Reference,
    test: Split,
    classifier: Classifier,
    cfg: dict[str, Any],
    usefulness: Usefulness,
) -> Entry:
    """Sample the run's model, measure it, and log `eval/*` metrics and the extractor version into the run."""
    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        model_dir = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="model", dst_path=scratch
            )
        )
        sampler = Sampler(model_dir)
        samples = sampler.sample(cfg["samples"], seed=cfg["seed"])
        kind = sampler.info["kind"]
        if kind == "toy":
            figures = quality.toy_quality(samples, mean=-1.0, std=1.0)
        else:
            figures = quality.image_quality(samples, reference, classifier, cfg)
        if sampler.classes:  # the sampler's default labels: row i draws digit i mod 10
            labels = np.arange(len(samples)) % sampler.classes
            figures.update(quality.conditional_quality(samples, labels, reference, classifier))
            n = cfg["cas"]["images"]
            figures["cas"] = usefulness(
                sampler.sample(n, seed=cfg["seed"] + 1), np.arange(n) % sampler.classes
            )
        if kind == "reconstruction":
            figures["reconstruction_mse"] = reconstruction_error(model_dir, test, bool(sampler.classes))
    for name, value in figures.items():
        client.log_metric(run.info.run_id, f"eval/{name}", float(value))
    client.set_tag(run.info.run_id, "eval/extractor_version", classifier.version)
    client.set_tag(run.info.run_id, "eval/samples", str(cfg["samples"]))
    grid = samples[:GRID_SAMPLES] if kind != "toy" else None
    curve = [(float(m.step), m.value) for m in client.get_metric_history(run.info.run_id, QUALITY_METRIC)]
    return Entry(run.data.tags["variant"], run.info.run_id, kind, figures, grid, dict(run.data.tags), curve)


def reconstruction_error(model_dir: Path, test: Split, conditional: bool) -> float:
    """Mean per-pixel squared error of test images through encoder (its mean, for the VAE) and decoder;
    a conditional model is given each image's true digit on both sides."""
    import keras

    encoder = keras.saving.load_model(model_dir / "encoder.keras", safe_mode=True)
    decoder = keras.saving.load_model(model_dir / "decoder.keras", safe_mode=True)
    images = test.images.astype(np.float32)[..., None] / 255.0
    labels = test.labels.astype(np.int32)[:, None]
    errors = []
    for start in range(0, len(images), 1000):
        batch, digits = images[start : start + 1000], labels[start : start + 1000]
        codes = encoder([batch, digits] if conditional else batch, training=False)
        codes = np.asarray(codes[0] if isinstance(codes, (list, tuple)) else codes)
        decoded = decoder([codes, digits] if conditional else codes, training=False)
        errors.append(np.mean((np.asarray(decoded) - batch) ** 2))
    return float(np.mean(errors))


def floor_entry(
    reference: quality.Reference, classifier: Classifier, cfg: dict[str, Any], usefulness: Usefulness
) -> Entry:
    """The same figures for real training images: how good "perfect" looks in these metrics; its CAS is
    the same classifier trained on as many real images as a conditional model is asked for.

    The slice is left out of the memorisation reference, or real digits would look like perfect copies.
    """
    rng = np.random.default_rng(cfg["seed"])
    chosen = rng.choice(len(reference.train_images), cfg["samples"], replace=False)
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
    figures = quality.image_quality(real, held_out, classifier, cfg)
    predicted = classifier.probabilities(real).argmax(axis=1)
    figures["label_accuracy"] = float(np.mean(predicted == reference.train_labels[chosen]))
    few = chosen[: cfg["cas"]["images"]]
    figures["cas"] = usefulness(reference.train_images[few], reference.train_labels[few])
    return Entry(FLOOR, None, "real", figures, real[:GRID_SAMPLES])


def evaluate_all(project_dir: Path, params: dict[str, Any]) -> tuple[list[Entry], str, tuple[Path, Path]]:
    """Evaluate the latest finished run of every variant (and the current champion's run, so the registry
    can compare like with like), add the floor, and write the leaderboard under `evaluation.reports_dir`."""
    import mlflow

    from mnistgen import registry, tracking
    from mnistgen.data.prepare import DataSettings, load_mnist
    from mnistgen.evaluation import classifier as classifier_module
    from mnistgen.evaluation import leaderboard

    cfg = params["evaluation"]
    classifier = classifier_module.load(project_dir / params["classifier"]["dir"])
    splits = load_mnist(DataSettings.from_params(project_dir, params))
    experiment_id = tracking.use_experiment(project_dir, params["mlflow"])
    client = mlflow.MlflowClient()
    runs = latest_runs(client, experiment_id, params["train"]["variants"])
    if not runs:
        raise EvaluationError(
            "no finished training run to evaluate. Fix: run `mnistgen train VARIANT` first."
        )
    champion = registry.current_champion(client, params["registry"]["model_name"])
    extra = (
        [client.get_run(champion.run_id)]
        if champion and champion.run_id not in {r.info.run_id for r in runs.values()}
        else []
    )
    reference = quality.Reference.build(splits, classifier)

    def usefulness(images: np.ndarray, labels: np.ndarray) -> float:
        return quality.classification_accuracy_score(
            images, labels, reference, params["classifier"], cfg["cas"], cfg["seed"]
        )

    entries = []
    for run in [*runs.values(), *extra]:
        log.info("evaluating %s (run %s)", run.data.tags.get("variant"), run.info.run_id)
        entries.append(evaluate_run(client, run, reference, splits["test"], classifier, cfg, usefulness))
    entries.append(floor_entry(reference, classifier, cfg, usefulness))
    paths = leaderboard.write(
        entries, params["registry"]["primary_metric"], classifier.version, project_dir / cfg["reports_dir"]
    )
    return entries, classifier.version, paths
