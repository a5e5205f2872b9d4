"""The tuning experiments behind the `cpu` profile, as MLflow runs you can compare in the UI.

    .venv/bin/python benchmarks/tuning.py [--trials cgan-ema,conv_gan-ema] [--seeds 42,7] [--list]

Each trial trains one variant in a process of its own on the `faithful` profile (the seeds' settings at the
cpu time budget) plus the trial's `--set` overrides, into the MLflow experiment `mnistgen-tuning`
(tags: `trial`, `overrides`). Its figure of merit is the time-to-quality FID (2,000 samples, the feature
classifier) at the end of the budget, so trials compare with each other and with their `faithful`
baseline, not with the leaderboard's 10,000-sample FID. Needs MNIST and the classifier (`mnistgen data`,
`mnistgen classifier`). Prints a table per trial and seed; about 3 minutes per row.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "mnistgen-tuning"

# trial -> (variant, overrides over the faithful profile). The `cpu` profile in params.yaml keeps the winners.
TRIALS: dict[str, tuple[str, list[str]]] = {
    "mlp_gan-faithful": ("mlp_gan", []),
    "mlp_gan-ema": ("mlp_gan", ["variants.mlp_gan.ema_decay=0.999"]),
    "dcgan-faithful": ("dcgan", []),
    "dcgan-narrow": ("dcgan", ["variants.dcgan.g_filters=[128, 64]", "variants.dcgan.d_filters=[64, 128]"]),
    "dcgan-narrow-ema": (
        "dcgan",
        [
            "variants.dcgan.g_filters=[128, 64]",
            "variants.dcgan.d_filters=[64, 128]",
            "variants.dcgan.ema_decay=0.999",
        ],
    ),
    "conv_gan-faithful": ("conv_gan", []),
    "conv_gan-narrow": (
        "conv_gan",
        [
            "variants.conv_gan.generator.filters=[64, 32, 32, 1]",
            "variants.conv_gan.discriminator.filters=[32, 32, 64, 64]",
        ],
    ),
    "conv_gan-narrow-ema": (
        "conv_gan",
        [
            "variants.conv_gan.generator.filters=[64, 32, 32, 1]",
            "variants.conv_gan.discriminator.filters=[32, 32, 64, 64]",
            "variants.conv_gan.ema_decay=0.999",
        ],
    ),
    "wgan-faithful": ("wgan", []),
    "wgan-lr4x-ema": (
        "wgan",
        [
            "variants.wgan.generator.optimizer.lr=0.0002",
            "variants.wgan.critic.optimizer.lr=0.0002",
            "variants.wgan.ema_decay=0.999",
        ],
    ),
    "wgan_gp-faithful": ("wgan_gp", []),
    "wgan_gp-ema": ("wgan_gp", ["variants.wgan_gp.ema_decay=0.999"]),
    "autoencoder-faithful": ("autoencoder", []),
    "autoencoder-fitted": ("autoencoder", ["variants.autoencoder.latent_prior=fitted"]),
    "cgan-faithful": ("cgan", []),
    "cgan-narrow": ("cgan", ["variants.cgan.g_filters=[128, 64]"]),
    "cgan-narrow-ema": ("cgan", ["variants.cgan.g_filters=[128, 64]", "variants.cgan.ema_decay=0.999"]),
    "cgan-ema": ("cgan", ["variants.cgan.ema_decay=0.999"]),
}


def final_fid(curve_file: Path) -> tuple[float, float]:
    """(seconds trained, FID) of the last time-to-quality point."""
    with curve_file.open(newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    return float(last["seconds"]), float(last["fid"])


def run_trial(name: str, seed: int, profile: str, runs_dir: Path) -> str:
    variant, overrides = TRIALS[name]
    command = [sys.executable, "-m", "mnistgen", "train", variant, "--profile", profile, "--seed", str(seed)]
    command += ["--no-progress", "--project-dir", str(REPO), "--set", f"mlflow.experiment={EXPERIMENT}"]
    for override in overrides:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return f"| {name} | {seed} | failed | | |"
    seconds, fid = final_fid(runs_dir / variant / "time_to_quality.csv")
    run_line = next(line for line in done.stdout.splitlines() if "MLflow run" in line)
    return f"| {name} | {seed} | {fid:.1f} | {seconds:.0f} | {run_line.rsplit(' ', 1)[-1]} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", default=None, help="comma-separated trial names (default: all)")
    parser.add_argument("--seeds", default="42", help="comma-separated training seeds")
    parser.add_argument("--profile", default="faithful", help="the profile the overrides apply to")
    parser.add_argument("--list", action="store_true", help="print the trials and exit")
    args = parser.parse_args()
    if args.list:
        for name, (variant, overrides) in TRIALS.items():
            print(f"{name}: {variant} {' '.join(overrides) or '(as the profile)'}")
        return

    from mnistgen.config import load_params, with_profile

    runs_dir = REPO / with_profile(load_params(REPO), args.profile)["train"]["runs_dir"]
    names = args.trials.split(",") if args.trials else list(TRIALS)
    unknown = sorted(set(names) - set(TRIALS))
    if unknown:
        sys.exit(f"unknown trials: {', '.join(unknown)} (see --list)")
    print("| trial | seed | FID (2k samples) at the end | seconds trained | MLflow run |")
    print("| --- | --- | --- | --- | --- |", flush=True)
    for name in names:
        for seed in (int(s) for s in args.seeds.split(",")):
            print(run_trial(name, seed, args.profile, runs_dir), flush=True)


if __name__ == "__main__":
    main()
