"""When a Prefect task is worth a second try: only when what failed can change by itself (the MLflow store
or the network), never for a bad setting or a broken model, which would fail again after minutes."""

from __future__ import annotations

import urllib.error
from typing import Any

import requests
from mlflow.exceptions import MlflowException

from mnistgen.tracking import TrackingError

PASSING_FAULTS = (
    TrackingError,
    MlflowException,
    requests.ConnectionError,
    requests.Timeout,
    urllib.error.URLError,
)


def store_or_network_failed(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's `retry_condition_fn`: retry a failed task only if the MLflow store or the network failed."""
    try:
        state.result()
    except PASSING_FAULTS:
        return True
    except BaseException:  # noqa: BLE001 - anything else would fail the same way again
        return False
    return False
