"""Prefect flows for evaluation and registration: `evaluate` (classifier if needed, metrics, leaderboard)
and `register` (champion/challenger in the MLflow registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.retries import store_or_network_failed
from mnistgen.config import load_project
from mnistgen.evaluation import classifier
from mnistgen.evaluation import evaluate as evaluation
from mnistgen.registry import champion_of
from mnistgen.registry import register as register_best
from mnistgen.settings import Settings


@task
def ensure_classifier(root: Path, params: Settings, retrain: bool) -> str:
    """The feature classifier: reused while its settings and the data are unchanged."""
    if retrain:
        _, version, accuracy = classifier.train_and_log(root, params, progress=False)
        trained = True
    else:
        version, accuracy, trained = classifier.ensure(root, params, progress=False)
    print(f"{'trained' if trained else 'reusing'} classifier {version}: test accuracy {accuracy:.4f}")
    return version


@task(retries=2, retry_delay_seconds=10, retry_condition_fn=store_or_network_failed)
def evaluate_runs(root: Path, params: Settings, seed: int | None = None) -> list[dict[str, Any]]:
    entries, extractor, (markdown, page) = evaluation.evaluate_all(
        root, params, seed, champion_of(root, params)
    )
    create_markdown_artifact(key="leaderboard", markdown=markdown.read_text(), description=str(page))
    return [
        {"variant": e.name, "run_id": e.run_id or "", **{k: round(v, 5) for k, v in e.metrics.items()}}
        for e in entries
    ]


@flow(name="evaluate", log_prints=True)
def evaluate(
    profile: str | None = None,
    project_dir: str | None = None,
    retrain_classifier: bool = False,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """Measure every variant's current run against the MNIST test set; returns the leaderboard rows."""
    root, params = load_project(project_dir, profile)
    extractor = ensure_classifier(root, params, retrain_classifier)
    rows = evaluate_runs(root, params, seed)
    create_table_artifact(key="leaderboard-table", table=rows, description=f"classifier {extractor}")
    return rows


@task(retries=1, retry_delay_seconds=10, retry_condition_fn=store_or_network_failed)
def register_task(root: Path, params: Settings, seed: int | None) -> Any:
    return register_best(root, params, seed)


@flow(name="register", log_prints=True)
def register(
    profile: str | None = None, project_dir: str | None = None, seed: int | None = None
) -> dict[str, Any]:
    """Register the best evaluated generator; it becomes the champion only if it beats the current one."""
    root, params = load_project(project_dir, profile)
    decision = register_task(root, params, seed)
    if decision is None:  # a DVC experiment: see reports/registration.json
        raise RuntimeError("the register flow does not run inside a DVC experiment (`dvc exp run`)")
    registered = decision.as_dict(params.registry.model_name)
    print(f"{registered['model']} v{registered['version']} @{registered['alias']}: {registered['reason']}")
    return registered


if __name__ == "__main__":
    evaluate()
    register()
