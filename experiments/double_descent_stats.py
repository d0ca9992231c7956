"""The statistics of the double-descent stage: the interpolation threshold, the test peak's
bootstrap interval and item (d)'s paired comparison of two training-set sizes.

Used by the present module :mod:`experiments.double_descent_plot`; generic tests and intervals
come from :mod:`lab.stats`.
"""

from collections.abc import Sequence

import numpy as np

from experiments.double_descent import Results
from lab.stats import Trend, bootstrap_interval, holm, sign_flip_p, trend

LEVEL = 0.95  # confidence of the paired bootstrap intervals of item (d)
RESAMPLES = 10_000  # bootstrap resamples of the seeds
PEAK_RESAMPLES = 2_000  # bootstrap resamples for the location of the test peak
ALPHA = 0.05  # family-wise error rate of the scan over all widths in item (d)
BOOTSTRAP_SEED = 0


def threshold_index(interpolated: np.ndarray) -> int | None:
    """Index of the smallest width at which every seed interpolates; None if there is none.

    ``interpolated`` is (n_widths, n_seeds) boolean, widths sorted.  A wider network can represent
    every narrower one (zero weights on its extra units), so capacity only grows with the width: a
    seed that stalls above this width is an optimizer failure and does not move the threshold
    (:func:`settled_index` gives the width from which on no seed fails).
    """
    every = np.flatnonzero(interpolated.all(axis=1))
    return int(every[0]) if every.size else None


def median_threshold_index(train: np.ndarray, tol: float) -> int | None:
    """Index of the smallest width whose median final training MSE over the seeds is below ``tol``: the
    width from which the median network interpolates, the statistic the section's curves and test peak use.

    ``train`` is (n_widths, n_seeds); None if no median reaches ``tol``.
    """
    below = np.flatnonzero(np.median(train, axis=1) < tol)
    return int(below[0]) if below.size else None


def settled_index(interpolated: np.ndarray) -> int | None:
    """Index of the smallest width from which on every seed interpolates; None if the widest does not."""
    every = interpolated.all(axis=1)
    if not every[-1]:
        return None
    below = np.flatnonzero(~every)
    return int(below[-1]) + 1 if below.size else 0


def first_below(curves: np.ndarray, level: float) -> np.ndarray:
    """First iteration at which each curve is below ``level`` (-1 if never); curves (..., T), entry k after k steps."""
    below = curves < level
    return np.where(below.any(-1), below.argmax(-1), -1)


def paired_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Median of b - a over paired seeds and its percentile bootstrap interval at ``LEVEL`` (the section
    summarizes seeds by medians throughout, as its figure does)."""
    diff = b - a
    low, high = bootstrap_interval((diff,), np.median, LEVEL, RESAMPLES, BOOTSTRAP_SEED)
    return float(np.median(diff)), low, high


def peak_range(test: np.ndarray) -> tuple[int, int]:
    """Width indices bounding the ``LEVEL`` bootstrap interval of the median test curve's peak.

    ``test`` is (n_widths, n_seeds); each resample draws the seeds of every width with replacement
    (independently per width) and takes the argmax of the median over them.  Own resampling rather
    than :func:`lab.stats.bootstrap_interval`: the statistic is an index, whose interval must be read
    from its discrete distribution (``inverted_cdf``), not interpolated between widths.
    """
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n_widths, n_seeds = test.shape
    draws = rng.integers(0, n_seeds, (PEAK_RESAMPLES, n_widths, n_seeds))
    peaks = np.median(test[np.arange(n_widths)[None, :, None], draws], axis=2).argmax(axis=1)
    low, high = np.quantile(peaks, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], method="inverted_cdf")
    return int(low), int(high)


def speed_trend(widths: Sequence[int], steps: Sequence[int]) -> Trend:
    """How the iterations to the target change with the width: "decreasing" (wider is faster) when
    no step rises, "increasing" when none falls, else (or when nothing changes) "mixed"."""
    changes = np.diff(steps)
    return trend(changes[changes != 0])


def more_data(results: Results) -> tuple[list[tuple[float, float, float]], np.ndarray]:
    """Item (d): paired N = n1 vs n2 test MSE per width.

    Returns each width's median paired difference with its bootstrap interval (for the two chosen widths)
    and, for the scan over every width, where more data hurts by the one-sided exact sign-flip
    test with Holm's correction at family-wise level ``ALPHA``.
    """
    first, second = results.sweeps[0], results.sweeps[-1]
    intervals = [paired_interval(a, b) for a, b in zip(first.test, second.test, strict=True)]
    p = np.array(
        [sign_flip_p(b - a, alternative="greater") for a, b in zip(first.test, second.test, strict=True)]
    )
    return intervals, holm(p, ALPHA)
