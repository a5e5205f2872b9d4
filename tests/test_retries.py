"""Which failed Prefect tasks are retried (the MLflow store or the network failing, nothing else), and
which failures are interruptions a user asked for."""

from __future__ import annotations

import signal

import pytest
import requests
from mlflow.exceptions import MlflowException
from prefect.exceptions import TerminationSignal
from prefect.states import Completed, Failed

from flows.retries import store_or_network_failed
from mnistgen.config import ConfigError
from mnistgen.errors import interrupted
from mnistgen.evaluation.evaluate import EvaluationError
from mnistgen.tracking import TrackingError
from mnistgen.training.isolated import TrainingFailed


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


def _raised_from(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as err:
            raise RuntimeError("a task failed") from err
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "asked_for"),
    [
        (KeyboardInterrupt("signal 2"), True),
        (TerminationSignal(signal.SIGTERM), True),
        (TrainingFailed("training mlp_gan failed (exit 130): interrupted"), True),
        (_raised_from(KeyboardInterrupt()), True),
        (TrainingFailed("training mlp_gan failed (exit 1): error: out of memory"), False),
        (_raised_from(ValueError("a bug")), False),
    ],
)
def test_an_interruption_is_told_from_a_failure(error: BaseException, asked_for: bool) -> None:
    """What ends the pipeline's MLflow run KILLED rather than FAILED, and spares the user a traceback."""
    assert interrupted(error) is asked_for
