"""Rollback rules: parsing errors that name the field, query templating, and the pure evaluation table."""

from __future__ import annotations

import pytest
from gitops import POLICY

from bot.checks.load_policy import parse as parse_policy
from bot.core.errors import InputError
from bot.core.fields import Loc
from bot.monitor.evaluate import NO_DATA, OK, TRIPPED, UNMET, WARN, Sample, evaluate
from bot.policy.rollback import default_rules, parse_rollback, parse_rule, render_query

LOC = Loc("promotion.yaml", "environments[2].rollback")
GOOD = {"name": "p95", "query": 'up{job="{app}"}', "above": 1, "window": "5m"}


@pytest.mark.parametrize("change, field, words", [
    ({"query": 'up{job="{application}"}'}, "rules[0].query", "unknown placeholder {application}"),
    ({"query": "sum(rate(x[5m])"}, "rules[0].query", "unbalanced brackets"),
    ({"query": ""}, "rules[0].query", "non-empty string"),
    ({"above": "high"}, "rules[0].above", "must be a number"),
    ({"above": None, "below": 1, "above_previous": "10%"}, "rules[0]", "exactly one comparison"),
    ({"above": None}, "rules[0]", "exactly one comparison, got 0"),
    ({"above": None, "above_previous": 0.2}, "rules[0].above_previous", "percentage like 3%"),
    ({"window": "ten minutes"}, "rules[0].window", "duration"),
    ({"window": "1.5m"}, "rules[0].window", "whole PromQL duration"),
    ({"for": "soon"}, "rules[0].for", "duration"),
    ({"on_no_data": "panic"}, "rules[0].on_no_data", "ignore, warn, rollback"),
    ({"treshold": 3}, "rules[0].treshold", "not a known setting"),
    ({"name": "P95 latency!"}, "rules[0].name", "not a valid rule name"),
    ({"above": None, "expect_improvement": "20%"}, "rules[0].expect_improvement", "direction of the win"),
    ({"above": None, "expect_improvement": "+0%"}, "rules[0].expect_improvement", "direction of the win"),
    ({"above": None, "expect_improvement": "+20%", "action": "page"}, "rules[0].action", "`warn` or `rollback`"),
    ({"action": "warn"}, "rules[0].action", "for `expect_improvement` rules"),
    ({"critical": "yes"}, "rules[0].critical", "must be true or false"),
    ({"above": None, "expect_improvement": "+20%", "critical": True}, "rules[0].critical", "marks a `warn` rule"),
])
def test_parse_rollback__malformed_rule_names_the_field(change, field, words):
    rule = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(InputError) as err:
        parse_rollback({"rules": [rule]}, LOC)
    assert err.value.field == f"environments[2].rollback.{field}"
    assert words in str(err.value)
    assert str(err.value).startswith(f"promotion.yaml: environments[2].rollback.{field}: ")


def test_parse_rollback__errors_point_into_promotion_yaml_when_the_policy_is_read():
    # A typo in rollback: fails `check` on the PR that makes it, not the monitor at 3 a.m.
    with pytest.raises(InputError, match=r"promotion.yaml: environments\[2\]\.rollback\.rules\[0\]\.on_no_data"):
        parse_policy(POLICY + "    rollback:\n      rules:\n        - {name: x, query: 'up', above: 1, on_no_data: maybe}\n")


def test_parse_rollback__missing_section_is_an_input_error_with_a_fix():
    from bot.monitor.watch import load_rollback

    with pytest.raises(InputError, match=r"environments\[2\]\.rollback: is missing.*defaults: true"):
        load_rollback(parse_policy(POLICY), "prod")


def test_parse_rollback__duplicate_names_are_refused():
    with pytest.raises(InputError, match=r"rules\[1\]\.name: rule 'p95' is listed twice"):
        parse_rollback({"rules": [GOOD, GOOD]}, LOC)


