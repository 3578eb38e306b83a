"""Rollback rules: prod's `rollback:` section of promotion.yaml, parsed into frozen `Rule`s.

    rollback:
      defaults: true            # the shipped vLLM rules below (default: true when `rules` is absent)
      timeout: 10s              # per Prometheus request
      rules:
        - name: p95-latency
          query: histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="{model_name}"}[{window}])))
          above: 2.5            # or below: N, above_previous: 25%, below_previous: 30%
          window: 10m           # what {window} becomes
          for: 5m               # optional: the condition must hold over this long
          on_no_data: warn      # ignore | warn | rollback
          must_have_data: true  # no data at all for a deployment promoted within the window trips
                                # (default: on for the shipped rules, off for your own)
        - name: promised-throughput
          query: sum(rate(vllm:generation_tokens_total{model_name="{model_name}"}[{window}]))
          expect_improvement: +20%   # the win the compression promised: +N% rises, -N% falls (latency)
          window: 1h
          action: warn          # warn (default): one warning issue per promotion; rollback: a revert PR
      feedback_metric: canopy_feedback_total   # optional: adds the shipped thumbs-down-rate rule on it
      merge: auto               # manual (default): a human merges the revert PR; auto: the bot merges a
                                # verified revert when a rule marked `critical: true` tripped

Queries are templates: `{app}`, `{model}`, `{variant}`, `{model_name}` (the name the server
exports its metrics under: its `--served-model-name`, else its `--model`, else the manifest's
`promotion-bot/served-model` annotation) and `{window}`; PromQL's own `{label="x"}` braces are left alone.

`expect_improvement` compares prod after the promotion with the previous variant before it, like
`above_previous`, but the other way round: a promised win is a negative allowance (`+20%` on
throughput: anything below 1.2× the value before is a promise not kept). It is judged only once a
whole window has passed since the promotion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from bot.core.fields import Loc, get_bool, get_duration, get_str, mapping, parse_percent, reject_unknown, sequence

ABOVE, BELOW = "above", "below"
NO_DATA_ACTIONS = ("ignore", "warn", "rollback")
PLACEHOLDERS = ("app", "model", "variant", "model_name", "window")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_COMPARISONS = ("above", "below", "above_previous", "below_previous", "expect_improvement")
_RULE_KEYS = {"name", "query", "window", "for", "on_no_data", "must_have_data", "action", "critical", *_COMPARISONS}
WARN_ACTION, ROLLBACK_ACTION = "warn", "rollback"
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
DEFAULT_TIMEOUT_S = 10.0
MANUAL, AUTO = "manual", "auto"
MERGE_MODES = (MANUAL, AUTO)


@dataclass(frozen=True)
class Rule:
    name: str
    query: str
    direction: str  # above | below: the side that is bad
    threshold: float | None  # absolute limit, or None for a rule relative to the previous variant
    relative: float | None  # 0.25: 25% worse than the previous variant's value before the promotion
    window: str  # as written, e.g. "10m": PromQL accepts it as a range
    window_s: float
    for_s: float | None
    on_no_data: str
    field: str  # "promotion.yaml: environments[2].rollback.rules[0]" for messages
    promise: float | None = None  # expect_improvement: +0.20 (rise 20%) or -0.15 (fall 15%)
    action: str = ROLLBACK_ACTION  # what a breach does: rollback (revert PR) or warn (one issue per promotion)
    # No data at all for a deployment promoted within the last window trips: the monitor cannot
    # see what it guards (a served model name the server does not export). On for the built-in rules.
    must_have_data: bool = False
    critical: bool = False  # with `merge: auto`, its trip merges a verified revert without a human

    def describe(self) -> str:
        """The limit in words, e.g. `above 2.5` or `25% above the previous variant`."""
        if self.promise is not None:
            return f"{self.promise * 100:+g}% on the previous variant (promised)"
        if self.relative is not None:
            return f"{self.relative * 100:g}% {self.direction} the previous variant"
        return f"{self.direction} {self.threshold:g}"


@dataclass(frozen=True)
class RollbackPolicy:
    rules: tuple[Rule, ...]
    timeout_s: float
    merge: str = MANUAL  # auto: a verified revert of a critical rule's trip merges without a human


def render_query(template: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders; values come from manifests (untrusted), so they are escaped for PromQL strings."""
    def sub(m: re.Match) -> str:
        value = str(values[m.group(1)])
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return _PLACEHOLDER.sub(lambda m: sub(m) if m.group(1) in values else m.group(0), template)


