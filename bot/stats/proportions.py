"""Pass rates of application-flow cases, paired: each case run on the candidate and on the baseline.

- `pass_rate_drop`: interval of the drop in pass rate, in points (baseline − candidate, × 100).
- `mcnemar_exact`: exact one-sided McNemar p-value for "the candidate is worse".
- `discordant_counts`: regressions and improvements of binary cases, the counts McNemar needs.
- `wilson`: score interval of one pass rate.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

from bot.stats.interval import Interval, z_for_level
from bot.stats.samples import check_level, paired

METHOD = "paired Wald, Bonett-Price adjusted"
NO_CHANGE = "paired, no case changed"


def _pass_fractions(candidate: Sequence[float], baseline: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    c, b = paired(candidate, baseline, minimum=1)
    for name, a in (("candidate", c), ("baseline", b)):
        bad = np.flatnonzero((a < 0) | (a > 1))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] is {a[bad[0]]}; a case's result is its pass fraction in [0, 1] "
                             "(1 or 0 for a case run once)")
    return c, b


def pass_rate_drop(candidate: Sequence[float], baseline: Sequence[float], *, level: float = 0.95) -> Interval:
    """Paired interval of how many points the candidate's pass rate is below the baseline's.

    ``candidate[i]``, ``baseline[i]``: case i's pass fraction on each model, 0/1 for a case run once,
    k/s for a case passing k of s samples. The estimate is mean(baseline − candidate) × 100.

    Method: the Wald interval for paired proportions with the Bonett–Price (2012) Laplace
    adjustment (Bonett & Price, "Adjusted Wald confidence interval for a difference of binomial
    proportions based on paired data", J. Educ. Behav. Stat. 37:479), one of the two intervals
    Fagerland, Lydersen & Laake (2014, "Recommended tests and confidence intervals for paired
    binomial proportions", Stat. Med. 33:2850) recommend for all sample sizes. It adds one pseudo
    regression and one pseudo improvement to the N cases: with the N + 2 per-case differences
    d̃ (the real ones plus +1 and −1), the interval is mean(d̃) ± z·sqrt(var(d̃)/(N + 2)), truncated to
    ±100 points. For binary cases this is exactly Bonett–Price's formula; for fractional cases it is
    the same adjustment applied to the differences of pass fractions, so both kinds of case go
    through one method.

    Why not the exact interval conditional on the discordant cases (Clopper–Pearson on
    regressions/(regressions + improvements), scaled by discordant/N): it treats the share of
    cases that change as known, and its upper end can never exceed discordant/N. When only
    regressions occur, its upper end falls below the true drop in 44–53% of runs at 50–100 cases
    (seeded simulation in docs/statistics.md), so it would pass regressions it cannot exclude;
    Bonett–Price covers 92–96% there, with no iteration.

    No case changed (every difference is 0, an A/A run): a zero-width interval at 0, by policy: the
    gate reads identical results on the whole suite as no change. This is the one conditional
    exception; a regression rate of p escapes it with probability (1 − p)^N, e.g. 0.36 for a
    2% rate over 50 cases (docs/statistics.md).
    """
    level = check_level(level)
    c, b = _pass_fractions(candidate, baseline)
    d = b - c
    n = d.size
    estimate = 100.0 * float(d.mean())
    if not np.any(d):
        return Interval(0.0, 0.0, 0.0, level, NO_CHANGE, n, 0.0)
    m = n + 2  # with one pseudo regression (+1) and one pseudo improvement (−1)
    centre = float(d.sum()) / m
    spread = math.sqrt(max(0.0, (float(np.square(d).sum()) + 2.0) / m - centre ** 2))
    half = z_for_level(level) * spread / math.sqrt(m)
    low, high = 100.0 * max(-1.0, centre - half), 100.0 * min(1.0, centre + half)
    # The adjusted centre is shrunk towards 0; keep the observed drop inside its own interval.
    return Interval(estimate, min(low, estimate), max(high, estimate), level, METHOD, n, 100.0 * spread)


def discordant_counts(candidate: Sequence[float], baseline: Sequence[float]) -> tuple[int, int]:
    """(regressions, improvements) of binary cases: passed on the baseline only, passed on the candidate only."""
    c, b = _pass_fractions(candidate, baseline)
    if np.any((c != 0) & (c != 1)) or np.any((b != 0) & (b != 1)):
        raise ValueError("discordant_counts needs binary cases (each result 0 or 1); use pass_rate_drop "
                         "for cases run with several samples")
    return int(np.sum((b == 1) & (c == 0))), int(np.sum((b == 0) & (c == 1)))


def mcnemar_exact(regressions: int, improvements: int) -> float:
    """Exact one-sided McNemar p-value for "the candidate is worse" (McNemar 1947, Psychometrika 12:153).

    Conditional on the r + i discordant cases, regressions r ~ Binomial(r + i, 1/2) when the models
    are equally good; p = P(X ≥ r), the exact binomial form (Agresti 2013, "Categorical Data
    Analysis", §11.1). 1.0 when no case is discordant.
    """
    for name, k in (("regressions", regressions), ("improvements", improvements)):
        if int(k) != k or k < 0:
            raise ValueError(f"{name} is {k}; it must be a count of cases (an integer ≥ 0)")
    r, i = int(regressions), int(improvements)
    if r + i == 0:
        return 1.0
    return float(stats.binomtest(r, r + i, 0.5, alternative="greater").pvalue)


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson 1927, JASA 22:209; Newcombe 1998, Stat. Med. 17:857).

    Computed by `scipy.stats.binomtest(...).proportion_ci(method="wilson")`; good coverage at small
    n and never outside [0, 1], unlike the Wald interval.
    """
    level = check_level(level)
    if int(n) != n or n < 1:
        raise ValueError(f"n is {n}; a Wilson interval needs at least one trial")
    if int(successes) != successes or not 0 <= successes <= n:
        raise ValueError(f"successes is {successes}; it must be an integer between 0 and n = {n}")
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)
