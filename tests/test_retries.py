"""Which failed Prefect tasks are retried: the MLflow store or the network failing, nothing else."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException
from prefect.states import Completed, Failed

from flows.retries import store_or_network_failed
from mnistgen.config import ConfigError
from mnistgen.evaluation.evaluate import EvaluationError
from mnistgen.tracking import TrackingError


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (TrackingError("the MLflow server at http://127.0.0.1:5000 is not reachable"), True),
        (MlflowException("API request failed"), True),
        (requests.ConnectionError("connection refused"), True),
        (EvaluationError("1 of 3 runs could not be evaluated"), False),  # a broken model: minutes, then again
        (ConfigError("settings out of range"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_store_and_network_failures_are_retried(error: BaseException, retried: bool) -> None:
    assert store_or_network_failed(None, None, Failed(data=error)) is retried


def test_a_completed_state_is_not_retried() -> None:
    assert store_or_network_failed(None, None, Completed(data=1)) is False
