"""`mnistgen sample`: images from an MLflow generator model to a PNG grid or a .npy array."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnistgen.errors import MnistgenError


class SampleError(MnistgenError):
    """The model cannot be loaded or the output cannot be written."""


def sample_to_file(
    project_dir: Path,
    params: dict[str, Any],
    model_uri: str,
    n: int,
    seed: int,
    out: Path,
    digit: int | None = None,
) -> Path:
    """`n` images from the model into `out`; `digit` asks a class-conditional model for one digit."""
    import mlflow
    import pandas as pd

    from mnistgen import tracking
    from mnistgen.serving.sampler import row_seeds
    from mnistgen.training import figures

    if out.suffix not in (".png", ".npy"):
        raise SampleError(f"--out must end in .png or .npy, not {out.name!r}")
    tracking.use_store(project_dir, params["mlflow"])
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as err:  # MLflow raises several types for a missing model or alias
        raise SampleError(
            f"cannot load {model_uri}: {err}\nFix: run `mnistgen register` first, or pass --model."
        ) from err
    request = pd.DataFrame({"seed": row_seeds(n, seed)})
    if digit is not None:
        metadata = model.metadata.metadata or {}
        if not metadata.get("classes"):
            raise SampleError(
                f"{model_uri} ({metadata.get('variant', 'an unconditional model')}) is not "
                "class-conditional: it cannot be asked for a digit. Fix: drop --digit, or sample a "
                "conditional variant (cgan, cvae) by its run or registered version."
            )
        if not 0 <= digit < metadata["classes"]:
            raise SampleError(f"--digit must be in 0..{metadata['classes'] - 1}, not {digit}")
        request["label"] = digit
    images = np.asarray(model.predict(request), dtype=np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, images)
    else:
        wanted = f", digit {digit}" if digit is not None else ""
        figures.image_grid(images, out, f"{model_uri}, seed {seed}{wanted}")
    return out
