"""The registered generator as an MLflow pyfunc: "models from code", so loading runs this file and
unpickles nothing.

Input: a DataFrame with an integer column `seed`, one row per image, and an optional integer column `label`
(0-9): the digit a class-conditional model draws (without it, seed mod 10). Unconditional models ignore
`label`. The same seed (and label) always gives the same image. Output: float32 array of shape
(rows, 28, 28), pixels in [0, 1], white digit on black. Each image depends only on its own row: the
networks run in inference mode, one row per call, so a row gives the same image in a request of one or of
thousands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from mnistgen.serving.sampler import Sampler


class GeneratorModel(PythonModel):
    def load_context(self, context: Any) -> None:
        self.sampler = Sampler(Path(context.artifacts["generator"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        seeds = np.asarray(model_input["seed"], dtype=np.int64)
        labels = None
        if self.sampler.classes:
            given = model_input["label"] if "label" in model_input else None
            labels = seeds % self.sampler.classes if given is None else np.asarray(given, dtype=np.int64)
        return self.sampler.decode(self.sampler.noise(seeds), labels)


mlflow.models.set_model(GeneratorModel())
