import numpy as np
import pytest

from bot.stats.interval import INCONCLUSIVE, Interval, decide, level_percent, observations_to_settle, z_for_level
from bot.stats.paired import mean_difference


def _interval(estimate, half, sd, n=50, level=0.95):
    return Interval(estimate, estimate - half, estimate + half, level, "paired t", n, sd)


def test_z_for_level__textbook_quantiles():
    assert z_for_level(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_for_level(0.99) == pytest.approx(2.575829, abs=1e-6)
    assert z_for_level(0.90) == pytest.approx(1.644854, abs=1e-6)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        z_for_level(95)


def test_observations_to_settle__textbook_sample_size():
    # 80% power at two-sided 5%: n = (1.96 + 0.8416)² σ²/δ² = 7.849 σ²/δ²; σ = 1, δ = 0.5 → 31.4 → 32.
    assert observations_to_settle(_interval(0.0, 0.1, sd=1.0, n=500), 0.5) == 32
    # 90% power: (1.96 + 1.2816)² = 10.51 → 42.03 → 43.
    assert observations_to_settle(_interval(0.0, 0.1, sd=1.0, n=500), 0.5, power=0.9) == 43


def test_observations_to_settle__halving_the_distance_quadruples_it():
    far = observations_to_settle(_interval(0.0, 0.01, sd=2.0, n=5000), 1.0)
    near = observations_to_settle(_interval(0.5, 0.01, sd=2.0, n=5000), 1.0)
    assert near == pytest.approx(4 * far, rel=0.02)


def test_observations_to_settle__inconclusive_needs_more_than_it_has():
    iv = _interval(1.8, 0.5, sd=0.1, n=400)  # a t-like interval the normal formula would call settled
    assert decide(iv, 2.0) == INCONCLUSIVE
    assert observations_to_settle(iv, 2.0) == 401


def test_observations_to_settle__none_when_it_cannot_say():
    assert observations_to_settle(_interval(0.0, 1.0, sd=None), 0.5) is None
    assert observations_to_settle(_interval(0.5, 1.0, sd=1.0), 0.5) is None  # estimate on the limit
    assert observations_to_settle(_interval(0.0, 1.0, sd=float("nan")), 0.5) is None


def test_observations_to_settle__that_many_observations_settle_about_power_of_runs():
    # Seeded simulation: true effect 0.2 below a limit of 0.5, sd 1; plan from a pilot of 40.
    rng = np.random.default_rng(29)
    pilot = mean_difference(rng.normal(0.2, 1.0, 40), np.zeros(40), higher_is_better=False)
    planned = observations_to_settle(pilot, 0.5)
    assert 40 < planned < 400
    exact = observations_to_settle(Interval(0.2, 0.1, 0.3, 0.95, "paired t", 40, 1.0), 0.5)
    settled = sum(decide(mean_difference(rng.normal(0.2, 1.0, exact), np.zeros(exact), higher_is_better=False), 0.5)
                  != INCONCLUSIVE for _ in range(600))
    assert settled / 600 == pytest.approx(0.8, abs=0.05)


def test_observations_to_settle__rejects_a_power_that_is_not_a_probability():
    with pytest.raises(ValueError, match="power 80"):
        observations_to_settle(_interval(0.0, 0.1, sd=1.0), 0.5, power=80)


@pytest.mark.parametrize("level, text", [
    (0.95, "95%"), (0.9875, "98.75%"), (0.99991076, "99.9911%"),
    (1 - 5.7e-10, "99.99999994%"),  # an early sequential look: never printed as 100%
    (1 - 1e-12, "99.9999999999%"),
])
def test_level_percent__tells_a_level_from_certainty(level, text):
    assert level_percent(level) == text