def parse_rollback(raw: Mapping[str, Any] | None, loc: Loc) -> RollbackPolicy:
    """An environment's `rollback:` section; ``loc`` points at it (environments[2].rollback)."""
    if raw is None:
        return RollbackPolicy(rules=(), timeout_s=DEFAULT_TIMEOUT_S)
    raw = mapping(raw, loc)
    reject_unknown(raw, {"defaults", "rules", "timeout", "feedback_metric", "merge"}, loc)
    merge = raw.get("merge", MANUAL)
    if merge not in MERGE_MODES:
        raise loc.child("merge").error(f"must be `manual` or `auto`, got {merge!r}",
                                       "`auto` merges a verified revert PR when a rule marked `critical: true` trips; "
                                       "`manual` (the default) leaves the merge to a human")
    timeout_s = get_duration(raw, "timeout", loc, DEFAULT_TIMEOUT_S)
    feedback = get_str(raw, "feedback_metric", loc, None)
    if feedback is not None and not _METRIC_NAME.match(feedback):
        raise loc.child("feedback_metric").error(f"{feedback!r} is not a Prometheus metric name",
                                                 "write the counter's name, e.g. `feedback_metric: app_feedback_total`")
    defaults = get_bool(raw, "defaults", loc, "rules" not in raw)
    rules_loc = loc.child("rules")
    own: dict[str, Rule] = {}
    for i, item in enumerate(sequence(raw.get("rules") or [], rules_loc)):
        rule = parse_rule(item, rules_loc.child(i))
        if rule.name in own:
            raise rules_loc.child(i).child("name").error(f"rule {rule.name!r} is listed twice", "give each rule its own name")
        own[rule.name] = rule
    # A rule named like a default replaces it.
    shipped = [r for r in default_rules(feedback) if r.name not in own] if defaults else []
    rules = tuple(shipped) + tuple(own.values())
    if merge == AUTO and not any(r.critical for r in rules):
        raise loc.child("merge").error("is `auto`, but no rule is marked `critical: true`, so nothing would merge",
                                       "mark the rules whose trip must roll back without a human with "
                                       "`critical: true`, or remove `merge: auto`")
    return RollbackPolicy(rules=rules, timeout_s=timeout_s, merge=merge)


