"""`mnistgen sample`: images from a generator to a PNG grid or a .npy array.

The model is read, never run as code: whatever the URI (`models:/NAME@ALIAS`, `runs:/ID/model`, or a run's
`model/` folder), the project's own sampler loads its `.keras` networks in safe mode and reads its
`model_info.json`. A registered pyfunc's loader is code from the registry; this command does not execute it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mnistgen.config import check_options
from mnistgen.errors import MnistgenError, free_space
from mnistgen.serving.sampler import DIGEST_TAG, INFO_FILE, generator_digest, read_info
from mnistgen.settings import Settings

log = logging.getLogger(__name__)

OUTPUT_SUFFIXES = (".png", ".npy")
MAX_GRID_IMAGES = 2_500  # a 50 x 50 grid; more is unreadable as a picture: use .npy
CHUNK_ROWS = 1_000  # rows made and written at a time into a .npy: memory stays bounded whatever --n is


class SampleError(MnistgenError):
    """The model cannot be loaded or the output cannot be written."""


def sample_to_file(
    project_dir: Path,
    params: Settings,
    model_uri: str,
    n: int,
    seed: int,
    out: Path,
    digit: int | None = None,
) -> Path:
    """`n` images from the model into `out`; `digit` asks a class-conditional model for one digit.

    Everything that can be checked is checked before the first image is made (the options, the output's
    folder and free space, the model); the file appears under its name only when it is complete."""
    from mnistgen import tracking
    from mnistgen.serving.sampler import Sampler, row_seeds

    check_options(seed=seed, n=n)
    _check_output(out, n)
    if not Path(model_uri).is_dir():
        tracking.use_store(project_dir, params.mlflow)
    with tempfile.TemporaryDirectory(prefix="mnistgen-sample-") as scratch:
        folder = model_folder(model_uri, Path(scratch))
        if digit is not None:  # before the networks load: a wrong digit fails in a moment
            _check_digit(model_uri, read_info(folder), digit)
        sampler = Sampler(folder)
    seeds = row_seeds(n, seed)
    labels = None if digit is None else np.full(n, digit)
    with _written_whole(out) as partial:
        if out.suffix == ".npy":
            shape = (n, 28, 28) if sampler.is_image_model else (n,)
            with partial.open("wb") as handle:  # plain writes: a full disk is an error, never a crash
                header = {"descr": "<f4", "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(handle, header)
                for start in _progress(range(0, n, CHUNK_ROWS), n):
                    rows = slice(start, start + CHUNK_ROWS)
                    chunk_labels = None if labels is None else labels[rows]
                    chunk = sampler.decode(sampler.noise(seeds[rows], chunk_labels), chunk_labels)
                    handle.write(chunk.astype("<f4").tobytes())
        else:
            from mnistgen import figures  # matplotlib, loaded only when a picture is asked for

            images = sampler.decode(sampler.noise(seeds, labels), labels)
            wanted = f", digit {digit}" if digit is not None else ""
            figures.image_grid(images, partial, f"{model_uri}, seed {seed}{wanted}")
    return out


def _check_digit(model_uri: str, info: dict[str, Any], digit: int) -> None:
    """Refuse a digit the model (its `model_info.json`) cannot draw."""
    classes = int(info.get("classes", 0))
    if not classes:
        raise SampleError(
            f"{model_uri} ({info.get('variant', 'an unconditional model')}) is not "
            "class-conditional: it cannot be asked for a digit. Fix: drop --digit, or sample a "
            "conditional variant (cgan, cvae) by its run or registered version, e.g. --model runs/cgan/model."
        )
    if not 0 <= digit < classes:
        raise SampleError(
            f"--digit must be in 0..{classes - 1}, not {digit}. Fix: ask for one of those digits."
        )


def _check_output(out: Path, n: int) -> None:
    """Refuse, before any work, an output that cannot be written or would not fit."""
    if out.suffix not in OUTPUT_SUFFIXES:
        raise SampleError(
            f"--out must end in .png or .npy, not {out.name!r}. Fix: name a .png (a grid of the images) "
            "or a .npy (the array)."
        )
    if out.is_dir():
        raise SampleError(f"--out {out} is a folder. Fix: name a file in it, e.g. {out / 'samples.png'}")
    if out.suffix == ".png" and n > MAX_GRID_IMAGES:
        raise SampleError(
            f"--n {n} is too many for a picture (at most {MAX_GRID_IMAGES}). Fix: write a .npy instead."
        )
    folder = out.parent.resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise SampleError(
            f"cannot write into {folder}: {err.strerror}. Fix: choose a folder you can write to."
        ) from err
    needed = n * 28 * 28 * 4 if out.suffix == ".npy" else 0
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise SampleError(
            f"{n} images take {needed / 2**20:,.0f} MiB as .npy, and there are {free_space(folder)}. "
            "Fix: free space, lower --n, or write elsewhere."
        )


@contextmanager
def _written_whole(out: Path) -> Iterator[Path]:
    """A temporary path beside `out`, renamed to `out` only when the block ends normally (a previous
    file of that name stays until then); removed if it fails, and a failed write named with its fix."""
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        yield partial
        os.replace(partial, out)
    except OSError as err:
        raise SampleError(
            f"cannot write {out}: {err.strerror or err} ({free_space(out.parent)}). Fix: free space (or "
            "raise the file-size limit), lower --n, or write elsewhere."
        ) from err
    finally:
        partial.unlink(missing_ok=True)


def _progress(chunks: range, n: int) -> Any:
    """A progress bar over the chunks, on a terminal (a million images take about an hour)."""
    from tqdm.auto import tqdm

    return tqdm(chunks, desc=f"sampling {n} images", unit="chunk", disable=None, leave=False)


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
            raise SampleError(
                f"cannot load {model_uri}: {_first_line(err)}\nFix: {_hint(model_uri, err)}."
            ) from err
        # A registered version is the pyfunc folder, with the run's model folder among its artifacts.
        folder = next((info.parent for info in sorted(folder.glob(f"artifacts/**/{INFO_FILE}"))), folder)
        if model_uri.startswith("models:/") and (folder / INFO_FILE).is_file():
            _check_digest(model_uri, folder)
    if not (folder / INFO_FILE).is_file():
        raise SampleError(
            f"{model_uri} is not an mnistgen generator (no {INFO_FILE}). Fix: pass a registered "
            "mnist-generator version, a training run's model (runs:/RUN_ID/model) or a runs/VARIANT/model "
            "folder."
        )
    return folder


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _hint(model_uri: str, err: Exception) -> str:
    """The fix for a model that could not be read: what to register or correct when it is not there, the
    store when the store itself failed."""
    missing = getattr(err, "error_code", None) == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(err)
    if not missing:  # MLflow answers a missing alias as an invalid parameter: the text tells them apart
        return "check the MLflow store (MLFLOW_TRACKING_URI, or mlflow.tracking_uri in params.yaml)"
    if model_uri.startswith("models:/"):
        return "run `mnistgen register` first, or pass --model"
    return "check the URI (models:/NAME@ALIAS, runs:/RUN_ID/model, or a run's model folder)"


def _check_digest(model_uri: str, folder: Path) -> None:
    """Refuse a registered version whose networks are not the ones registered (changed in the artifact
    store since): their digest must equal the one the version records. Versions registered before digests
    were recorded are read with a warning."""
    import mlflow

    version = _registered_version(mlflow.MlflowClient(), model_uri.removeprefix("models:/"))
    recorded = version.tags.get(DIGEST_TAG) if version is not None else None
    if recorded is None:
        log.warning(
            "%s records no digest of its networks (registered before digests were, or a stage "
            "name): not verified",
            model_uri,
        )
    elif generator_digest(folder) != recorded:
        raise SampleError(
            f"the networks of {model_uri} are not the ones registered (their SHA-256 differs from the "
            f"version's {DIGEST_TAG} tag): the artifact was changed after registration. Fix: register "
            "the model again from its training run (`mnistgen register`), and check who can write the store."
        )


def _registered_version(client: Any, reference: str) -> Any | None:
    """The model version `NAME@ALIAS` or `NAME/VERSION` names (None for `NAME/latest` and stages)."""
    if "@" in reference:
        name, alias = reference.split("@", 1)
        return client.get_model_version_by_alias(name, alias)
    name, _, version = reference.rpartition("/")
    return client.get_model_version(name, version) if version.isdigit() else None
