"""Great Expectations validation of decoded MNIST, so no training ever starts on bad data.

GX validates a compact per-image summary table (label, its class share, pixel range, mean intensity)
rather than 784 pixel columns: the checks that matter are about labels, balance and ink, and a table of
60,000 rows validates in well under a second. The suite is defined here, from `params.yaml`'s
`data.validation`; the GX context it runs in (under `reports/gx/`) is a generated artefact.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnistgen.data import docs_assets
from mnistgen.data.idx import Split
from mnistgen.errors import MnistgenError
from mnistgen.settings import DataRules

log = logging.getLogger(__name__)

SUITE_NAME = "mnist_images"
DOCS_SITE = "reports"
SUMMARY_COLUMNS = ["label", "label_share", "pixel_min", "pixel_max", "mean_intensity"]


class DataValidationError(MnistgenError):
    """The data failed its expectation suite."""


@dataclass
class ValidationReport:
    success: bool
    failures: list[str]
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_docs: str = ""
    result_file: str = ""


def summarise(split: Split) -> pd.DataFrame:
    """One row per image: the facts the expectation suite checks."""
    flat = split.images.reshape(len(split.images), -1)
    labels = split.labels.astype(np.int64)
    counts = np.bincount(labels)
    return pd.DataFrame(
        {
            "label": labels,
            "label_share": counts[labels] / max(len(labels), 1),
            "pixel_min": flat.min(axis=1).astype(np.int64),
            "pixel_max": flat.max(axis=1).astype(np.int64),
            "mean_intensity": flat.mean(axis=1),
        }
    )


def build_suite(rules: DataRules) -> Any:
    """The expectation suite; the row count is a suite parameter so one suite serves both splits."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    share_low, share_high = rules.class_share
    image_low, image_high = rules.image_mean
    split_low, split_high = rules.split_mean
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    for expectation in [
        gxe.ExpectTableRowCountToEqual(value={"$PARAMETER": "expected_rows"}),
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=SUMMARY_COLUMNS),
        *[gxe.ExpectColumnValuesToNotBeNull(column=column) for column in SUMMARY_COLUMNS],
        gxe.ExpectColumnValuesToBeBetween(column="label", min_value=0, max_value=9),
        gxe.ExpectColumnDistinctValuesToEqualSet(column="label", value_set=list(range(10))),
        gxe.ExpectColumnValuesToBeBetween(column="label_share", min_value=share_low, max_value=share_high),
        gxe.ExpectColumnValuesToBeBetween(column="pixel_min", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="pixel_max", min_value=rules.min_peak, max_value=255),
        gxe.ExpectColumnValuesToBeBetween(column="mean_intensity", min_value=image_low, max_value=image_high),
        gxe.ExpectColumnMeanToBeBetween(column="mean_intensity", min_value=split_low, max_value=split_high),
    ]:
        suite.add_expectation(expectation)
    return suite


def validate_mnist(
    splits: dict[str, Split],
    rules: DataRules,
    reports_dir: Path,
    data_version: str,
    assets: Path | None = None,
) -> ValidationReport:
    """Validate every split, write the result and the Data Docs under `reports_dir`, and report.

    The validation runs are named by `data_version` (the Data Docs list them under it); `assets`, a
    `node_modules` folder with the pinned scripts and styles (`datadocs/`), makes the pages work offline.
    Does not raise on failed expectations: `raise_for_failures` does, so callers can still show the report.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    reports_dir.mkdir(parents=True, exist_ok=True)
    docs_dir = (reports_dir / "data_docs").resolve()
    context = gx.get_context(mode="file", project_root_dir=str(reports_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    if DOCS_SITE in context.get_site_names():
        context.update_data_docs_site(DOCS_SITE, site)
    else:
        context.add_data_docs_site(DOCS_SITE, site)
    suite = context.suites.add_or_update(build_suite(rules))
    source = context.data_sources.add_or_update_pandas("mnist")

    report = ValidationReport(success=True, failures=[], data_docs=str(docs_dir / "index.html"))
    for name, split in splits.items():
        table = summarise(split)
        asset = (
            source.add_dataframe_asset(name)
            if name not in source.get_asset_names()
            else source.get_asset(name)
        )
        batch = next(iter(asset.batch_definitions), None) or asset.add_batch_definition_whole_dataframe("all")
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"mnist_{name}", data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"mnist_{name}",
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE])],
            )
        )
        result = checkpoint.run(
            batch_parameters={"dataframe": table},
            expectation_parameters={"expected_rows": int(getattr(rules.rows, name))},
            run_id=RunIdentifier(run_name=data_version),
        )
        failures = [
            f"{name}: {_describe(outcome)}"
            for run in result.run_results.values()
            for outcome in run.results
            if not outcome.success
        ]
        report.success &= result.success
        report.failures += failures
        report.splits[name] = {
            "success": bool(result.success),
            "rows": len(table),
            "failed_expectations": len(failures),
            "mean_intensity": round(float(table["mean_intensity"].mean()), 3) if len(table) else None,
            "class_counts": np.bincount(split.labels, minlength=10).tolist(),
        }
    _offline(docs_dir, assets)
    report.result_file = str(reports_dir / "data_validation.json")
    Path(report.result_file).write_text(json.dumps(report.__dict__, indent=2) + "\n")
    log.info("validation %s; Data Docs: %s", "passed" if report.success else "FAILED", report.data_docs)
    return report


def _offline(docs_dir: Path, assets: Path | None) -> None:
    """Point the Data Docs at the pinned copies of their scripts and styles, or say why they still load
    them from the internet (`data.docs_assets: null` asks for that)."""
    if assets is None:
        return
    lacking = docs_assets.missing(assets)
    if lacking:
        log.warning(
            "the Data Docs load their scripts and styles from CDNs (offline they show unstyled): %s lacks "
            "%s. Fix: `make setup` installs them with npm (datadocs/package-lock.json).",
            assets,
            ", ".join(lacking[:3]) + (" ..." if len(lacking) > 3 else ""),
        )
        return
    remote = docs_assets.make_offline(docs_dir, assets)
    if remote:
        log.warning("the Data Docs still load %s from the internet (a GX upgrade?)", ", ".join(remote))


def raise_for_failures(report: ValidationReport) -> None:
    if report.success:
        return
    listing = "\n".join(f"  - {failure}" for failure in report.failures)
    raise DataValidationError(
        f"MNIST failed {len(report.failures)} expectation(s); nothing was published to the data folder:\n"
        f"{listing}\nDetails: {report.data_docs}\n"
        "Fix: the files are not the published MNIST; check the mirror that served them."
    )


def _describe(outcome: Any) -> str:
    """A one-line account of a failed expectation: what was expected, what was seen."""
    config = outcome.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")}
    seen = outcome.result or {}
    if "observed_value" in seen:
        detail = f"observed {seen['observed_value']}"
    else:
        examples = seen.get("partial_unexpected_list", [])[:5]
        detail = f"{seen.get('unexpected_count', '?')} unexpected value(s), e.g. {examples}"
    return f"{config.type}({', '.join(f'{k}={v}' for k, v in kwargs.items())}): {detail}"
