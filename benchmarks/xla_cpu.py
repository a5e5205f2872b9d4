"""XLA on the CPU, per variant: the time of a train step compiled by XLA beside the same step without it,
and whether two runs with XLA give the same weights to the bit.

    .venv/bin/python benchmarks/xla_cpu.py [--profile cpu] [--steps 30] [--variants dcgan cgan]

Each measurement runs in a fresh process, seeded and with TensorFlow's op determinism on, as a training
is (`runtime.configure`), on synthetic batches of the variant's shape in float32: the figures are about
the step, not data loading. Per variant it prints the seconds per step without and with XLA (the median
of the timed steps, after the first steps have traced and compiled), their ratio, and whether two XLA
runs of `--steps` steps from the same seed ended with the same weights (`same`), or the error XLA gave.
`train.xla` compiles steps with XLA on a GPU only; this is what it would do on the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
WARM_UP = 3  # steps that trace (and with XLA compile) the step before any is timed


def measure(variant: str, profile: str, steps: int, xla: bool) -> dict[str, object]:
    """Seconds per step (median) and a digest of the weights after `steps` steps, in this process."""
    import numpy as np
    import tensorflow as tf

    from mnistgen import runtime
    from mnistgen.config import load_project
    from mnistgen.models import VARIANTS
    from mnistgen.models.base import AdversarialSpec
    from mnistgen.training.engine import build_model

    runtime.configure(0, deterministic=True)
    cfg = load_project(REPO, profile)[1].variants.of(variant)
    spec = VARIANTS[variant].build(cfg)
    model = build_model(spec, tf.random.Generator.from_seed(0))
    rows = cfg.batch_size * (spec.d_steps if isinstance(spec, AdversarialSpec) else 1)
    data = np.random.default_rng(0)
    shape = (rows, 1) if spec.kind == "toy" else (rows, 28, 28, 1)
    images = tf.constant(data.uniform(*spec.pixel_range, shape), tf.float32)
    labels = tf.constant(data.integers(0, max(spec.classes, 1), (rows, 1)), tf.int32)
    batch = (images, labels) if spec.classes else images
    step_fn = tf.function(model.train_step, jit_compile=xla)
    seconds = []
    for step in range(WARM_UP + steps):
        began = time.perf_counter()
        logs = step_fn(batch)
        float(next(iter(logs.values())))  # waits for the step
        if step >= WARM_UP:
            seconds.append(time.perf_counter() - began)
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.asarray(weight).tobytes())
    return {"seconds_per_step": statistics.median(seconds), "weights": digest.hexdigest()[:16]}


def _in_a_process(variant: str, profile: str, steps: int, xla: bool) -> dict[str, object]:
    command = [sys.executable, __file__, "--worker", variant, "--profile", profile, "--steps", str(steps)]
    done = subprocess.run(command + (["--xla"] if xla else []), capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:80]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from mnistgen.models import VARIANTS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--worker", metavar="VARIANT", help=argparse.SUPPRESS)
    parser.add_argument("--xla", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.profile, args.steps, args.xla)))
        return

    print(f"profile {args.profile}, float32, {args.steps} timed steps each, {os.cpu_count()} CPU cores")
    print("| variant | s/step | s/step with XLA | XLA / plain | two XLA runs |")
    print("| --- | --- | --- | --- | --- |")
    for variant in args.variants:
        plain = _in_a_process(variant, args.profile, args.steps, xla=False)
        first, second = (_in_a_process(variant, args.profile, args.steps, xla=True) for _ in range(2))
        if "error" in plain or "error" in first or "error" in second:
            problem = next(run["error"] for run in (plain, first, second) if "error" in run)
            print(f"| {variant} | {plain.get('seconds_per_step', '-')} | failed: {problem} | | |", flush=True)
            continue
        same = "same" if first["weights"] == second["weights"] else "differ"
        plain_s, xla_s = plain["seconds_per_step"], first["seconds_per_step"]
        print(f"| {variant} | {plain_s:.4f} | {xla_s:.4f} | {xla_s / plain_s:.2f} | {same} |", flush=True)


if __name__ == "__main__":
    main()
