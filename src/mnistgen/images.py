"""Pixels in the three forms they take here, and the conversions between them: uint8 as MNIST stores
them, [0, 1] as the metrics and figures read them, and a model's own `pixel_range` ([-1, 1] for a tanh
generator). Every stage converts with these, so a sample and a training image are scaled alike."""

from __future__ import annotations

import numpy as np

PixelRange = tuple[float, float]


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1]."""
    return np.asarray(pixels).astype(np.float32) / np.float32(255.0)


def to_model_range(unit: np.ndarray, pixel_range: PixelRange) -> np.ndarray:
    """Images in [0, 1] -> the model's `pixel_range`."""
    low, high = (np.float32(bound) for bound in pixel_range)
    return unit * (high - low) + low


def to_unit_range(values: np.ndarray, pixel_range: PixelRange) -> np.ndarray:
    """A model's outputs in `pixel_range` -> float32 in [0, 1] (clipped: a generator may overshoot)."""
    low, high = pixel_range
    return np.clip((np.asarray(values, dtype=np.float32) - low) / (high - low), 0.0, 1.0)


def labels_in_turn(n: int, classes: int) -> np.ndarray:
    """Row i's label is i mod `classes`: each digit in turn, so any `n` rows are (nearly) balanced.

    Args:
        n: how many rows.
        classes: how many labels the model draws.

    Returns:
        int64 labels of shape (n,).
    """
    return np.arange(n) % classes


def grid_labels(n: int, classes: int, styles: int = 1) -> np.ndarray:
    """Labels for a square grid of `n` conditional samples: one digit per row. With `styles` labels per
    digit (cgan's `subclusters`: label digit x styles + style), a row's columns go through its styles."""
    side = int(np.ceil(np.sqrt(n)))
    rows, columns = np.arange(n) // side, np.arange(n) % side
    return (rows % classes) * styles + columns % styles
