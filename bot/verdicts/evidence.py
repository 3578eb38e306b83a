"""One place where an interval and a limit become a verdict, by the gate entry's `VerdictRule`,
and where that evidence is written in words for reviewers.

One convention everywhere (comment, card, `zoo`, CLI, JSON): a comparison reads "worse by X [low,
high]", worse positive whatever the metric's direction (lower throughput and higher latency are
both worse), its limit in the same words ("worse by ≤ 10%"); an improvement says so in words
("better by 2.5 pt; worse by [−10.4 pt, +5.7 pt]"); an expected win reads "better by ≥ 20%".
Every check that compares a candidate with its baseline comes through `judge`; every text of a
comparison comes from `worse_by`, `limit_text` and `describe`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.stats.interval import EPSILON, Interval, decide, level_percent, observations_to_settle
from bot.verdicts.results import FAIL, INCONCLUSIVE, PASS, Evidence

UNITS = ("relative", "points", "absolute")


@dataclass(frozen=True)
class VerdictRule:
    """How a gate entry turns its evidence into a verdict (the same keys for every check).

    ``confidence``: the level of every interval (0.95). ``decide``: `interval` (pass only when the
    whole interval is within the limit, fail when all of it is beyond, else inconclusive) or
    `estimate` (the point estimate against the limit; intervals still shown). ``on_inconclusive``:
    `fail` (an inconclusive blocks the merge) or `pass` (it passes, with a warning).
    """

    confidence: float = 0.95
    decide: str = "interval"
    on_inconclusive: str = "fail"


def judge(interval: Interval, limit: float, unit: str, rule: VerdictRule = VerdictRule(), *,
          observations: str = "documents") -> tuple[str, Evidence]:
    """The verdict of one compared metric and the evidence it rests on; ``observations`` names what
    the interval's n counts (documents, cases, requests)."""
    assert unit in UNITS, unit
    if rule.decide == "estimate":
        verdict = FAIL if interval.estimate > limit + EPSILON else PASS
    else:
        verdict = decide(interval, limit)
    settle = observations_to_settle(interval, limit) if verdict == INCONCLUSIVE else None
    return verdict, Evidence(interval, limit, unit, settle, observations)


UNBOUNDED_RATIO = 1e4  # 1,000,000%


def amount(value: float, unit: str, *, signed: bool = True) -> str:
    """A worsening in the limit's unit: `+2.1%`, `−0.4 pt`, `+0.013`; `+∞` for an unbounded side, and
    for a relative bound past a millionfold change (an early look's t interval over two pairs of
    rounds): such a number says only that the side is unbounded."""
    if math.isinf(value) or (unit == "relative" and abs(value) >= UNBOUNDED_RATIO):
        text = "+∞" if value > 0 else "-∞"
    elif unit == "relative":
        text = f"{value * 100:+.2f}%"
    elif unit == "points":
        text = f"{value:+.1f} pt"
    else:
        text = f"{value:+.3g}"
    text = text.replace("-", "−")
    return text if signed else text.lstrip("+−")


def worse_by(interval: Interval, unit: str) -> str:
    """`worse by 2.10% [+0.80%, +3.60%]`, `better by 2.5 pt; worse by [−10.4 pt, +5.7 pt]` or
    `no change; worse by [−0.1%, +0.2%]`: the interval is always of how much worse."""
    bounds = f"[{amount(interval.low, unit)}, {amount(interval.high, unit)}]"
    if abs(interval.estimate) <= EPSILON:
        return f"no change; worse by {bounds}"
    if interval.estimate < 0:
        return f"better by {amount(interval.estimate, unit, signed=False)}; worse by {bounds}"
    return f"worse by {amount(interval.estimate, unit, signed=False)} {bounds}"


def limit_text(limit: float, unit: str) -> str:
    """`worse by ≤ 10%`, or for an expected win (a negative limit) `better by ≥ 20%`."""
    value = f"{abs(limit) * 100:g}%" if unit == "relative" else f"{abs(limit):g} pt" if unit == "points" else f"{abs(limit):g}"
    return f"better by ≥ {value}" if limit < 0 else f"worse by ≤ {value}"


def describe(evidence: Evidence) -> str:
    """`worse by 2.10% [+0.80%, +3.60%] (95% CI), limit worse by ≤ 3.00%`, and what would settle it."""
    i, unit = evidence.interval, evidence.unit
    text = f"{worse_by(i, unit)} ({level_percent(i.level)} CI), limit {limit_text(evidence.limit, unit)}"
    if evidence.settle_n:
        text += f"; about {evidence.settle_n} {evidence.observations} in all would settle it"
    return text


def headline(verdict: str, warnings: int) -> str:
    """`PASS`, `PASS with 2 warnings`: a green that carries doubts says so where it is read first."""
    word = verdict.upper()
    return f"{word} with {warnings} warning{'s' if warnings != 1 else ''}" if warnings else word
