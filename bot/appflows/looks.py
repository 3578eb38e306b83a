"""App flows in looks: a large suite runs in growing batches of cases and stops once settled.

Only with `max_pass_rate_drop` (the paired pass-rate interval can settle before every case ran):
at each look the drop interval is computed at the look's level from `bot.stats.sequential`, so
peeking keeps the error rates of the fixed-count gate. The loop is `bot.verdicts.looks`'; a look
stops the run when

- the drop interval lies wholly beyond the limit (fail), or more cases regressed than
  `max_regressions` allows (a count only grows: fail), or more errors than `max_errors` (error);
- the drop interval lies wholly within the limit and nothing else can still fail the gate
  (no `max_regressions`, no `min_pass_rate`, which later cases could still break).

The cases run in a seeded shuffled order, so each batch is a fair sample of the whole suite rather
than its first files (a suite is often grouped by tag).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from typing import Callable, Sequence

from bot.appflows.compare import compare, is_regression
from bot.appflows.options import GateOptions
from bot.stats.sequential import Sequential
from bot.verdicts import looks
from bot.verdicts.evidence import VerdictRule
from bot.verdicts.looks import SequentialOption
from bot.verdicts.results import FAIL, INCONCLUSIVE, PASS, CheckResult


def shuffled(cases: Sequence, key: Callable = lambda c: c.key) -> list:
    """The cases in an order fixed by their keys (the same suite always runs in the same order)."""
    seed = hashlib.sha256("\n".join(sorted(key(c) for c in cases)).encode()).hexdigest()
    out = sorted(cases, key=key)
    random.Random(seed).shuffle(out)
    return out


def plan_for(option: SequentialOption | None, gate: GateOptions, cases: int, rule: VerdictRule) -> Sequential | None:
    """The looks over ``cases``, or None when the suite runs at once (too small, off, or nothing to settle early)."""
    if option is None or gate.max_pass_rate_drop is None or rule.decide != "interval" or cases <= option.minimum:
        return None
    return option.plan(cases, rule.confidence)


def settled(result: CheckResult, gate: GateOptions, recs: list) -> str:
    """What a look may stop on (`bot.verdicts.looks.settled` over the drop interval), and what later
    cases cannot change: a regression count beyond `max_regressions` (a count only grows) fails; a
    pass waits while `max_regressions` or `min_pass_rate` could still be broken by later cases."""
    if result.verdict not in (PASS, FAIL, INCONCLUSIVE):
        return result.verdict
    if gate.max_regressions is not None and sum(map(is_regression, recs)) > gate.max_regressions:
        return FAIL
    if not result.rows:
        return INCONCLUSIVE
    outcome = looks.settled(result.verdict, result.rows[:1])  # the pass-rate drop, with its interval
    if outcome == PASS and (gate.max_regressions is not None or gate.min_pass_rate is not None):
        return INCONCLUSIVE
    return outcome


def run_in_looks(name: str, gate: GateOptions, plan: Sequential, cases: Sequence, rule: VerdictRule,
                 run_batch: Callable[[Sequence], list[dict]], progress: Callable[[str], None],
                 artifacts: tuple[str, ...] = ()) -> tuple[CheckResult, list[dict], looks.Taken]:
    """Run ``cases`` batch by batch (``run_batch`` returns the batch's case records) until settled.

    Returns the check's result over the cases that ran, their records, and where it stopped.
    """
    order = shuffled(cases)
    recs: list[dict] = []

    def evaluate(look: looks.Look) -> tuple[CheckResult, str]:
        recs.extend(run_batch(order[look.start:look.stop]))
        result = compare(name, gate, recs, artifacts=artifacts, rule=replace(rule, confidence=look.level))
        return result, settled(result, gate, recs)

    result, taken = looks.run_in_looks(plan, evaluate, name=name, unit="cases", progress=progress)
    return result, recs, taken
