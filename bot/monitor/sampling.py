"""Turn rules into Prometheus requests, batched: one request per rule for all deployments.

Each deployment's rendered query is tagged with `label_replace(..., "promotion_bot_target", "<i>", "", "")`
and the tagged queries are joined with `or`, so a pass over 200 deployments × 5 rules costs
5 requests (plus one per rule and promotion time for rules relative to the previous variant),
not 1,000. Queries must therefore return instant vectors (what `sum`, `rate` and
`histogram_quantile` give).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

from bot.gitops.manifests import Deployment
from bot.monitor.evaluate import Sample, worst
from bot.monitor.history import PromotionCommit
from bot.monitor.prometheus import PrometheusClient, Series
from bot.policy.rollback import Rule, render_query

TARGET_LABEL = "promotion_bot_target"
# `for:` windows are sampled at this many points (Prometheus alerting checks every interval).
FOR_POINTS = 5
# Deployments per request: keeps the POSTed query a few hundred KB at most.
CHUNK = 250


def query_values(dep: Deployment, rule: Rule, variant: str) -> dict[str, str]:
    return {"app": dep.application, "model": dep.model, "variant": variant, "model_name": dep.served_model,
            "window": rule.window}


def _batched(exprs: Sequence[tuple[int, str]]) -> str:
    return " or ".join(f'label_replace(({expr}), "{TARGET_LABEL}", "{i}", "", "")' for i, expr in exprs)


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _by_target(series: list[Series]) -> dict[int, list[Series]]:
    out: dict[int, list[Series]] = defaultdict(list)
    for s in series:
        target = s.labels.get(TARGET_LABEL)
        if target is not None and target.isdigit():
            out[int(target)].append(s)
    return out


def _latest(series: list[Series], direction: str) -> tuple[float, ...]:
    values = [s.values[-1][1] for s in series if s.values]
    return (worst(values, direction),) if values else ()


def _over_time(series: list[Series], direction: str) -> tuple[float, ...]:
    by_time: dict[float, list[float]] = defaultdict(list)
    for s in series:
        for ts, v in s.values:
            by_time[ts].append(v)
    return tuple(worst(by_time[t], direction) for t in sorted(by_time))


def collect_all(client: PrometheusClient, rules: Sequence[Rule], deps: Sequence[Deployment],
                promotions: Sequence[PromotionCommit | None], now: float) -> list[list[Sample]]:
    """``samples[d][r]`` for deployment ``d`` and rule ``r``."""
    samples: list[list[Sample]] = [[Sample(()) for _ in rules] for _ in deps]
    indices = list(range(len(deps)))
    for r, rule in enumerate(rules):
        current: dict[int, tuple[float, ...]] = {}
        for chunk in _chunks(indices):
            expr = _batched([(d, render_query(rule.query, query_values(deps[d], rule, deps[d].variant))) for d in chunk])
            if rule.for_s is not None:
                found = _by_target(client.query_range(expr, now - rule.for_s, now, rule.for_s / (FOR_POINTS - 1)))
                current.update({d: _over_time(found.get(d, []), rule.direction) for d in chunk})
            else:
                found = _by_target(client.query(expr, at=now))
                current.update({d: _latest(found.get(d, []), rule.direction) for d in chunk})
        previous: dict[int, float | None] = {}
        notes: dict[int, str] = {}
        if rule.relative is not None:
            by_time: dict[float, list[int]] = defaultdict(list)
            for d in indices:
                promo = promotions[d]
                if promo is None or promo.previous_variant is None:
                    notes[d] = "no promotion commit found, so there is no value before the promotion"
                else:
                    by_time[promo.time].append(d)
            for at, group in sorted(by_time.items()):
                for chunk in _chunks(group):
                    expr = _batched([(d, render_query(rule.query, query_values(deps[d], rule, promotions[d].previous_variant)))
                                     for d in chunk])
                    found = _by_target(client.query(expr, at=at))
                    for d in chunk:
                        before = _latest(found.get(d, []), rule.direction)
                        previous[d] = before[0] if before else None
                        if not before:
                            notes[d] = f"no data for {promotions[d].previous_variant} in the {rule.window} before the promotion"
        pending: dict[int, str] = {}
        if rule.promise is not None:
            for d in indices:
                promo = promotions[d]
                if promo is not None and now - promo.time < rule.window_s:
                    pending[d] = (f"too early: the promotion is {(now - promo.time) / 60:.0f} min old, the rule "
                                  f"judges a whole {rule.window} window after it")
        for d in indices:
            promo = promotions[d]
            fresh = promo is not None and now - promo.time < rule.window_s
            samples[d][r] = Sample(current[d], previous.get(d), notes.get(d, ""), pending.get(d, ""), fresh)
    return samples
