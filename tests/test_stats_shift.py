"""bot.stats.shift on known answers: Mann–Whitney critical values from the printed tables, the
Hollander & Wolfe permeability example (R's `wilcox.test(x, y, conf.int = TRUE)`: shift 0.305),
the intervals' duality with scipy's exact Mann–Whitney and signed-rank tests, and ratios built to a known size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.stats import mannwhitneyu

from bot.stats.interval import decide
from bot.stats.shift import (
    PAIRED_METHOD,
    PAIRED_RANK_METHOD,
    hodges_lehmann,
    log_standard_error,
    mann_whitney_rank,
    paired_ratio,
    relative_shift,
    settle_count,
    shift_over_rounds,
    signed_rank_rank,
)

# Hollander & Wolfe (1973), p. 69: permeability constants of the human chorioamnion.
AT_TERM = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
WEEKS_12_26 = [1.15, 0.88, 0.90, 0.74, 1.21]


@pytest.mark.parametrize("n, critical_u", [(4, 0), (5, 2), (6, 5), (7, 8), (8, 13), (9, 17), (10, 23), (20, 127)])
def test_mann_whitney_rank__matches_the_two_sided_5pct_table(n, critical_u):
    # Tables list the largest U that rejects at α = 0.05 two-sided; the interval starts one rank above.
    assert mann_whitney_rank(n, n, 0.95) == critical_u + 1


def test_mann_whitney_rank__too_few_values_for_the_level_bound_nothing():
    assert mann_whitney_rank(3, 3, 0.95) == 0  # no ordering of 3 and 3 is rarer than 2.5%
    assert mann_whitney_rank(3, 3, 0.80) == 1
    _, low, high = hodges_lehmann([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], 0.95)
    assert (low, high) == (-math.inf, math.inf)


def test_shift_over_rounds__an_early_look_at_a_very_high_level_is_unbounded_not_an_error():
    """8 and 7 values at 99.99% (an O'Brien–Fleming first look): an interval that settles nothing."""
    base = [[100.0, 110.0, 105.0, 98.0], [101.0, 99.0, 108.0, 102.0]]
    cand = [[150.0, 160.0, 155.0, 149.0], [151.0, 158.0, 152.0]]
    iv = shift_over_rounds(base, cand, level=0.9999)
    assert iv.low == -1.0 and iv.high == math.inf and 0.4 < iv.estimate < 0.6
    assert decide(iv, 0.10) == "inconclusive"
    assert shift_over_rounds(base, cand, level=0.95).low > 0.10  # at 95% the same values fail it


def test_mann_whitney_rank__normal_approximation_beyond_the_exact_range_agrees_with_exact(monkeypatch):
    from bot.stats import shift

    approx = mann_whitney_rank(50, 50, 0.95)
    assert approx == math.floor(1250 - 1.959964 * math.sqrt(50 * 50 * 101 / 12))  # 965
    monkeypatch.setattr(shift, "EXACT_MAX", 51)
    assert abs(mann_whitney_rank(50, 50, 0.95) - approx) <= 1


def test_hodges_lehmann__permeability_example():
    estimate, low, high = hodges_lehmann(WEEKS_12_26, AT_TERM)
    assert estimate == pytest.approx(0.305)
    assert (low, high) == (pytest.approx(-0.15), pytest.approx(0.76))


def test_hodges_lehmann__interval_is_the_set_of_shifts_the_exact_test_keeps():
    x, y = np.array(AT_TERM), np.array(WEEKS_12_26)
    _, low, high = hodges_lehmann(WEEKS_12_26, AT_TERM)
    inside = [low + 1e-9, (low + high) / 2, high - 1e-9]
    outside = [low - 0.01, high + 0.01]
    assert all(mannwhitneyu(x - d, y, method="exact").pvalue >= 0.05 for d in inside)
    assert all(mannwhitneyu(x - d, y, method="exact").pvalue < 0.05 for d in outside)


def test_relative_shift__a_candidate_exactly_1_5x_slower():
    base = np.linspace(100.0, 200.0, 20)
    iv = relative_shift(base, 1.5 * base)
    assert iv.estimate == pytest.approx(0.5) and iv.low > 0.1 and iv.low < 0.5 < iv.high
    assert decide(iv, 0.10) == "fail" and iv.n == 40


def test_relative_shift__identical_samples_centre_on_zero_and_pass_a_wide_limit():
    rng = np.random.default_rng(7)
    base = rng.lognormal(mean=math.log(100), sigma=0.05, size=30)
    iv = relative_shift(base, base.copy())
    assert iv.estimate == pytest.approx(0.0, abs=1e-12) and iv.low < 0 < iv.high
    assert decide(iv, 0.10) == "pass"


def test_relative_shift__throughput_is_oriented_so_that_lower_is_worse():
    base = np.linspace(40.0, 60.0, 12)
    iv = relative_shift(base, 0.8 * base, higher_is_better=True)
    assert iv.estimate == pytest.approx(0.2)  # 0.8× the throughput: 20% worse
    assert iv.low <= 0.2 <= iv.high


def test_relative_shift__rejects_non_positive_values():
    with pytest.raises(ValueError, match="positive"):
        relative_shift([1.0, 0.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])


def test_paired_ratio__t_interval_on_log_ratios():
    # log ratios 0.1, 0.3: mean 0.2, sd 0.1414, t(0.975, 1) = 12.706 → half-width 1.2706.
    base = [10.0, 20.0]
    cand = [10.0 * math.exp(0.1), 20.0 * math.exp(0.3)]
    iv = paired_ratio(base, cand, higher_is_better=False)
    assert iv.estimate == pytest.approx(math.expm1(0.2))
    assert iv.low == pytest.approx(math.expm1(0.2 - 1.2706205), rel=1e-5)
    assert iv.high == pytest.approx(math.expm1(0.2 + 1.2706205), rel=1e-5)
    assert iv.n == 2 and iv.sd == pytest.approx(math.sqrt(0.02))


@pytest.mark.parametrize("n, at_5, at_1", [(5, None, None), (6, 0, None), (8, 3, 0), (10, 8, 3), (16, 29, 19),
                                         (20, 52, 37), (30, 137, 109)])
def test_signed_rank_rank__printed_critical_values(n, at_5, at_1):
    # Two-sided critical values of the Wilcoxon signed-rank statistic (reject at W ≤ value), as
    # printed in the tables (Hollander & Wolfe, Table A.4); None: no pattern is rare enough.
    assert signed_rank_rank(n, 0.95) == (0 if at_5 is None else at_5 + 1)
    assert signed_rank_rank(n, 0.99) == (0 if at_1 is None else at_1 + 1)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_paired_ratio__rank_interval_is_where_the_exact_signed_rank_test_stops_rejecting(level):
    d = np.random.default_rng(3).normal(0.05, 0.1, 12)
    iv = paired_ratio([100.0] * 12, list(100.0 * np.exp(d)), level=level, higher_is_better=False)
    assert iv.method == PAIRED_RANK_METHOD and iv.n == 12
    low, high = math.log1p(iv.low), math.log1p(iv.high)

    def p(theta: float) -> float:
        return stats.wilcoxon(d - theta, method="exact").pvalue

    eps, alpha = 1e-9, 1 - level
    assert p(low + eps) > alpha and p(high - eps) > alpha  # inside: not rejected
    assert p(low - eps) <= alpha and p(high + eps) <= alpha  # outside: rejected
    walsh = [(a + b) / 2 for i, a in enumerate(d) for b in d[i:]]
    assert math.log1p(iv.estimate) == pytest.approx(float(np.median(walsh)))


# Tokens per second of 16 round pairs of an A/A run on the mock server, one busy process beside the
# check (this 2-core machine, load about 3): in pairs 2 and 15 a neighbour's burst stretched one
# side's round (78 and 119 tokens/s against about 150), here the baseline's.
A_A_BASELINE = [156.8, 78.4, 163.9, 159.9, 156.2, 154.8, 158.9, 156.2, 152.6, 140.4, 141.3, 138.8, 140.9, 132.5,
                119.0, 130.3]
A_A_CANDIDATE = [147.7, 143.1, 155.4, 152.7, 157.2, 162.7, 156.9, 160.9, 164.0, 141.6, 146.2, 137.8, 147.5, 134.7,
                 150.6, 132.2]


def test_paired_ratio__disturbed_pairs_count_by_rank_not_by_size():
    level = 1 - 0.05 / 4 * (1 - 0.1111)  # about the default check's last look, one of four metrics
    rank = paired_ratio(A_A_BASELINE, A_A_CANDIDATE, level=level)
    d = np.log(A_A_CANDIDATE) - np.log(A_A_BASELINE)
    half = stats.t.ppf(0.5 + level / 2, 15) * d.std(ddof=1) / 4
    t_low, t_high = math.expm1(d.mean() - half), math.expm1(d.mean() + half)  # change in tokens per second
    assert rank.method == PAIRED_RANK_METHOD
    r_low, r_high = -rank.high, -rank.low  # "worse by" back to the change
    assert r_high - r_low < 0.7 * (t_high - t_low)
    # The identical servers must not look 20% faster: the t interval reaches within a point of that
    # win, the rank interval stays 5 points short of it.
    assert 0.18 < t_high < 0.20 and r_high < 0.15
    assert decide(rank, -0.20) == "fail"


def test_paired_ratio__too_few_pairs_for_the_level_take_the_t_interval():
    # An early look at 99.86% (O'Brien–Fleming at 8 of 16 pairs, one of four metrics): 8 pairs have
    # no sign pattern that rare, so the t interval decides, and a large difference can still settle.
    d = np.array([0.40, 0.42, 0.38, 0.41, 0.39, 0.43, 0.40, 0.41])
    iv = paired_ratio([1.0] * 8, list(np.exp(d)), level=0.99863, higher_is_better=False)
    assert signed_rank_rank(8, 0.99863) == 0
    assert iv.method == PAIRED_METHOD and iv.estimate == pytest.approx(math.expm1(d.mean()))
    assert decide(iv, 0.10) == "fail"


def test_paired_ratio__needs_two_pairs_of_equal_length():
    with pytest.raises(ValueError, match="two pairs"):
        paired_ratio([1.0], [1.0])
    with pytest.raises(ValueError, match="same length"):
        paired_ratio([1.0, 2.0], [1.0])


def test_settle_count__quadruples_the_sample_to_halve_the_width():
    # estimate 0 on the log scale, half-width 0.2 of the log ratio, limit log(1.1) ≈ 0.0953 away.
    from bot.stats.interval import Interval

    iv = Interval(estimate=0.0, low=math.expm1(-0.2), high=math.expm1(0.2), level=0.95, method="m", n=40)
    assert settle_count(iv, 0.10) == math.ceil(40 * (0.2 / math.log(1.1)) ** 2)  # 177
    settled = Interval(estimate=0.0, low=-0.05, high=0.05, level=0.95, method="m", n=40)
    assert settle_count(settled, 0.10) is None
    on_the_limit = Interval(estimate=0.10, low=0.0, high=0.2, level=0.95, method="m", n=40)
    assert settle_count(on_the_limit, 0.10) == 100_000


def test_settle_count__pairs_count_by_students_t_at_the_pairs_they_would_be():
    # log ratios 0.1, 0.3 (sd 0.1414) against 1.5 (log 0.405): the smallest P with
    # t(0.975, P − 1) · 0.1414 / √P ≤ 0.405 − 0.2 settles it; the normal quantile alone says fewer.
    iv = paired_ratio([1.0, 1.0], [math.exp(0.1), math.exp(0.3)], higher_is_better=False)
    need = settle_count(iv, 0.5, per_pair=1)
    gap, sd = math.log(1.5) - 0.2, math.sqrt(0.02)
    assert stats.t.ppf(0.975, need - 1) * sd / math.sqrt(need) <= gap
    assert stats.t.ppf(0.975, need - 2) * sd / math.sqrt(need - 1) > gap
    assert need == 5 and settle_count(iv, 0.5) == 3  # at 1.96; t over 4 pairs is 3.18, over 5 pairs 2.78


def test_settle_count__a_bound_at_a_ratio_of_0_still_has_a_width():
    # Two pairs whose shifts are e^±1: the t interval over them (one degree of freedom, 99%) runs
    # past e^−37, which is a ratio of 0 in floats. The standard error is still finite.
    base = [[10.0, 10.5, 9.8, 10.2], [10.0, 10.1, 10.3, 9.9]]
    cand = [[10 * math.e] * 4, [10 / math.e] * 4]
    iv = shift_over_rounds(base, cand, level=0.99)
    assert iv.low == -1.0 and math.isfinite(iv.sd)
    assert log_standard_error(iv) == pytest.approx(iv.sd / math.sqrt(16))
    need = settle_count(iv, 0.10, per_pair=8)
    assert need is not None and need % 8 == 0 and 16 < need < 100_000
    # Too few values for the level (no Mann–Whitney bound at all): nothing to scale.
    unbounded = relative_shift([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], level=0.95)
    assert log_standard_error(unbounded) is None and settle_count(unbounded, 0.10) is None


def test_shift_over_rounds__pairs_that_disagree_widen_the_interval_to_their_t_interval():
    from bot.stats.shift import shift_over_rounds

    # Within each pair the candidate is exactly e^0.1 and e^0.3 times the baseline: the pairs'
    # shifts are 0.1 and 0.3, so the t interval over pairs is 0.2 ± 12.706 · 0.1414 / √2.
    base = [list(np.linspace(10, 20, 8)), list(np.linspace(10, 20, 8))]
    cand = [[v * math.exp(0.1) for v in base[0]], [v * math.exp(0.3) for v in base[1]]]
    iv = shift_over_rounds(base, cand)
    assert iv.low == pytest.approx(math.expm1(0.2 - 1.2706205), rel=1e-5)
    assert iv.high == pytest.approx(math.expm1(0.2 + 1.2706205), rel=1e-5)
    assert iv.n == 32 and decide(iv, 0.10) == "inconclusive"


def test_shift_over_rounds__pairs_that_agree_keep_the_pooled_interval():
    from bot.stats.shift import shift_over_rounds

    rng = np.random.default_rng(11)
    base = [list(rng.lognormal(4, 0.1, 10)) for _ in range(4)]
    cand = [[v * 1.5 for v in r] for r in base]  # every pair exactly 1.5×: no spread between pairs
    iv = shift_over_rounds(base, cand)
    pooled = relative_shift([v for r in base for v in r], [v for r in cand for v in r])
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((pooled.estimate, pooled.low, pooled.high))
    assert decide(iv, 0.10) == "fail"
