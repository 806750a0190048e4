"""Bootstrap intervals and paired differences, against values worked out by hand."""

import numpy as np
import pytest

from pamiq_ros.bench.statistics import Interval, bootstrap_ci, curve_band, paired_differences


def test_bootstrap_of_two_values_spans_their_resample_means():
    # Resamples of [0, 10] (two draws with replacement) have means 0, 5, 10 with
    # probabilities 1/4, 1/2, 1/4: the 2.5 % and 97.5 % quantiles are 0 and 10, and the
    # 30 % and 70 % quantiles both fall in the middle half, at 5.
    wide = bootstrap_ci([0.0, 10.0], confidence=0.95, resamples=20_000, seed=1)
    assert (wide.estimate, wide.low, wide.high, wide.samples) == (5.0, 0.0, 10.0, 2)
    narrow = bootstrap_ci([0.0, 10.0], confidence=0.4, resamples=20_000, seed=1)
    assert (narrow.low, narrow.high) == (5.0, 5.0)


def test_bootstrap_of_equal_values_or_of_one_value_has_no_width():
    assert bootstrap_ci([3.0, 3.0, 3.0]) == Interval(3.0, 3.0, 3.0, 3)
    assert bootstrap_ci([7.5]) == Interval(7.5, 7.5, 7.5, 1)


def test_bootstrap_is_reproducible_by_seed_and_covers_the_mean_of_a_sample():
    values = np.random.default_rng(0).normal(10.0, 2.0, size=40)
    first, again = bootstrap_ci(values, seed=3), bootstrap_ci(values, seed=3)
    assert first == again
    assert first.estimate == pytest.approx(values.mean())
    assert first.low < values.mean() < first.high
    # The percentile interval of a mean is close to mean +- 1.96 standard errors.
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert first.high - first.low == pytest.approx(2 * half_width, rel=0.15)


def test_bootstrap_takes_another_statistic():
    median = bootstrap_ci(
        [1.0, 2.0, 100.0], statistic=lambda rows: np.median(rows, axis=-1), resamples=500
    )
    assert median.estimate == 2.0
    assert median.low == 1.0 and median.high == 100.0


def test_bootstrap_refuses_what_it_cannot_resample():
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.0)


def test_interval_says_which_side_of_a_bar_it_lies_on():
    interval = Interval(0.5, 0.2, 0.8, 5)
    assert interval.above_zero and interval.below(1.0)
    assert not interval.below(0.7)
    assert not Interval(0.5, -0.1, 0.8, 5).above_zero
    assert interval.as_dict() == {
        "estimate": 0.5, "low": 0.2, "high": 0.8, "samples": 5, "confidence": 0.95,
    }  # fmt: skip


def test_paired_differences_pair_by_seed_and_drop_unpaired_seeds():
    first = {0: 10.0, 1: 12.0, 2: 9.0}
    second = {0: 7.0, 1: 12.0, 3: 1.0}
    assert paired_differences(first, second) == {0: 3.0, 1: 0.0}
    with pytest.raises(ValueError, match="no seed in common"):
        paired_differences({0: 1.0}, {1: 1.0})


def test_pairing_removes_what_the_seeds_share():
    # Both arms share a large per-seed offset; their difference is a constant 2.
    offsets = [0.0, 50.0, -30.0, 80.0, 10.0]
    curiosity = {seed: offset + 12.0 for seed, offset in enumerate(offsets)}
    random = {seed: offset + 10.0 for seed, offset in enumerate(offsets)}
    paired = bootstrap_ci(list(paired_differences(curiosity, random).values()))
    assert (paired.low, paired.high) == (2.0, 2.0)
    unpaired = bootstrap_ci(list(curiosity.values()))
    assert unpaired.high - unpaired.low > 20.0


def test_curve_band_gives_the_mean_and_interval_at_each_point():
    band = curve_band([[0.0, 1.0, 4.0], [0.0, 3.0, 4.0]])
    assert band["mean"] == [0.0, 2.0, 4.0]
    assert band["low"][0] == band["high"][0] == 0.0
    assert band["low"][1] == 1.0 and band["high"][1] == 3.0
    with pytest.raises(ValueError, match="equally long"):
        curve_band([[1.0], [1.0, 2.0]])
