"""The `sequential:` option of a gate entry: stop evaluating once the verdict is settled.

    sequential: {min: 50, growth: 2}      # the defaults: looks at 50, 100, 200... up to `limit`
    sequential: {spending: pocock}        # stop earlier on moderate differences, stricter last look
    sequential: off                       # always evaluate `limit` observations

Shared by the lm-eval checks (documents) and app-flows (cases). The statistics, planned looks and
the level of each look's interval, are `bot.stats.sequential`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from bot.core.fields import Loc, get_int, get_number, get_str, reject_unknown
from bot.stats.sequential import SPENDING, Sequential

DEFAULT_MIN = 50
DEFAULT_GROWTH = 2.0


@dataclass(frozen=True)
class SequentialOption:
    """``minimum`` observations at the first look, × ``growth`` at each next one, up to the limit."""

    minimum: int = DEFAULT_MIN
    growth: float = DEFAULT_GROWTH
    spending: str = "obrien-fleming"
    explicit: bool = False  # written in the policy (then a reason it cannot apply is worth a note)

    def plan(self, limit: int, confidence: float) -> Sequential:
        """The looks up to ``limit`` and each look's level; one look at ``confidence`` when ``limit`` ≤ ``minimum``."""
        if limit <= self.minimum:
            return Sequential((int(limit),), (confidence,))
        return Sequential.plan(self.minimum, limit, growth=self.growth, alpha=1 - confidence, spending=self.spending)

    def to_json(self) -> dict:
        return {"min": self.minimum, "growth": self.growth, "spending": self.spending}


def parse_sequential(raw: Mapping[str, Any], loc: Loc) -> SequentialOption | None:
    """The entry's `sequential:` (on with the defaults when absent); None for `off`."""
    if "sequential" not in raw:
        return SequentialOption()
    value = raw["sequential"]
    s_loc = loc.child("sequential")
    if value is False or value == "off":  # YAML reads a bare `off` as false
        return None
    if value is True or value == "on":
        return SequentialOption(explicit=True)
    if not isinstance(value, Mapping):
        raise s_loc.error(f"must be `off` or a mapping, got {value!r}", "write e.g. `sequential: {min: 50, growth: 2}`")
    spec = value
    reject_unknown(spec, {"min", "growth", "spending"}, s_loc)
    minimum = get_int(spec, "min", s_loc, DEFAULT_MIN, minimum=2)
    growth = get_number(spec, "growth", s_loc, DEFAULT_GROWTH)
    if not growth > 1:
        raise s_loc.child("growth").error(f"must be above 1, got {growth!r}", "write `growth: 2` to double the observations at each look")
    spending = get_str(spec, "spending", s_loc, "obrien-fleming")
    if spending not in SPENDING:
        raise s_loc.child("spending").error(f"{spending!r} is not a spending function", f"use one of: {', '.join(SPENDING)}")
    return SequentialOption(minimum, float(growth), spending, explicit=True)
