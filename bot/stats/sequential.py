"""Stop evaluating once the verdict is settled: planned looks at growing batches of documents.

Looking at a 95% interval after every batch and stopping at the first pass or fail inflates the
false verdicts: with four looks each error rises from 2.5% to about 6% per side (Armitage,
McPherson & Rowe 1969, "Repeated significance tests on accumulating data", JRSS A 132:235; the
seeded simulation in tests/test_stats_sequential.py measures it). Instead the overall error α
is *spent* over the planned looks with a Lan–DeMets spending function (Lan & DeMets 1983,
"Discrete sequential boundaries for clinical trials", Biometrika 70:659), and the interval at
look k is computed at level 1 − α_k, where α_k is the share spent at that look:

- ``obrien-fleming`` (default): α(t) = 2 − 2Φ(z_{1−α/2}/√t), the O'Brien–Fleming-type function
  (O'Brien & Fleming 1979, Biometrics 35:549). Spends almost nothing early, so only a clear
  difference stops at the first look and the last look keeps nearly the fixed-count level
  (≈ 95.6% instead of 95% for looks 50, 100, 200, 400).
- ``pocock``: α(t) = α·ln(1 + (e − 1)t), the Pocock-type function (Pocock 1977, Biometrika 64:191).
  Stops earlier on moderate differences, at the price of a stricter last look.

t is the information fraction n_k/n_K (the variance of a paired mean falls as 1/n). The error
guarantee uses the union bound: a false verdict at look k needs the look-k interval to miss the
true value, which happens with probability ≤ α_k, so over all looks ≤ Σ α_k = α, whatever the
dependence between looks and whatever the interval method (paired t, bootstrap, Bonett–Price):
each only needs its ``level`` argument. The exact Lan–DeMets boundaries would be a little less
conservative but hold only for normal statistics with independent increments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from bot.stats.interval import FAIL, INCONCLUSIVE, PASS, z_for_level

SPENDING = ("obrien-fleming", "pocock")
MIN_SPEND = 1e-12  # the least error a look spends: its level must stay a number below 1


def looks(minimum: int, limit: int, growth: float = 2.0) -> tuple[int, ...]:
    """Observation counts of the planned looks: ``minimum``, × ``growth`` each time, always ending at ``limit``.

    ``looks(50, 400)`` is (50, 100, 200, 400); ``looks(50, 300)`` is (50, 100, 200, 300).
    """
    if int(minimum) != minimum or minimum < 2:
        raise ValueError(f"minimum {minimum} must be a whole number of observations, at least 2")
    if int(limit) != limit or limit < minimum:
        raise ValueError(f"limit {limit} must be a whole number of observations, at least minimum = {minimum}")
    if not growth > 1:
        raise ValueError(f"growth {growth} must be above 1 (2 doubles the observations at each look)")
    counts = [int(minimum)]
    while (nxt := math.ceil(counts[-1] * growth)) < limit:
        counts.append(nxt)
    if counts[-1] != limit:
        counts.append(int(limit))
    return tuple(counts)


def spent_alpha(fraction: float, alpha: float, spending: str = "obrien-fleming") -> float:
    """Cumulative error α(t) spent by information fraction ``fraction`` = t in [0, 1]; α(1) = α."""
    if spending not in SPENDING:
        raise ValueError(f"spending {spending!r} is not one of {', '.join(SPENDING)}")
    if fraction <= 0:
        return 0.0
    if spending == "pocock":
        return alpha * math.log(1 + (math.e - 1) * fraction)
    # 2·(1 − Φ(z)) as erfc(z/√2): exact in the far tail, where 1 − Φ would round to 0.
    return math.erfc(z_for_level(1 - alpha) / math.sqrt(fraction) / math.sqrt(2))


def spent_levels(looks: Sequence[int], alpha: float = 0.05, spending: str = "obrien-fleming") -> tuple[float, ...]:
    """The confidence level of each look's interval: 1 − (α(t_k) − α(t_{k−1})), t_k = looks[k]/looks[-1].

    The increments sum to ``alpha``, so by the union bound the chance that any look's interval misses
    the true value, and so of any false pass or false fail, is at most ``alpha``.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha} must be strictly between 0 and 1, e.g. 0.05")
    counts = list(looks)
    if not counts or any(b <= a for a, b in zip(counts, counts[1:])) or counts[0] <= 0:
        raise ValueError(f"looks {counts} must be positive observation counts in increasing order")
    spent = [spent_alpha(n / counts[-1], alpha, spending) for n in counts]
    increments = [s - prev for prev, s in zip([0.0] + spent[:-1], spent)]
    # O'Brien–Fleming spends next to nothing early (1.8e-18 at t = 0.05), and 1 − 1.8e-18 rounds to
    # a level of exactly 1, an interval of infinite width. Each earlier look spends at least
    # MIN_SPEND, taken from the last look, so every level is below 1 and the increments still sum
    # to ``alpha``; the last look's level moves by less than 1e-10.
    floor = [max(x, MIN_SPEND) for x in increments[:-1]]
    increments = floor + [increments[-1] - sum(f - x for f, x in zip(floor, increments))]
    return tuple(1 - x for x in increments)


@dataclass(frozen=True)
class Step:
    """What to do after the looks so far: stop with ``outcome``, or observe up to ``observations`` at ``level``."""

    stop: bool
    outcome: str | None = None
    observations: int | None = None
    level: float | None = None
    look: int = 0  # the number of looks taken


@dataclass(frozen=True)
class Sequential:
    """A plan of looks and the level of each look's interval; `step` says whether to stop.

    Use: ``plan = Sequential.plan(50, 400)``; ``s = plan.step([])`` gives the first look's
    observations and level; compute that look's interval at ``s.level`` on the first
    ``s.observations`` observations, `decide` it against the limit, and call ``plan.step`` again
    with the outcomes so far. Pass or fail stops at any look; inconclusive only at the last.
    """

    looks: tuple[int, ...]
    levels: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.looks) != len(self.levels) or not self.looks:
            raise ValueError(f"{len(self.looks)} looks and {len(self.levels)} levels; one level per look")

    @classmethod
    def plan(cls, minimum: int, limit: int, *, growth: float = 2.0, alpha: float = 0.05,
             spending: str = "obrien-fleming") -> "Sequential":
        counts = looks(minimum, limit, growth)
        return cls(counts, spent_levels(counts, alpha, spending))

    def step(self, outcomes: Sequence[str]) -> Step:
        """The next step given the outcome (pass, fail or inconclusive) of each look taken so far."""
        k = len(outcomes)
        if k > len(self.looks):
            raise ValueError(f"{k} outcomes for a plan of {len(self.looks)} looks")
        for j, outcome in enumerate(outcomes):
            if outcome not in (PASS, FAIL, INCONCLUSIVE):
                raise ValueError(f"outcome {outcome!r} of look {j + 1} is not pass, fail or inconclusive")
            if j < k - 1 and outcome != INCONCLUSIVE:
                raise ValueError(f"look {j + 1} was {outcome}: the plan stopped there, yet {k} outcomes were given")
        if k and (outcomes[-1] != INCONCLUSIVE or k == len(self.looks)):
            return Step(True, outcomes[-1], look=k)
        return Step(False, observations=self.looks[k], level=self.levels[k], look=k)
