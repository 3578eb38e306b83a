"""Looks: a check evaluates growing batches and stops once its verdict is settled.

The `sequential:` option of a gate entry says how:

    sequential: {min: 50, growth: 2}      # the defaults: looks at 50, 100, 200... up to `limit`
    sequential: {spending: pocock}        # stop earlier on moderate differences, stricter last look
    sequential: off                       # always evaluate `limit` observations

`run_in_looks` is the one loop every check in looks goes through (lm-eval: documents per task;
app flows: cases), and `settled` the one rule for what a look may stop on. The statistics,
planned looks and the level of each look's interval, are `bot.stats.sequential`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence, TypeVar

from bot.core.fields import Loc, get_int, get_number, get_str, reject_unknown
from bot.stats.interval import level_percent
from bot.stats.sequential import SPENDING, Sequential
from bot.verdicts.results import FAIL, INCONCLUSIVE, PASS, MetricRow

R = TypeVar("R")
# What a look returns when the check's own budget (time, rounds) ends the run: its result stands.
EXHAUSTED = "exhausted"

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


def parse_sequential(raw: Mapping[str, Any], loc: Loc,
                     default: SequentialOption = SequentialOption()) -> SequentialOption | None:
    """The entry's `sequential:` (on with the check's ``default`` when absent); None for `off`."""
    if "sequential" not in raw:
        return default
    value = raw["sequential"]
    s_loc = loc.child("sequential")
    if value is False or value == "off":  # YAML reads a bare `off` as false
        return None
    if value is True or value == "on":
        return replace(default, explicit=True)
    if not isinstance(value, Mapping):
        raise s_loc.error(f"must be `off` or a mapping, got {value!r}", "write e.g. `sequential: {min: 50, growth: 2}`")
    spec = value
    reject_unknown(spec, {"min", "growth", "spending"}, s_loc)
    minimum = get_int(spec, "min", s_loc, default.minimum, minimum=2)
    growth = get_number(spec, "growth", s_loc, default.growth)
    if not growth > 1:
        raise s_loc.child("growth").error(f"must be above 1, got {growth!r}", "write `growth: 2` to double the observations at each look")
    spending = get_str(spec, "spending", s_loc, default.spending)
    if spending not in SPENDING:
        raise s_loc.child("spending").error(f"{spending!r} is not a spending function", f"use one of: {', '.join(SPENDING)}")
    return SequentialOption(minimum, float(growth), spending, explicit=True)


@dataclass(frozen=True)
class Look:
    """One look of a plan: observations ``start`` (exclusive) to ``stop``, its interval at ``level``."""

    number: int  # 1-based
    start: int
    stop: int
    level: float
    last: bool


@dataclass(frozen=True)
class Taken:
    """Where a run in looks stopped: ``observations`` of the planned ``limit`` ``unit``, at look ``look``."""

    observations: int
    limit: int
    look: int
    looks: tuple[int, ...]
    levels: tuple[float, ...]
    unit: str  # "documents per task", "cases"
    ended: str = PASS  # the last look's outcome: a verdict, EXHAUSTED, or an error

    @property
    def why(self) -> str:
        """Why the run stopped where it did, as the note says it."""
        if not self.early:
            return "the planned maximum"
        if self.ended in (PASS, FAIL):
            return "settled early"
        return "the check's budget ran out" if self.ended == EXHAUSTED else "stopped by an error"

    @property
    def early(self) -> bool:
        return self.observations < self.limit

    def stopped(self) -> str:
        """`stopped at 50 of 400 documents per task (look 1 of 4)`"""
        return f"stopped at {self.observations} of {self.limit} {self.unit} (look {self.look} of {len(self.looks)})"

    def note(self, confidence: float, spending: str, order: str = "") -> str:
        """The result's note: where it stopped, why, and how the error was spent over the looks."""
        return (f"{self.stopped()}: {self.why}; looks at "
                f"{', '.join(map(str, self.looks))} {self.unit}{order}, the interval of each at its share of the "
                f"{(1 - confidence) * 100:g}% error ({spending} spending)")

    def to_json(self) -> dict:
        return {"observations": self.observations, "unit": self.unit, "limit": self.limit, "look": self.look,
                "looks": list(self.looks), "levels": list(self.levels)}


def run_in_looks(plan: Sequential, evaluate: Callable[[Look], tuple[R, str]], *, name: str, unit: str,
                 progress: Callable[[str], None]) -> tuple[R, Taken]:
    """Evaluate ``plan``'s looks in turn until one settles the verdict.

    ``evaluate(look)`` adds the look's observations and returns the result over all of them so far
    and what that look may stop on (`settled`): pass or fail stops, inconclusive goes on to the next
    look (at the last one the result stands as it is), anything else (an error) stops at once.
    """
    outcomes: list[str] = []
    step = plan.step(outcomes)
    done = taken = 0
    result: R
    while not step.stop:
        look = Look(step.look + 1, done, step.observations, step.level, step.look + 1 == len(plan.looks))
        progress(f"{name}: look {look.number} of {len(plan.looks)}: {unit} {done + 1}–{look.stop}, "
                 f"interval at {level_percent(look.level)}")
        result, outcome = evaluate(look)
        done, taken = look.stop, taken + 1
        progress(f"{name}: look {look.number}: {outcome}")
        if outcome not in (PASS, FAIL, INCONCLUSIVE):
            break
        outcomes.append(outcome)
        step = plan.step(outcomes)
    return result, Taken(done, plan.looks[-1], taken, tuple(plan.looks), tuple(plan.levels), unit, outcome)


def settled(verdict: str, rows: Sequence[MetricRow]) -> str:
    """What a look's ``verdict`` may stop a run on, given the ``rows`` it rests on.

    Only intervals were planned for peeking (each look's level spends a share of the error): a fail
    stops when a row's interval lies wholly beyond its limit, a pass when every row passed by its
    interval. A row decided by its point estimate cannot settle anything before the last look;
    an error is final at once.
    """
    if verdict not in (PASS, FAIL, INCONCLUSIVE):
        return verdict
    if verdict == FAIL and any(r.verdict == FAIL and r.evidence is not None for r in rows):
        return FAIL
    if verdict == PASS and all(r.evidence is not None for r in rows):
        return PASS
    return INCONCLUSIVE
