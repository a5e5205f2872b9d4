"""One training run from request to published folder: plan, check, build, train, publish.

Order matters for losing nothing: the settings are resolved and checked, the data verified, the MLflow
store reached and the networks built before anything on disk changes; the run is then built in its
staging folder and replaces the previous run in `runs/VARIANT/` only when it has ended normally. A lock
keeps a second training of the same variant out.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING

from mnistgen import runtime, tracking
from mnistgen.settings import ImageGan
from mnistgen.training import hardware
from mnistgen.training.plan import (
    RunFailed,
    RunPlan,
    StartClock,
    TrainRequest,
    TrainResult,
    plan_run,
    tensorflow_message,
)
from mnistgen.training.run_folder import RunRecord, exclusive, resume_point

if TYPE_CHECKING:
    from mnistgen.training.tracker import Tracker

log = logging.getLogger(__name__)


def train_variant(
    request: TrainRequest, start_clock: StartClock | None = None, tracker: Tracker | None = None
) -> TrainResult:
    """Train one variant as `params.yaml` describes it; resumable, tracked in the project's MLflow store
    unless another `tracker` is given (`tracker.MemoryTracker` needs no store). `start_clock`, if given,
    measures sample quality while it trains (the time-to-quality curve)."""
    plan = plan_run(request)
    with exclusive(plan):
        record = resume_point(plan) if request.resume else None
        from mnistgen.data.prepare import load_mnist
        from mnistgen.models import VARIANTS
        from mnistgen.models.base import AdversarialSpec

        module = VARIANTS[plan.variant]
        needs_mnist = getattr(module, "NEEDS_MNIST", True)
        splits = load_mnist(plan.project_dir, plan.params) if needs_mnist else None
        if tracker is None:
            tracking.use_experiment(plan.project_dir, plan.params.mlflow)
        from mnistgen.training.tracker import MlflowTracker

        tracker = tracker or MlflowTracker(plan.train.system_metrics_seconds)

        device = hardware.device()
        precision = hardware.choose_precision(plan.train.precision, plan.cfg.bf16, device)
        runtime.configure(plan.seed, plan.train.deterministic, precision)
        import tensorflow as tf

        from mnistgen.training.engine import build_model
        from mnistgen.training.session import Session

        spec = module.build(plan.cfg)
        if isinstance(spec, AdversarialSpec) and spec.cluster_groups:
            from mnistgen.data.clusters import clustered

            splits = {
                **splits,
                "train": clustered(
                    splits["train"], spec.classes, spec.cluster_groups, plan.seed, plan.variant
                ),
            }
        model = build_model(
            spec,
            tf.random.Generator.from_seed(plan.seed),
            plan.cfg.ema_decay if isinstance(plan.cfg, ImageGan) else None,
        )
        if record is None:
            _discard_abandoned(plan, tracker)
        from mlflow.exceptions import MlflowException  # late, like TensorFlow: the CLI starts fast

        session = Session(
            plan,
            spec,
            model,
            splits,
            precision,
            device,
            request,
            tracker,
            start_clock,
        )
        try:
            result = session.run(record)
        except MlflowException as err:  # the store failed mid-way; the run says so where it still can
            raise tracking.store_failed(plan.project_dir, plan.params.mlflow, err) from err
        except tf.errors.OpError as err:  # TensorFlow's own file I/O (checkpoints, saves) or memory
            raise RunFailed(
                f"{plan.variant}: the run failed at step {int(session.step)} and is marked FAILED (no model "
                f"kept; the previous run is untouched): {tensorflow_message(err)}\nFix: if it names a "
                "file, free space or fix permissions there (`--verbose` shows the traceback); run again."
            ) from err
        return result


def _discard_abandoned(plan: RunPlan, tracker: Tracker) -> None:
    """Remove an abandoned attempt's staging folder (never the last run), closing as KILLED the run a
    killed training left RUNNING in the store: the lock is held, so no process is still writing it."""
    abandoned = RunRecord.read(plan.staging_dir)
    if abandoned is not None and tracker.abandon(abandoned.run_id):
        log.info(
            "%s: run %s, left running by a training that was killed, is marked KILLED",
            plan.variant,
            abandoned.run_id,
        )
    shutil.rmtree(plan.staging_dir, ignore_errors=True)
