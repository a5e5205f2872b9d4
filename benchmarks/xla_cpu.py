"""XLA on the CPU, per variant: the time of a train step compiled by XLA beside the same step without it,
and whether two runs with XLA give the same weights to the bit.

    .venv/bin/python benchmarks/xla_cpu.py [--profile cpu] [--steps 30] [--variants dcgan cgan]
        [--repeats 3] [--record benchmarks/records/xla_cpu.json]

Each measurement runs in a fresh process, seeded and with TensorFlow's op determinism on, as a training
is (`runtime.configure`), on synthetic batches of the variant's shape in float32: the figures are about
the step, not data loading. Per variant it prints the seconds per step without and with XLA (the median
of the timed steps, after the first steps have traced and compiled), their ratio, and whether two XLA
runs of `--steps` steps from the same seed ended with the same weights (`same`), or the error XLA gave.
With `--repeats N` each is measured N times, plain and XLA in turn, and the table shows the median with
the minimum and maximum, the ratio of the medians, and whether every XLA run ended with the same weights;
`--record FILE` keeps every measurement, with the machine, as JSON: the tuning log's XLA table is drawn
from `benchmarks/records/xla_cpu.json`. `train.xla` compiles steps with XLA on a GPU only; this is what
it would do on the CPU.
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
    parser.add_argument("--repeats", type=int, default=1, help="measurements of each, plain and XLA in turn")
    parser.add_argument("--record", type=Path, help="also write every measurement as JSON to this file")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.profile, args.steps, args.xla)))
        return

    print(f"profile {args.profile}, float32, {args.steps} timed steps each, {os.cpu_count()} CPU cores")
    print("| variant | s/step | s/step with XLA | XLA / plain | XLA runs |")
    print("| --- | --- | --- | --- | --- |")
    measured: dict[str, dict[str, list[object]]] = {}
    for variant in args.variants:
        runs: dict[str, list[object]] = {"plain": [], "xla": [], "xla_weights": []}
        for _ in range(max(args.repeats, 1)):
            plain = _in_a_process(variant, args.profile, args.steps, xla=False)
            runs["plain"].append(plain.get("seconds_per_step", plain.get("error")))
            for _ in range(1 if args.repeats > 1 else 2):  # at least two XLA runs to compare
                with_xla = _in_a_process(variant, args.profile, args.steps, xla=True)
                runs["xla"].append(with_xla.get("seconds_per_step", with_xla.get("error")))
                runs["xla_weights"].append(with_xla.get("weights"))
        measured[variant] = runs
        print(row(variant, runs), flush=True)
    if args.record:
        from datetime import date

        from mnistgen.training.hardware import machine

        record = {
            "date": date.today().isoformat(),
            "machine": machine(),
            "profile": args.profile,
            "steps": args.steps,
            "repeats": args.repeats,
            "variants": measured,
        }
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(record, indent=1) + "\n")


def row(variant: str, runs: dict[str, list[object]]) -> str:
    """One variant's table row: seconds per step plain and with XLA (median, with the range over repeats),
    the ratio of the medians, and whether every XLA run ended with the same weights."""
    failed = [value for value in runs["plain"] + runs["xla"] if isinstance(value, str)]
    if failed:
        return f"| {variant} | | failed: {failed[0]} | | |"
    plain, xla = runs["plain"], runs["xla"]
    same = "same" if len(set(runs["xla_weights"])) == 1 else "differ"
    return (
        f"| {variant} | {spread(plain)} | {spread(xla)} | "
        f"{statistics.median(xla) / statistics.median(plain):.2f} | {same} |"
    )


def spread(values: list[float]) -> str:
    """The median, and the range when there is more than one value."""
    middle = f"{statistics.median(values):.4f}"
    return middle if len(values) == 1 else f"{middle} ({min(values):.4f} to {max(values):.4f})"


if __name__ == "__main__":
    main()
