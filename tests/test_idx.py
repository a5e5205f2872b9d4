"""The IDX parser: real layouts decode, each kind of defect gets its own clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.mirror import idx_bytes, synthetic_split

from mnistgen.data.idx import IdxFormatError, read_idx, read_split


def write(tmp_path: Path, name: str, raw: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


def test_round_trip(tmp_path: Path) -> None:
    images, labels = synthetic_split(20, seed=0)
    split = read_split(write(tmp_path, "i", idx_bytes(images)), write(tmp_path, "l", idx_bytes(labels)))
    np.testing.assert_array_equal(split.images, images)
    np.testing.assert_array_equal(split.labels, labels)
    assert split.images.dtype == np.uint8 and split.images.shape == (20, 28, 28)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00\x00\x08", "too short for an IDX header"),
        (
            idx_bytes(np.zeros((3, 28, 28)), magic_type=0x0D),
            r"wrong magic number 0x00000d03, expected 0x00000803",
        ),
        (idx_bytes(np.zeros((3, 784))), r"wrong magic number 0x00000802, expected 0x00000803"),
        (idx_bytes(np.zeros((3, 32, 32))), r"items of shape \(32, 32\), expected \(28, 28\)"),
        (idx_bytes(np.zeros((3, 28, 28)))[:-5], "truncated"),
        (idx_bytes(np.zeros((3, 28, 28))) + b"\x00", "trailing bytes"),
    ],
    ids=["short-header", "wrong-type", "wrong-ndim", "wrong-dimensions", "truncated", "trailing"],
)
def test_image_file_defects(tmp_path: Path, raw: bytes, message: str) -> None:
    with pytest.raises(IdxFormatError, match=message) as caught:
        read_idx(write(tmp_path, "train-images-idx3-ubyte", raw), ndim=3, item_shape=(28, 28))
    assert str(caught.value).startswith("train-images-idx3-ubyte:")
    assert "Fix:" in str(caught.value)


def test_images_and_labels_must_pair_up(tmp_path: Path) -> None:
    images, labels = synthetic_split(20, seed=0)
    with pytest.raises(IdxFormatError, match="holds 20 images but l holds 19 labels"):
        read_split(write(tmp_path, "i", idx_bytes(images)), write(tmp_path, "l", idx_bytes(labels[:19])))
