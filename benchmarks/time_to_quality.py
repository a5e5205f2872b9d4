"""Quality per minute: train each variant for a fixed time and print its FID after 1, 2, 3, ... minutes.

    .venv/bin/python benchmarks/time_to_quality.py [--minutes 3] [--profile cpu] [--variants dcgan,cgan]

Needs MNIST (`mnistgen data`) and the classifier (`mnistgen classifier`). Each variant trains in a process
of its own with `--max-minutes` (the safety cap; here it is the point, and the runs are marked `time
cap`); the FID (2,000 samples, `train.quality_samples`) is measured every `train.quality_every_seconds` of
training (20 s in the cpu profile; only time in training steps counts) and logged to MLflow as
`quality/fid`. It trains in this project: its runs replace the variants' runs in runs/.
A variant whose planned epochs end sooner keeps its last value (marked *). Prints one row per variant.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
IMAGE_FREE = {"toy_gan_1d"}


def fid_at(points: list[tuple[float, float]], seconds: float) -> str:
    """The last measurement at or before `seconds` (* when training had already ended)."""
    before = [fid for t, fid in points if t <= seconds + 1]
    if not before:
        return "–"
    ended = points[-1][0] < seconds - 1
    return f"{before[-1]:.1f}{'*' if ended else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=3)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--variants", default=None, help="comma-separated (default: train.variants)")
    args = parser.parse_args()

    from mnistgen.config import load_project
    from mnistgen.evaluation.quality_clock import CSV_FILE
    from mnistgen.training.isolated import TrainingFailed, train_in_subprocess
    from mnistgen.training.plan import TrainRequest

    params = load_project(REPO, args.profile)[1]
    if not params.train.quality_every_seconds:
        sys.exit(f"train.quality_every_seconds is off in the {args.profile} profile: nothing to measure")
    variants = args.variants.split(",") if args.variants else params.train.variants
    rows = []
    for variant in (v for v in variants if v not in IMAGE_FREE):
        print(f"training {variant} for {args.minutes} min ...", file=sys.stderr, flush=True)
        request = TrainRequest(REPO, variant, args.profile, max_minutes=args.minutes, progress=False)
        try:
            train_in_subprocess(request)
        except TrainingFailed as err:
            rows.append((variant, ["failed"] * args.minutes))
            print(err, file=sys.stderr)
            continue
        curve_file = REPO / params.train.runs_dir / variant / CSV_FILE
        with curve_file.open(newline="") as handle:
            points = [(float(r["seconds"]), float(r["fid"])) for r in csv.DictReader(handle)]
        rows.append((variant, [fid_at(points, 60.0 * m) for m in range(1, args.minutes + 1)]))

    header = ["variant", *(f"FID @ {m} min" for m in range(1, args.minutes + 1))]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for variant, cells in rows:
        print(f"| {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