def parse_rule(raw: Any, loc: Loc) -> Rule:
    spec = mapping(raw, loc)
    reject_unknown(spec, _RULE_KEYS, loc)
    name = get_str(spec, "name", loc)
    if not _NAME.match(name):
        raise loc.child("name").error(f"{name!r} is not a valid rule name", "use lowercase letters, digits, `-`, `_` and `.`")
    query = get_str(spec, "query", loc)
    for m in _PLACEHOLDER.finditer(query):
        if m.group(1) not in PLACEHOLDERS:
            raise loc.child("query").error(f"has an unknown placeholder {{{m.group(1)}}}",
                                           f"use one of {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    if query.count("(") != query.count(")") or query.count("[") != query.count("]"):
        raise loc.child("query").error("has unbalanced brackets", "check the PromQL in the Prometheus expression browser")
    given = [k for k in _COMPARISONS if k in spec]
    if len(given) != 1:
        raise loc.error(f"needs exactly one comparison, got {len(given)}" + (f" ({', '.join(given)})" if given else ""),
                        "add one of `above: 2.5`, `below: 10`, `above_previous: 25%`, `below_previous: 30%`, "
                        "`expect_improvement: +20%`")
    key = given[0]
    threshold = relative = promise = None
    direction = BELOW if key.startswith("below") else ABOVE
    action = spec.get("action", WARN_ACTION if key == "expect_improvement" else ROLLBACK_ACTION)
    if action not in (WARN_ACTION, ROLLBACK_ACTION):
        raise loc.child("action").error(f"must be `warn` or `rollback`, got {action!r}",
                                        "`warn` opens one issue per promotion; `rollback` opens a revert PR")
    if action == WARN_ACTION and key != "expect_improvement":
        raise loc.child("action").error("`warn` is for `expect_improvement` rules",
                                        "remove it: a limit that trips rolls back (use `on_no_data: warn` for missing data)")
    if key == "expect_improvement":
        text = spec[key]
        promise = parse_percent(text, loc.child(key))
        if not (isinstance(text, str) and text.strip()[:1] in "+-") or promise == 0:
            raise loc.child(key).error(f"must carry the direction of the win, got {text!r}",
                                       "write `+20%` for a metric that should rise (throughput), `-20%` for one "
                                       "that should fall (latency)")
        # The promised value is previous × (1 + promise); below it (a rise) or above it (a fall) is a miss.
        direction = BELOW if promise > 0 else ABOVE
        relative = -abs(promise)
    elif key.endswith("_previous"):
        relative = parse_percent(spec[key], loc.child(key))
        if relative < 0:
            raise loc.child(key).error("must not be negative", "write how much worse than before is too much, e.g. 25%")
    else:
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise loc.child(key).error(f"must be a number, got {value!r}", f"write e.g. `{key}: 2.5`")
        threshold = float(value)
    window_text = str(spec.get("window", "5m")).strip()
    window_s = get_duration(spec, "window", loc, 300.0)
    if not re.fullmatch(r"\d+(ms|s|m|h)", window_text):
        raise loc.child("window").error(f"must be a whole PromQL duration like 5m, got {window_text!r}", "write e.g. `window: 10m`")
    for_s = get_duration(spec, "for", loc, None)
    critical = spec.get("critical", False)
    if not isinstance(critical, bool):
        raise loc.child("critical").error(f"must be true or false, got {critical!r}")
    if critical and action == WARN_ACTION:
        raise loc.child("critical").error("marks a `warn` rule, which never reverts",
                                          "remove `critical`, or set `action: rollback`")
    on_no_data = spec.get("on_no_data", "warn")
    if on_no_data not in NO_DATA_ACTIONS:
        raise loc.child("on_no_data").error(f"must be one of {', '.join(NO_DATA_ACTIONS)}, got {on_no_data!r}")
    must_have_data = spec.get("must_have_data", False)
    if not isinstance(must_have_data, bool):
        raise loc.child("must_have_data").error(f"must be true or false, got {must_have_data!r}",
                                                "true: no data at all for a deployment promoted within the window trips")
    return Rule(name=name, query=query, direction=direction,
                threshold=threshold, relative=relative, window=window_text, window_s=window_s, for_s=for_s,
                on_no_data=on_no_data, field=f"{loc.file}: {loc.path}", promise=promise, action=action,
                must_have_data=must_have_data, critical=critical)


_DEFAULTS_FIELD = "built-in rollback defaults"

# The seed's red flags, on the metric names vLLM's OpenAI server exports. Latency and throughput
# compare with the variant served before, since what is "slow" depends on model and hardware.
# User feedback has no standard metric: its rule exists only when the policy names the counter
# (`feedback_metric:`, labelled by `app` and `rating`).
_DEFAULT_SPECS = (
    dict(name="p95-latency", above_previous="25%", window="10m", must_have_data=True,
         query='histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="{model_name}"}[{window}])))'),
    dict(name="p95-time-to-first-token", above_previous="25%", window="10m", must_have_data=True,
         query='histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{model_name="{model_name}"}[{window}])))'),
    dict(name="token-throughput", below_previous="30%", window="10m", must_have_data=True,
         query='sum(rate(vllm:generation_tokens_total{model_name="{model_name}"}[{window}]))'),
    dict(name="error-rate", above=0.02, window="10m", must_have_data=True,
         query='sum(rate(http_requests_total{app="{app}",status=~"5.."}[{window}])) / sum(rate(http_requests_total{app="{app}"}[{window}]))'),
)
_FEEDBACK_SPEC = dict(
    name="thumbs-down-rate", above=0.15, window="30m", on_no_data="ignore",
    query='sum(rate(FEEDBACK{app="{app}",rating="down"}[{window}])) / sum(rate(FEEDBACK{app="{app}"}[{window}]))')


def default_rules(feedback_metric: str | None = None) -> tuple[Rule, ...]:
    """The shipped rules; with ``feedback_metric``, the thumbs-down rate on that counter too."""
    specs = list(_DEFAULT_SPECS)
    if feedback_metric:
        specs.append({**_FEEDBACK_SPEC, "query": _FEEDBACK_SPEC["query"].replace("FEEDBACK", feedback_metric)})
    return tuple(parse_rule(dict(spec), Loc(_DEFAULTS_FIELD, f"rules[{i}]")) for i, spec in enumerate(specs))

