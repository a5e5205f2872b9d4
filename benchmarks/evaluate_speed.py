"""Where the evaluation's time goes: per model and per stage, on this machine.

    .venv/bin/python benchmarks/evaluate_speed.py [--variants dcgan cgan] [--repeats 3] [--profile cpu]

Measures what `mnistgen evaluate` measures, with the same functions and settings (10,000 samples per
model in the `cpu` profile): each variant's trained model in `runs/VARIANT/model` (after `make pipeline`
or `mnistgen train VARIANT`; variants without one are skipped), then the real-data floor. As in the
evaluation, the test set's features are read once (a line of their own) and the real side's statistics
(its Gaussian, its k-NN radii, the training images' norms) are computed by the first model that needs
them. Nothing is logged to MLflow and no report is written.

Per model it prints each stage's seconds: drawing the samples, the classifier's reading of them, each
image metric (timed around the `metrics` function the scoring calls), the conditional figures, the CAS
classifier's training and test, the reconstruction error. With `--repeats N` each model is measured N
times and each figure is the median, with the minimum and maximum beside it. The last lines are every
model's total and the sum. `--record FILE` also writes every measurement, with the machine, as JSON: the
tuning log's table of the evaluation's time is drawn from `benchmarks/records/evaluate_speed.json`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
# The `metrics` functions the scoring calls, each timed as a stage of its own (the rest of a scoring
# function is bookkeeping).
TIMED_METRICS = (
    "kernel_inception_distance",
    "inception_score",
    "kth_neighbour_radii",
    "manifold_members",
    "gaussian",
    "fid_interval",
    "share_interval",
    "mode_coverage",
    "squared_norms",
    "nearest_l1",
    "frechet_distance",
    "label_accuracies",
)


class Stopwatch:
    """Seconds per stage of what is being measured; `stage` times a call, `wrap` every call of a module's
    function (a timed call inside another counts once, for the outer stage)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._depth = 0

    def stage(self, name: str, work: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        self._depth += 1
        try:
            return work()
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds[name] += time.perf_counter() - began

    def wrap(self, owner: Any, name: str, label: str | None = None) -> None:
        """Time every call of `owner.name` (a module's function, an object's method) as `label`."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            return self.stage(label or name, lambda: original(*args, **kwargs))

        object.__setattr__(owner, name, timed)  # a frozen dataclass's method too

    def measure(self, work: Callable[[], Any]) -> dict[str, float]:
        """The stages of `work()`, with the time outside every stage as `(the rest)`."""
        self.seconds = defaultdict(float)
        began = time.perf_counter()
        work()
        self.seconds["(the rest)"] = time.perf_counter() - began - sum(self.seconds.values())
        return dict(self.seconds)


def measure_model(model_dir: Path, context: dict[str, Any], watch: Stopwatch) -> None:
    """Score one trained model as `evaluate.evaluate_run` does, stage by stage (the scores are dropped)."""
    from mnistgen.evaluation import quality
    from mnistgen.evaluation.evaluate import reconstruction_error
    from mnistgen.images import labels_in_turn
    from mnistgen.models.toy_gan_1d import DATA_MEAN, DATA_STD
    from mnistgen.serving.sampler import EVALUATION_BATCH, Sampler

    cfg, reference, extractor = context["cfg"], context["reference"], context["classifier"]
    sampler = watch.stage("load the model", lambda: Sampler(model_dir))
    samples = watch.stage(
        "draw the samples", lambda: sampler.sample(cfg.samples, seed=cfg.seed, batch=EVALUATION_BATCH)
    )
    if sampler.info["kind"] == "toy":
        watch.stage("toy scores", lambda: quality.toy_quality(samples, DATA_MEAN, DATA_STD))
        return
    reading = extractor.read(samples)
    quality.image_quality(samples, reading, reference, cfg)
    if sampler.classes:
        labels = labels_in_turn(len(samples), sampler.classes)
        quality.conditional_quality(reading, labels, reference)
        context["usefulness"](samples[: cfg.cas.images], labels[: cfg.cas.images])
    if sampler.info["kind"] == "reconstruction":
        watch.stage(
            "reconstruction error",
            lambda: reconstruction_error(model_dir, context["test"], bool(sampler.classes)),
        )


def measure_floor(context: dict[str, Any]) -> None:
    """Score the real-data floor as the evaluation does when no earlier one is reused."""
    from mnistgen.evaluation.evaluate import floor_entry

    floor_entry(context["reference"], context["classifier"], context["cfg"], context["usefulness"])


def evaluate_once(
    splits: dict[str, Any],
    extractor: Any,
    params: Any,
    models: list[tuple[str, Path]],
    watch: Stopwatch,
    measured: dict[str, list[dict[str, float]]],
) -> None:
    """One evaluation of every model and the floor, each model's stages added to `measured`: the real
    side is read and its statistics computed again, by the first model that needs them, as
    `mnistgen evaluate` does."""
    from mnistgen.evaluation import quality

    cfg = params.evaluation
    context: dict[str, Any] = {"cfg": cfg, "classifier": extractor, "test": splits["test"]}

    def usefulness(images: Any, labels: Any) -> float:
        return watch.stage(
            "CAS: train and test",
            lambda: quality.classification_accuracy_score(
                images, labels, context["reference"], params.classifier, cfg.cas, cfg.seed
            ),
        )

    context["usefulness"] = usefulness
    measured["the test set's features"].append(
        watch.measure(lambda: context.update(reference=quality.Reference.build(splits, extractor)))
    )
    for variant, model_dir in models:
        measured[variant].append(watch.measure(functools.partial(measure_model, model_dir, context, watch)))
    measured["floor"].append(watch.measure(functools.partial(measure_floor, context)))


def spread(values: list[float]) -> str:
    """`median (min-max)` of repeated figures; the figure alone when measured once."""
    if len(values) == 1:
        return f"{values[0]:7.2f}"
    return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="*", help="default: every variant with a trained model")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--record", type=Path, help="write the measurements here as JSON")
    args = parser.parse_args()

    from mnistgen import runtime
    from mnistgen.config import load_project
    from mnistgen.data.prepare import load_mnist
    from mnistgen.evaluation import classifier, metrics
    from mnistgen.models import VARIANTS

    params = load_project(REPO, args.profile)[1]
    cfg = params.evaluation
    runs = REPO / params.train.runs_dir
    models = [
        (variant, runs / variant / "model")
        for variant in args.variants or list(VARIANTS)
        if (runs / variant / "model" / "model_info.json").is_file()
    ]
    if not models:
        raise SystemExit(f"error: no trained model under {runs}. Fix: run `make pipeline` first.")
    runtime.configure(cfg.seed, params.train.deterministic)  # as the evaluation: CAS trains classifiers
    watch = Stopwatch()
    for name in TIMED_METRICS:
        watch.wrap(metrics, name)
    loaded: dict[str, Any] = {}

    def load() -> None:
        loaded["splits"] = watch.stage("load MNIST", lambda: load_mnist(REPO, params))
        loaded["classifier"] = watch.stage(
            "load the classifier", lambda: classifier.load(REPO / params.classifier.dir)
        )
        watch.wrap(loaded["classifier"], "read", "classifier reading")

    measured: dict[str, list[dict[str, float]]] = defaultdict(list)
    measured["set-up"].append(watch.measure(load))
    for _ in range(args.repeats):
        evaluate_once(loaded["splits"], loaded["classifier"], params, models, watch, measured)

    print(f"{cfg.samples} samples per model, profile {args.profile}; seconds, ", end="")
    print("as measured" if args.repeats == 1 else f"median (min-max) of {args.repeats} repeats")
    totals = {}
    for name, repeats in measured.items():
        print(f"\n{name}")
        for stage in dict.fromkeys(stage for seconds in repeats for stage in seconds):
            print(f"  {stage:<40} {spread([seconds.get(stage, 0.0) for seconds in repeats])}")
        totals[name] = [sum(seconds.values()) for seconds in repeats]  # the call's wall time
        print(f"  {'total':<40} {spread(totals[name])}")
    print("\ntotals")
    for name, seconds in totals.items():
        print(f"  {name:<40} {spread(seconds)}")
    (setup,) = totals.pop("set-up")  # loaded once, for every repeat
    in_all = [setup + sum(run) for run in zip(*totals.values(), strict=True)]
    print(f"  {'the evaluation, in all':<40} {spread(in_all)}")
    if args.record:
        from mnistgen.training.hardware import machine

        record = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "profile": args.profile,
            "samples": cfg.samples,
            "repeats": args.repeats,
            "in_all": in_all,
            "seconds": measured,  # per model (and set-up), per repeat, per stage
        }
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(record, indent=1) + "\n")
        print(f"written: {args.record}")


if __name__ == "__main__":
    main()
