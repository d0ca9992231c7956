"""lab.stats: exact permutation p-values where enumerable, estimated ones beyond, Holm, bootstrap, trends."""

import math

import numpy as np
import pytest

from lab import stats


def test_mean_se_of_the_kept_or_finite_values():
    assert stats.mean_se([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1 / math.sqrt(3)))
    assert stats.mean_se([1.0, np.nan, 3.0]) == pytest.approx((2.0, 1.0))
    assert stats.mean_se([1.0, 5.0, 3.0], keep=[True, False, True]) == pytest.approx((2.0, 1.0))
    mean, se = stats.mean_se([4.0])
    assert mean == 4.0 and math.isnan(se)  # one value has no standard error
    assert all(math.isnan(v) for v in stats.mean_se([np.nan]))


@pytest.mark.parametrize(
    ("diff", "alternative", "p"),
    [
        ([1.0, 2.0, 3.0], "greater", 1 / 8),  # only the observed signs reach the mean
        ([1.0, -1.0], "greater", 3 / 4),  # means 0, 1, -1, 0: three reach 0
        (np.full(10, 0.5), "greater", 2.0**-10),
        ([1.0, 2.0, 3.0], "less", 1.0),
        ([-1.0, -2.0, -3.0], "less", 1 / 8),
        ([1.0, 2, 3, 4, 5, 6], "two-sided", 2 / 64),
        ([1.0, -1.0], "two-sided", 1.0),
        ([2.0], "greater", 0.5),  # one value: +2 and -2
        ([2.0], "less", 1.0),
        ([2.0], "two-sided", 1.0),
    ],
    ids=[
        "greater",
        "greater-ties",
        "greater-ten",
        "less-wrong-side",
        "less",
        "two-sided",
        "two-sided-zero",
        "one-greater",
        "one-less",
        "one-two-sided",
    ],
)
def test_sign_flip_p_is_exact_for_few_values(diff, alternative, p):
    assert stats.sign_flip_p(np.array(diff), alternative=alternative) == pytest.approx(p)


def test_sign_flip_p_estimates_beyond_the_exact_limit():
    # 2^30 sign patterns are never enumerated; the estimate of the exact 2^-30 is bounded by its resamples
    p = stats.sign_flip_p(np.ones(30), alternative="greater")
    assert 0 < p <= 2 / stats.EXACT_LIMIT
    assert stats.sign_flip_p(np.r_[np.ones(15), -np.ones(15)]) > 0.5
    assert math.isnan(stats.sign_flip_p(np.array([np.nan])))


def test_spearman_of_a_reversed_order_is_minus_one():
    assert stats.spearman([1.0, 2.0, 3.0], [3.0, 1.0, 0.0]) == pytest.approx(-1.0)


def test_bootstrap_interval_covers_a_shift_only_when_there_is_one():
    rng = np.random.default_rng(1)
    shifted = 0.2 + rng.normal(0, 0.01, 10)
    low, high = stats.bootstrap_interval((shifted,), np.mean)
    assert 0 < low < shifted.mean() < high
    low, high = stats.bootstrap_interval((rng.normal(0, 0.3, 10),), np.mean)
    assert low < 0 < high
    assert stats.bootstrap_interval((shifted,), np.mean) == stats.bootstrap_interval((shifted,), np.mean)


def test_holm_steps_down_and_stops_at_the_first_failure():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2: stop; 0.04 is not tested
    np.testing.assert_array_equal(stats.holm(p, 0.05), [True, False, False, True])
    np.testing.assert_array_equal(stats.holm(np.array([0.001, 0.002]), 0.05), [True, True])
    assert not stats.holm(np.array([0.2, 0.3]), 0.05).any()


@pytest.mark.parametrize(
    ("steps", "word"),
    [
        ([1.0, 2.0], "increasing"),
        ([-1.0, -0.5], "decreasing"),
        ([1.0, -1.0], "mixed"),
        ([], "mixed"),
        ([0.0], "mixed"),
    ],
)
def test_trend_words(steps, word):
    assert stats.trend(steps) == word
