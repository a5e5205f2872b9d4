"""Evaluate the latest finished run of each variant, log the figures into that run, build the leaderboard."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistgen.data.idx import Split
from mnistgen.errors import MnistgenError
from mnistgen.evaluation import quality
from mnistgen.evaluation.classifier import Classifier
from mnistgen.serving.sampler import Sampler

log = logging.getLogger(__name__)

FLOOR = "real data (floor)"
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
        if kind == "reconstruction":
            figures["reconstruction_mse"] = reconstruction_error(model_dir, test)
    for name, value in figures.items():
        client.log_metric(run.info.run_id, f"eval/{name}", float(value))
    client.set_tag(run.info.run_id, "eval/extractor_version", classifier.version)
    client.set_tag(run.info.run_id, "eval/samples", str(cfg["samples"]))
    grid = samples[:GRID_SAMPLES] if kind != "toy" else None
    return Entry(run.data.tags["variant"], run.info.run_id, kind, figures, grid, dict(run.data.tags))


def reconstruction_error(model_dir: Path, test: Split) -> float:
    """Mean per-pixel squared error of test images through encoder (its mean, for the VAE) and decoder."""
    import keras

    encoder = keras.saving.load_model(model_dir / "encoder.keras", safe_mode=True)
    decoder = keras.saving.load_model(model_dir / "decoder.keras", safe_mode=True)
    images = test.images.astype(np.float32)[..., None] / 255.0
    errors = []
    for start in range(0, len(images), 1000):
        batch = images[start : start + 1000]
        codes = encoder(batch, training=False)
        codes = codes[0] if isinstance(codes, (list, tuple)) else codes
        errors.append(np.mean((np.asarray(decoder(codes, training=False)) - batch) ** 2))
    return float(np.mean(errors))


def floor_entry(reference: quality.Reference, classifier: Classifier, cfg: dict[str, Any]) -> Entry:
    """The same figures for real training images: how good "perfect" looks in these metrics.

    The slice is left out of the memorisation reference, or real digits would look like perfect copies.
    """
    rng = np.random.default_rng(cfg["seed"])
    chosen = rng.choice(len(reference.train_images), cfg["samples"], replace=False)
    rest = np.setdiff1d(np.arange(len(reference.train_images)), chosen)
    held_out = quality.Reference(
        reference.test_images,
        reference.test_features,
        reference.train_flat[rest],
        reference.train_images[rest],
    )
    real = reference.train_images[chosen]
    return Entry(
        FLOOR, None, "real", quality.image_quality(real, held_out, classifier, cfg), real[:GRID_SAMPLES]
    )


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
    entries = []
    for run in [*runs.values(), *extra]:
        log.info("evaluating %s (run %s)", run.data.tags.get("variant"), run.info.run_id)
        entries.append(evaluate_run(client, run, reference, splits["test"], classifier, cfg))
    entries.append(floor_entry(reference, classifier, cfg))
    paths = leaderboard.write(
        entries, params["registry"]["primary_metric"], classifier.version, project_dir / cfg["reports_dir"]
    )
    return entries, classifier.version, paths
