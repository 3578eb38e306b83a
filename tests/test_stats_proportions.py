import numpy as np
import pytest

from bot.stats.interval import FAIL, INCONCLUSIVE, PASS, decide
from bot.stats.proportions import discordant_counts, mcnemar_exact, pass_rate_drop, wilson


def _cases(regressions, improvements, both_pass, both_fail):
    """(candidate, baseline) 0/1 results of binary cases with the given cells of the paired table."""
    cand = [0] * regressions + [1] * improvements + [1] * both_pass + [0] * both_fail
    base = [1] * regressions + [0] * improvements + [1] * both_pass + [0] * both_fail
    return cand, base


def test_mcnemar_exact__textbook_counts():
    # Bentur et al. 2009 in Fagerland, Lydersen & Laake 2014: 7 vs 1 discordant, exact two-sided p = 0.070.
    assert mcnemar_exact(7, 1) == pytest.approx(9 / 256)
    assert 2 * mcnemar_exact(7, 1) == pytest.approx(0.0703, abs=5e-5)
    # 8 regressions, 2 improvements: P(X ≥ 8 | Binomial(10, 1/2)) = (45 + 10 + 1) / 1024.
    assert mcnemar_exact(8, 2) == pytest.approx(56 / 1024)
    assert mcnemar_exact(1, 7) == pytest.approx(1 - 1 / 256)  # the candidate is better: no evidence it is worse


def test_mcnemar_exact__no_discordant_case_is_no_evidence():
    assert mcnemar_exact(0, 0) == 1.0


def test_mcnemar_exact__rejects_non_counts():
    with pytest.raises(ValueError, match="regressions is -1"):
        mcnemar_exact(-1, 3)
    with pytest.raises(ValueError, match="improvements is 1.5"):
        mcnemar_exact(1, 1.5)


def test_wilson__newcombe_1998_textbook_values():
    # Newcombe (1998) Stat. Med. 17:857, Table I, method 3 (score interval without continuity correction).
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert wilson(15, 148) == pytest.approx((0.0624, 0.1605), abs=5e-5)
    assert wilson(0, 20) == pytest.approx((0.0, 0.1611), abs=5e-5)
    assert wilson(1, 29) == pytest.approx((0.0061, 0.1718), abs=5e-5)


def test_wilson__rejects_impossible_counts():
    with pytest.raises(ValueError, match="between 0 and n = 5"):
        wilson(6, 5)
    with pytest.raises(ValueError, match="at least one trial"):
        wilson(0, 0)


def test_pass_rate_drop__bonett_price_textbook_example():
    # Cavo et al. 2012 in Fagerland, Lydersen & Laake (contingencytables, Wald_CI_BonettPrice_paired_2x2):
    # n12 = 6, n21 = 16, N = 161 → estimate −0.0621, 95% CI −0.1195 to −0.0032.
    iv = pass_rate_drop(*_cases(6, 16, 59, 80))
    assert iv.estimate == pytest.approx(-6.21, abs=0.005)
    assert (iv.low, iv.high) == pytest.approx((-11.95, -0.32), abs=0.005)
    assert iv.n == 161 and iv.method == "paired Wald, Bonett-Price adjusted"


def test_pass_rate_drop__identical_results_are_zero_width_and_pass_a_two_point_limit():
    cand, base = _cases(0, 0, 17, 3)
    iv = pass_rate_drop(cand, base)
    assert (iv.estimate, iv.low, iv.high, iv.width) == (0.0, 0.0, 0.0, 0.0)
    assert decide(iv, 2.0) == PASS
    fractions = [0.2, 0.6, 1.0, 0.8]
    assert pass_rate_drop(fractions, fractions).width == 0.0


def test_pass_rate_drop__verdicts_on_clear_and_unclear_drops():
    assert decide(pass_rate_drop(*_cases(30, 0, 60, 10)), 5.0) == FAIL  # 30 points lost
    assert decide(pass_rate_drop(*_cases(1, 0, 40, 9)), 2.0) == INCONCLUSIVE  # one case of fifty
    assert decide(pass_rate_drop(*_cases(0, 3, 400, 0)), 2.0) == PASS  # better on 3 of 403


def test_pass_rate_drop__fractional_cases_use_pass_fractions():
    base = [1.0, 0.8, 0.6, 1.0, 0.4, 1.0, 0.8, 1.0]
    cand = [0.8, 0.8, 0.4, 1.0, 0.4, 0.6, 0.8, 1.0]
    iv = pass_rate_drop(cand, base)
    assert iv.estimate == pytest.approx(100 * np.mean(np.subtract(base, cand)))
    assert iv.low < iv.estimate < iv.high
    # The same differences as whole-case flips weigh more: a fraction is less than a full regression.
    assert iv.width < pass_rate_drop(*_cases(3, 0, 5, 0)).width


def test_pass_rate_drop__interval_stays_within_plus_minus_100_points():
    iv = pass_rate_drop([0, 0], [1, 1], level=0.999)
    assert iv.high <= 100.0 and iv.low >= -100.0


def test_pass_rate_drop__narrows_as_cases_grow():
    widths = [pass_rate_drop(*_cases(2 * k, k, 15 * k, 2 * k)).width for k in (1, 4, 16)]
    assert widths[0] > widths[1] > widths[2]


@pytest.mark.parametrize("n, p10, p01", [(20, 0.2, 0.1), (50, 0.1, 0.05), (50, 0.2, 0.1), (100, 0.06, 0.02),
                                        (50, 0.1, 0.0), (100, 0.05, 0.0)])  # the last two: regressions only
def test_pass_rate_drop__covers_the_true_drop_at_small_n(n, p10, p01):
    # Seeded simulation: binary cases whose table cells have these probabilities (P(no case changes) < 2%).
    rng = np.random.default_rng(17)
    true_drop = 100 * (p10 - p01)
    covered = 0
    runs = 800
    for r, i, rest in rng.multinomial(n, [p10, p01, 1 - p10 - p01], size=runs):
        iv = pass_rate_drop(*_cases(r, i, rest, 0))
        covered += iv.low <= true_drop <= iv.high
    assert covered / runs >= 0.93  # nominal 0.95; 3 simulation SEs below is 0.927


def test_pass_rate_drop__covers_the_true_drop_with_sampled_cases():
    # 30 cases, 5 samples each; case pass probabilities vary; the candidate loses 8 points on average.
    rng = np.random.default_rng(23)
    covered, runs = 0, 800
    for _ in range(runs):
        p_base = rng.beta(5, 1.5, 30)
        p_cand = np.clip(p_base - rng.uniform(0, 0.16, 30), 0, 1)
        true_drop = 100 * np.mean(p_base - p_cand)  # the suite's expected drop, what the samples estimate
        iv = pass_rate_drop(rng.binomial(5, p_cand) / 5, rng.binomial(5, p_base) / 5)
        covered += iv.low <= true_drop <= iv.high
    assert covered / runs >= 0.93


def test_pass_rate_drop__rejects_results_outside_zero_one():
    with pytest.raises(ValueError, match=r"baseline\[1\] is 2.0; a case's result is its pass fraction"):
        pass_rate_drop([1, 0], [1, 2])


def test_discordant_counts__counts_regressions_and_improvements():
    assert discordant_counts(*_cases(6, 16, 59, 80)) == (6, 16)
    with pytest.raises(ValueError, match="binary cases"):
        discordant_counts([0.5, 1], [1, 1])
