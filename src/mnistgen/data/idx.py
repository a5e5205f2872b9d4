"""Parsing MNIST's IDX files into numpy arrays, with one clear error per kind of defect.

IDX layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then one
big-endian uint32 per dimension, then the values in row-major order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistgen.errors import MnistgenError

UNSIGNED_BYTE = 0x08
IMAGE_SHAPE = (28, 28)


class IdxFormatError(MnistgenError):
    """A file is not the IDX file it should be."""


@dataclass(frozen=True)
class Split:
    """One split of MNIST: uint8 images (n, 28, 28) and uint8 labels (n,)."""

    images: np.ndarray
    labels: np.ndarray


def read_idx(path: Path, ndim: int, item_shape: tuple[int, ...] = ()) -> np.ndarray:
    """Read an unsigned-byte IDX file with `ndim` dimensions, the trailing ones equal to `item_shape`."""
    raw = path.read_bytes()
    expected_magic = f"0x0000{UNSIGNED_BYTE:02x}{ndim:02x}"
    hint = f"Fix: delete {path} and run `mnistgen data` again, or check the mirror that served it."
    if len(raw) < 4 + 4 * ndim:
        raise IdxFormatError(f"{path.name}: {len(raw)} bytes is too short for an IDX header. {hint}")
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != UNSIGNED_BYTE or raw[3] != ndim:
        raise IdxFormatError(
            f"{path.name}: wrong magic number 0x{magic:08x}, expected {expected_magic} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''}). {hint}"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims[1:] != item_shape:
        raise IdxFormatError(f"{path.name}: items of shape {dims[1:]}, expected {item_shape}. {hint}")
    header = 4 + 4 * ndim
    expected_bytes = header + int(np.prod(dims))
    if len(raw) != expected_bytes:
        problem = "truncated" if len(raw) < expected_bytes else "has trailing bytes"
        raise IdxFormatError(
            f"{path.name}: {problem}: {len(raw)} bytes, but its header {dims} implies "
            f"{expected_bytes}. {hint}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_split(images_path: Path, labels_path: Path) -> Split:
    images = read_idx(images_path, ndim=3, item_shape=IMAGE_SHAPE)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds "
            f"{len(labels)} labels; they must pair up one to one. Fix: re-download both files."
        )
    return Split(images=images, labels=labels)


def read_mnist(paths: dict[str, Path]) -> dict[str, Split]:
    """Both splits from the files keyed `train_images`, `train_labels`, `test_images`, `test_labels`."""
    return {
        split: read_split(paths[f"{split}_images"], paths[f"{split}_labels"]) for split in ("train", "test")
    }
