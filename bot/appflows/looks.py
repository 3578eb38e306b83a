"""App flows in looks: a large suite runs in growing batches of cases and stops once settled.

Only with `max_pass_rate_drop` (the paired pass-rate interval can settle before every case ran):
at each look the drop interval is computed at the look's level from `bot.stats.sequential`, so
peeking keeps the error rates of the fixed-count gate. A look stops the run when

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

from bot.appflows.compare import GateOptions, decide, is_regression
from bot.stats.interval import level_percent
from bot.stats.sequential import Sequential
from bot.verdicts.evidence import VerdictRule
from bot.verdicts.looks import SequentialOption
from bot.verdicts.results import ERROR, FAIL, INCONCLUSIVE, PASS, CheckResult


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
    """The outcome a look gives `Sequential.step`: pass or fail when later cases cannot change it."""
    if result.verdict == ERROR:
        return ERROR
    if gate.max_regressions is not None and sum(map(is_regression, recs)) > gate.max_regressions:
        return FAIL
    drop = result.rows[0].verdict if result.rows and result.rows[0].evidence is not None else None
    if drop == FAIL:
        return FAIL
    if drop == PASS and result.verdict == PASS and gate.max_regressions is None and gate.min_pass_rate is None:
        return PASS
    return INCONCLUSIVE


def run_in_looks(name: str, gate: GateOptions, plan: Sequential, cases: Sequence, rule: VerdictRule,
                 run_batch: Callable[[Sequence], list[dict]], progress: Callable[[str], None],
                 artifacts: tuple[str, ...] = ()) -> tuple[CheckResult, list[dict], dict]:
    """Run ``cases`` batch by batch (``run_batch`` returns the batch's case records) until settled.

    Returns the check's result over the cases that ran, their records, and the looks taken.
    """
    order = shuffled(cases)
    recs: list[dict] = []
    outcomes: list[str] = []
    step = plan.step(outcomes)
    done = taken = 0
    while not step.stop:
        n, level = step.observations, step.level
        progress(f"{name}: look {step.look + 1} of {len(plan.looks)}: cases {done + 1}–{n}, interval at {level_percent(level)}")
        recs += run_batch(order[done:n])
        done, taken = n, taken + 1
        result = decide(name, gate, recs, artifacts=artifacts, rule=replace(rule, confidence=level))
        # At the last look the gate's own verdict stands; before it, only what later cases cannot change.
        outcome = result.verdict if taken == len(plan.looks) else settled(result, gate, recs)
        progress(f"{name}: look {taken}: {outcome}")
        if outcome not in (PASS, FAIL, INCONCLUSIVE):  # an error is final; so is a skipped suite
            break
        outcomes.append(outcome)
        step = plan.step(outcomes)
    looks = {"cases": done, "limit": plan.looks[-1], "look": taken, "looks": list(plan.looks),
             "levels": list(plan.levels)}
    return result, recs, looks


def stopped(looks: dict) -> str:
    return f"stopped at {looks['cases']} of {looks['limit']} cases (look {looks['look']} of {len(looks['looks'])})"
