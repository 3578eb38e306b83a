"""How much slower one sample is than another: a location shift with a distribution-free interval.

Latencies of a candidate against its baseline are two independent samples, not pairs. The
Hodges–Lehmann estimate of the shift is the median of all candidate − baseline differences; its
confidence interval is the range of differences the Mann–Whitney test would not reject
(Hollander & Wolfe, *Nonparametric Statistical Methods*, §4.3; Kayenta judges canaries this way).
It assumes nothing about the distribution's shape and a few stalled requests cannot drag it.

On the log of the values a shift is a ratio, so `relative_shift` answers "the candidate takes
1.12× as long (95%: 1.05–1.20×)" in the limit's unit (a fraction of the baseline, positive =
worse). Round-level numbers (throughput per round) come in pairs of adjacent rounds and get a
paired interval on their log ratios instead (`paired_ratio`): the Hodges–Lehmann estimate with the
Wilcoxon signed-rank interval (Hollander & Wolfe §3.2), for the same reason: one round a neighbour's
burst stretched to twice its length moves a t interval by half its width, and this one barely.

Pure functions: the same inputs give the same interval.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import stats

from bot.stats.interval import Interval

HL_METHOD = "Hodges–Lehmann, Mann–Whitney interval (log scale)"
ROUNDS_METHOD = "Hodges–Lehmann, Mann–Whitney interval widened to the spread between round pairs (log scale)"
PAIRED_METHOD = "paired t on log ratios of round pairs"
PAIRED_RANK_METHOD = "Hodges–Lehmann, Wilcoxon signed-rank interval on log ratios of round pairs"
EXACT_MAX = 50  # exact null distribution when both samples are smaller (as R's wilcox.test); normal beyond


@lru_cache(maxsize=256)
def _u_counts(n: int, m: int) -> tuple[int, ...]:
    """How many of the C(n+m, n) orderings give each value 0..n·m of the Mann–Whitney U statistic:
    the coefficients of the Gaussian binomial [n+m choose n]_q, built one factor at a time
    (each partial product is itself a polynomial, so integer arithmetic stays exact)."""
    n, m = min(n, m), max(n, m)
    poly = [1]
    for k in range(1, n + 1):
        # × (1 − q^(m+k))
        grown = poly + [0] * (m + k)
        for i, c in enumerate(poly):
            grown[i + m + k] -= c
        # ÷ (1 − q^k): running sums with lag k
        for i in range(k, len(grown)):
            grown[i] += grown[i - k]
        poly = grown[: n * m + 1] if k == n else grown[: k * m + 1]
    return tuple(poly)


def mann_whitney_rank(n: int, m: int, level: float) -> int:
    """k such that the k-th smallest and k-th largest of the n·m differences bound the shift
    at ``level`` (two-sided): k − 1 is the largest U with P(U ≤ k − 1) ≤ (1 − level)/2.

    0 when the samples are too small for that level (no ordering is rare enough): the interval is
    then unbounded, which an early look at a very high level may well ask for.
    """
    if n < 1 or m < 1:
        raise ValueError("both samples need at least one value")
    alpha = (1 - level) / 2
    if n < EXACT_MAX and m < EXACT_MAX:
        return _exact_rank(_u_counts(n, m), alpha)
    return _normal_rank(n * m / 2, n * m * (n + m + 1) / 12, alpha)


def _exact_rank(counts: Sequence[int], alpha: float) -> int:
    """k − 1 = the largest statistic value whose lower tail P(S ≤ k − 1) is at most ``alpha``, from
    the statistic's null distribution as counts per value 0, 1, 2, ...; 0 when even P(S = 0) exceeds it."""
    total, cum, k = sum(counts), 0, 0
    for value, c in enumerate(counts):
        cum += c
        if cum / total > alpha:
            break
        k = value + 1
    return k


def _normal_rank(mean: float, variance: float, alpha: float) -> int:
    """`_exact_rank` by the normal approximation of a statistic with this null mean and variance."""
    return max(int(math.floor(mean - stats.norm.ppf(1 - alpha) * math.sqrt(variance))), 0)


@lru_cache(maxsize=256)
def _signed_rank_counts(n: int) -> tuple[int, ...]:
    """How many of the 2^n sign patterns give each value 0..n(n+1)/2 of the signed-rank statistic:
    the coefficients of ∏ₖ (1 + q^k), k = 1..n."""
    poly = [1]
    for k in range(1, n + 1):
        grown = poly + [0] * k
        for i, c in enumerate(poly):
            grown[i + k] += c
        poly = grown
    return tuple(poly)


