"""Tuning trials as DVC experiments: a trial is `dvc exp run -S KEY=VALUE ...`, its training an MLflow run in
the `mnistgen-tuning` experiment, and trials are compared with `dvc exp show` or in the MLflow UI.

    .venv/bin/python benchmarks/tuning.py --list                        # the trials and their settings
    .venv/bin/python benchmarks/tuning.py --trials cgan-lr2x --seeds 0,1,2 --run
    .venv/bin/python benchmarks/tuning.py --table                       # median and range over the seeds
    .venv/bin/python benchmarks/tuning.py --csv three --machine amd      # rows for benchmarks/trials.csv
    .venv/bin/python benchmarks/tuning.py --curve TRIAL-sSEED --record FILE  # FID against steps

`--trials` queues one DVC experiment per trial and seed (`dvc exp run --queue --name TRIAL-sSEED -S
++KEY=VALUE ...`), each setting only its own variant's settings and seed
(`profiles.PROFILE.variants.VARIANT.seed`), so only that variant retrains and the evaluation measures only
it (the other variants' figures are reused); `--run` then works through the queue one experiment at a time
(`dvc queue start --jobs 1`) and waits for it. `--table` reads `dvc exp show` and prints each trial's median
and range over its seeds; `--csv` prints each finished trial as a row of benchmarks/trials.csv (the tuning
log's tables), with the seconds from the training's first log line to the evaluation's. Keep a winner with
`dvc exp apply NAME` (then `mnistgen register`), or copy its settings into params.yaml. `--curve TRIAL-sSEED`
reads one experiment's time-to-quality FIDs (2,000 samples) from its MLflow run, each at the step its
training had logged last before it (within `train.log_every_steps`).
Trials are deterministic: the same trial and seed give the same figures on the same machine.
A queued experiment runs the project's installed `mnistgen`, which is the working tree's code: change no
code under src/ until the queue is done, or the experiments still waiting run (and fail on) the new code.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
PROFILE = "cpu"
COLUMNS = ("fid", "recall", "precision", "label_accuracy", "mode_entropy")

# trial -> (variant, settings of its `profiles.cpu.variants.VARIANT` section): the experiments behind the
# cpu profile, replayable; params.yaml keeps the winners. Round two's trials state every setting they
# change against round one's cgan, so they replay the same runs whatever the cpu profile holds now.
CGAN_ROUND_ONE: dict[str, object] = {
    "batch_size": 64,
    "steps_per_epoch": 540,
    "loss": "bce",
    "generator.filters": "[128,64]",
    "generator.kernel": 5,
    "discriminator.kernel": 5,
    "generator.optimizer.beta_1": 0.5,
    "discriminator.optimizer.beta_1": 0.5,
    "mode_seeking": 0.0,
    "subclusters": "null",
    "discriminator.projection_rank": "null",
    "auxiliary_classifier": 0.0,
    "auxiliary_margin": 0.0,
    "digit_vectors": "false",
    "shared_fakes": "false",
    "ema_decay": 0.999,
}
HINGE_K4_B32 = {
    **CGAN_ROUND_ONE,
    "loss": "hinge",
    "generator.kernel": 4,
    "discriminator.kernel": 4,
    "batch_size": 32,
    "steps_per_epoch": 1100,
}
HK4B32_WIDE = {**HINGE_K4_B32, "generator.filters": "[256,128]"}  # round two's recipe, before beta_1 0
BETA1_0 = {"generator.optimizer.beta_1": 0.0, "discriminator.optimizer.beta_1": 0.0}
# round two's recipe on (digit, style) labels: 25 k-means styles of each digit, rank-128 class vectors
CGAN_SUB25 = {**HK4B32_WIDE, **BETA1_0, "subclusters": 25, "discriminator.projection_rank": 128}
# digit vectors, and one batch of fakes a step for both updates
DIGITVEC_SHARED = {"digit_vectors": "true", "shared_fakes": "true"}
# scgan before rank-128 class vectors and mode seeking (the trials that ran without them pin them off)
PLAIN_SCGAN = {"discriminator.projection_rank": "null", "mode_seeking": 0.0}
# scgan as the c27ec46 record trained it (200 clusters, rank 128, mode seeking 0.2): the base of later trials
SCGAN_K200_RANK128_MS = {"clusters": 200, "discriminator.projection_rank": 128, "mode_seeking": 0.2}
VAE_Z16 = {  # round two's first vae: a 16-D code, N(0, I), the tutorial's loss and rate, 2,600 steps
    "z_dim": 16,
    "epochs": 2,
    "steps_per_epoch": 1300,
    "r_loss_factor": 1000.0,
    "latent_prior": "normal",
    "latent_components": 1,  # the trials before the mixture prior fitted one Gaussian
    "optimizer.lr": 0.0005,
}
CVAE_ROUND_ONE = {  # the cvae of round one: a 2-D code from N(0, I), the seed VAE's loss and rate
    "z_dim": 2,
    "epochs": 2,
    "steps_per_epoch": 1050,
    "r_loss_factor": 1000.0,
    "latent_prior": "normal",
    "latent_components": 1,
    "optimizer.lr": 0.0005,
}
CVAE_Z16_FITTED = {  # the vae's round-two recipe on cvae, one Gaussian for each digit
    **CVAE_ROUND_ONE,
    "z_dim": 16,
    "r_loss_factor": 4000.0,
    "latent_prior": "fitted",
    "optimizer.lr": 0.001,
}
# conv_gan's cpu setting before round three: batches of 64, 5x5 kernels, 500 steps
CONV_GAN_5X5 = {"batch_size": 64, "generator.kernel": 5, "epochs": 2, "steps_per_epoch": 250}
# dcgan's cpu setting in round one: the tutorial's batches of 128 and Adam 2e-4, 600 steps, no EMA
DCGAN_ROUND_ONE: dict[str, object] = {
    "batch_size": 128,
    "steps_per_epoch": 300,
    "ema_decay": "null",
    "generator.optimizer.lr": 0.0002,
    "discriminator.optimizer.lr": 0.0002,
    "generator.optimizer.beta_1": 0.5,
    "discriminator.optimizer.beta_1": 0.5,
}
# dcgan's cpu setting in round two, which round three's trials change: cgan's recipe of batches of 32,
# Adam 8e-4 (with the tutorial's momentum) and EMA 0.999, 2,000 steps
DCGAN_CGAN_RECIPE: dict[str, object] = {
    **DCGAN_ROUND_ONE,
    "batch_size": 32,
    "steps_per_epoch": 1000,
    "ema_decay": 0.999,
    "generator.optimizer.lr": 0.0008,
    "discriminator.optimizer.lr": 0.0008,
}
# wgan's and wgan_gp's cpu settings before round three: the tutorial's batches and 5x5 kernels
WGAN_NARROW = {"generator.kernel": 5, "batch_size": 128, "epochs": 2, "steps_per_epoch": 70}
WGAN_GP_NARROW = {
    "generator.kernel": 5,
    "batch_size": 64,
    "critic_steps": 5,
    "epochs": 2,
    "steps_per_epoch": 140,
    "ema_decay": "null",
}
TRIALS: dict[str, tuple[str, dict[str, object]]] = {
    "cgan-cpu": ("cgan", {}),
    "cgan-no-ema": ("cgan", {"ema_decay": "null"}),
    "cgan-lr2x": ("cgan", {"generator.optimizer.lr": 0.0004, "discriminator.optimizer.lr": 0.0004}),
    "cgan-lr4x": ("cgan", {"generator.optimizer.lr": 0.0008, "discriminator.optimizer.lr": 0.0008}),
    "cgan-reference-bn": ("cgan", {"reference_batch": 2048}),
    # round two (README "Tuning the cpu profile")
    "cgan-round1": ("cgan", CGAN_ROUND_ONE),
    "cgan-batch32": ("cgan", {**CGAN_ROUND_ONE, "batch_size": 32, "steps_per_epoch": 1080}),
    "cgan-batch32-lr2x": (
        "cgan",
        {
            **CGAN_ROUND_ONE,
            "batch_size": 32,
            "steps_per_epoch": 1080,
            "generator.optimizer.lr": 0.0004,
            "discriminator.optimizer.lr": 0.0004,
        },
    ),
    "cgan-batch16": ("cgan", {**CGAN_ROUND_ONE, "batch_size": 16, "steps_per_epoch": 2160}),
    "cgan-hinge": ("cgan", {**CGAN_ROUND_ONE, "loss": "hinge"}),
    "cgan-kernel4": ("cgan", {**CGAN_ROUND_ONE, "generator.kernel": 4, "discriminator.kernel": 4}),
    "cgan-hinge-batch32": (
        "cgan",
        {**CGAN_ROUND_ONE, "loss": "hinge", "batch_size": 32, "steps_per_epoch": 885},
    ),
    "cgan-kernel4-batch32": ("cgan", {**HINGE_K4_B32, "loss": "bce"}),
    "cgan-hinge-kernel4-batch32": ("cgan", HINGE_K4_B32),
    "cgan-hinge-kernel4-batch32-3100": ("cgan", {**HINGE_K4_B32, "steps_per_epoch": 1550}),
    "cgan-hinge-kernel4-batch32-3100-lr2x": (
        "cgan",
        {
            **HINGE_K4_B32,
            "steps_per_epoch": 1550,
            "generator.optimizer.lr": 0.0004,
            "discriminator.optimizer.lr": 0.0004,
        },
    ),
    "cgan-hk4b32-wide-critic": ("cgan", {**HINGE_K4_B32, "discriminator.filters": "[128,256]"}),
    "cgan-hk4b32-wide": ("cgan", HK4B32_WIDE),
    "cgan-hk4b32-wide-ema0.9995": ("cgan", {**HK4B32_WIDE, "ema_decay": 0.9995}),
    "cgan-hk4b32-wide-beta1-0": ("cgan", {**HK4B32_WIDE, **BETA1_0}),
    "cgan-hk4b32-wide-beta1-0-ttur": (
        "cgan",
        {**HK4B32_WIDE, **BETA1_0, "generator.optimizer.lr": 0.0004, "discriminator.optimizer.lr": 0.0012},
    ),
    # MSGAN's diversity term on cgan's round-two recipe (mode_seeking: its weight)
    **{
        f"cgan-ms{w}": ("cgan", {**HK4B32_WIDE, **BETA1_0, "mode_seeking": w})
        for w in (0.2, 0.4, 0.5, 0.6, 0.8)
    },
    # cgan on (digit, style) labels: `subclusters` k-means clusters of each digit's images, rank-128 class
    # vectors as scgan's (250 labels), at three mode-seeking weights
    **{f"cgan-sub25-rank128-ms{w}": ("cgan", {**CGAN_SUB25, "mode_seeking": w}) for w in (0.2, 0.3, 0.4)},
    # AC-GAN's digit head in D (`auxiliary_classifier`: its weight) on cgan-sub25-rank128-ms0.4, and beside
    # it a stronger mode-seeking term (`ms`) for the recall it costs
    **{
        f"cgan-aux{w}-ms{m}": ("cgan", {**CGAN_SUB25, "mode_seeking": m, "auxiliary_classifier": w})
        for w, m in ((0.3, 0.4), (1.0, 0.4), (1.0, 0.5), (1.0, 0.6))
    },
    # G's half of the head hinged at `auxiliary_margin` nats (cgan-aux1.0-ms0.4 beside it), with 40 styles,
    # and with a shorter generator average (0.99: about the last 100 steps, where the warm-up ramp alone
    # gives about the last 245)
    **{
        f"cgan-aux{w}-margin0.1{suffix}": (
            "cgan",
            {**CGAN_SUB25, "mode_seeking": 0.4, "auxiliary_classifier": w, "auxiliary_margin": 0.1, **extra},
        )
        for w, suffix, extra in (
            (1.0, "", {}),
            (1.0, "-sub40", {"subclusters": 40}),
            (1.0, "-ema0.99", {"ema_decay": 0.99}),
            (1.5, "-ema0.99", {"ema_decay": 0.99}),
        )
    },
    # on cgan-aux1.0-margin0.1-ema0.99: a tighter margin, and each label's vectors as its digit's plus its
    # style's (`digit_vectors`), with a stronger mode-seeking term or a longer generator average (0.995:
    # about the last 200 steps)
    **{
        f"cgan-aux1.0-margin{m}-ema{decay}{suffix}": (
            "cgan",
            {
                **CGAN_SUB25,
                "mode_seeking": 0.4,
                "auxiliary_classifier": 1.0,
                "auxiliary_margin": m,
                "ema_decay": decay,
                **extra,
            },
        )
        for m, decay, suffix, extra in (
            (0.05, 0.99, "", {}),
            (0.1, 0.99, "-digitvec", {"digit_vectors": "true"}),
            (0.1, 0.99, "-digitvec-ms0.5", {"digit_vectors": "true", "mode_seeking": 0.5}),
            (0.1, 0.995, "-digitvec", {"digit_vectors": "true"}),
            # between the two averages; mode seeking or a looser margin beside 0.995
            (0.1, 0.993, "-digitvec", {"digit_vectors": "true"}),
            (0.1, 0.995, "-digitvec-ms0.5", {"digit_vectors": "true", "mode_seeking": 0.5}),
            (0.2, 0.995, "-digitvec", {"digit_vectors": "true"}),
            # one batch of fakes a step for both updates (the generator runs once), at the same 2,200
            # steps and at 2,400, and with looser margins
            (0.2, 0.995, "-digitvec-shared", DIGITVEC_SHARED),
            (0.2, 0.995, "-digitvec-shared-2400", {**DIGITVEC_SHARED, "steps_per_epoch": 1200}),
            (0.25, 0.995, "-digitvec-shared", DIGITVEC_SHARED),
            (0.3, 0.995, "-digitvec-shared", DIGITVEC_SHARED),
            # the 2,400 shared steps with tighter margins, or with a longer average (0.997: about the last
            # 330 steps); -margin0.05-ema0.995-digitvec-shared-2400 is the cpu setting
            (0.1, 0.995, "-digitvec-shared-2400", {**DIGITVEC_SHARED, "steps_per_epoch": 1200}),
            (0.05, 0.995, "-digitvec-shared-2400", {**DIGITVEC_SHARED, "steps_per_epoch": 1200}),
            (0.2, 0.997, "-digitvec-shared-2400", {**DIGITVEC_SHARED, "steps_per_epoch": 1200}),
        )
    },
    "conv_gan-cpu": ("conv_gan", {}),
    "conv_gan-no-ema": ("conv_gan", {"ema_decay": "null"}),
    # 3x3 kernels in the generator (9/25 of its arithmetic) for more steps in the same time, and batches
    # of 32 for twice as many again; stated against conv_gan's cpu setting before them (CONV_GAN_5X5)
    "conv_gan-gk3-1100": ("conv_gan", {**CONV_GAN_5X5, "generator.kernel": 3, "steps_per_epoch": 550}),
    **{
        f"conv_gan-gk3-b32-{2 * steps}": (
            "conv_gan",
            {**CONV_GAN_5X5, "generator.kernel": 3, "batch_size": 32, "steps_per_epoch": steps},
        )
        for steps in (1100, 800)
    },
    # each dcgan trial states every setting the cpu profile has changed since its round, so its name
    # replays the run its rows in trials.csv record; "dcgan-cpu" is round two's setting
    "dcgan-cpu": ("dcgan", DCGAN_CGAN_RECIPE),
    "dcgan-round1": ("dcgan", DCGAN_ROUND_ONE),
    "dcgan-ema": ("dcgan", {**DCGAN_ROUND_ONE, "ema_decay": 0.999}),
    # the tutorials' variants at their best: each keeps its loss and its kind of network, at about the time it
    # trains in the cpu profile
    "dcgan-ema0.995": ("dcgan", {**DCGAN_CGAN_RECIPE, "ema_decay": 0.995}),
    "dcgan-ema0.995-lr4e-4": (
        "dcgan",
        {
            **DCGAN_CGAN_RECIPE,
            "ema_decay": 0.995,
            "generator.optimizer.lr": 0.0004,
            "discriminator.optimizer.lr": 0.0004,
        },
    ),
    "dcgan-ema0.995-lr1.6e-3": (
        "dcgan",
        {
            **DCGAN_CGAN_RECIPE,
            "ema_decay": 0.995,
            "generator.optimizer.lr": 0.0016,
            "discriminator.optimizer.lr": 0.0016,
        },
    ),
    # 4x4 kernels (no checkerboard), and a discriminator without batch norm
    "dcgan-ema0.995-k4": (
        "dcgan",
        {**DCGAN_CGAN_RECIPE, "ema_decay": 0.995, "generator.kernel": 4, "discriminator.kernel": 4},
    ),
    "dcgan-ema0.995-nobn": (
        "dcgan",
        {**DCGAN_CGAN_RECIPE, "ema_decay": 0.995, "discriminator.batch_norm": "false"},
    ),
    "dcgan-ema0.995-k4-nobn": (
        "dcgan",
        {
            **DCGAN_CGAN_RECIPE,
            "ema_decay": 0.995,
            "generator.kernel": 4,
            "discriminator.kernel": 4,
            "discriminator.batch_norm": "false",
        },
    ),
    # cgan's optimiser at the best learning rate: Adam without momentum, and that without batch norm in D
    **{
        f"dcgan-ema0.995-lr1.6e-3-beta0{name}": (
            "dcgan",
            {
                **DCGAN_CGAN_RECIPE,
                "ema_decay": 0.995,
                "generator.optimizer.lr": 0.0016,
                "discriminator.optimizer.lr": 0.0016,
                "generator.optimizer.beta_1": 0.0,
                "discriminator.optimizer.beta_1": 0.0,
                **extra,
            },
        )
        for name, extra in (("", {}), ("-nobn", {"discriminator.batch_norm": "false"}))
    },
    "wgan-cpu": ("wgan", WGAN_NARROW),  # the cpu setting before round three
    # a generator of 3x3 kernels on batches of 64: about 3.5 times the steps in the same time
    "wgan-gk3-b64-500": (
        "wgan",
        {"generator.kernel": 3, "batch_size": 64, "epochs": 4, "steps_per_epoch": 125},
    ),
    # the autoencoder's codes as the vae's: 16-D, sampled from a mixture fitted to them
    "autoencoder-z16-mix50": ("autoencoder", {"z_dim": 16, "latent_components": 50}),
    "mlp_gan-cpu": ("mlp_gan", {"epochs": 50}),  # the tutorial's settings, as the cpu profile has them
    # the MLPs of tutorial 004's width, and an averaged generator
    "mlp_gan-h400": ("mlp_gan", {"generator.hidden": 400, "discriminator.hidden": 400}),
    "mlp_gan-ema0.999": ("mlp_gan", {"ema_decay": 0.999}),
    # batches of 256 at the same 23,400 steps: a step of these small MLPs costs little more for twice the rows
    "mlp_gan-b256": ("mlp_gan", {"batch_size": 256, "epochs": 100}),
    "mlp_gan-h256-lr2e-4-ema0.999": (
        "mlp_gan",
        {
            "generator.hidden": 256,
            "discriminator.hidden": 256,
            "generator.optimizer.lr": 0.0002,
            "discriminator.optimizer.lr": 0.0002,
            "generator.optimizer.beta_1": 0.5,
            "discriminator.optimizer.beta_1": 0.5,
            "ema_decay": 0.999,
        },
    ),
    "wgan_gp-ema": ("wgan_gp", {**WGAN_GP_NARROW, "ema_decay": 0.999}),
    # a generator of 3x3 kernels on batches of 32, averaged, with the tutorial's five critic updates a step
    "wgan_gp-gk3-b32-1000": (
        "wgan_gp",
        {
            "generator.kernel": 3,
            "batch_size": 32,
            "critic_steps": 5,
            "epochs": 4,
            "steps_per_epoch": 250,
            "ema_decay": 0.995,
        },
    ),
    # two critic updates a step instead of five: the generator runs three times a step instead of six
    "wgan_gp-gk3-b32-c2-1250": (
        "wgan_gp",
        {
            "generator.kernel": 3,
            "batch_size": 32,
            "critic_steps": 2,
            "epochs": 2,
            "steps_per_epoch": 625,
            "ema_decay": 0.995,
        },
    ),
    # the adopted settings (and mlp_gan's tutorial one) at three times their step budget (three times the
    # epochs), about 7.5 minutes of steps: how far each one's FID still falls past the budget
    "mlp_gan-x3": ("mlp_gan", {"epochs": 150}),
    "conv_gan-gk3-b32-4800": (
        "conv_gan",
        {**CONV_GAN_5X5, "generator.kernel": 3, "batch_size": 32, "epochs": 6, "steps_per_epoch": 800},
    ),
    "wgan_gp-gk3-b32-c2-3750": (
        "wgan_gp",
        {
            "generator.kernel": 3,
            "batch_size": 32,
            "critic_steps": 2,
            "epochs": 6,
            "steps_per_epoch": 625,
            "ema_decay": 0.995,
        },
    ),
    "vae-cpu": ("vae", {}),
    "vae-z2": ("vae", {**VAE_Z16, "z_dim": 2}),
    "vae-z16": ("vae", VAE_Z16),
    "vae-z16-r4k": ("vae", {**VAE_Z16, "r_loss_factor": 4000.0}),
    "vae-z16-fitted-r4k": ("vae", {**VAE_Z16, "r_loss_factor": 4000.0, "latent_prior": "fitted"}),
    "vae-z16-fitted-r16k": ("vae", {**VAE_Z16, "r_loss_factor": 16000.0, "latent_prior": "fitted"}),
    "vae-z32-fitted-r16k": (
        "vae",
        {**VAE_Z16, "z_dim": 32, "r_loss_factor": 16000.0, "latent_prior": "fitted"},
    ),
    "vae-z16-fitted-r4k-lr2x": (
        "vae",
        {**VAE_Z16, "r_loss_factor": 4000.0, "latent_prior": "fitted", "optimizer.lr": 0.001},
    ),
    # a mixture over the codes against one Gaussian (vae-cpu has 50 components)
    "vae-one-gaussian": ("vae", {"latent_components": 1}),
    "autoencoder-mix10": ("autoencoder", {"z_dim": 2, "latent_components": 10}),  # on the 2-D code
    "cvae-z16": ("cvae", {**CVAE_ROUND_ONE, "z_dim": 16}),
    # the vae's recipe with a prior fitted to each digit's codes (cvae-cpu is one of them)
    "cvae-cpu": ("cvae", {}),
    "cvae-round-one": ("cvae", CVAE_ROUND_ONE),
    "cvae-z16-r4k-fitted": ("cvae", CVAE_Z16_FITTED),
    "cvae-z16-r4k-mix5": ("cvae", {**CVAE_Z16_FITTED, "latent_components": 5}),
    **{
        f"cvae-z16-r4k-mix{k}-5k": (
            "cvae",
            {**CVAE_Z16_FITTED, "latent_components": k, "epochs": 3, "steps_per_epoch": 1650},
        )
        for k in (5, 10)
    },
    # scgan: cgan-cpu's recipe on k-means clusters instead of digits, at its step budget; the trials that
    # ran before rank-128 class vectors and mode seeking pin both off (PLAIN_SCGAN)
    "scgan-cpu": ("scgan", {}),
    **{
        f"scgan-k{k}": ("scgan", {"clusters": k, **PLAIN_SCGAN})
        for k in (10, 20, 30, 50, 100, 150, 200, 250, 300, 400)
    },
    "scgan-k200-z128": ("scgan", {"clusters": 200, "z_dim": 128, **PLAIN_SCGAN}),
    **{
        f"scgan-k200-emb{e}": ("scgan", {"clusters": 200, "generator.label_embedding": e, **PLAIN_SCGAN})
        for e in (25, 100)
    },
    "scgan-k200-lr6": (
        "scgan",
        {
            "clusters": 200,
            "generator.optimizer.lr": 0.0006,
            "discriminator.optimizer.lr": 0.0006,
            **PLAIN_SCGAN,
        },
    ),
    "scgan-k200-lr12": (
        "scgan",
        {
            "clusters": 200,
            "generator.optimizer.lr": 0.0012,
            "discriminator.optimizer.lr": 0.0012,
            **PLAIN_SCGAN,
        },
    ),
    "scgan-k200-ref2048": ("scgan", {"clusters": 200, "reference_batch": 2048, **PLAIN_SCGAN}),
    **{
        f"scgan-k200-rank{r}": (
            "scgan",
            {"clusters": 200, "discriminator.projection_rank": r, "mode_seeking": 0.0},
        )
        for r in (32, 128, 256)
    },
    # MSGAN's diversity term in the generator's loss (`mode_seeking`; the cpu profile: 250 clusters, rank
    # 128, 0.2)
    "scgan-k200-ms1": ("scgan", {"clusters": 200, **PLAIN_SCGAN, "mode_seeking": 1.0}),
    **{
        f"scgan-k{k}-rank{r}-ms{w}": (
            "scgan",
            {"clusters": k, "discriminator.projection_rank": r, "mode_seeking": w},
        )
        for k, r, w in (
            (200, 128, 0.2),
            (200, 128, 0.25),
            (200, 128, 0.3),
            (200, 256, 0.2),
            (100, 128, 0.2),
            (250, 128, 0.2),
            (250, 128, 0.25),
            (300, 128, 0.2),
        )
    },
    # at 2,200 steps the average's warm-up, (1 + t) / (10 + t) <= 0.996, is below either decay
    "scgan-k200-rank128-ms0.2-ema0.998": ("scgan", {**SCGAN_K200_RANK128_MS, "ema_decay": 0.998}),
    "scgan-k200-rank128-ms0.2-dlr12": (
        "scgan",
        {**SCGAN_K200_RANK128_MS, "discriminator.optimizer.lr": 0.0012},
    ),
}


def dvc(*args: str) -> str:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"error: `dvc {' '.join(args)}` failed:\n{(done.stderr or done.stdout).strip()}")
    return done.stdout


def settings(trial: str, seed: int) -> list[str]:
    variant, changes = TRIALS[trial]
    section = f"profiles.{PROFILE}.variants.{variant}"
    return [f"++{section}.{key}={value}" for key, value in {**changes, "seed": seed}.items()]


def queue(trials: list[str], seeds: list[int]) -> None:
    for trial in trials:
        for seed in seeds:
            options = [item for setting in settings(trial, seed) for item in ("-S", setting)]
            dvc("exp", "run", "--queue", "--name", f"{trial}-s{seed}", *options)
            print(f"queued {trial}-s{seed}: {' '.join(settings(trial, seed))}")


def run_queue() -> None:
    dvc("queue", "start", "--jobs", "1")
    while waiting(status := dvc("queue", "status")):
        time.sleep(30)
    print(status)


def waiting(status: str) -> bool:
    """Whether `dvc queue status` (its table: task, name, created, status) lists an experiment that is
    still queued or running."""
    return any(line.split()[-1:] in (["Queued"], ["Running"]) for line in status.splitlines())


def experiments() -> dict[str, dict[str, float]]:
    """Each finished trial experiment's figures (its variant's reports/metrics file), by experiment name
    (`TRIAL-sSEED`), from `dvc exp show`."""
    found = {}
    for baseline in json.loads(dvc("exp", "show", "--json", "--all-commits")):
        for experiment in baseline.get("experiments") or []:
            if (experiment.get("executor") or {}).get("state", "success") != "success":
                continue  # queued, running or failed: the figures shown would be the workspace's
            for revision in experiment.get("revs", []):
                name = revision.get("name") or ""
                trial = name.rsplit("-s", 1)[0]
                if trial not in TRIALS:
                    continue
                metrics = (revision.get("data") or {}).get("metrics", {})
                values = metrics.get(f"reports/metrics/{TRIALS[trial][0]}.json", {}).get("data", {})
                if values:
                    found[name] = values
    return found


def table() -> None:
    """Median and range over seeds of each trial's figures, from `dvc exp show`."""
    figures: dict[str, list[dict[str, float]]] = defaultdict(list)
    for name, values in experiments().items():
        figures[name.rsplit("-s", 1)[0]].append(values)
    print("| trial | seeds | " + " | ".join(f"{c} (median, range)" for c in COLUMNS) + " |")
    print("|" + " --- |" * (len(COLUMNS) + 2))
    for trial, rows in figures.items():
        cells = []
        for column in COLUMNS:
            values = [row[column] for row in rows if row.get(column) is not None]
            cells.append(f"{median(values):.3g} ({min(values):.3g}–{max(values):.3g})" if values else "–")
        print(f"| {trial} | {len(rows)} | " + " | ".join(cells) + " |")


