"""Sample-quality metrics against cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from mnistgen.evaluation import metrics


def gaussian(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).multivariate_normal(mean, cov, size=n)


def test_fid_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(2000, 8))
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_between_two_gaussians_matches_the_closed_form() -> None:
    """For diagonal covariances FID = ||mu1 - mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2."""
    mu1, mu2 = np.zeros(4), np.array([1.0, -2.0, 0.5, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([4.0, 1.0, 0.5, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    a = gaussian(200_000, mu1, np.diag(s1), seed=1)
    b = gaussian(200_000, mu2, np.diag(s2), seed=2)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(3)
    a, b, shifted = rng.normal(size=(3000, 16)), rng.normal(size=(3000, 16)), rng.normal(1.0, 1.0, (3000, 16))
    same_mean, same_std = metrics.kernel_inception_distance(a, b, subsets=20, subset_size=500)
    apart_mean, _ = metrics.kernel_inception_distance(a, shifted, subsets=20, subset_size=500)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert apart_mean > 10 * (abs(same_mean) + same_std)


def test_inception_score_bounds() -> None:
    confident_varied = np.eye(10)[np.arange(1000) % 10]
    uniform = np.full((1000, 10), 0.1)
    assert metrics.inception_score(confident_varied)[0] == pytest.approx(10.0, rel=1e-3)
    assert metrics.inception_score(uniform)[0] == pytest.approx(1.0, rel=1e-6)


def test_precision_recall_of_identical_sets_is_one_and_of_a_collapsed_set_low_recall() -> None:
    real = np.random.default_rng(4).normal(size=(1500, 6))
    assert metrics.precision_recall(real, real.copy()) == pytest.approx((1.0, 1.0))
    collapsed = real[:20] + np.random.default_rng(5).normal(0, 0.01, (20, 6))
    precision, recall = metrics.precision_recall(real, np.repeat(collapsed, 75, axis=0))
    assert precision > 0.9 and recall < 0.2


def test_single_class_samples_are_flagged_as_collapsed() -> None:
    entropy, rarest = metrics.mode_coverage(np.full(1000, 7))
    assert entropy == pytest.approx(0.0) and rarest == 0.0
    assert f"{entropy:.3g}" == "0", "not -0 in the leaderboard"
    entropy, rarest = metrics.mode_coverage(np.arange(1000) % 10)
    assert entropy == pytest.approx(1.0) and rarest == pytest.approx(0.1)


def test_nearest_l1_finds_copies_of_training_images() -> None:
    rng = np.random.default_rng(6)
    train = rng.uniform(size=(3000, 784)) * (rng.uniform(size=(3000, 784)) > 0.8)
    copies = train[rng.choice(3000, 50, replace=False)]
    fresh = rng.uniform(size=(50, 784)) * (rng.uniform(size=(50, 784)) > 0.8)
    assert np.all(metrics.nearest_l1(copies, train) == 0.0)
    brute = np.abs(fresh[:, None, :] - train[None, :, :]).sum(axis=2).min(axis=1)
    np.testing.assert_allclose(metrics.nearest_l1(fresh, train), brute)


def test_fid_through_the_symmetric_product_equals_the_matrix_square_root_of_the_product() -> None:
    """Tr((S_r S_f)^(1/2)) by the eigenvalues of R S_f R equals the trace of scipy's principal square root
    of S_r S_f (the reference implementation's way), here on correlated, unequal covariances."""
    from scipy import linalg

    rng = np.random.default_rng(6)
    real = rng.normal(size=(3000, 12)) @ rng.normal(size=(12, 12))
    fake = rng.normal(0.3, 1.0, size=(3000, 12)) @ rng.normal(size=(12, 12))
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    by_sqrtm = (
        np.sum((real.mean(0) - fake.mean(0)) ** 2)
        + np.trace(cov_r)
        + np.trace(cov_f)
        - 2.0 * np.trace(np.real(linalg.sqrtm(cov_r @ cov_f)))
    )
    assert metrics.frechet_distance(real, fake) == pytest.approx(by_sqrtm, rel=1e-9)


def test_percentile_interval_keeps_the_central_share() -> None:
    assert metrics.percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    assert metrics.percentile_interval(np.full(50, 3.0), 0.95) == (3.0, 3.0)


def test_the_share_interval_matches_the_normal_approximation_of_a_binomial() -> None:
    """n = 10,000 outcomes, 30% yes: the 95% interval is 0.3 -+ 1.96 sqrt(0.3 * 0.7 / n)."""
    members = np.arange(10_000) % 10 < 3
    low, high = metrics.share_interval(members, resamples=4000, confidence=0.95, seed=0)
    half = 1.96 * np.sqrt(0.3 * 0.7 / 10_000)
    assert low == pytest.approx(0.3 - half, abs=0.0015) and high == pytest.approx(0.3 + half, abs=0.0015)
    assert metrics.share_interval(members, 4000, 0.95, seed=0) == (low, high), "same seed, same interval"


def test_the_fid_interval_is_as_wide_as_fids_spread_over_fresh_samples_and_holds_the_estimate() -> None:
    """The interval's claim: how far FID moves when the model is sampled again. With as many samples per
    feature as evaluation has (10,000 in 128; here 2,500 in 32), resampling with replacement inflates
    FID by more than its spread, so the replicates' own percentiles miss the estimate; the interval
    placed around the estimate holds it, and its width is 3.92 standard deviations of FID over thirty
    freshly drawn sample sets (the truth here), or a little more: the safe side for the champion rule."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(32, 32)) / np.sqrt(32)
    real = rng.normal(size=(10_000, 32)) @ mix

    def draw() -> np.ndarray:
        return rng.normal(0.05, 1.1, size=(2500, 32)) @ mix

    fake = draw()
    estimate = metrics.frechet_distance(real, fake)
    low, high = metrics.fid_interval(real, fake, resamples=200, confidence=0.95, seed=1)
    assert low < estimate < high
    replicates_alone = metrics.percentile_interval(
        [
            metrics.frechet_distance(real, fake[np.random.default_rng(k).integers(0, 2500, 2500)])
            for k in range(50)
        ],
        0.95,
    )
    assert replicates_alone[0] > estimate, "resampling's own bias: the uncorrected interval misses"
    fresh = np.std([metrics.frechet_distance(real, draw()) for _ in range(30)])
    assert 0.8 < (high - low) / 3.92 / fresh < 1.5
    assert metrics.fid_interval(real, fake, 200, 0.95, seed=1) == (low, high), "same seed, same interval"


def test_label_accuracy_is_given_per_digit_and_for_the_worst_one() -> None:
    """Right on average is not right for every digit: 9 of 10 sevens but 5 of 10 twos make 0.7 overall."""
    labels = np.array([7] * 10 + [2] * 10)
    predicted = np.array([7] * 9 + [1] + [2] * 5 + [3] * 5)
    figures = metrics.label_accuracies(predicted, labels)
    assert figures == {
        "label_accuracy": 0.7,
        "label_accuracy_worst": 0.5,
        "label_accuracy_2": 0.5,
        "label_accuracy_7": 0.9,
    }


def test_the_real_side_computed_once_gives_every_metric_to_the_same_bits() -> None:
    """What a metric computes of the real set alone (its Gaussian, its k-NN radii, its squared norms, a
    KID subset's own kernel term) may be passed in, as the evaluation does once for every model: the
    figures come out identical to the last bit, for the first model and for the next."""
    rng = np.random.default_rng(0)
    real, fakes = rng.normal(size=(600, 16)), [rng.normal(0.1 * i, 1.0, size=(500, 16)) for i in (1, 2)]
    fitted, terms = metrics.gaussian(real), {}
    radii = metrics.kth_neighbour_radii(real[:400], 3)
    train = rng.uniform(size=(2000, 64)).astype(np.float32)
    norms = metrics.squared_norms(train)
    for fake in fakes:
        assert metrics.frechet_distance(fitted, fake) == metrics.frechet_distance(real, fake)
        assert metrics.fid_interval(fitted, fake, 20, 0.9, 0) == metrics.fid_interval(real, fake, 20, 0.9, 0)
        cached = metrics.kernel_inception_distance(real, fake, 5, 100, 0, terms)
        assert cached == metrics.kernel_inception_distance(real, fake, 5, 100, 0)
        for given, computed in zip(
            metrics.manifold_members(real[:400], fake[:400], 3, radii),
            metrics.manifold_members(real[:400], fake[:400], 3),
            strict=True,
        ):
            np.testing.assert_array_equal(given, computed)
        queries = fake[:50, :8].repeat(8, axis=1).astype(np.float32)
        np.testing.assert_array_equal(
            metrics.nearest_l1(queries, train, reference_norms=norms), metrics.nearest_l1(queries, train)
        )
    assert len(terms) == 5, "the second model reused the first one's real terms"
