"""Turn rules into Prometheus requests for one deployment: one request per rule, plus one at the
promotion time for rules relative to the previous variant."""

from __future__ import annotations

from bot.manifests import Deployment
from bot.monitor.evaluate import Sample, worst
from bot.monitor.history import PromotionCommit
from bot.monitor.prometheus import PrometheusClient
from bot.monitor.rules import Rule, render_query

# `for:` windows are sampled at this many points (Prometheus alerting checks every interval).
FOR_POINTS = 5


def query_values(dep: Deployment, rule: Rule, variant: str) -> dict[str, str]:
    return {"app": dep.application, "model": dep.model, "variant": variant, "model_name": dep.served_model,
            "window": rule.window}


def collect(client: PrometheusClient, rule: Rule, dep: Deployment, promotion: PromotionCommit | None, now: float) -> Sample:
    expr = render_query(rule.query, query_values(dep, rule, dep.variant))
    if rule.for_s is not None:
        series = client.query_range(expr, now - rule.for_s, now, rule.for_s / (FOR_POINTS - 1))
        by_time: dict[float, list[float]] = {}
        for s in series:
            for ts, v in s.values:
                by_time.setdefault(ts, []).append(v)
        values = tuple(worst(by_time[t], rule.direction) for t in sorted(by_time))
    else:
        latest = [s.values[-1][1] for s in client.query(expr, at=now) if s.values]
        values = (worst(latest, rule.direction),) if latest else ()
    if rule.relative is None:
        return Sample(values)
    if promotion is None or promotion.previous_variant is None:
        return Sample(values, None, "no promotion commit found, so there is no value before the promotion")
    before = render_query(rule.query, query_values(dep, rule, promotion.previous_variant))
    earlier = [s.values[-1][1] for s in client.query(before, at=promotion.time) if s.values]
    if not earlier:
        return Sample(values, None, f"no data for {promotion.previous_variant} in the {rule.window} before the promotion")
    return Sample(values, worst(earlier, rule.direction))