LOG_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d) INFO .*(MLflow run|evaluating )", re.M)
CSV_COLUMNS = (
    "round,trial,variant,changes,seed,steps,fid,recall,precision,label_accuracy,worst_digit,class_fid,"
    "mode_entropy,seconds,machine,kind"
).split(",")


def training_seconds(experiment: str) -> int | None:
    """Seconds from the training's first log line to the evaluation's, in the experiment's queue log
    (None once the log is gone)."""
    try:
        stamps = LOG_TIME.findall(dvc("queue", "logs", experiment))
    except SystemExit:
        return None
    if len(stamps) < 2:
        return None
    start, end = ((int(h) * 3600 + int(m) * 60 + int(s)) for h, m, s, _ in stamps[:2])
    return (end - start) % 86400


def _figure(values: dict[str, float], key: str, digits: str) -> str:
    return format(values[key], digits) if values.get(key) is not None else ""


def csv_rows(round_: str, machine: str) -> None:
    """Every finished trial experiment as a row of benchmarks/trials.csv, on standard output."""
    writer = csv.DictWriter(sys.stdout, CSV_COLUMNS, lineterminator="\n")
    for name, values in sorted(experiments().items()):
        trial, seed = name.rsplit("-s", 1)
        variant, changes = TRIALS[trial]
        writer.writerow(
            {
                "round": round_,
                "trial": trial,
                "variant": variant,
                "changes": ", ".join(f"{key} {value}" for key, value in changes.items()) or "none",
                "seed": seed,
                "steps": values.get("steps", ""),
                "fid": _figure(values, "fid", ".3g"),
                "recall": _figure(values, "recall", ".3f"),
                "precision": _figure(values, "precision", ".3f"),
                "label_accuracy": _figure(values, "label_accuracy", ".3f"),
                "worst_digit": _figure(values, "label_accuracy_worst", ".3f"),
                "class_fid": _figure(values, "class_fid_mean", ".3g"),
                "mode_entropy": _figure(values, "mode_entropy", ".3f"),
                "seconds": training_seconds(name) or "",
                "machine": machine,
                "kind": "trial",
            }
        )


