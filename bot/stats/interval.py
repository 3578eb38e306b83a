"""The interval every gate verdict carries, and the three outcomes against a limit."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level,
                "method": self.method, "n": self.n, "sd": self.sd}

    @classmethod
    def from_json(cls, d: dict) -> "Interval":
        return cls(estimate=d["estimate"], low=d["low"], high=d["high"], level=d["level"],
                   method=d["method"], n=d["n"], sd=d.get("sd"))


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
