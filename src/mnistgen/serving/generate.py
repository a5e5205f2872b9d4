"""`mnistgen sample`: images from a generator to a PNG grid or a .npy array.

The model is read, never run as code: whatever the URI (`models:/NAME@ALIAS`, `runs:/ID/model`, or a run's
`model/` folder), the project's own sampler loads its `.keras` networks in safe mode and reads its
`model_info.json`. A registered pyfunc's loader is code from the registry; this command does not execute it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mnistgen.errors import MnistgenError
from mnistgen.serving.sampler import INFO_FILE

OUTPUT_SUFFIXES = (".png", ".npy")


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
    from mnistgen.serving.sampler import Sampler, row_seeds
    from mnistgen.training import figures

    if out.suffix not in OUTPUT_SUFFIXES:
        raise SampleError(f"--out must end in .png or .npy, not {out.name!r}")
    from mnistgen import tracking

    if not Path(model_uri).is_dir():
        tracking.use_store(project_dir, params["mlflow"])
    with tempfile.TemporaryDirectory(prefix="mnistgen-sample-") as scratch:
        sampler = Sampler(model_folder(model_uri, Path(scratch)))
    if digit is not None:
        if not sampler.classes:
            raise SampleError(
                f"{model_uri} ({sampler.info.get('variant', 'an unconditional model')}) is not "
                "class-conditional: it cannot be asked for a digit. Fix: drop --digit, or sample a "
                "conditional variant (cgan, cvae) by its run or registered version."
            )
        if not 0 <= digit < sampler.classes:
            raise SampleError(f"--digit must be in 0..{sampler.classes - 1}, not {digit}")
    labels = None if digit is None else np.full(n, digit)
    images = sampler.decode(sampler.noise(row_seeds(n, seed)), labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, images)
    else:
        wanted = f", digit {digit}" if digit is not None else ""
        figures.image_grid(images, out, f"{model_uri}, seed {seed}{wanted}")
    return out


def model_folder(model_uri: str, scratch: Path) -> Path:
    """The folder holding the generator's `.keras` networks and `model_info.json`: `model_uri` itself when
    it is a folder, else its artifacts downloaded (from the MLflow store in use) into `scratch` (a
    registered model's are under `artifacts/`)."""
    local = Path(model_uri)
    if local.is_dir():
        folder = local
    else:
        import mlflow

        try:
            folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(scratch)))
        except Exception as err:  # MLflow raises several types for a missing model, alias or store
            hint = (
                "run `mnistgen register` first, or pass --model"
                if model_uri.startswith("models:/")
                else "check the URI (models:/NAME@ALIAS, runs:/RUN_ID/model, or a run's model folder)"
            )
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SampleError(f"cannot load {model_uri}: {first_line}\nFix: {hint}.") from err
        # A registered version is the pyfunc folder, with the run's model folder among its artifacts.
        folder = next((info.parent for info in sorted(folder.glob(f"artifacts/**/{INFO_FILE}"))), folder)
    if not (folder / INFO_FILE).is_file():
        raise SampleError(
            f"{model_uri} is not an mnistgen generator (no {INFO_FILE}). Fix: pass a registered "
            "mnist-generator version, a training run's model (runs:/RUN_ID/model) or a runs/VARIANT/model "
            "folder."
        )
    return folder
