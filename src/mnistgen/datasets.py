"""MNIST's splits as MLflow dataset inputs, so the runs table shows which data a run trained or was
evaluated on and can be filtered by it: the metadata only (the split, its rows, the DVC data version as
digest, the DVC file as source), never a copy of the data.

MLflow's UI and `search_runs` read a run's inputs from the store alone; the source type `dvc` needs no
code of this project to be shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.types import Schema, TensorSpec

from mnistgen.settings import Settings

TRAINING, EVALUATION = "training", "evaluation"  # a run input's context
IMAGES = Schema(
    [
        TensorSpec(np.dtype(np.uint8), (-1, 28, 28), "images"),
        TensorSpec(np.dtype(np.uint8), (-1,), "labels"),
    ]
)


@dataclass(frozen=True)
class DataInput:
    """A split a run read: its name, rows, DVC data version and where it lives, in which context."""

    split: str  # "train" or "test"
    rows: int
    version: str  # the md5 data.dvc records
    path: str  # the folder DVC versions, relative to the project
    dvc_file: str
    context: str  # TRAINING or EVALUATION


def mnist_input(project_dir: Path, params: Settings, split: str, rows: int, context: str) -> DataInput:
    """The split of the project's MNIST (`data.dir`, versioned by `data.dvc`) as a run read it."""
    from mnistgen.data.versioning import DVC_FILE
    from mnistgen.tracking import data_version

    return DataInput(split, rows, data_version(project_dir), params.data.dir, DVC_FILE, context)


class DvcSource(DatasetSource):
    """A folder versioned by a DVC file: `dvc pull FILE` (or `mnistgen data`) puts it in place."""

    def __init__(self, path: str, dvc_file: str) -> None:
        self.path, self.dvc_file = path, dvc_file

    @staticmethod
    def _get_source_type() -> str:
        return "dvc"

    def load(self, **kwargs: Any) -> str:
        return self.path

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> DvcSource:
        raise NotImplementedError("a DVC source is made from its path and DVC file, not resolved")

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "dvc_file": self.dvc_file}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> DvcSource:
        return cls(source_dict["path"], source_dict["dvc_file"])


class MnistSplit(MetaDataset):
    """One split of MNIST as a run read it: `mnist-train` or `mnist-test`, with its row count."""

    def __init__(self, split: str, rows: int, version: str, path: str, dvc_file: str) -> None:
        self.rows = rows
        super().__init__(DvcSource(path, dvc_file), name=f"mnist-{split}", digest=version, schema=IMAGES)

    @property
    def profile(self) -> dict[str, int]:
        return {"rows": self.rows}


def dataset(data: DataInput) -> MnistSplit:
    return MnistSplit(data.split, data.rows, data.version, data.path, data.dvc_file)


def log_inputs(client: Any, run_id: str, inputs: list[DataInput]) -> None:
    """Record in run `run_id` which splits it read (the run need not be active; MLflow keeps each input
    once, so recording it again changes nothing)."""
    from mlflow.entities import DatasetInput, InputTag

    client.log_inputs(
        run_id,
        datasets=[
            DatasetInput(dataset(data)._to_mlflow_entity(), [InputTag("mlflow.data.context", data.context)])
            for data in inputs
        ],
    )
