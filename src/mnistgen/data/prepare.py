"""The data stage as plain steps: stage -> validate -> publish -> version.

The CLI runs them in a row (`prepare_mnist`); the Prefect flow runs each as a task. Nothing reaches
`data/mnist/` before the whole data set has passed its checksums, the IDX parser and the GX suite.
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from mnistgen import locks
from mnistgen.config import load_project
from mnistgen.data import download, idx, validation, versioning
from mnistgen.settings import DataFile, DataRules, Download, Settings

log = logging.getLogger(__name__)

STAGING_DIR = ".mnistgen/staging"


@dataclass(frozen=True)
class DataSettings:
    """`params.yaml`'s `data` section, resolved against the project folder."""

    project_dir: Path
    data_dir: Path
    reports_dir: Path
    staging_dir: Path
    mirrors: list[str]
    files: dict[str, DataFile]  # keyed like `train_images`
    retry: Download
    rules: DataRules
    push: bool
    docs_assets: Path | None  # a node_modules folder with the Data Docs' scripts and styles (offline pages)

    @classmethod
    def from_params(cls, project_dir: Path, params: Settings) -> DataSettings:
        data = params.data
        return cls(
            project_dir=project_dir,
            data_dir=project_dir / data.dir,
            reports_dir=project_dir / data.reports_dir,
            staging_dir=project_dir / STAGING_DIR,
            mirrors=list(data.mirrors),
            files=dict(data.files),
            retry=data.download,
            rules=data.validation,
            push=data.dvc.push,
            docs_assets=project_dir / data.docs_assets if data.docs_assets else None,
        )

    @classmethod
    def load(cls, project_dir: Path | None = None) -> DataSettings:
        """Settings of the project at `project_dir`, or of the nearest one above the working directory
        (the whole of params.yaml checked first)."""
        return cls.from_params(*load_project(project_dir))

    @property
    def data_version(self) -> str:
        """What names the data's validation runs: a digest of the four files' checksums, which the files
        have passed by the time they are validated (`sha256-` and 12 hex digits)."""
        checksums = "".join(self.files[key].sha256 for key in sorted(self.files))
        return f"sha256-{hashlib.sha256(checksums.encode()).hexdigest()[:12]}"

    @property
    def tracked(self) -> str:
        """The folder `data.dvc` tracks: `data.dir`, relative to the project (`data/mnist`)."""
        return self.data_dir.relative_to(self.project_dir).as_posix()


@dataclass(frozen=True)
class DataResult:
    downloaded: list[str]
    report: validation.ValidationReport
    version: versioning.DataVersion | None


def stage(settings: DataSettings, mirrors: list[str], progress: bool = True) -> dict[str, Path]:
    return download.stage_files(
        settings.files, mirrors, settings.data_dir, settings.staging_dir, settings.retry, progress
    )


def validate(settings: DataSettings, verified: dict[str, Path]) -> validation.ValidationReport:
    """Parse and validate the verified files; raises, listing every failed expectation, on bad data."""
    report = validation.validate_mnist(
        idx.read_mnist(verified),
        settings.rules,
        settings.reports_dir,
        settings.data_version,
        settings.docs_assets,
    )
    validation.raise_for_failures(report)
    return report


def publish(settings: DataSettings, verified: dict[str, Path]) -> list[str]:
    return download.publish(verified, settings.data_dir, settings.staging_dir)


def version(settings: DataSettings) -> versioning.DataVersion:
    return versioning.version_data(settings.project_dir, settings.tracked, push=settings.push)


def one_at_a_time(settings: DataSettings) -> AbstractContextManager[None]:
    """One data stage at a time in a project (they share the staging folder and `data/`): a second waits
    for the first, then finds the files in place and valid."""
    return locks.held(settings.project_dir, "data")


def prepare_mnist(
    settings: DataSettings, mirrors: list[str], progress: bool = True, track: bool = True
) -> DataResult:
    with one_at_a_time(settings):
        verified = stage(settings, mirrors, progress)
        report = validate(settings, verified)
        downloaded = publish(settings, verified)
        return DataResult(downloaded=downloaded, report=report, version=version(settings) if track else None)


def load_mnist(project_dir: Path, params: Settings) -> dict[str, idx.Split]:
    """The published splits, for training and evaluation, checked against their recorded size and SHA-256
    first (47 MB, a fraction of a second): a file changed after it was published is refused, not learnt.
    A clear error when `mnistgen data` has not run.

    Args:
        project_dir: the project whose `data.dir` holds them.
        params: its settings.

    Returns:
        "train" and "test", each a `Split`.
    """
    settings = DataSettings.from_params(project_dir, params)
    paths = {key: settings.data_dir / spec.name for key, spec in settings.files.items()}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        dvc_file = versioning.DVC_FILE
        recorded = versioning.read_version(settings.project_dir / dvc_file)
        if recorded and recorded[1] < len(paths):  # `dvc repro` commits a data source's folder as it finds it
            raise download.DownloadError(
                f"MNIST is not in {settings.data_dir} (missing: {', '.join(missing)}), and {dvc_file} now "
                f"records {recorded[1]} files: DVC recorded the folder as it found it. Fix: run "
                f"`git checkout {dvc_file} && dvc checkout {dvc_file}` to restore both (or `mnistgen data`)."
            )
        raise download.DownloadError(
            f"MNIST is not in {settings.data_dir} (missing: {', '.join(missing)}). "
            f"Fix: run `mnistgen data` (or `dvc pull {dvc_file}`) first."
        )
    changed = [path.name for key, path in paths.items() if not download.is_valid(path, settings.files[key])]
    if changed:
        raise download.DownloadError(
            f"{', '.join(changed)} in {settings.data_dir} no longer match the size and SHA-256 recorded in "
            "params.yaml (data.files): changed since they were verified. Fix: run `mnistgen data` (or "
            "`dvc checkout data`) to restore them."
        )
    return idx.read_mnist(paths)
