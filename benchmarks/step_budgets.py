"""Calibrate step budgets: how many steps of each variant fit in a number of minutes on this machine.

    .venv/bin/python benchmarks/step_budgets.py [--profile cpu] [--minutes 2.5] [--probe-steps 60]
                                                [--variants dcgan,cgan]

Runs end at a step budget (`epochs` x `steps_per_epoch` in params.yaml), never on the clock, so a budget
is chosen once, here, from measured step times, and then gives the same result on any load. Each variant
trains for `--probe-steps` steps in a process of its own (the pipeline's `mnistgen train`, on the real
MNIST, in a scratch copy of the project, time-to-quality off); the run records the seconds it spent in
train steps. Prints, per variant: seconds per step (the first step, which traces the graph, left out),
the steps that fit in `--minutes`, the profile's current budget and the minutes it predicts. Run it on an
otherwise idle machine; it trains one variant at a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("params.yaml", "dvc.yaml", "data.dvc")


def scratch_project(folder: Path, data_dir: Path) -> Path:
    """A copy of the project's configuration beside the real data: probes never touch runs/ or MLflow here."""
    for name in PROJECT_FILES:
        shutil.copy2(REPO / name, folder / name)
    (folder / data_dir.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
    (folder / data_dir.relative_to(REPO)).symlink_to(data_dir)
    return folder


def probe(project: Path, variant: str, profile: str, steps: int) -> dict[str, float]:
    from mnistgen.training.isolated import train_in_subprocess
    from mnistgen.training.plan import TrainRequest
    from mnistgen.training.run_folder import RunRecord

    request = TrainRequest(
        project,
        variant,
        profile,
        max_steps=steps,
        progress=False,
        overrides=("train.quality_every_seconds=null",),
    )
    train_in_subprocess(request)
    record = RunRecord.read(project / "runs" / variant)
    measured = record.step - 1
    return {
        "seconds_per_step": (record.step_seconds - record.first_step_seconds) / max(measured, 1),
        "total_steps": record.total_steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--minutes", type=float, default=2.5, help="the training time a budget should fill")
    parser.add_argument("--probe-steps", type=int, default=60)
    parser.add_argument("--variants", default=None, help="comma-separated (default: train.variants)")
    args = parser.parse_args()

    from mnistgen.config import load_project

    params = load_project(REPO, args.profile)[1]
    variants = args.variants.split(",") if args.variants else params.train.variants
    header = ["variant", "s/step", f"steps in {args.minutes:g} min", "budget now", "predicted min"]
    print(
        f"profile {args.profile}, {args.probe_steps} probe steps, {os.cpu_count()} CPU cores", file=sys.stderr
    )
    print("| " + " | ".join(header) + " |\n|" + " --- |" * len(header), flush=True)
    with tempfile.TemporaryDirectory(prefix="mnistgen-budgets-") as scratch:
        project = scratch_project(Path(scratch), REPO / params.data.dir)
        for variant in variants:
            budget = params.variants.of(variant)
            steps = min(args.probe_steps, budget.epochs * (budget.steps_per_epoch or args.probe_steps))
            figures = probe(project, variant, args.profile, steps)
            rate = figures["seconds_per_step"]
            fits = int(args.minutes * 60 / rate) if rate > 0 else 0
            predicted = figures["total_steps"] * rate / 60
            row = [variant, f"{rate:.4f}", f"{fits:,}", f"{figures['total_steps']:,}", f"{predicted:.2f}"]
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
