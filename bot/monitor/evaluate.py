"""Pure rule evaluation: (rule, sample) → a frozen outcome. No I/O, so one table test covers it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.policy.rollback import ABOVE, WARN_ACTION, Rule

OK, TRIPPED, NO_DATA, WARN = "ok", "tripped", "no-data", "warn"
UNMET = "unmet"  # a promised win (`expect_improvement`) did not appear; `action: warn` warns, no revert


@dataclass(frozen=True)
class Sample:
    """What Prometheus said for one rule of one deployment."""

    values: tuple[float, ...]  # the worst series' value at each evaluation time, oldest first; () = no data
    previous: float | None = None  # relative rules: the previous variant's value before the promotion
    previous_note: str = ""  # why ``previous`` is missing
    pending: str = ""  # why the rule cannot be judged yet (a promise younger than its window)
    fresh: bool = False  # the deployment was promoted after the rule's window started


@dataclass(frozen=True)
class Outcome:
    rule: str
    condition: str
    value: float | None
    previous: float | None
    limit: float | None
    state: str
    detail: str

    @property
    def tripped(self) -> bool:
        return self.state == TRIPPED

    def to_json(self) -> dict:
        return {"rule": self.rule, "condition": self.condition, "value": self.value, "previous": self.previous,
                "threshold": self.limit, "state": self.state, "detail": self.detail}


def worst(values: list[float], direction: str) -> float:
    """Several series for one rule (e.g. per pod): judge the worst one, never an average that hides it."""
    return max(values) if direction == ABOVE else min(values)


def evaluate(rule: Rule, sample: Sample) -> Outcome:
    def outcome(state: str, detail: str, value=None, limit=None) -> Outcome:
        if state == TRIPPED and rule.action == WARN_ACTION:
            state = UNMET
        return Outcome(rule.name, rule.describe(), value, sample.previous, limit, state, detail)

    if not sample.values and rule.must_have_data and sample.fresh:
        return outcome(TRIPPED, "no data at all since the promotion, within the rule's window: the monitor cannot see "
                                "this deployment (does the server export its metrics under the served model name the "
                                "query uses?), so nothing guards it (must_have_data)")
    if sample.pending:
        return outcome(NO_DATA, sample.pending)

    if rule.relative is not None:
        if sample.previous is None:
            return _no_data(rule, outcome, sample.previous_note or "no value for the previous variant before the promotion")
        factor = 1 + rule.relative if rule.direction == ABOVE else 1 - rule.relative
        limit = sample.previous * factor
    else:
        limit = rule.threshold
    if not sample.values:
        return _no_data(rule, outcome, "the query returned no data", limit)
    current = sample.values[-1]
    bad = [_breaches(v, limit, rule.direction) for v in sample.values]
    if rule.for_s is not None:
        if all(bad):
            return outcome(TRIPPED, f"{rule.direction} {limit:.4g} for {rule.for_s:g}s ({len(bad)} points)", current, limit)
        return outcome(OK, f"{sum(bad)} of {len(bad)} points {rule.direction} {limit:.4g} within {rule.for_s:g}s", current, limit)
    if bad[-1]:
        if rule.promise is not None:
            return outcome(TRIPPED, f"promise not kept: {current:.4g} is {rule.direction} the promised {limit:.4g} "
                                    f"({rule.promise * 100:+g}% on {sample.previous:.4g} before the promotion)",
                           current, limit)
        return outcome(TRIPPED, f"{current:.4g} is {rule.direction} {limit:.4g}", current, limit)
    return outcome(OK, f"{current:.4g} is within {limit:.4g}", current, limit)


def _breaches(value: float, limit: float, direction: str) -> bool:
    return value > limit if direction == ABOVE else value < limit


def _no_data(rule: Rule, outcome, reason: str, limit=None) -> Outcome:
    if rule.on_no_data == "rollback":
        return outcome(TRIPPED, f"{reason} (on_no_data: rollback)", None, limit)
    if rule.on_no_data == "warn":
        return outcome(WARN, reason, None, limit)
    return outcome(NO_DATA, reason, None, limit)
