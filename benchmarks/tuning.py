"""The tuning experiments behind the `cpu` profile, as MLflow runs you can compare in the UI.

    .venv/bin/python benchmarks/tuning.py [--trials cgan-ema,conv_gan-ema] [--seeds 42,7] [--list]

Each trial trains one variant in a process of its own on a profile (`faithful`: the seeds' settings at the
cpu time budget; `cpu`: the tuned settings, here at a fixed step budget without the time limit) plus the
trial's `--set` overrides, into the MLflow experiment `mnistgen-tuning` (tag `overrides`). The saved model
is then measured as the leaderboard measures it (the cpu profile's `evaluation` settings, the feature
classifier): FID, precision/recall, mode entropy and, for conditional models, label accuracy; its
time-to-quality curve stays in the MLflow run. Needs MNIST and the classifier (`mnistgen data`,
`mnistgen classifier`). Prints a row per trial and seed, about 3 minutes each.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "mnistgen-tuning"

# trial -> (profile, variant, step budget or None for the profile's time budget, overrides). Trials on the
# `cpu` profile vary one setting at a fixed step budget, so a trial is deterministic (seed, steps) and its
# cost shows in "seconds trained"; `params.yaml` keeps the winners in the `cpu` profile.
TRIALS: dict[str, tuple[str, str, int | None, list[str]]] = {
    "mlp_gan-faithful": ("faithful", "mlp_gan", None, []),
    "cgan-faithful": ("faithful", "cgan", None, []),
    "cgan-narrow": ("cpu", "cgan", 1500, ["variants.cgan.ema_decay=null"]),
    "cgan-narrow-ema0.999": ("cpu", "cgan", 1500, ["variants.cgan.ema_decay=0.999"]),
    "cgan-narrow-ema0.99": ("cpu", "cgan", 1500, ["variants.cgan.ema_decay=0.99"]),
    "cgan-narrow-ema-ttur": (
        "cpu",
        "cgan",
        1500,
        ["variants.cgan.ema_decay=0.999", "variants.cgan.d_optimizer={name: adam, lr: 0.0004, beta_1: 0.5}"],
    ),
    "cgan-narrow-ema-lr2x": (
        "cpu",
        "cgan",
        1500,
        ["variants.cgan.ema_decay=0.999", "variants.cgan.optimizer.lr=0.0004"],
    ),
    "cgan-narrow-lr2x": (
        "cpu",
        "cgan",
        1500,
        ["variants.cgan.ema_decay=null", "variants.cgan.optimizer.lr=0.0004"],
    ),
    "cgan-narrow-ema-lr4x": (
        "cpu",
        "cgan",
        1500,
        ["variants.cgan.ema_decay=0.999", "variants.cgan.optimizer.lr=0.0008"],
    ),
    "conv_gan-narrow": ("cpu", "conv_gan", 1800, ["variants.conv_gan.ema_decay=null"]),
    "conv_gan-narrow-ema0.999": ("cpu", "conv_gan", 1800, ["variants.conv_gan.ema_decay=0.999"]),
    "wgan-faithful": ("faithful", "wgan", None, []),
    "wgan-narrow-lr4x": ("cpu", "wgan", 400, ["variants.wgan.ema_decay=null"]),
    "wgan-narrow-lr4x-ema": ("cpu", "wgan", 400, ["variants.wgan.ema_decay=0.999"]),
    "autoencoder-faithful": ("faithful", "autoencoder", None, []),
    "autoencoder-fitted": ("cpu", "autoencoder", 4000, ["variants.autoencoder.latent_prior=fitted"]),
}


class Judge:
    """The evaluation's figures for a saved model, with the real features computed once."""

    def __init__(self, params: dict[str, Any]) -> None:
        from mnistgen.data.prepare import DataSettings, load_mnist
        from mnistgen.evaluation.classifier import load
        from mnistgen.evaluation.quality import Reference

        self.cfg = params["evaluation"]
        self.classifier = load(REPO / params["classifier"]["dir"])
        self.reference = Reference.build(load_mnist(DataSettings.from_params(REPO, params)), self.classifier)

    def __call__(self, model_dir: Path) -> dict[str, float]:
        from mnistgen.evaluation.quality import conditional_quality, image_quality
        from mnistgen.serving.sampler import Sampler

        sampler = Sampler(model_dir)
        n = self.cfg["samples"]
        labels = np.arange(n) % sampler.classes if sampler.classes else None
        samples = sampler.sample(n, seed=self.cfg["seed"], labels=labels)
        figures = image_quality(samples, self.reference, self.classifier, self.cfg)
        if sampler.classes:
            figures |= conditional_quality(samples, labels, self.reference, self.classifier)
        return figures


def last_point(curve_file: Path) -> tuple[float, float]:
    """(seconds trained, FID on 2,000 samples) of the last time-to-quality point."""
    with curve_file.open(newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    return float(last["seconds"]), float(last["fid"])


def run_trial(name: str, seed: int, runs_dir: Path, judge: Judge) -> str:
    profile, variant, max_steps, overrides = TRIALS[name]
    command = [sys.executable, "-m", "mnistgen", "train", variant, "--profile", profile, "--seed", str(seed)]
    if max_steps:  # a step budget instead of the wall clock: the same trial gives the same model
        command += ["--max-steps", str(max_steps), "--set", "train.max_minutes=null"]
    command += ["--no-progress", "--project-dir", str(REPO), "--set", f"mlflow.experiment={EXPERIMENT}"]
    for override in overrides:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return f"| {name} | {seed} | failed |" + " |" * 7
    seconds, _ = last_point(runs_dir / variant / "time_to_quality.csv")
    steps = re.search(r"at step (\d+)/", done.stdout)
    run_id = re.search(r"MLflow run (\w+)", done.stdout)
    figures = judge(runs_dir / variant / "model")
    accuracy = f"{figures['label_accuracy']:.3f}" if "label_accuracy" in figures else "–"
    cells = [name, seed, f"{figures['fid']:.1f}", f"{figures['precision']:.3f}", f"{figures['recall']:.3f}"]
    cells += [
        f"{figures['mode_entropy']:.3f}",
        accuracy,
        steps and steps[1],
        f"{seconds:.0f}",
        run_id and run_id[1],
    ]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", default=None, help="comma-separated trial names (default: all)")
    parser.add_argument("--seeds", default="42", help="comma-separated training seeds")
    parser.add_argument("--list", action="store_true", help="print the trials and exit")
    args = parser.parse_args()
    if args.list:
        for name, (profile, variant, max_steps, overrides) in TRIALS.items():
            budget = f"{max_steps} steps" if max_steps else "the profile's time budget"
            print(f"{name}: {variant}, {profile} profile, {budget}; {' '.join(overrides) or 'no overrides'}")
        return

    from mnistgen.config import load_params, with_profile

    params = with_profile(load_params(REPO), "cpu")  # runs_dir, classifier and evaluation settings
    runs_dir = REPO / params["train"]["runs_dir"]
    names = args.trials.split(",") if args.trials else list(TRIALS)
    unknown = sorted(set(names) - set(TRIALS))
    if unknown:
        sys.exit(f"unknown trials: {', '.join(unknown)} (see --list)")
    judge = Judge(params)
    header = ["trial", "seed", "FID", "precision", "recall", "mode entropy", "label accuracy", "steps"]
    header += ["seconds trained", "MLflow run"]
    print("| " + " | ".join(header) + " |\n|" + " --- |" * len(header), flush=True)
    for name in names:
        for seed in (int(s) for s in args.seeds.split(",")):
            print(run_trial(name, seed, runs_dir, judge), flush=True)


if __name__ == "__main__":
    main()
