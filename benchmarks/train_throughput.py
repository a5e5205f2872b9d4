"""Training throughput per variant in float32 and bfloat16, and how close each loop runs to the hardware.

    .venv/bin/python benchmarks/train_throughput.py [--profile cpu] [--steps 20] [--variants dcgan vae]

Prints, per variant: images per second in each precision (side by side, measured in this one run),
the FLOPs of one train step (counted by TensorFlow's profiler on the traced step), the achieved GFLOP/s,
and that as a share of this machine's measured matmul peak in the same precision. Each measurement runs
in a fresh process (TensorFlow's precision policy is process-wide). Synthetic batches are used: the
figures are about compute, not data loading.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PRECISIONS = ("float32", "bfloat16")


def matmul_peak(precision: str, size: int = 4096, repeats: int = 10) -> float:
    """GFLOP/s of a large square matmul: the practical ceiling of dense compute here."""
    import tensorflow as tf

    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    a = tf.random.normal((size, size), dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda x: tf.linalg.matmul(x, x))
    matmul(a).numpy()
    began = time.perf_counter()
    for _ in range(repeats):
        result = matmul(a)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - began) / 1e9


def step_flops(step_fn, batch) -> float:
    import tensorflow as tf

    graph = step_fn.get_concrete_function(batch).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return float(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def measure(variant: str, precision: str, profile: str, steps: int) -> dict[str, float]:
    import keras
    import numpy as np
    import tensorflow as tf

    from mnistgen.config import load_project
    from mnistgen.models import VARIANTS
    from mnistgen.models.base import AdversarialSpec
    from mnistgen.training.engine import build_model

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(0)
    cfg = load_project(REPO, profile)[1].variants.of(variant)
    spec = VARIANTS[variant].build(cfg)
    model = build_model(spec, tf.random.Generator.from_seed(0))
    rows = cfg.batch_size * (spec.d_steps if isinstance(spec, AdversarialSpec) else 1)
    shape = (rows, 1) if spec.kind == "toy" else (rows, 28, 28, 1)
    low, high = spec.pixel_range
    batch = tf.constant(np.random.default_rng(0).uniform(low, high, shape), tf.float32)
    step_fn = tf.function(model.train_step)
    flops = step_flops(step_fn, batch)
    for _ in range(3):  # trace, then warm the caches
        step_fn(batch)
    began = time.perf_counter()
    for _ in range(steps):
        logs = step_fn(batch)
    float(next(iter(logs.values())))
    seconds = (time.perf_counter() - began) / steps
    return {
        "images_per_second": rows / seconds,
        "gflop_per_step": flops / 1e9,
        "gflops": flops / seconds / 1e9,
        "peak_gflops": matmul_peak(precision),
    }


def main() -> None:
    from mnistgen.models import VARIANTS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(*args.worker, args.profile, args.steps)))
        return

    print(f"profile {args.profile}, {args.steps} timed steps per measurement, {os.cpu_count()} CPU cores")
    header = (
        f"{'variant':<12} {'img/s fp32':>11} {'img/s bf16':>11} {'bf16 x':>7} {'GFLOP/step':>11} "
        f"{'GFLOP/s fp32 (% peak)':>22} {'GFLOP/s bf16 (% peak)':>22}"
    )
    print(header)
    print("-" * len(header))
    peaks: dict[str, float] = {}
    for variant in args.variants:
        figures = {}
        for precision in PRECISIONS:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    variant,
                    precision,
                    "--profile",
                    args.profile,
                    "--steps",
                    str(args.steps),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            figures[precision] = json.loads(done.stdout.strip().splitlines()[-1])
            peaks[precision] = figures[precision]["peak_gflops"]
        fp32, bf16 = figures["float32"], figures["bfloat16"]
        print(
            f"{variant:<12} {fp32['images_per_second']:>11.0f} {bf16['images_per_second']:>11.0f} "
            f"{bf16['images_per_second'] / fp32['images_per_second']:>7.2f} {fp32['gflop_per_step']:>11.2f} "
            f"{fp32['gflops']:>12.0f} ({100 * fp32['gflops'] / fp32['peak_gflops']:>4.0f}%)   "
            f"{bf16['gflops']:>12.0f} ({100 * bf16['gflops'] / bf16['peak_gflops']:>4.0f}%)"
        )
    print(
        f"measured matmul peak: float32 {peaks['float32']:.0f} GFLOP/s, "
        f"bfloat16 {peaks['bfloat16']:.0f} GFLOP/s"
    )


if __name__ == "__main__":
    main()