def test_parse_rollback__defaults_and_overrides():
    assert [r.name for r in parse_rollback({"defaults": True}, LOC).rules] == [r.name for r in default_rules()]
    mine = {**GOOD, "name": "error-rate", "above": 0.5}
    rules = parse_rollback({"defaults": True, "rules": [mine]}, LOC).rules
    assert [r.name for r in rules].count("error-rate") == 1
    assert next(r for r in rules if r.name == "error-rate").threshold == 0.5
    assert [r.name for r in parse_rollback({"rules": [GOOD]}, LOC).rules] == ["p95"]  # rules given: no defaults


def test_default_rules__use_vllm_metric_names():
    queries = " ".join(r.query for r in default_rules())
    for metric in ("vllm:e2e_request_latency_seconds_bucket", "vllm:time_to_first_token_seconds_bucket",
                   "vllm:generation_tokens_total", "http_requests_total"):
        assert metric in queries
    assert "feedback" not in queries  # no demo metric in what every adopter gets
    assert all(r.on_no_data in ("warn", "ignore") for r in default_rules())


def test_default_rules__the_feedback_rule_takes_its_metric_from_the_policy():
    rules = parse_rollback({"defaults": True, "feedback_metric": "acme_feedback_total"}, LOC).rules
    [feedback] = [r for r in rules if r.name == "thumbs-down-rate"]
    assert 'acme_feedback_total{app="{app}",rating="down"}' in feedback.query and "canopy" not in feedback.query
    assert "thumbs-down-rate" not in [r.name for r in parse_rollback({"defaults": True}, LOC).rules]
    with pytest.raises(InputError) as err:
        parse_rollback({"feedback_metric": "acme feedback"}, LOC)
    assert err.value.field.endswith("rollback.feedback_metric") and "metric name" in str(err.value)


def test_render_query__escapes_manifest_values_and_keeps_promql_braces():
    q = render_query('rate(x{model_name="{model_name}",v="{variant}"}[{window}])',
                     {"model_name": 'evil"} or vector(1) #', "variant": "v1", "window": "5m"})
    assert q == 'rate(x{model_name="evil\\"} or vector(1) #",v="v1"}[5m])'


def rule(**kw):
    return parse_rule({**GOOD, **kw}, Loc("promotion.yaml", "environments[2].rollback.rules[0]"))


@pytest.mark.parametrize("spec, sample, state, limit", [
    (dict(above=1), Sample((0.5,)), OK, 1.0),
    (dict(above=1), Sample((1.5,)), TRIPPED, 1.0),
    (dict(above=1), Sample((1.0,)), OK, 1.0),  # at the threshold is not above it
    (dict(above=None, below=10), Sample((9.0,)), TRIPPED, 10.0),
    (dict(above=None, above_previous="25%"), Sample((1.2,), previous=1.0), OK, 1.25),
    (dict(above=None, above_previous="25%"), Sample((1.3,), previous=1.0), TRIPPED, 1.25),
    (dict(above=None, below_previous="30%"), Sample((60.0,), previous=100.0), TRIPPED, 70.0),
    (dict(above=None, above_previous="25%"), Sample((1.3,), previous=None), WARN, None),
    (dict(above=1), Sample(()), WARN, 1.0),
    (dict(above=1, on_no_data="ignore"), Sample(()), NO_DATA, 1.0),
    (dict(above=1, on_no_data="rollback"), Sample(()), TRIPPED, 1.0),
    (dict(above=1, **{"for": "5m"}), Sample((2.0, 2.0, 2.0)), TRIPPED, 1.0),
    (dict(above=1, **{"for": "5m"}), Sample((0.5, 2.0, 2.0)), OK, 1.0),  # not above for the whole 5m
])
def test_evaluate__table(spec, sample, state, limit):
    spec = {k: v for k, v in spec.items() if v is not None}
    if "above" not in spec:
        spec["above"] = None
    r = rule(**spec) if spec.get("above") is not None else parse_rule(
        {**{k: v for k, v in GOOD.items() if k != "above"}, **{k: v for k, v in spec.items() if k != "above"}},
        Loc("promotion.yaml", "r"))
    out = evaluate(r, sample)
    assert out.state == state
    assert out.limit == (pytest.approx(limit) if limit is not None else None)