def signed_rank_rank(n: int, level: float) -> int:
    """k such that the k-th smallest and k-th largest of the n(n+1)/2 Walsh averages of n paired
    differences bound their centre at ``level`` (two-sided): k − 1 is the largest W with
    P(W ≤ k − 1) ≤ (1 − level)/2. 0 when n is too small for that level (no sign pattern is rare enough)."""
    if n < 1:
        raise ValueError("the signed-rank interval needs at least one pair")
    alpha = (1 - level) / 2
    if n < EXACT_MAX:
        return _exact_rank(_signed_rank_counts(n), alpha)
    return _normal_rank(n * (n + 1) / 4, n * (n + 1) * (2 * n + 1) / 24, alpha)


def hodges_lehmann(baseline: Sequence[float], candidate: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(estimate, low, high) of the shift candidate − baseline."""
    x, y = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("values must be finite")
    diffs = np.sort((y[None, :] - x[:, None]).ravel())
    k = mann_whitney_rank(len(x), len(y), level)
    if k == 0:  # too few values to bound the shift at this level: it could be anything
        return float(np.median(diffs)), -math.inf, math.inf
    return float(np.median(diffs)), float(diffs[k - 1]), float(diffs[len(diffs) - k])


def _oriented(estimate: float, low: float, high: float, higher_is_better: bool) -> tuple[float, float, float]:
    """Log-ratio bounds → "how much worse" as a fraction of the baseline (positive = worse). An
    early look's level is so high that a bound may be astronomically far: it becomes infinite."""
    if higher_is_better:  # 0.9× the baseline's throughput is 10% worse
        return -_expm1(estimate), -_expm1(high), -_expm1(low)
    return _expm1(estimate), _expm1(low), _expm1(high)


def _expm1(x: float) -> float:
    return math.expm1(x) if x < 700 else math.inf


def relative_shift(baseline: Sequence[float], candidate: Sequence[float], *, level: float = 0.95,
                   higher_is_better: bool = False) -> Interval:
    """The candidate's values as a ratio of the baseline's, minus one, oriented so that positive is
    worse. ``sd`` is the standard error of the log shift implied by the interval times √(n + m): as
    for every interval here, the standard error is sd/√n (`settle_count` scales it)."""
    x, y = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("ratios need positive values")
    est, low, high = hodges_lehmann(np.log(x), np.log(y), level)
    se = (high - low) / (2 * stats.norm.ppf(0.5 + level / 2))
    n, m = len(x), len(y)
    e, lo, hi = _oriented(est, low, high, higher_is_better)
    return Interval(estimate=e, low=lo, high=hi, level=level, method=HL_METHOD, n=n + m, sd=se * math.sqrt(n + m))


def shift_over_rounds(baseline: Sequence[Sequence[float]], candidate: Sequence[Sequence[float]], *,
                      level: float = 0.95, higher_is_better: bool = False) -> Interval:
    """``baseline[i]`` and ``candidate[i]``: the values of the i-th pair of rounds (run back to back).

    Values within a round share the machine's state (a neighbour's job slows all of them), so
    pooled values are not independent and the Mann–Whitney interval alone is too narrow when the
    load changes between rounds. The interval is therefore the union of the pooled one and a t
    interval over the pairs' own Hodges–Lehmann shifts: the first governs when rounds agree, the
    second when they do not. The estimate is the pooled shift; ``sd`` the larger of the two
    standard errors (pooled, or between pairs) times √n, which is what more rounds must shrink."""
    if len(baseline) != len(candidate):
        raise ValueError("paired rounds must have the same count on both sides")
    pooled_b, pooled_c = [v for r in baseline for v in r], [v for r in candidate for v in r]
    pooled = relative_shift(pooled_b, pooled_c, level=level)  # for n and sd; checks the values are positive
    log = lambda a: np.log(np.asarray(a, dtype=float))  # noqa: E731
    est, low, high = hodges_lehmann(log(pooled_b), log(pooled_c), level)
    pairs = [(log(b), log(c)) for b, c in zip(baseline, candidate) if len(b) and len(c)]
    sd = pooled.sd
    if len(pairs) >= 2:
        shifts = np.array([np.median((c[None, :] - b[:, None]).ravel()) for b, c in pairs])
        se = shifts.std(ddof=1) / math.sqrt(len(shifts))
        half = stats.t.ppf(0.5 + level / 2, len(shifts) - 1) * se
        low, high = min(low, shifts.mean() - half), max(high, shifts.mean() + half)
        sd = max(sd, se * math.sqrt(pooled.n))
    e, lo, hi = _oriented(est, low, high, higher_is_better)
    return Interval(estimate=e, low=lo, high=hi, level=level, method=ROUNDS_METHOD, n=pooled.n, sd=sd)


def paired_ratio(baseline: Sequence[float], candidate: Sequence[float], *, level: float = 0.95,
                 higher_is_better: bool = True) -> Interval:
    """Pairs (baseline[i], candidate[i]) measured close in time: the shift of their log ratios.

    With enough pairs for ``level``, the Hodges–Lehmann estimate (median of the Walsh averages) and
    the Wilcoxon signed-rank interval: a pair disturbed by a neighbour's burst counts as one rank,
    not by its size. With fewer (an early look's very high level: 8 pairs cannot bound 99.9%), the
    mean with a t interval, so that a large difference can still settle early. Which one depends on
    the count and the level alone, never on the values. ``n`` is the number of pairs; ``sd`` the
    spread of one pair's log ratio (the t interval's, or the one the rank interval's width implies)."""
    x, y = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if len(x) != len(y):
        raise ValueError("paired samples must have the same length")
    if len(x) < 2:
        raise ValueError("a paired interval needs at least two pairs")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("ratios need positive values")
    d = np.log(y) - np.log(x)
    n = len(d)
    if k := signed_rank_rank(n, level):
        walsh = np.sort(((d[:, None] + d[None, :]) / 2)[np.triu_indices(n)])
        est, low, high = float(np.median(walsh)), float(walsh[k - 1]), float(walsh[len(walsh) - k])
        sd = (high - low) / (2 * stats.norm.ppf(0.5 + level / 2)) * math.sqrt(n)
        e, lo, hi = _oriented(est, low, high, higher_is_better)
        return Interval(estimate=e, low=lo, high=hi, level=level, method=PAIRED_RANK_METHOD, n=n, sd=sd)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    e, lo, hi = _oriented(mean, mean - half, mean + half, higher_is_better)
    return Interval(estimate=e, low=lo, high=hi, level=level, method=PAIRED_METHOD, n=n, sd=sd)


def log_standard_error(interval: Interval, *, higher_is_better: bool = False) -> float | None:
    """The standard error of the log ratio behind a shift interval: sd/√n where the method gave an
    ``sd``, else read off the bounds as a normal interval. None when it has no finite width: too few
    values for its level (an unbounded Mann–Whitney interval), which more of the same cannot scale.

    From ``sd`` rather than the bounds, because a bound can sit at a ratio of 0 or ∞ in floating point
    (two pairs of rounds give a t interval with one degree of freedom) while its width is finite."""
    if interval.sd is not None:
        return interval.sd / math.sqrt(interval.n) if math.isfinite(interval.sd) and interval.n > 0 else None
    lo, hi = _log_worse(interval.low, higher_is_better), _log_worse(interval.high, higher_is_better)
    half = (hi - lo) / 2
    return half / stats.norm.ppf(0.5 + interval.level / 2) if math.isfinite(half) else None


def _log_worse(w: float, higher_is_better: bool = False) -> float:
    """An oriented "how much worse" fraction back to the log ratio, worse = positive."""
    if higher_is_better:  # worse = 1 − r
        return -math.log1p(-w) if w < 1 else math.inf
    return math.log1p(w) if w > -1 else -math.inf


def settle_count(interval: Interval, limit: float, *, higher_is_better: bool = False, per_pair: float | None = None,
                 cap: int = 100_000) -> int | None:
    """About how many observations in total (``interval.n``'s unit) would put the whole interval on
    one side of ``limit`` if the estimate and the spread stayed what they are: the standard error
    shrinks as 1/√n on the log scale the interval was built on. None when the interval already
    settles it, or has no finite width to scale (`log_standard_error`); ``cap`` when the estimate
    sits on the limit; never fewer than n + 1 (it did not settle with n).

    ``per_pair``: observations per pair of rounds, when the width may come from the spread between
    pairs (`paired_ratio`: 1; `shift_over_rounds`: the requests of a pair). The quantile is then
    Student's t over the pairs that count would bring, not the normal one: two more pairs of rounds
    shrink a t interval over two pairs far more than √ says, and the count is the smallest that does."""
    if interval.low > limit or interval.high <= limit:
        return None
    se = log_standard_error(interval, higher_is_better=higher_is_better)
    if se is None:
        return None
    est, lim = _log_worse(interval.estimate, higher_is_better), _log_worse(limit, higher_is_better)
    gap = abs(lim - est)
    if gap < 1e-12:
        return cap
    n, tail = interval.n, 0.5 + interval.level / 2
    if not per_pair:
        return min(cap, max(n + 1, math.ceil(n * (stats.norm.ppf(tail) * se / gap) ** 2)))

    def settles(pairs: int) -> bool:  # t over `pairs` pairs at the spread seen, within the gap
        return stats.t.ppf(tail, pairs - 1) * se * math.sqrt(n / (pairs * per_pair)) <= gap

    low, high = max(2, math.floor(n / per_pair) + 1), max(2, math.ceil(cap / per_pair))
    if not settles(high):
        return cap
    while low < high:  # the smallest count of pairs that settles: the width only shrinks with more
        mid = (low + high) // 2
        low, high = (low, mid) if settles(mid) else (mid + 1, high)
    return min(cap, max(n + 1, math.ceil(low * per_pair)))
