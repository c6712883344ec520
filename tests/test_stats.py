import math

import numpy as np
import pytest

from affect_rl.stats import Interval, bootstrap_ci, mean_of, paired_bootstrap, resample_indices


def test_two_point_sample_has_the_hand_computed_interval():
    # Resampling [0, 1] twice gives means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5th percentile is 0 and the 97.5th is 1.
    interval = bootstrap_ci([0.0, 1.0], mean_of, n_bootstrap=4000, seed=1)
    assert interval == Interval(0.5, 0.0, 1.0)


def test_interval_of_a_normal_mean_matches_the_textbook_width():
    sample = np.random.default_rng(0).normal(loc=3.0, scale=1.0, size=400)
    interval = bootstrap_ci(sample, mean_of, n_bootstrap=2000, seed=0)
    expected_half_width = 1.96 * sample.std(ddof=1) / math.sqrt(len(sample))
    assert interval.value == pytest.approx(sample.mean())
    assert interval.low < interval.value < interval.high
    assert (interval.high - interval.low) / 2 == pytest.approx(expected_half_width, rel=0.12)


def test_interval_contains_the_estimate_and_shrinks_with_more_rows():
    rng = np.random.default_rng(3)
    widths = []
    for n_rows in (50, 800):
        rows = list(rng.binomial(1, 0.6, size=n_rows).astype(float))
        interval = bootstrap_ci(rows, mean_of, n_bootstrap=1000, seed=0)
        assert interval.low <= interval.value <= interval.high
        widths.append(interval.high - interval.low)
    # The width scales as 1/sqrt(n): 16x the rows, about a quarter of the width.
    assert widths[1] / widths[0] == pytest.approx(0.25, abs=0.08)


def test_same_seed_same_interval_other_seed_other_interval():
    rows = list(np.linspace(0, 1, 30))
    assert bootstrap_ci(rows, mean_of, seed=7) == bootstrap_ci(rows, mean_of, seed=7)
    assert bootstrap_ci(rows, mean_of, seed=7) != bootstrap_ci(rows, mean_of, seed=8)


def test_metric_returning_a_dict_is_resampled_once_for_all_names():
    rows = [0.0, 0.2, 0.9, 1.0, 0.4]
    intervals = bootstrap_ci(rows, lambda sample: {"mean": mean_of(sample), "double": 2 * mean_of(sample)}, seed=0)
    assert intervals["double"].low == pytest.approx(2 * intervals["mean"].low)
    assert intervals["double"].high == pytest.approx(2 * intervals["mean"].high)


def test_undefined_resamples_are_left_out():
    # The metric is undefined (NaN) on resamples without a positive row; the interval uses the rest.
    def mean_of_positive(sample):
        positive = [value for value in sample if value > 0]
        return mean_of(positive)

    interval = bootstrap_ci([0.0, 0.0, 0.0, 2.0], mean_of_positive, n_bootstrap=200, seed=0)
    assert interval == Interval(2.0, 2.0, 2.0)


def test_paired_bootstrap_of_identical_inputs_is_zero():
    rows = list(np.random.default_rng(0).random(40))
    assert paired_bootstrap(rows, list(rows), mean_of) == Interval(0.0, 0.0, 0.0)


def test_paired_bootstrap_of_a_constant_shift_is_that_shift():
    rows_b = list(np.random.default_rng(0).random(40))
    rows_a = [value + 0.1 for value in rows_b]
    interval = paired_bootstrap(rows_a, rows_b, mean_of)
    assert (interval.value, interval.low, interval.high) == pytest.approx((0.1, 0.1, 0.1))


def test_pairing_removes_shared_item_difficulty():
    rng = np.random.default_rng(0)
    difficulty = rng.random(60)
    rows_b = difficulty
    rows_a = difficulty + 0.05 + rng.normal(0, 0.02, size=60)
    paired = paired_bootstrap(rows_a, rows_b, mean_of, seed=0)
    single_a = bootstrap_ci(rows_a, mean_of, seed=1)
    single_b = bootstrap_ci(rows_b, mean_of, seed=2)
    # Unpaired, the two intervals overlap; paired, the gain is clearly above zero.
    assert single_a.low < single_b.high
    assert 0.0 < paired.low < paired.value < paired.high < 0.1


def test_paired_bootstrap_rejects_unpaired_rows():
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0, 2.0], [1.0], mean_of)


def test_resample_indices_shape_and_range():
    indices = resample_indices(5, 3, seed=0)
    assert indices.shape == (3, 5)
    assert indices.min() >= 0 and indices.max() <= 4


def test_interval_json_has_no_nan():
    assert Interval(0.5, math.nan, math.nan).to_dict() == {"value": 0.5, "ci_low": None, "ci_high": None}


def test_bootstraps_pair_only_on_the_same_rows_and_seed():
    from affect_rl.stats import bootstrap

    rows = [0.1, 0.5, 0.9]
    same = bootstrap(rows, mean_of, n_bootstrap=50, seed=3).minus(bootstrap(rows, mean_of, n_bootstrap=50, seed=3))
    assert same.intervals()["_value"] == Interval(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same rows and seed"):
        bootstrap(rows, mean_of, seed=3).minus(bootstrap(rows, mean_of, seed=4))
