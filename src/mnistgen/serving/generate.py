"""`mnistgen sample`: images from an MLflow generator model to a PNG grid or a .npy array."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnistgen.errors import MnistgenError


class SampleError(MnistgenError):
    """The model cannot be loaded or the output cannot be written."""


def sample_to_file(
    project_dir: Path, params: dict[str, Any], model_uri: str, n: int, seed: int, out: Path
) -> Path:
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
    images = np.asarray(model.predict(pd.DataFrame({"seed": row_seeds(n, seed)})), dtype=np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, images)
    else:
        figures.image_grid(images, out, f"{model_uri}, seed {seed}")
    return out
