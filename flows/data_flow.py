"""Prefect flow for the data stage: stage -> validate -> publish -> version.

Run it with `python flows/data_flow.py` (or from the pipeline). Mirrors come from the `mirrors` parameter,
else `MNISTGEN_MIRRORS`, else `params.yaml`; a mirror with a password goes in `MNISTGEN_MIRRORS`, never in
the parameter (Prefect stores parameters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from mnistgen.config import check_flow_mirrors, resolve_mirrors
from mnistgen.data import prepare
from mnistgen.data.validation import ValidationReport
from mnistgen.data.versioning import DataVersion


@task(retries=2, retry_delay_seconds=[10, 60])
def stage_mnist(settings: prepare.DataSettings, mirrors: list[str]) -> dict[str, Path]:
    return prepare.stage(settings, mirrors, progress=False)


@task
def validate_mnist(settings: prepare.DataSettings, verified: dict[str, Path]) -> ValidationReport:
    return prepare.validate(settings, verified)


@task
def publish_mnist(settings: prepare.DataSettings, verified: dict[str, Path]) -> list[str]:
    return prepare.publish(settings, verified)


@task(retries=1, retry_delay_seconds=10)
def version_mnist(settings: prepare.DataSettings) -> DataVersion:
    return prepare.version(settings)


@flow(name="mnist-data", log_prints=True)
def data_flow(project_dir: str | None = None, mirrors: list[str] | None = None) -> dict[str, Any]:
    """Download, validate and version MNIST; fails, listing what is wrong, before bad data is published."""
    check_flow_mirrors(mirrors)
    settings = prepare.DataSettings.load(Path(project_dir) if project_dir else None)
    with prepare.one_at_a_time(settings):
        verified = stage_mnist(settings, resolve_mirrors(mirrors, settings.mirrors))
        report = validate_mnist(settings, verified)
        downloaded = publish_mnist(settings, verified)
        version = version_mnist(settings)
    create_table_artifact(
        key="mnist-validation",
        table=[
            {"split": name, **{k: v for k, v in split.items() if k != "class_counts"}}
            for name, split in report.splits.items()
        ],
        description=f"Great Expectations result; Data Docs: {report.data_docs}",
    )
    state = "changed" if version.changed else "unchanged"
    print(f"data version {version.md5} ({state}); downloaded {downloaded or 'nothing'}")
    return {
        "md5": version.md5,
        "changed": version.changed,
        "downloaded": downloaded,
        "data_docs": report.data_docs,
    }


if __name__ == "__main__":
    data_flow()
