"""The registered generator as an MLflow pyfunc: "models from code", so loading runs this file and
unpickles nothing.

Input: a DataFrame with an integer column `seed` (at least 0), one row per image, at most
`MAX_ROWS_PER_REQUEST` rows, and an optional integer column `label` (0-9): the digit a class-conditional
model draws (without it, seed mod 10); an unconditional model refuses it (it cannot draw a chosen
digit). The same seed (and label) always gives the same image. Output: array of shape (rows, 28, 28),
white digit on black:
float32 pixels in [0, 1], or with the parameter `pixels="uint8"` integers 0-255 (a quarter of the JSON a
server sends). Each image depends only on its own row (`Sampler.decode`), so a row gives the same image in
a request of one or of a thousand. A request it cannot answer raises MLflow's invalid-parameter error, which
a server returns as HTTP 400 with the message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from mnistgen.models.base import CLASSES
from mnistgen.serving.sampler import Sampler

MAX_ROWS_PER_REQUEST = 1000  # about 1 s and 10 MB of JSON on a 2-core CPU: larger asks are split
PIXEL_FORMATS = ("float", "uint8")


class GeneratorModel(PythonModel):
    def load_context(self, context: Any) -> None:
        self.sampler = Sampler(Path(context.artifacts["generator"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        pixels = (params or {}).get("pixels", "float")
        if pixels not in PIXEL_FORMATS:
            raise _refused(f"pixels={pixels!r} is not a pixel format; use one of {', '.join(PIXEL_FORMATS)}")
        if len(model_input) > MAX_ROWS_PER_REQUEST:
            raise _refused(
                f"{len(model_input)} rows in one request; at most {MAX_ROWS_PER_REQUEST}: "
                "send the rest in more requests"
            )
        seeds = _integer_column(model_input, "seed", 0, None)
        given = _integer_column(model_input, "label", 0, CLASSES - 1) if "label" in model_input else None
        if given is not None and not self.sampler.classes:
            raise _refused(
                "`label` given, but this model is not class-conditional: it draws digits of its own "
                "choosing; drop `label` (or register a conditional variant, cgan or cvae)"
            )
        labels = None
        if self.sampler.classes:
            labels = seeds % self.sampler.classes if given is None else given
        images = self.sampler.decode(self.sampler.noise(seeds, labels), labels)
        return np.rint(images * 255).astype(np.uint8) if pixels == "uint8" else images


def _integer_column(frame: pd.DataFrame, name: str, low: int, high: int | None) -> np.ndarray:
    """The column as int64, or the request refused naming the first bad row and the fix."""
    if name not in frame:
        raise _refused(f"no `{name}` column: send one integer `{name}` per row")
    values = frame[name].infer_objects()  # as the request gave them: 1.5 and `true` are not integers
    if not pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise _refused(f"`{name}` must be an integer in every row (got {values.dtype})")
    wrong = (values < low) | (values > high if high is not None else False)
    if wrong.any():
        row = int(np.flatnonzero(wrong.to_numpy())[0])
        allowed = f"{low}..{high}" if high is not None else f"an integer of at least {low}"
        raise _refused(f"`{name}` {values.iloc[row]} in row {row}: it must be {allowed}")
    return values.to_numpy(dtype=np.int64)


def _refused(problem: str) -> MlflowException:
    return MlflowException.invalid_parameter_value(f"bad request: {problem}")


mlflow.models.set_model(GeneratorModel())
