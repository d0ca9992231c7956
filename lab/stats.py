"""The statistics of the experiments, in one place: means and standard errors, paired sign-flip
tests, rank correlations, bootstrap intervals, Holm's correction and trend words.

Tests and intervals come from :mod:`scipy.stats` (``permutation_test``, ``bootstrap``,
``spearmanr``).  Permutation tests are exact while the number of rearrangements is at most
``EXACT_LIMIT`` (2^n sign patterns of n paired values) and otherwise
estimated from ``EXACT_LIMIT`` random rearrangements of a seeded generator, so no test ever
enumerates a number of cases that grows without bound with the data.

>>> mean_se([1.0, 2.0, 3.0])
(2.0, 0.5773502691896258)
>>> sign_flip_p([1.0, 2.0, 3.0], alternative="greater")  # only the observed signs reach the mean
0.125
>>> holm([0.01, 0.04, 0.03], alpha=0.05).tolist()
[True, False, False]
>>> trend([0.5, 1.0]), trend([-1.0]), trend([1.0, -1.0]), trend([])
('increasing', 'decreasing', 'mixed', 'mixed')
"""

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

EXACT_LIMIT = 2**16  # rearrangements enumerated exactly (n ≤ 16 paired values, n ≤ 8 points)
SEED = 0  # the generator of estimated p-values and bootstrap intervals: results are reproducible

Alternative = Literal["two-sided", "greater", "less"]
Trend = Literal["increasing", "decreasing", "mixed"]


def mean_se(values: ArrayLike, keep: ArrayLike | None = None) -> tuple[float, float]:
    """Mean and standard error (ddof = 1) of ``values[keep]``, or of the finite values when ``keep``
    is None.  (nan, nan) for no value; the standard error is nan for one value, which has none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) if keep is None else np.asarray(keep)]
    if len(v) == 0:
        return np.nan, np.nan
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
    return float(v.mean()), float(se)


def geo_mean_factor(values: np.ndarray) -> tuple[float, float]:
    """Geometric mean of positive ``values`` and its multiplicative standard error."""
    logs = np.log(values)
    se = logs.std(ddof=1) / np.sqrt(len(logs)) if len(logs) > 1 else 0.0
    return float(np.exp(logs.mean())), float(np.exp(se))


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def sign_flip_p(diff: ArrayLike, alternative: Alternative = "two-sided") -> float:
    """p-value of the paired sign-flip permutation test of mean(``diff``) = 0 (non-finite values dropped).

    Under the null hypothesis each paired difference is as likely negative as positive; the p-value
    is the fraction of sign patterns whose mean is at least as extreme as the observed one, in the
    direction of ``alternative`` ("greater": mean > 0).  Exact for up to log2(``EXACT_LIMIT``) values.
    """
    d = np.asarray(diff, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return np.nan
    if len(d) == 1:  # scipy refuses one observation; its two sign patterns are +d and -d
        extreme = {"greater": -d[0] >= d[0], "less": -d[0] <= d[0], "two-sided": True}[alternative]
        return 1.0 if extreme else 0.5
    result = stats.permutation_test(
        (d,),
        _mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=EXACT_LIMIT,
        alternative=alternative,
        rng=np.random.default_rng(SEED),
    )
    return float(result.pvalue)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rank correlation of two samples (nan for fewer than two points)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return np.nan
    return float(stats.spearmanr(x, y).statistic)


def bootstrap_interval(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    level: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*samples, axis=-1)`` at confidence ``level``.

    Each sample is resampled with replacement independently of the others (a stratified
    bootstrap when the samples are the strata); ``statistic`` must accept batches along ``axis``.
    When every sample is constant (one observation, say) every resample is the data itself and
    the interval is the statistic's value (``scipy.stats.bootstrap`` refuses one observation).
    """
    if all(np.ptp(sample) == 0 for sample in samples):
        value = float(statistic(*samples, axis=-1))
        return value, value
    result = stats.bootstrap(
        tuple(samples),
        statistic,
        vectorized=True,
        paired=False,
        n_resamples=n_resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def holm(p: ArrayLike, alpha: float) -> np.ndarray:
    """Which hypotheses Holm's step-down procedure rejects at family-wise level ``alpha``.

    (Own code rather than ``statsmodels``: four lines do not justify a dependency.)
    """
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    passes = p[order] <= alpha / (len(p) - np.arange(len(p)))
    rejected = np.zeros(len(p), dtype=bool)
    rejected[order[: len(p) if passes.all() else int(np.argmin(passes))]] = True
    return rejected


def trend(steps: ArrayLike) -> Trend:
    """The direction of a sequence's changes: "increasing" when every step is positive,
    "decreasing" when every step is negative, "mixed" otherwise (also when there is none)."""
    s = np.asarray(steps, dtype=float)
    if len(s) and (s > 0).all():
        return "increasing"
    if len(s) and (s < 0).all():
        return "decreasing"
    return "mixed"
