"""The registered generator as an MLflow pyfunc: "models from code", so loading runs this file and
unpickles nothing.

Input: a DataFrame with an integer column `seed`, one row per image; the same seed always gives the same
image. Output: float32 array of shape (rows, 28, 28), pixels in [0, 1], white digit on black.
Batch-norm generators that sample on batch statistics (DCGAN) draw each request together with fixed filler
noise, so one image per request still looks like the images of a full batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class GeneratorModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from mnistgen.serving.sampler import Sampler

        self.sampler = Sampler(Path(context.artifacts["generator"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        seeds = np.asarray(model_input["seed"], dtype=np.int64)
        return self.sampler.decode(self.sampler.noise(seeds))


mlflow.models.set_model(GeneratorModel())
