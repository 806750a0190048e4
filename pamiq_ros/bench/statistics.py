"""Small statistics for benchmarks over seeds: bootstrap intervals and paired differences.

A benchmark arm runs once per seed; the seeds are the samples. :func:`bootstrap_ci` gives the
percentile-bootstrap interval of a statistic (the mean by default) over those samples, and
:func:`paired_differences` pairs two arms' figures by seed, so that what a seed shares (the
same world, the same initial weights) cancels out of the comparison.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Statistic = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]
"""Maps ``(resamples, n)`` to ``(resamples,)``, e.g. the mean along the last axis."""

DEFAULT_RESAMPLES = 10_000


def _mean_rows(samples: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return samples.mean(axis=-1)


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval.

    Attributes:
        estimate: The statistic of the samples themselves.
        low: Lower end of the interval.
        high: Upper end of the interval.
        samples: How many samples it rests on.
        confidence: The interval's coverage (0.95 for 95 %).
    """

    estimate: float
    low: float
    high: float
    samples: int
    confidence: float = 0.95

    @property
    def above_zero(self) -> bool:
        """Whether the whole interval lies above 0."""
        return self.low > 0.0

    def below(self, bound: float) -> bool:
        """Whether the whole interval lies below ``bound``."""
        return self.high < bound

    def as_dict(self) -> dict[str, float | int]:
        """Every figure, for JSON."""
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "samples": self.samples,
            "confidence": self.confidence,
        }

    def __str__(self) -> str:
        return f"{self.estimate:+.4g} [{self.low:+.4g}, {self.high:+.4g}]"


def bootstrap_ci(
    values: Sequence[float] | npt.ArrayLike,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    statistic: Statistic = _mean_rows,
) -> Interval:
    """Percentile-bootstrap confidence interval of ``statistic`` (the mean) over ``values``.

    Draws ``resamples`` samples of ``len(values)`` values with replacement and takes the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the statistic over
    them. One value gives a zero-width interval at that value (nothing to resample).

    Args:
        values: The samples (one per seed), finite.
        confidence: Coverage in (0, 1).
        resamples: Bootstrap resamples.
        seed: Seed of the resampling, so a report is reproducible.
        statistic: ``(resamples, n) -> (resamples,)``; the mean by default.

    Raises:
        ValueError: If there are no values, a value is not finite, or ``confidence`` or
            ``resamples`` is out of range.
    """
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    if data.size == 0:
        raise ValueError("a bootstrap needs at least one value")
    if not np.isfinite(data).all():
        raise ValueError(f"bootstrap values must be finite, got {data.tolist()}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    estimate = float(statistic(data[None, :])[0])
    if data.size == 1:
        return Interval(estimate, estimate, estimate, 1, confidence)
    rng = np.random.default_rng(seed)
    drawn = data[rng.integers(0, data.size, size=(resamples, data.size))]
    spread = statistic(drawn)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(spread, [tail, 1.0 - tail])
    return Interval(estimate, float(low), float(high), int(data.size), confidence)


def paired_differences(first: Mapping[int, float], second: Mapping[int, float]) -> dict[int, float]:
    """``first[seed] - second[seed]`` for every seed both hold, in seed order.

    Raises:
        ValueError: If the two share no seed.
    """
    common = sorted(set(first) & set(second))
    if not common:
        raise ValueError(f"no seed in common to pair: {sorted(first)} and {sorted(second)}")
    return {seed: float(first[seed]) - float(second[seed]) for seed in common}


def curve_band(
    curves: Sequence[Sequence[float]], confidence: float = 0.95, seed: int = 0
) -> dict[str, list[float]]:
    """Mean and bootstrap interval at each point of equally long curves (one per seed).

    Returns:
        ``{"mean": [...], "low": [...], "high": [...]}``, one entry per point.

    Raises:
        ValueError: If there are no curves or their lengths differ.
    """
    if not curves:
        raise ValueError("no curves to summarise")
    lengths = {len(curve) for curve in curves}
    if len(lengths) != 1:
        raise ValueError(f"curves must be equally long, got lengths {sorted(lengths)}")
    table = np.asarray(curves, dtype=np.float64)
    band: dict[str, list[float]] = {"mean": [], "low": [], "high": []}
    for column in table.T:
        interval = bootstrap_ci(column, confidence, resamples=2000, seed=seed)
        band["mean"].append(interval.estimate)
        band["low"].append(interval.low)
        band["high"].append(interval.high)
    return band
