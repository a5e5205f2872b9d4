"""Time-to-quality: a cheap FID every N seconds of training, so variants compare by quality per CPU minute.

It measures with the evaluation's classifier, so it lives here and is handed to the trainer as a callable
(`start`, the `StartClock` of `mnistgen.training.plan`): training itself imports nothing of evaluation.

Only the seconds spent in training steps count (not checkpoints, figures or these measurements; nor do the
measurements count against a run's `max_minutes`), and the
FID uses fewer samples than the evaluation (2,000 by default), so it reads higher than the leaderboard's
score for the same model: compare curves with each other, not with the leaderboard.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import mlflow
import numpy as np

from mnistgen.evaluation.classifier import MODEL_FILE, Classifier, load
from mnistgen.evaluation.metrics import frechet_distance
from mnistgen.images import to_unit
from mnistgen.training.plan import Generate, RunPlan

log = logging.getLogger(__name__)

METRIC = "quality/fid"  # MLflow metric; its step is the training seconds so far
CSV_FILE = "time_to_quality.csv"


def start(plan: RunPlan, generate: Generate, test_images: np.ndarray) -> QualityClock | None:
    """The clock of one run: a FID every `train.quality_every_seconds` of training, written beside the run;
    None when that setting is off or no feature classifier has been trained yet."""
    every = plan.train.quality_every_seconds
    folder = plan.project_dir / plan.params.classifier.dir
    if not every:
        return None
    if not (folder / MODEL_FILE).is_file():
        log.info("%s: no feature classifier in %s yet: no time-to-quality curve", plan.variant, folder)
        return None
    return QualityClock(float(every), load(folder), test_images, generate, plan.staging_dir / CSV_FILE)


class QualityClock:
    def __init__(
        self,
        every_seconds: float,
        classifier: Classifier,
        test_images: np.ndarray,
        generate: Generate,
        path: Path,
    ) -> None:
        self.every, self.classifier, self.generate, self.path = every_seconds, classifier, generate, path
        self.reference = classifier.features(to_unit(test_images))
        self.rows = self._read()
        self.trained_seconds = self.rows[-1][0] if self.rows else 0.0  # a resumed run continues its clock
        self.measuring_seconds = 0.0  # spent in `measure` by this process
        self._set_next_mark()

    def _set_next_mark(self) -> None:
        self.next_mark = (self.trained_seconds // self.every + 1) * self.every

    def tick(self, seconds: float) -> None:
        """Count `seconds` of training; measure when a mark is passed."""
        self.trained_seconds += seconds
        if self.trained_seconds >= self.next_mark:
            self.measure()
            self._set_next_mark()

    def measure(self) -> float:
        began = time.monotonic()
        fid = frechet_distance(self.reference, self.classifier.features(self.generate()))
        self.rows.append((round(self.trained_seconds, 1), fid))
        mlflow.log_metric(METRIC, fid, step=int(round(self.trained_seconds)))
        with self.path.open("w", newline="") as handle:
            csv.writer(handle).writerows([("seconds", "fid"), *self.rows])
        self.measuring_seconds += time.monotonic() - began
        log.debug("FID %.1f after %.0f s of training", fid, self.trained_seconds)
        return fid

    def _read(self) -> list[tuple[float, float]]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as handle:
            return [(float(row["seconds"]), float(row["fid"])) for row in csv.DictReader(handle)]
