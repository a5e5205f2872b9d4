"""Time to evaluate 10,000 samples with every metric, on this machine.

    .venv/bin/python benchmarks/evaluate_speed.py [--samples 10000] [--variant dcgan] [--profile cpu]

Needs MNIST (`mnistgen data`) and the classifier (`mnistgen classifier`). Samples come from an untrained
generator of the chosen variant: the cost of the metrics does not depend on what the images show.
Prints one line per stage and the total, then every image metric together (`quality.image_quality`) for
the first model and for each model after it, which reuses what was computed of the real data.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--variant", default="dcgan")
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args()

    from mnistgen.config import load_project
    from mnistgen.data.prepare import load_mnist
    from mnistgen.evaluation import classifier, metrics, quality
    from mnistgen.models import VARIANTS
    from mnistgen.models.base import sampling_info
    from mnistgen.serving.sampler import EVALUATION_BATCH, Sampler

    params = load_project(REPO, args.profile)[1]
    cfg = params.evaluation.model_copy(update={"samples": args.samples})
    timings: list[tuple[str, float]] = []

    def timed(stage: str, work):
        began = time.perf_counter()
        result = work()
        timings.append((stage, time.perf_counter() - began))
        return result

    splits = timed("load MNIST", lambda: load_mnist(REPO, params))
    extractor = timed("load classifier", lambda: classifier.load(REPO / params.classifier.dir))
    reference = timed("reference features (test set)", lambda: quality.Reference.build(splits, extractor))
    with tempfile.TemporaryDirectory() as scratch:
        spec = VARIANTS[args.variant].build(params.variants.of(args.variant))
        spec.generator.save(Path(scratch) / "generator.keras")
        (Path(scratch) / "model_info.json").write_text(json.dumps(sampling_info(spec)))
        sampler = Sampler(Path(scratch))
        samples = timed(
            f"generate {args.samples} samples ({args.variant})",
            lambda: sampler.sample(args.samples, batch=EVALUATION_BATCH),
        )
    feats, probs = timed("classifier features + probabilities (one pass)", lambda: extractor.read(samples))
    timed("FID", lambda: metrics.frechet_distance(reference.test_features, feats))
    boot = cfg.bootstrap
    timed(
        f"FID bootstrap interval ({boot.resamples} resamples)",
        lambda: metrics.fid_interval(reference.test_features, feats, boot.resamples, boot.confidence, 0),
    )
    timed(
        "KID",
        lambda: metrics.kernel_inception_distance(
            reference.test_features, feats, cfg.kid_subsets, cfg.kid_subset_size
        ),
    )
    timed("inception score", lambda: metrics.inception_score(probs))
    n_pr = min(cfg.pr_samples, len(feats))
    timed(
        f"precision/recall ({n_pr} per side)",
        lambda: metrics.precision_recall(reference.test_features[:n_pr], feats[:n_pr], cfg.pr_k),
    )
    n_mem = cfg.memorisation_samples
    timed(
        f"memorisation ({n_mem} samples vs 60,000 train)",
        lambda: metrics.nearest_l1(samples[:n_mem].reshape(n_mem, -1), reference.train_flat),
    )
    measured = [t for t in timings if not t[0].startswith(("load", "reference"))]
    # The evaluation proper measures every model against one Reference, which keeps what the metrics
    # compute of the real side alone: the first model pays for it, the models after it do not.
    reading = (feats, probs)
    for model in ("the first model", "each model after the first"):
        timed(
            f"every image metric together, {model}",
            lambda: quality.image_quality(samples, reading, reference, cfg),
        )

    width = max(len(stage) for stage, _ in timings)
    for stage, seconds in timings:
        print(f"{stage:<{width}}  {seconds:8.2f} s")
    print(f"{'the metrics one by one, in all':<{width}}  {sum(s for _, s in measured):8.2f} s")
    print(
        f"{'one-off set-up (data, classifier, reference)':<{width}}  "
        f"{sum(s for stage, s in timings if stage.startswith(('load', 'reference'))):8.2f} s"
    )


if __name__ == "__main__":
    main()