def curve(experiment: str) -> list[tuple[int, float, float]]:
    """(step, training seconds, FID on 2,000 samples) at each time-to-quality point of a GAN trial's MLflow
    run: the step is the last one the training logged (`train/d_loss`, every `train.log_every_steps`)
    before the FID was logged."""
    import mlflow

    from mnistgen import tracking
    from mnistgen.config import load_project

    _, params = load_project(REPO, PROFILE)
    client = mlflow.MlflowClient(tracking.tracking_uri(REPO, params.mlflow))
    tuning = client.get_experiment_by_name(params.mlflow.tuning_experiment)
    if tuning is None:
        sys.exit(
            f"error: this project's MLflow store has no {params.mlflow.tuning_experiment} experiment; "
            "run a trial first (--trials NAME --run)"
        )
    runs = client.search_runs(
        [tuning.experiment_id], f"tags.mlflow.runName LIKE '% · {experiment}'", order_by=["start_time DESC"]
    )
    if not runs:
        sys.exit(f"error: no MLflow run of the experiment {experiment} in {params.mlflow.tuning_experiment}")
    run_id = runs[0].info.run_id
    logged = sorted((m.timestamp, m.step) for m in client.get_metric_history(run_id, "train/d_loss"))
    points = []
    for fid in sorted(client.get_metric_history(run_id, "quality/fid"), key=lambda m: m.timestamp):
        steps = [step for stamp, step in logged if stamp <= fid.timestamp]
        points.append((steps[-1] if steps else 0, float(fid.step), fid.value))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", default=None, help="comma-separated trial names to queue")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--run", action="store_true", help="work through the queue, one experiment at a time")
    parser.add_argument("--table", action="store_true", help="print median and range per trial")
    parser.add_argument("--list", action="store_true", help="print the trials and exit")
    parser.add_argument("--csv", metavar="ROUND", help="print the finished trials as trials.csv rows")
    parser.add_argument("--machine", default="amd", help="the CPU kind for --csv: amx, amd or avx2")
    parser.add_argument("--curve", metavar="TRIAL-sSEED", help="print one experiment's FID against its steps")
    parser.add_argument("--record", type=Path, help="with --curve: also write it as CSV to this file")
    args = parser.parse_args()
    if args.list:
        for trial in TRIALS:
            print(f"{trial}: dvc exp run " + " ".join(f"-S {s}" for s in settings(trial, 0)))
        return
    if args.trials:
        names = args.trials.split(",")
        if unknown := sorted(set(names) - set(TRIALS)):
            sys.exit(f"error: unknown trials {', '.join(unknown)}; see --list")
        queue(names, [int(seed) for seed in args.seeds.split(",")])
    if args.run:
        run_queue()
    if args.table:
        table()
    if args.csv:
        csv_rows(args.csv, args.machine)
    if args.curve:
        points = curve(args.curve)
        lines = ["step,seconds,fid", *(f"{step},{seconds:.0f},{fid:.4g}" for step, seconds, fid in points)]
        print("\n".join(lines))
        if args.record:
            args.record.parent.mkdir(parents=True, exist_ok=True)
            args.record.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