def test_demo_policy__spells_out_exactly_the_shipped_defaults():
    from pathlib import Path

    from bot.checks.load_policy import from_file
    from bot.monitor.watch import load_rollback

    _, rollback = load_rollback(from_file(Path(__file__).parent.parent / "promotion.yaml"), "prod")
    fields = lambda r: (r.name, r.query, r.direction, r.threshold, r.relative, r.window, r.for_s, r.on_no_data)  # noqa: E731
    assert [fields(r) for r in rollback.rules] == [fields(r) for r in default_rules("canopy_feedback_total")]


def promise(value: str, **kw):
    spec = {**{k: v for k, v in GOOD.items() if k != "above"}, "expect_improvement": value, **kw}
    return parse_rule(spec, Loc("promotion.yaml", "environments[2].rollback.rules[0]"))


@pytest.mark.parametrize("value, sample, state, limit", [
    ("+20%", Sample((125.0,), previous=100.0), OK, 120.0),  # throughput rose 25%: the promise is kept
    ("+20%", Sample((120.0,), previous=100.0), OK, 120.0),  # exactly the promise
    ("+20%", Sample((102.0,), previous=100.0), UNMET, 120.0),  # +2%: no speed-up
    ("-15%", Sample((0.80,), previous=1.0), OK, 0.85),  # latency fell 20%
    ("-15%", Sample((0.95,), previous=1.0), UNMET, 0.85),  # fell 5% only
    ("+20%", Sample((50.0,), previous=None), WARN, None),  # no value before the promotion
    ("+20%", Sample((50.0,), previous=100.0, pending="too early"), NO_DATA, None),
])
def test_evaluate__expect_improvement_table(value, sample, state, limit):
    out = evaluate(promise(value), sample)
    assert out.state == state and not out.tripped
    assert out.limit == (pytest.approx(limit) if limit is not None else None)
    if state == UNMET:
        assert out.detail.startswith("promise not kept:") and "before the promotion" in out.detail


def test_evaluate__expect_improvement_may_roll_back():
    rule = promise("+20%", action="rollback")
    assert rule.action == "rollback" and promise("+20%").action == "warn"
    out = evaluate(rule, Sample((102.0,), previous=100.0))
    assert out.state == TRIPPED and out.tripped
    assert rule.describe() == "+20% on the previous variant (promised)"


@pytest.mark.parametrize("fresh, must, state", [
    (True, True, TRIPPED),     # promoted within the window, and the monitor sees nothing at all: blind
    (False, True, WARN),       # an old deployment without traffic: on_no_data decides (warn)
    (True, False, WARN),
])
def test_evaluate__must_have_data_trips_on_a_fresh_deployment_with_no_data(fresh, must, state):
    rule = parse_rule({"name": "r", "query": "q", "above": 1, "must_have_data": must}, Loc("promotion.yaml", "r"))
    outcome = evaluate(rule, Sample((), fresh=fresh))
    assert outcome.state == state
    if state == TRIPPED:
        assert "no data at all since the promotion" in outcome.detail and "must_have_data" in outcome.detail


def test_default_rules__must_have_data_is_on_for_the_shipped_rules_and_off_for_your_own():
    assert all(r.must_have_data for r in default_rules())
    assert not default_rules("feedback_total")[-1].must_have_data  # thumbs-down: on_no_data ignore
    assert not parse_rule({"name": "r", "query": "q", "above": 1}, Loc("promotion.yaml", "r")).must_have_data


def test_parse_rollback__merge_auto_needs_a_critical_rule_and_defaults_to_manual():
    assert parse_rollback({"rules": [GOOD]}, LOC).merge == "manual"
    auto = parse_rollback({"merge": "auto", "rules": [{**GOOD, "critical": True}]}, LOC)
    assert auto.merge == "auto" and [r.critical for r in auto.rules] == [True]
    with pytest.raises(InputError, match=r"rollback\.merge: is `auto`, but no rule is marked `critical: true`"):
        parse_rollback({"merge": "auto", "rules": [GOOD]}, LOC)
    with pytest.raises(InputError, match=r"rollback\.merge: must be `manual` or `auto`, got 'always'"):
        parse_rollback({"merge": "always", "rules": [GOOD]}, LOC)
