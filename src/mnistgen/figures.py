"""The figures the tutorials' authors look at: sample grids, loss curves, reconstructions, latent space,
interpolations and the toy GAN's densities and decision boundary; and the variants' time-to-quality curves.
Each writes one PNG to a given path."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, path: Path | BinaryIO) -> Path | BinaryIO:
    """Write the figure as PNG to a file (its folder created) or to an open binary stream."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight", dpi=100)
    plt.close(fig)
    return path


def image_grid(images: np.ndarray, path: Path | BinaryIO, title: str = "") -> Path | BinaryIO:
    """A square grid of (n, 28, 28) images in [0, 1], white ink on black like MNIST."""
    side = int(np.ceil(np.sqrt(len(images))))
    canvas = np.ones((side * 29 + 1, side * 29 + 1)) * 0.5
    for i, image in enumerate(images):
        row, col = divmod(i, side)
        canvas[1 + row * 29 : 29 + row * 29, 1 + col * 29 : 29 + col * 29] = image
    fig, ax = plt.subplots(figsize=(side * 0.6 + 0.5, side * 0.6 + 0.8))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def loss_curves(history: list[dict[str, float]], keys: list[str], path: Path, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    steps = [row["step"] for row in history]
    for key in keys:
        ax.plot(steps, [row[key] for row in history], label=key, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (running mean within the epoch)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def reconstructions(originals: np.ndarray, reconstructed: np.ndarray, path: Path) -> Path:
    """Test images (top row) above their reconstructions (bottom row)."""
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(n * 0.8, 1.9))
    for i in range(n):
        for row, images in enumerate((originals, reconstructed)):
            axes[row, i].imshow(images[i], cmap="gray", vmin=0, vmax=1)
            axes[row, i].set_axis_off()
    fig.suptitle("test images (top) and their reconstructions (bottom)", fontsize=9)
    return _save(fig, path)


def latent_space(points: np.ndarray, labels: np.ndarray, path: Path) -> Path:
    """The test set in the first two latent dimensions, coloured by digit."""
    fig, ax = plt.subplots(figsize=(6, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=2, alpha=0.6)
    fig.colorbar(scatter, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title("latent space of the test set", fontsize=10)
    return _save(fig, path)


def interpolation(images: np.ndarray, path: Path, title: str) -> Path:
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(n * 0.8, 1.1))
    for ax, image in zip(axes, images, strict=True):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def toy_densities(
    x: np.ndarray, p_data: np.ndarray, samples: np.ndarray, decision: np.ndarray, path: Path, title: str
) -> Path:
    """Tutorial 002's picture: p_data, a histogram of G's samples (p_g) and D's output over x."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(x, p_data, label="p_data = N(-1, 1)", color="tab:blue")
    ax.hist(samples, bins=60, range=(x[0], x[-1]), density=True, alpha=0.5, label="p_g", color="tab:green")
    ax.plot(x, decision, label="D(x) decision boundary", color="tab:red")
    ax.set_xlabel("x")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def quality_curves(
    curves: dict[str, list[tuple[float, float]]], floor: float | None, path: Path | BinaryIO
) -> Path | BinaryIO:
    """FID against minutes of training, one line per variant: which buys the most quality per minute."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, points in sorted(curves.items()):
        seconds, fid = zip(*points, strict=True)
        ax.plot(np.asarray(seconds) / 60.0, fid, marker="o", markersize=3, label=name)
    if floor is not None:
        ax.axhline(floor, color="k", linestyle=":", linewidth=1, label="real data (floor)")
    ax.set_yscale("log")
    ax.set_xlabel("minutes of training (this machine)")
    ax.set_ylabel("FID (2,000 samples, log scale)")
    ax.set_title("time to quality")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)
