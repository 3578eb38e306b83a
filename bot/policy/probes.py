"""Prod probes: prod's `probes:` section of promotion.yaml, parsed into a frozen `ProbePolicy`.

    probes:
      suites: evals/canopy        # default: evals/<app>; read from the default branch
      tags: [system-prompt, output-format]   # which cases to draw from (default: all four tags)
      sample: 6                   # cases per run and deployment, rotating through the suite (default: all)
      sample_rule: majority       # for cases with samples > 1
      concurrency: 2
      request_timeout: 60s
      serve: {mode: url, url: "https://canopy.prod.example.com/v1"}   # default: the policy's `serve:`
      history: .promotion-bot/probe-history.json   # where runs are kept between scheduled passes
      pushgateway: http://pushgateway:9091         # or keep them in a Prometheus Pushgateway
      keep: 20                    # runs kept per deployment
      rules:
        - name: system-prompt-probes
          tag: system-prompt
          below: 90%              # the pass rate under this...
          consecutive: 2          # ...in this many probes in a row (default 1)
        - name: output-format-vs-gate
          tag: output-format
          under_gate: 2           # more than 2 points under the pass rate the gate recorded for the
                                  # variant (refs/notes/promotion-bot: prod's gate, else the newest that ran app-flows)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from bot.appflows.options import SAMPLE_RULES
from bot.appflows.suite import TAGS
from bot.core.fields import (
    Loc,
    get_duration,
    get_int,
    get_number,
    get_percent,
    get_str,
    mapping,
    reject_unknown,
    sequence,
)
from bot.core.paths import check_repo_path

DEFAULT_HISTORY = ".promotion-bot/probe-history.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class ProbeRule:
    name: str
    tag: str
    below: float | None  # 0.9 for 90%
    under_gate: float | None  # points (percentage points) under the gate's pass rate
    consecutive: int
    field: str

    def describe(self) -> str:
        runs = f" in {self.consecutive} probes in a row" if self.consecutive > 1 else ""
        if self.below is not None:
            return f"{self.tag} pass rate below {self.below:.0%}{runs}"
        return f"{self.tag} pass rate more than {self.under_gate:g} points under the gate{runs}"


@dataclass(frozen=True)
class ProbePolicy:
    suites: str | None
    tags: tuple[str, ...]
    sample: int | None
    sample_rule: str
    concurrency: int
    request_timeout_s: float
    serve: Mapping[str, Any] | None
    history: str
    pushgateway: str | None
    keep: int
    rules: tuple[ProbeRule, ...]
    loc: Loc


def parse_probes(raw: Mapping[str, Any] | None, loc: Loc) -> ProbePolicy | None:
    if raw is None:
        return None
    raw = mapping(raw, loc)
    reject_unknown(raw, {"suites", "tags", "sample", "sample_rule", "concurrency", "request_timeout", "serve",
                         "history", "pushgateway", "keep", "rules"}, loc)
    suites = raw.get("suites")
    if suites is not None:
        suites = check_repo_path(get_str(raw, "suites", loc), file=loc.file, field=f"{loc.path}.suites")
    tags = tuple(str(t) for t in sequence(raw.get("tags", list(TAGS)), loc.child("tags")))
    for i, tag in enumerate(tags):
        if tag not in TAGS:
            raise loc.child("tags").child(i).error(f"{tag!r} is not a known tag", f"use one of {', '.join(TAGS)}")
    sample_rule = get_str(raw, "sample_rule", loc, "majority")
    if sample_rule not in SAMPLE_RULES:
        raise loc.child("sample_rule").error(f"{sample_rule!r} is not a rule", f"use one of {', '.join(SAMPLE_RULES)}")
    serve = raw.get("serve")
    if serve is not None:
        serve = mapping(serve, loc.child("serve"))
    history = get_str(raw, "history", loc, DEFAULT_HISTORY)
    pushgateway = get_str(raw, "pushgateway", loc, None)
    if pushgateway is not None and not pushgateway.startswith(("http://", "https://")):
        raise loc.child("pushgateway").error(f"must be an http(s) URL, got {pushgateway!r}",
                                             "write it like http://pushgateway:9091")
    rules_loc = loc.child("rules")
    rules: list[ProbeRule] = []
    for i, item in enumerate(sequence(raw.get("rules") or [], rules_loc)):
        rule = _rule(item, rules_loc.child(i))
        if any(r.name == rule.name for r in rules):
            raise rules_loc.child(i).child("name").error(f"rule {rule.name!r} is listed twice", "give each rule its own name")
        if rule.tag not in tags:
            raise rules_loc.child(i).child("tag").error(f"{rule.tag!r} is not among the probed tags {list(tags)}",
                                                        f"add {rule.tag} to {loc.path}.tags")
        rules.append(rule)
    if not rules:
        raise rules_loc.error("is empty: probes without rules can never roll back",
                              "add e.g. `- {name: system-prompt-probes, tag: system-prompt, below: 90%, consecutive: 2}`")
    return ProbePolicy(
        suites=suites, tags=tags, sample=get_int(raw, "sample", loc, None, minimum=1), sample_rule=sample_rule,
        concurrency=get_int(raw, "concurrency", loc, 2, minimum=1),
        request_timeout_s=get_duration(raw, "request_timeout", loc, 60.0), serve=serve, history=history,
        pushgateway=pushgateway,
        keep=get_int(raw, "keep", loc, 20, minimum=2), rules=tuple(rules), loc=loc,
    )


def _rule(raw: Any, loc: Loc) -> ProbeRule:
    spec = mapping(raw, loc)
    reject_unknown(spec, {"name", "tag", "below", "under_gate", "consecutive"}, loc)
    name = get_str(spec, "name", loc)
    if not _NAME.match(name):
        raise loc.child("name").error(f"{name!r} is not a valid rule name", "use lowercase letters, digits, `-`, `_` and `.`")
    tag = get_str(spec, "tag", loc)
    if tag not in TAGS:
        raise loc.child("tag").error(f"{tag!r} is not a known tag", f"use one of {', '.join(TAGS)}")
    given = [k for k in ("below", "under_gate") if k in spec]
    if len(given) != 1:
        raise loc.error(f"needs exactly one of `below` and `under_gate`, got {len(given)}",
                        "write `below: 90%` or `under_gate: 2` (points)")
    below = get_percent(spec, "below", loc, None)
    if below is not None and not 0 < below <= 1:
        raise loc.child("below").error("must be between 0% and 100%")
    under_gate = get_number(spec, "under_gate", loc, None, minimum=0)
    return ProbeRule(name=name, tag=tag, below=below, under_gate=None if under_gate is None else float(under_gate),
                     consecutive=get_int(spec, "consecutive", loc, 1, minimum=1), field=f"{loc.file}: {loc.path}")
