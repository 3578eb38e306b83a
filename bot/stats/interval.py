"""The interval every gate verdict carries, and the three outcomes against a limit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

# The standard normal from the standard library: exact to double precision, and no scipy import for
# every module that only needs an Interval (scipy.stats costs half a second of each command's start).
_NORMAL = NormalDist()

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"

# Float noise: an identical model gives a zero-width interval at 0 and must pass a zero limit.
EPSILON = 1e-9


@dataclass(frozen=True)
class Interval:
    """How much worse the candidate is (positive = worse), with a confidence interval.

    ``estimate``, ``low`` and ``high`` are in the limit's unit (a fraction for relative limits,
    points for absolute ones). ``n`` is the number of paired observations behind it; ``sd`` the
    standard deviation of one observation's contribution (of the paired differences, or of the
    linearised statistic), which the sample-size estimate needs; None when the method has none.
    """

    estimate: float
    low: float
    high: float
    level: float  # 0.95 for a 95% interval
    method: str  # e.g. "paired t", "paired bootstrap", "Newcombe paired"
    n: int
    sd: float | None = None

    def __post_init__(self) -> None:
        if not self.low <= self.high + EPSILON:
            raise ValueError(f"interval low {self.low} is above high {self.high}")

    @property
    def width(self) -> float:
        return self.high - self.low

    def to_json(self) -> dict:
        # JSON has no infinity: an unbounded side (an early look's level) is null.
        return {"estimate": self.estimate, "low": _finite(self.low), "high": _finite(self.high), "level": self.level,
                "method": self.method, "n": self.n, "sd": None if self.sd is None else _finite(self.sd)}

    @classmethod
    def from_json(cls, d: dict) -> "Interval":
        return cls(estimate=d["estimate"], low=-math.inf if d["low"] is None else d["low"],
                   high=math.inf if d["high"] is None else d["high"], level=d["level"],
                   method=d["method"], n=d["n"], sd=d.get("sd"))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def decide(interval: Interval, limit: float) -> str:
    """pass: the whole interval is at most ``limit`` worse; fail: all of it is more; else inconclusive.

    ``limit`` is the allowed worsening (≥ 0). A required improvement is a negative limit: an
    expected win of 20% is ``limit=-0.20`` (the candidate must be at least 20% better).
    """
    if interval.high <= limit + EPSILON:
        return PASS
    if interval.low > limit + EPSILON:
        return FAIL
    return INCONCLUSIVE


def level_percent(level: float) -> str:
    """A confidence level as reviewers read it: `95%`, `98.75%`, `99.9911%`; a level within 5e-7 of 1
    (an early sequential look) keeps the digits that tell it from certainty: `99.99999994%`, never `100%`."""
    text = f"{level * 100:g}"
    if text != "100" or level >= 1.0:
        return f"{text}%"
    decimals = math.ceil(-math.log10((1.0 - level) * 100) - 1e-3)  # 1 − (1 − 1e-12) is 9.9998e-13 in floats
    return f"{level * 100:.{decimals}f}%"


def z_for_level(level: float) -> float:
    """The two-sided normal quantile of a confidence level: z_{1-α/2} with α = 1 − level (1.96 for 0.95)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level {level} must be a confidence level strictly between 0 and 1, e.g. 0.95")
    return _NORMAL.inv_cdf(0.5 + level / 2)


def observations_to_settle(interval: Interval, limit: float, *, power: float = 0.8) -> int | None:
    """About how many paired observations in total would make an interval like this one clear ``limit``.

    Power analysis for a paired comparison (Miller 2024, "Adding Error Bars to Evals",
    arXiv:2411.00640, section on sample sizes): with ``sd`` the standard deviation of one observation's
    contribution and δ the distance between the estimate and the limit, an interval at the same level
    excludes the limit with probability ``power`` once

        n ≈ (z_{1-α/2} + z_{power})² · sd² / δ²,     α = 1 − interval.level.

    It assumes the estimate and ``sd`` stay what they are now: a planning figure, not a promise.
    An inconclusive interval did not settle with the observations it has, so the answer is then never
    fewer than ``interval.n + 1``. None when it cannot say: ``sd`` unknown or not finite, or the
    estimate sits on the limit (no amount of data separates them).
    """
    if not 0.0 < power < 1.0:
        raise ValueError(f"power {power} must be strictly between 0 and 1, e.g. 0.8")
    sd = interval.sd
    delta = abs(interval.estimate - limit)
    if sd is None or not math.isfinite(sd) or not math.isfinite(delta) or delta <= EPSILON:
        return None
    z = z_for_level(interval.level) + _NORMAL.inv_cdf(power)
    n = max(2, math.ceil((z * sd / delta) ** 2))
    if decide(interval, limit) == INCONCLUSIVE:
        n = max(n, interval.n + 1)
    return n
