"""Every quality score of one set of samples, against the MNIST test set, in the classifier's features."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from scipy import stats

from mnistgen.data.idx import Split
from mnistgen.evaluation import metrics
from mnistgen.evaluation.classifier import Classifier
from mnistgen.images import to_unit
from mnistgen.settings import Cas, ClassifierSection, EvaluationSection

Reading = tuple[np.ndarray, np.ndarray]  # a sample set through the classifier: (features, probabilities)
T = TypeVar("T")


@dataclass(frozen=True)
class Reference:
    """The real data a sample set is measured against, with its features computed once, and what the
    metrics compute of the real side alone kept for every model measured against it (`remembered`)."""

    test_images: np.ndarray  # (n, 28, 28) in [0, 1]
    test_features: np.ndarray
    test_labels: np.ndarray
    train_flat: np.ndarray  # (n, 784) in [0, 1], for nearest-neighbour memorisation checks
    train_images: np.ndarray
    train_labels: np.ndarray
    _remembered: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, splits: dict[str, Split], classifier: Classifier) -> Reference:
        test = to_unit(splits["test"].images)
        train = to_unit(splits["train"].images)
        return cls(
            test,
            classifier.features(test),
            splits["test"].labels,
            train.reshape(len(train), -1),
            train,
            splits["train"].labels,
        )

    def remembered(self, key: Any, compute: Callable[[], T]) -> T:
        """`compute()` the first time `key` is asked for, the same value after: a statistic of the real
        side (its Gaussian, its k-NN radii, its distances to the training images) is the same for every
        model, so it is computed once, by the same arithmetic, to the same bits."""
        if key not in self._remembered:
            self._remembered[key] = compute()
        return self._remembered[key]


def image_quality(
    samples: np.ndarray, reading: Reading, reference: Reference, cfg: EvaluationSection
) -> dict[str, float]:
    """FID, KID, classifier IS, precision/recall, mode coverage and memorisation of (n, 28, 28) samples,
    from the classifier's `reading` of them (features, probabilities); FID and recall with a bootstrap
    confidence interval (`*_ci_low`, `*_ci_high`), so two models are told apart only beyond their noise."""
    features, predicted = reading
    real = reference.test_features
    kid_mean, kid_std = metrics.kernel_inception_distance(
        real, features, cfg.kid_subsets, cfg.kid_subset_size, cfg.seed, reference.remembered("kid", dict)
    )
    is_mean, is_std = metrics.inception_score(predicted)
    n_pr = min(cfg.pr_samples, len(features), len(real))
    radii = reference.remembered(
        ("radii", n_pr, cfg.pr_k), lambda: metrics.kth_neighbour_radii(real[:n_pr], cfg.pr_k)
    )
    precise, recalled = metrics.manifold_members(real[:n_pr], features[:n_pr], cfg.pr_k, radii)
    bootstrap = cfg.bootstrap
    fitted = reference.remembered("gaussian", lambda: metrics.gaussian(real))
    fid_low, fid_high = metrics.fid_interval(
        fitted, features, bootstrap.resamples, bootstrap.confidence, cfg.seed
    )
    recall_low, recall_high = metrics.share_interval(
        recalled, bootstrap.resamples, bootstrap.confidence, cfg.seed
    )
    entropy, rarest = metrics.mode_coverage(predicted.argmax(axis=1))
    n_mem = min(cfg.memorisation_samples, len(samples))
    train, norms = (
        reference.train_flat,
        reference.remembered("norms", lambda: metrics.squared_norms(reference.train_flat)),
    )
    to_train = metrics.nearest_l1(samples[:n_mem].reshape(n_mem, -1), train, reference_norms=norms).mean()
    test_to_train = reference.remembered(
        ("test to train", n_mem),
        lambda: metrics.nearest_l1(
            reference.test_images[:n_mem].reshape(n_mem, -1), train, reference_norms=norms
        ).mean(),
    )
    return {
        "fid": metrics.frechet_distance(fitted, features),
        "fid_ci_low": fid_low,  # the bootstrap interval of the samples' noise (evaluation.bootstrap)
        "fid_ci_high": fid_high,
        "kid": kid_mean,
        "kid_std": kid_std,
        "inception_score": is_mean,
        "inception_score_std": is_std,
        "precision": float(np.mean(precise)),
        "recall": float(np.mean(recalled)),
        "recall_ci_low": recall_low,
        "recall_ci_high": recall_high,
        "mode_entropy": entropy,
        "rarest_class_share": rarest,
        "nn_l1_to_train": float(to_train),
        # Below 1: samples sit closer to training images than fresh real digits do, a sign of copying.
        # Undefined (NaN) when the test images themselves are copies of training images.
        "memorisation_ratio": float(to_train / test_to_train) if test_to_train > 0 else float("nan"),
    }


def conditional_quality(reading: Reading, labels: np.ndarray, reference: Reference) -> dict[str, float]:
    """What only a class-conditional model can be asked: does it draw the digit it was given
    (`label_accuracy`, by the feature classifier), and how good is each digit (FID against the real test
    images of that digit: `class_fid_0` ... `class_fid_9`, their mean and the worst)."""
    features, probabilities = reading
    predicted = probabilities.argmax(axis=1)
    per_class = {
        f"class_fid_{digit}": metrics.frechet_distance(
            reference.remembered(
                ("gaussian", digit),
                lambda digit=digit: metrics.gaussian(reference.test_features[reference.test_labels == digit]),
            ),
            features[labels == digit],
        )
        for digit in np.unique(labels)
    }
    return {
        **metrics.label_accuracies(predicted, labels),
        "class_fid_mean": float(np.mean(list(per_class.values()))),
        "class_fid_worst": float(np.max(list(per_class.values()))),
        **per_class,
    }


def classification_accuracy_score(
    images: np.ndarray,
    labels: np.ndarray,
    reference: Reference,
    classifier_cfg: ClassifierSection,
    cas_cfg: Cas,
    seed: int,
) -> float:
    """Train on synthetic, test on real (Ravuri & Vinyals 2019): the real-test accuracy of a classifier
    that saw only these labelled images. Samples that are sharp but samey, or off-label, teach it little;
    compare with the same classifier trained on as many real images."""
    from mnistgen.evaluation.classifier import fit_and_score

    settings = classifier_cfg.model_copy(update={"epochs": cas_cfg.epochs})
    _, accuracy = fit_and_score(images, labels, reference.test_images, reference.test_labels, settings, seed)
    return accuracy


def toy_quality(values: np.ndarray, mean: float, std: float) -> dict[str, float]:
    """Wasserstein-1 and Kolmogorov-Smirnov distances of 1-D samples to N(mean, std)."""
    target = stats.norm(mean, std)
    grid = target.ppf(np.linspace(0.0005, 0.9995, 4000))
    return {
        "wasserstein1": float(stats.wasserstein_distance(values, grid)),
        "ks": float(stats.kstest(values, target.cdf).statistic),
        "sample_mean": float(np.mean(values)),
        "sample_std": float(np.std(values)),
    }
