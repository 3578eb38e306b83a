"""One place where an interval and a limit become a verdict, by the gate entry's `VerdictRule`,
and where that evidence is written in words for reviewers ("+2.1% [+0.8%, +3.6%], limit +3%").

Every check that compares a candidate with its baseline comes through `judge`; the comment, the
model card and the CLI show `describe`, so a number reads the same wherever it appears.
"""

from __future__ import annotations

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


def amount(value: float, unit: str, *, signed: bool = True) -> str:
    """A worsening in the limit's unit: `+2.1%`, `−0.4 pt`, `+0.013`."""
    if unit == "relative":
        text = f"{value * 100:+.2f}%"
    elif unit == "points":
        text = f"{value:+.1f} pt"
    else:
        text = f"{value:+.3g}"
    text = text.replace("-", "−")
    return text if signed else text.lstrip("+")


def describe(evidence: Evidence) -> str:
    """`+2.1% [+0.8%, +3.6%] worse than the baseline (95% CI), limit +3.0%`: worse is positive,
    whatever the metric's direction."""
    i, unit = evidence.interval, evidence.unit
    text = (f"{amount(i.estimate, unit)} [{amount(i.low, unit)}, {amount(i.high, unit)}] worse than the baseline "
            f"({level_percent(i.level)} CI), limit {amount(evidence.limit, unit)}")
    if evidence.settle_n:
        text += f"; about {evidence.settle_n} {evidence.observations} in all would settle it"
    return text
