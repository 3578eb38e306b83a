"""Paired intervals of how much worse the candidate is than its baseline on the same documents.

Both models answer the same documents, so their per-document scores are correlated; the interval of
the per-document *differences* is much narrower than one built from two separate standard errors
(Miller 2024, "Adding Error Bars to Evals", arXiv:2411.00640, section "paired differences").
lm-eval's own `model_comparator.py` is the unpaired z-test this replaces.

- `mean_difference`: mean metrics (acc, acc_norm, exact_match...), worse-by in the metric's unit
  times ``scale``; paired t interval.
- `relative_mean_difference`: the same as a fraction of the baseline mean; delta method.
- `aggregate_change`: corpus aggregates (word/byte perplexity, bits per byte) as a relative change;
  paired bootstrap over documents (BCa).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from scipy import stats

from bot.stats.interval import Interval, z_for_level
from bot.stats.samples import check_level, paired, values

PERPLEXITY_KINDS = ("word_perplexity", "byte_perplexity")
AGGREGATE_KINDS = PERPLEXITY_KINDS + ("bits_per_byte",)

# Resamples: at least this many, and enough that each tail of the interval rests on TAIL_RESAMPLES
# of them; beyond MAX_RESAMPLES (levels above ~99.75%, e.g. the early looks of a sequential plan) the
# bootstrap cannot resolve the tail and the normal interval on the log scale takes over.
MIN_RESAMPLES = 4000
MAX_RESAMPLES = 20000
TAIL_RESAMPLES = 25


def _t_interval(diffs: np.ndarray, level: float, method: str) -> Interval:
    """Student t interval of the mean of ``diffs`` (one value per observation)."""
    n = diffs.size
    mean = float(diffs.mean())
    sd = float(diffs.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, level, method, n, sd)


def mean_difference(candidate: Sequence[float], baseline: Sequence[float], *, higher_is_better: bool,
                    level: float = 0.95, scale: float = 1.0) -> Interval:
    """Paired t interval of how much worse the candidate's mean is, in the metric's unit × ``scale``.

    ``candidate[i]`` and ``baseline[i]`` are the two models' scores on document i. The per-document
    worse-by is ``baseline − candidate`` when higher is better, else ``candidate − baseline``, times
    ``scale`` (100 turns fractions into points). Interval: mean ± t_{1-α/2, n−1} · sd/√n of those
    differences, the paired t interval (Student 1908; the interval behind `scipy.stats.ttest_rel`).
    ``sd`` is the sd of the scaled differences. Identical inputs give a zero-width interval at 0.
    """
    level = check_level(level)
    c, b = paired(candidate, baseline)
    diffs = (b - c if higher_is_better else c - b) * float(scale)
    return _t_interval(diffs, level, "paired t")


def relative_mean_difference(candidate: Sequence[float], baseline: Sequence[float], *,
                             higher_is_better: bool, level: float = 0.95) -> Interval:
    """How much worse the candidate's mean is as a fraction of the baseline mean (0.03 = 3% worse).

    With R = mean(candidate)/mean(baseline), worse-by is 1 − R when higher is better, else R − 1.
    Method: delta method for a ratio of paired means (e.g. Cochran 1977, "Sampling Techniques",
    §6.4, the ratio estimator): R's influence of document i is (c_i − R·b_i)/mean(b), and the t
    interval of its mean is the interval of R. Chosen over a bootstrap because the ratio of two
    means is smooth and near-normal at gate sizes (≥ 50 documents, baseline mean well above 0):
    it is deterministic without a seed, costs nothing, and its ``sd`` is the one the sample-size
    estimate needs. Identical inputs give a zero-width interval at 0. A baseline mean ≤ 0 has no
    relative change and raises.
    """
    level = check_level(level)
    c, b = paired(candidate, baseline)
    base = float(b.mean())
    if base <= 0:
        raise ValueError(f"baseline mean is {base}; a relative change needs a positive baseline mean "
                         "(use an absolute limit for this metric)")
    ratio = float(c.mean()) / base
    influence = (c - ratio * b) / base
    sign = -1.0 if higher_is_better else 1.0
    t = _t_interval(influence, level, "paired delta method")
    est = sign * (ratio - 1.0)
    half = (t.high - t.low) / 2
    return Interval(est, est - half, est + half, level, "paired delta method", t.n, t.sd)


def _aggregate_log_ratio(kind: str, cand_ll, base_ll, weights, axis=-1):
    """log(candidate aggregate / baseline aggregate), along ``axis`` (vectorised over resamples).

    Perplexity exp(−Σll/Σw): the log ratio is (Σll_b − Σll_c)/Σw. Bits per byte −Σll/(Σbytes·ln 2):
    the bytes cancel and the log ratio is log(Σll_c/Σll_b).
    """
    sc, sb = np.sum(cand_ll, axis=axis), np.sum(base_ll, axis=axis)
    if kind == "bits_per_byte":
        return np.log(sc / sb)
    return (sb - sc) / np.sum(weights, axis=axis)


def _log_ratio_influence(kind: str, c: np.ndarray, b: np.ndarray, w: np.ndarray, log_ratio: float) -> np.ndarray:
    """Each document's linearised contribution to the log ratio (delta method), mean 0 by construction."""
    if kind == "bits_per_byte":
        return c / c.mean() - b / b.mean()
    return ((b - c) - log_ratio * w) / w.mean()


