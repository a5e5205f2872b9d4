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

import numpy as np

from mnistgen import runtime, tracking
from mnistgen.data.idx import Split
from mnistgen.settings import ImageGan
from mnistgen.training import hardware
from mnistgen.training.plan import (
    ResumeError,
    RunFailed,
    RunPlan,
    StartClock,
    TrainRequest,
    TrainResult,
    plan_run,
    tensorflow_message,
)
from mnistgen.training.run_folder import RunRecord, RunState, exclusive, previous_run

if TYPE_CHECKING:
    from mnistgen.models.base import AdversarialSpec
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
        record = _resume_point(plan) if request.resume else None
        from mnistgen.data.prepare import DataSettings, load_mnist
        from mnistgen.models import VARIANTS
        from mnistgen.models.base import AdversarialSpec

        module = VARIANTS[plan.variant]
        needs_mnist = getattr(module, "NEEDS_MNIST", True)
        splits = load_mnist(DataSettings.from_params(plan.project_dir, plan.params)) if needs_mnist else None
        if tracker is None:
            tracking.use_experiment(plan.project_dir, plan.params.mlflow)

        device = hardware.device()
        precision = hardware.choose_precision(plan.train.precision, plan.cfg.bf16, device)
        runtime.configure(plan.seed, plan.train.deterministic, precision)
        import tensorflow as tf

        from mnistgen.training.engine import build_model
        from mnistgen.training.session import Session
        from mnistgen.training.tracker import MlflowTracker

        spec = module.build(plan.cfg)
        if isinstance(spec, AdversarialSpec) and spec.cluster_groups:
            splits = {**splits, "train": _clustered(splits["train"], spec, plan)}
        model = build_model(
            spec,
            tf.random.Generator.from_seed(plan.seed),
            plan.cfg.ema_decay if isinstance(plan.cfg, ImageGan) else None,
        )
        if record is None:
            shutil.rmtree(plan.staging_dir, ignore_errors=True)  # an abandoned attempt, never the last run
        from mlflow.exceptions import MlflowException  # late, like TensorFlow: the CLI starts fast

        session = Session(
            plan,
            spec,
            model,
            splits,
            precision,
            device,
            request,
            tracker or MlflowTracker(plan.train.system_metrics_seconds),
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


def _clustered(train: Split, spec: AdversarialSpec, plan: RunPlan) -> Split:
    """The training split labelled by k-means cluster instead of digit: clusters of all the images (scgan),
    or of each digit's (cgan's `subclusters`, labels digit x clusters + cluster)."""
    from mnistgen.data.clusters import relabel

    within_digits = spec.cluster_groups > 1
    clusters = spec.classes // spec.cluster_groups
    clustered = relabel(train, clusters, plan.seed, within_digits)
    if within_digits:
        log.info(
            "%s: %d k-means clusters in each digit's training images (seed %d)",
            plan.variant,
            clusters,
            plan.seed,
        )
        return clustered
    # How far the clusters follow the digits (read, never used: the labels stay out of training).
    purity = sum(np.bincount(train.labels[clustered.labels == c]).max(initial=0) for c in range(clusters))
    log.info(
        "%s: %d k-means clusters of the training images (seed %d); %.0f%% of the images share their "
        "cluster's most common digit",
        plan.variant,
        clusters,
        plan.seed,
        100 * purity / len(train.labels),
    )
    return clustered


def _resume_point(plan: RunPlan) -> RunRecord:
    """The record to resume from, with its checkpoints in the staging folder."""
    state, record = previous_run(plan)
    if state == RunState.INTERRUPTED:
        return record
    if state == RunState.INCOMPLETE:  # resumed beside the published run, which stays until the end
        shutil.rmtree(plan.staging_dir, ignore_errors=True)
        shutil.copytree(plan.run_dir, plan.staging_dir)
        return record
    if state == RunState.FINISHED:
        raise ResumeError(
            f"{plan.variant}: the run in {plan.run_dir} is complete ({record.total_steps} steps); "
            "nothing to resume. Fix: drop --resume to train it afresh."
        )
    if state == RunState.STALE:
        from mnistgen.lineage import changes

        changed = ", ".join(changes(record.fingerprint, plan.fingerprint)) or "unknown"
        raise ResumeError(
            f"{plan.variant}: the run on disk was started with different settings, code or data ({changed} "
            "changed). Fix: restore them (repeat its --seed and --set options too), or drop --resume to "
            "start a new run."
        )
    raise ResumeError(
        f"nothing to resume for {plan.variant} in {plan.run_dir}. Fix: drop --resume to start a new run."
    )
