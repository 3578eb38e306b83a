from functools import cache

import numpy as np
import pytest

from bot.stats.interval import FAIL, INCONCLUSIVE, PASS, decide, z_for_level
from bot.stats.paired import mean_difference
from bot.stats.proportions import pass_rate_drop
from bot.stats.sequential import MIN_SPEND, Sequential, Step, looks, spent_alpha, spent_levels

LIMIT = 0.5
RUNS = 1000


def _run(plan, diffs):
    """(outcome, observations used) of the sequential rule on one stream of per-document differences."""
    outcomes = []
    while not (step := plan.step(outcomes)).stop:
        n = step.observations
        outcomes.append(decide(mean_difference(diffs[:n], np.zeros(n), higher_is_better=False, level=step.level), LIMIT))
    return step.outcome, plan.looks[step.look - 1]


@cache  # the fixed-count and naive rules serve as references in several tests
def _rates(plan, effect, seed=31):
    """Share of pass and of fail over seeded runs with the true effect ``effect`` (sd 1), and the mean count used."""
    rng = np.random.default_rng(seed)
    results = [_run(plan, rng.normal(effect, 1.0, plan.looks[-1])) for _ in range(RUNS)]
    return ({o: sum(r[0] == o for r in results) / RUNS for o in (PASS, FAIL, INCONCLUSIVE)},
            float(np.mean([r[1] for r in results])))


FIXED = Sequential((400,), (0.95,))
NAIVE = Sequential(looks(50, 400), (0.95,) * 4)  # a 95% interval at every look: what not to do


def test_looks__doubling_up_to_the_limit():
    assert looks(50, 400) == (50, 100, 200, 400)
    assert looks(50, 300) == (50, 100, 200, 300)
    assert looks(100, 100) == (100,)
    assert looks(10, 100, growth=3) == (10, 30, 90, 100)
    with pytest.raises(ValueError, match="growth 1"):
        looks(10, 100, growth=1)
    with pytest.raises(ValueError, match="at least minimum = 50"):
        looks(50, 40)


def test_spent_alpha__known_values_of_the_spending_functions():
    # O'Brien–Fleming type at t = 1/2: 2 − 2Φ(1.959964/√0.5) = 2 − 2Φ(2.771808) = 0.005575.
    assert spent_alpha(0.5, 0.05) == pytest.approx(0.005575, abs=2e-6)
    assert spent_alpha(1.0, 0.05) == pytest.approx(0.05)
    # Pocock type at t = 1/2: 0.05·ln(1 + (e − 1)/2) = 0.05·ln(1.859141) = 0.05·0.620115 = 0.031006.
    assert spent_alpha(0.5, 0.05, "pocock") == pytest.approx(0.031006, abs=2e-6)
    assert spent_alpha(0.0, 0.05) == 0.0


def test_spent_levels__spend_exactly_alpha_and_end_near_the_fixed_level():
    for spending in ("obrien-fleming", "pocock"):
        levels = spent_levels((50, 100, 200, 400), 0.05, spending)
        assert sum(1 - level for level in levels) == pytest.approx(0.05)
        assert all(0.95 < level < 1 for level in levels)
    obf = spent_levels((50, 100, 200, 400), 0.05)
    assert obf[0] > 0.9999999 and obf[-1] == pytest.approx(0.955575, abs=1e-6)
    assert spent_levels((400,), 0.05) == pytest.approx((0.95,))
    with pytest.raises(ValueError, match="spending 'linear'"):
        spent_levels((50, 100), 0.05, "linear")


def test_spent_levels__many_looks_keep_every_level_below_one():
    # Looks at 50 of 1000: O'Brien–Fleming spends 1.8e-18 there, and 1 − 1.8e-18 == 1.0 in floats.
    levels = spent_levels((50, 100, 200, 400, 800, 1000), 0.05)
    assert all(level < 1.0 for level in levels)
    assert levels[0] == 1 - MIN_SPEND
    assert sum(1 - level for level in levels) == pytest.approx(0.05, abs=1e-15)
    assert z_for_level(levels[0]) == pytest.approx(7.1305, abs=1e-3)  # a finite interval, not an error


def test_sequential__steps_through_the_plan():
    plan = Sequential.plan(50, 400)
    assert plan.step([]) == Step(False, observations=50, level=plan.levels[0], look=0)
    assert plan.step([INCONCLUSIVE]).observations == 100
    assert plan.step([INCONCLUSIVE, FAIL]) == Step(True, FAIL, look=2)
    assert plan.step([PASS]) == Step(True, PASS, look=1)
    assert plan.step([INCONCLUSIVE] * 4) == Step(True, INCONCLUSIVE, look=4)


def test_sequential__rejects_outcomes_the_plan_cannot_have():
    plan = Sequential.plan(50, 400)
    with pytest.raises(ValueError, match="look 1 was pass: the plan stopped there"):
        plan.step([PASS, FAIL])
    with pytest.raises(ValueError, match="5 outcomes for a plan of 4 looks"):
        plan.step([INCONCLUSIVE] * 5)
    with pytest.raises(ValueError, match="'error' of look 1"):
        plan.step(["error"])


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_sequential__false_verdicts_at_the_limit_no_more_than_a_fixed_count(spending):
    # True effect exactly at the limit, seen from both sides: a fail and a pass are each a false verdict
    # about which side of the limit it lies; a fixed count of 400 at 95% makes each about 2.5% of the time.
    fixed, _ = _rates(FIXED, LIMIT)
    naive, _ = _rates(NAIVE, LIMIT)
    seq, used = _rates(Sequential.plan(50, 400, spending=spending), LIMIT)
    slack = 3 * np.sqrt(0.025 * 0.975 / RUNS)
    for outcome in (PASS, FAIL):
        assert seq[outcome] <= fixed[outcome] + slack
        assert naive[outcome] > fixed[outcome] + slack  # peeking at 95% every look does inflate them
    assert used < 400  # even at the limit a run stops early now and then


def test_sequential__clear_effects_stop_at_an_early_look():
    plan = Sequential.plan(50, 400)
    worse, used_worse = _rates(plan, LIMIT + 1.5)  # 1.5 sd of one document's difference beyond the limit
    better, used_better = _rates(plan, LIMIT - 1.5)
    assert worse[FAIL] == 1.0 and better[PASS] == 1.0
    assert used_worse < 55 and used_better < 55  # nearly always the first look of 50


def test_sequential__moderate_effect_saves_documents_and_keeps_power():
    plan = Sequential.plan(50, 400)
    seq, used = _rates(plan, LIMIT - 0.3)
    fixed, _ = _rates(FIXED, LIMIT - 0.3)
    assert used < 300
    assert seq[PASS] >= fixed[PASS] - 0.05


def test_sequential__drives_the_pass_rate_interval_too():
    # 400 cases, the candidate fails 30% of those the baseline passes: settled before the last look.
    rng = np.random.default_rng(37)
    base = np.ones(400)
    cand = (rng.random(400) > 0.3).astype(float)
    plan = Sequential.plan(50, 400)
    outcomes = []
    while not (step := plan.step(outcomes)).stop:
        n = step.observations
        outcomes.append(decide(pass_rate_drop(cand[:n], base[:n], level=step.level), 2.0))
    assert step.outcome == FAIL and step.look < len(plan.looks)