def aggregate_change(candidate_ll: Sequence[float], baseline_ll: Sequence[float], weights: Sequence[float], *,
                     kind: str, level: float = 0.95, seed: int = 0, iterations: int | None = None) -> Interval:
    """Relative change of a corpus aggregate, candidate/baseline − 1 (positive = worse), paired over documents.

    ``candidate_ll[i]``, ``baseline_ll[i]``: the two models' loglikelihoods of document i (≤ 0);
    ``weights[i]``: its word count (``word_perplexity``) or byte count (``byte_perplexity``,
    ``bits_per_byte``), the same for both models. Aggregates as lm-eval computes them:
    perplexity = exp(−Σll/Σw), bits_per_byte = −Σll/(Σbytes·ln 2); lower is better for all three.

    Method: paired bootstrap over documents (Efron & Tibshirani 1993, "An Introduction to the
    Bootstrap", ch. 14): each resample draws documents with replacement once and recomputes both
    aggregates on it, so the correlation between the models is kept. The interval is BCa (bias-
    corrected and accelerated, Efron 1987, JASA 82:171), second-order accurate and transformation
    respecting, which matters for a ratio of exponentials whose bootstrap distribution is skewed;
    computed by `scipy.stats.bootstrap(paired=True, method="BCa")`, seeded with ``seed``, so the same
    inputs give the same interval. lm-eval reports no standard error at all for these aggregates.

    ``iterations`` (default: enough for the level, at least 4000) resamples. When ``level`` is too
    high for the resamples to resolve its tails (above ~99.75%, the early looks of a sequential
    plan), the interval is the normal one on the log scale with the delta-method standard error
    instead (method says which). ``sd`` is always the delta-method sd of one document's contribution
    to the change, for the sample-size estimate. Identical inputs give [0, 0].
    """
    if kind not in AGGREGATE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(AGGREGATE_KINDS)}")
    level = check_level(level)
    c, b = paired(candidate_ll, baseline_ll, names=("candidate_ll", "baseline_ll"))
    w = values(weights, "weights")
    if w.size != c.size:
        raise ValueError(f"weights has {w.size} values and candidate_ll {c.size}; one word or byte count per document")
    if np.any(w <= 0):
        raise ValueError(f"weights[{int(np.flatnonzero(w <= 0)[0])}] is not positive; every document needs "
                         "a positive word or byte count")
    if kind == "bits_per_byte" and (c.sum() >= 0 or b.sum() >= 0):
        raise ValueError("the loglikelihoods of each model must sum to a negative number for bits_per_byte")

    log_ratio = float(_aggregate_log_ratio(kind, c, b, w))
    change = math.expm1(log_ratio)
    influence = _log_ratio_influence(kind, c, b, w, log_ratio)
    n = c.size
    # d(e^L − 1)/dL = e^L: one document's contribution to the change, for observations_to_settle.
    sd = (1.0 + change) * float(influence.std(ddof=1))
    if sd <= 1e-12 * (1.0 + abs(change)):
        # Every resample gives the same change (identical models, or exactly proportional
        # loglikelihoods for bits_per_byte): the data leave no doubt about it.
        return Interval(change, change, change, level, "paired bootstrap", n, 0.0)

    tail = (1.0 - level) / 2
    resamples = iterations if iterations is not None else min(MAX_RESAMPLES, max(MIN_RESAMPLES, math.ceil(TAIL_RESAMPLES / tail)))
    if tail * resamples < TAIL_RESAMPLES:
        half = z_for_level(level) * float(influence.std(ddof=1)) / math.sqrt(n)
        return Interval(change, math.expm1(log_ratio - half), math.expm1(log_ratio + half), level,
                        "delta method on the log scale", n, sd)

    def statistic(cc, bb, ww, axis=-1):
        return np.expm1(_aggregate_log_ratio(kind, cc, bb, ww, axis=axis))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a degenerate bootstrap must not pass as an interval
        res = stats.bootstrap((c, b, w), statistic, paired=True, vectorized=True, n_resamples=resamples,
                              confidence_level=level, method="BCa", rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    # BCa endpoints are resampled values; keep the point estimate inside them despite float noise.
    return Interval(change, min(low, change), max(high, change), level, "paired bootstrap BCa", n, sd)
