"""The Great Expectations suite, run through the data stage: bad data fails it and is never published."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.mirror import ROWS, make_mirror, synthetic_split
from helpers.projects import project_params, snapshot, write_project

from mnistgen.data.idx import IdxFormatError, Split
from mnistgen.data.prepare import DataSettings, prepare_mnist
from mnistgen.data.validation import DataValidationError, summarise


def run_stage(tmp_path: Path, **arrays: np.ndarray):
    mirror = make_mirror(tmp_path / "mirror", arrays)
    root = write_project(tmp_path / "project", project_params(mirror.files))
    settings = DataSettings.load(root)
    return settings, lambda: prepare_mnist(settings, [str(mirror.folder)], progress=False, track=False)


def test_summary_table_has_one_row_per_image() -> None:
    images, labels = synthetic_split(30, seed=3)
    table = summarise(Split(images, labels))
    assert list(table.columns) == ["label", "label_share", "pixel_min", "pixel_max", "mean_intensity"]
    assert len(table) == 30
    assert table["label_share"].eq(0.1).all()
    np.testing.assert_allclose(table["mean_intensity"], images.reshape(30, -1).mean(axis=1))


def test_valid_data_passes_and_is_published_with_reports(tmp_path: Path) -> None:
    settings, run = run_stage(tmp_path)
    result = run()
    assert result.report.success and result.report.failures == []
    assert sorted(p.name for p in settings.data_dir.iterdir()) == sorted(
        s.name for s in settings.files.values()
    )
    saved = json.loads((settings.reports_dir / "data_validation.json").read_text())
    assert saved["success"] is True and saved["splits"]["train"]["rows"] == ROWS["train"]
    docs = settings.reports_dir / "data_docs" / "index.html"
    assert docs.is_file() and "mnist_images" in docs.read_text()


def _labels_with_out_of_range_value() -> np.ndarray:
    _, labels = synthetic_split(ROWS["train"], seed=1)
    labels[:2] = 12
    return labels


def _imbalanced_labels() -> np.ndarray:
    labels = np.arange(ROWS["train"]) % 10
    labels[: ROWS["train"] // 2] = 0  # half of the split is zeros
    return labels.astype(np.uint8)


def _too_few_rows() -> dict[str, np.ndarray]:
    images, labels = synthetic_split(ROWS["train"] - 10, seed=1)
    return {"train_images": images, "train_labels": labels}


def _blank_images() -> np.ndarray:
    images, _ = synthetic_split(ROWS["test"], seed=2)
    images[:5] = 0
    return images


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        (
            {"train_labels": _labels_with_out_of_range_value()},
            ["train: expect_column_values_to_be_between(column=label", "[12, 12]"],
        ),
        (
            {"train_labels": _imbalanced_labels()},
            ["train: expect_column_values_to_be_between(column=label_share", "0.5"],
        ),
        (_too_few_rows(), ["train: expect_table_row_count_to_equal(value=100): observed 90"]),
        (
            {"test_images": _blank_images()},
            [
                "test: expect_column_values_to_be_between(column=pixel_max",
                "test: expect_column_values_to_be_between(column=mean_intensity",
            ],
        ),
    ],
    ids=["label-out-of-range", "class-imbalance", "wrong-row-count", "blank-images"],
)
def test_bad_data_fails_validation_and_is_not_published(tmp_path: Path, arrays, expected: list[str]) -> None:
    settings, run = run_stage(tmp_path, **arrays)
    with pytest.raises(DataValidationError) as caught:
        run()
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message
    assert "nothing was published" in message and "data_docs" in message
    assert snapshot(settings.data_dir) == {}
    assert json.loads((settings.reports_dir / "data_validation.json").read_text())["success"] is False


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"test_images": np.zeros((ROWS["test"], 784), np.uint8)}, "wrong magic number"),
        ({"test_images": np.zeros((ROWS["test"], 28, 27), np.uint8)}, r"items of shape \(28, 27\)"),
    ],
    ids=["wrong-magic", "wrong-dimensions"],
)
def test_malformed_idx_is_not_published(tmp_path: Path, arrays, message: str) -> None:
    settings, run = run_stage(tmp_path, **arrays)
    with pytest.raises(IdxFormatError, match=message):
        run()
    assert snapshot(settings.data_dir) == {}
