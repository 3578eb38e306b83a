"""Application-flow suites: `evals/<app>/*.yaml`, parsed strictly into frozen cases.

A suite file::

    suite: canopy-json            # optional; defaults to the file name
    defaults:                     # optional; merged into every case (a case's own keys win)
      system: You are Canopy ...
      sampling: {temperature: 0, seed: 0, max_tokens: 64}
    cases:
      - id: json-capital
        tags: [output-format]
        system: ...
        messages: [{role: user, content: What is the capital of Italy?}]
        tools: [...]              # OpenAI tools schema, optional
        samples: 1                # > 1 for stochastic cases; the policy's rule decides
        expect:
          - json: true
          - contains: Rome

Suites are read from the base revision (trusted), like the policy: a PR cannot weaken the
suite it is judged by. Every error names the file and the field path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from bot.core.fields import Loc, get, get_bool, get_int, get_number, get_str, mapping, reject_unknown, sequence
from bot.core.yamlio import load_one

TAGS = ("system-prompt", "agent-workflow", "edge-case", "output-format")
ROLES = ("user", "assistant", "tool")
CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# What each assertion takes; see bot.appflows.assertions for what each checks.
ASSERTION_KINDS = ("json", "json_schema", "regex", "contains", "not_contains", "tool_call",
                   "max_chars", "max_tokens", "equals", "refuses", "latency_ms")

# Phrases that count as declining when a suite names none of its own.
DEFAULT_REFUSALS = (r"\bI can only help\b", r"\bI can(?:'|no)t help\b", r"\bI cannot help\b",
                    r"\bI(?:'m| am) (?:sorry|unable)\b", r"\bI (?:won't|will not)\b")


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    seed: int = 0
    max_tokens: int = 128
    top_p: float | None = None


@dataclass(frozen=True)
class Assertion:
    kind: str
    value: Any  # already validated: a compiled regex, a JSON schema, a number, a string...
    where: str  # "file: cases[3].expect[1]", for messages

    def describe(self) -> str:
        v = self.value
        if self.kind == "json":
            return "valid JSON"
        if self.kind == "json_schema":
            return f"JSON matching schema {_short(v)}"
        if self.kind == "regex":
            return f"matches /{v.pattern}/"
        if self.kind == "tool_call":
            return f"calls tool {v['name']}" + (f" with arguments matching {_short(v['arguments'])}" if v.get("arguments") else "")
        if self.kind == "refuses":
            return "declines the request" if v else "does not decline"
        if self.kind in ("max_chars", "max_tokens", "latency_ms"):
            unit = {"max_chars": "characters", "max_tokens": "tokens", "latency_ms": "ms"}[self.kind]
            return f"at most {v} {unit}"
        return f"{self.kind.replace('_', ' ')} {v!r}"


def _short(value: Any, limit: int = 120) -> str:
    import json

    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Case:
    id: str
    suite: str
    file: str
    index: int  # position in its file
    tags: tuple[str, ...]
    messages: tuple[Mapping[str, Any], ...]  # the system prompt first, when there is one
    tools: tuple[Mapping[str, Any], ...] | None
    sampling: Sampling
    samples: int
    expect: tuple[Assertion, ...]
    refusal_patterns: tuple[re.Pattern, ...]

    @property
    def key(self) -> str:
        """Unique across suites: what results are matched by."""
        return f"{self.suite}/{self.id}"

    @property
    def tag(self) -> str:
        return self.tags[0]

    def required(self) -> str:
        return "; ".join(a.describe() for a in self.expect)


@dataclass(frozen=True)
class Suite:
    name: str
    file: str
    cases: tuple[Case, ...] = field(default_factory=tuple)


_SUITE_KEYS = {"suite", "description", "defaults", "cases", "refusals"}
_CASE_KEYS = {"id", "description", "tags", "system", "messages", "tools", "sampling", "samples", "expect"}
_SAMPLING_KEYS = {"temperature", "seed", "max_tokens", "top_p"}


def parse_suite(text: str, file: str) -> Suite:
    root = Loc(file)
    data = mapping(load_one(text, file), root)
    reject_unknown(data, _SUITE_KEYS, root)
    name = get_str(data, "suite", root, file.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    defaults = mapping(data.get("defaults") or {}, root.child("defaults"))
    reject_unknown(defaults, _CASE_KEYS - {"id", "description"}, root.child("defaults"))
    refusals = _refusals(data.get("refusals"), root.child("refusals"))
    raw_cases = sequence(get(data, "cases", root), root.child("cases"))
    if not raw_cases:
        raise root.child("cases").error("is empty", "add at least one case")
    cases, seen = [], {}
    for i, raw in enumerate(raw_cases):
        loc = root.child("cases").child(i)
        case = _parse_case({**defaults, **mapping(raw, loc)}, loc, name, file, i, refusals)
        if case.id in seen:
            raise loc.child("id").error(f"{case.id!r} is already used by cases[{seen[case.id]}]", "give every case its own id")
        seen[case.id] = i
        cases.append(case)
    return Suite(name=name, file=file, cases=tuple(cases))


def _refusals(raw: Any, loc: Loc) -> tuple[re.Pattern, ...]:
    if raw is None:
        return tuple(re.compile(p, re.IGNORECASE) for p in DEFAULT_REFUSALS)
    return tuple(_regex(p, loc.child(i), re.IGNORECASE) for i, p in enumerate(sequence(raw, loc)))


def _regex(raw: Any, loc: Loc, flags: int = 0) -> re.Pattern:
    if not isinstance(raw, str) or not raw:
        raise loc.error(f"must be a non-empty regular expression, got {raw!r}")
    try:
        return re.compile(raw, flags)
    except re.error as exc:
        raise loc.error(f"is not a valid regular expression: {exc}", "quote it in single quotes so YAML keeps backslashes") from exc


def _parse_case(data: Mapping[str, Any], loc: Loc, suite: str, file: str, index: int,
                refusals: tuple[re.Pattern, ...]) -> Case:
    reject_unknown(data, _CASE_KEYS, loc)
    case_id = get_str(data, "id", loc)
    if not CASE_ID.match(case_id):
        raise loc.child("id").error(f"{case_id!r} is not a valid case id", "use letters, digits, dots, dashes and underscores")
    tags = tuple(str(t) for t in sequence(get(data, "tags", loc), loc.child("tags")))
    if not tags:
        raise loc.child("tags").error("is empty", f"tag the case with one of {', '.join(TAGS)}")
    for j, tag in enumerate(tags):
        if tag not in TAGS:
            raise loc.child("tags").child(j).error(f"{tag!r} is not a known tag", f"use one of {', '.join(TAGS)}")
    messages = []
    if data.get("system") is not None:
        messages.append({"role": "system", "content": get_str(data, "system", loc)})
    raw_messages = sequence(get(data, "messages", loc), loc.child("messages"))
    if not raw_messages:
        raise loc.child("messages").error("is empty", "add at least one `{role: user, content: ...}`")
    for j, raw in enumerate(raw_messages):
        messages.append(_message(raw, loc.child("messages").child(j)))
    if messages[-1]["role"] == "assistant":
        raise loc.child("messages").child(len(raw_messages) - 1).error(
            "the last message is the assistant's: there is nothing for the model to answer", "end with a user or tool message")
    tools = _tools(data.get("tools"), loc.child("tools"))
    sampling = _sampling(data.get("sampling"), loc.child("sampling"))
    samples = get_int(data, "samples", loc, 1, minimum=1)
    if samples > 1 and sampling.temperature == 0:
        raise loc.child("samples").error("is above 1 but sampling.temperature is 0: every sample would be the same",
                                         "set `sampling: {temperature: 0.7}` or `samples: 1`")
    expect_loc = loc.child("expect")
    raw_expect = sequence(get(data, "expect", loc), expect_loc)
    if not raw_expect:
        raise expect_loc.error("is empty: a case without assertions always passes", "add at least one assertion")
    expect = tuple(_assertion(raw, expect_loc.child(j), tools) for j, raw in enumerate(raw_expect))
    return Case(id=case_id, suite=suite, file=file, index=index, tags=tags, messages=tuple(messages),
                tools=tools, sampling=sampling, samples=samples, expect=expect, refusal_patterns=refusals)


def _message(raw: Any, loc: Loc) -> Mapping[str, Any]:
    msg = mapping(raw, loc)
    reject_unknown(msg, {"role", "content", "tool_calls", "tool_call_id", "name"}, loc)
    role = get_str(msg, "role", loc)
    if role not in ROLES:
        fix = "put the system prompt in the case's `system:`" if role == "system" else f"use one of {', '.join(ROLES)}"
        raise loc.child("role").error(f"{role!r} is not a message role here", fix)
    out: dict[str, Any] = {"role": role}
    if "tool_calls" in msg:
        if role != "assistant":
            raise loc.child("tool_calls").error("only an assistant message can carry tool calls")
        out["tool_calls"] = [dict(mapping(tc, loc.child("tool_calls").child(k))) for k, tc in
                             enumerate(sequence(msg["tool_calls"], loc.child("tool_calls")))]
        out["content"] = msg.get("content") or ""
    else:
        out["content"] = get_str(msg, "content", loc)
    for key in ("tool_call_id", "name"):
        if key in msg:
            out[key] = get_str(msg, key, loc)
    return out


def _tools(raw: Any, loc: Loc) -> tuple[Mapping[str, Any], ...] | None:
    if raw is None:
        return None
    tools = []
    for i, t in enumerate(sequence(raw, loc)):
        t_loc = loc.child(i)
        tool = mapping(t, t_loc)
        if tool.get("type") != "function":
            raise t_loc.child("type").error(f"must be `function`, got {tool.get('type')!r}", "write tools in the OpenAI tools format")
        fn = mapping(get(tool, "function", t_loc), t_loc.child("function"))
        get_str(fn, "name", t_loc.child("function"))
        params = fn.get("parameters")
        if params is not None:
            _schema(params, t_loc.child("function").child("parameters"))
        tools.append(tool)
    return tuple(tools)


def _schema(raw: Any, loc: Loc) -> Mapping[str, Any]:
    import jsonschema  # 0.1 s: only suites with a JSON-schema assertion pay it

    schema = mapping(raw, loc)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise loc.error(f"is not a valid JSON schema: {exc.message}") from exc
    return schema


def _sampling(raw: Any, loc: Loc) -> Sampling:
    if raw is None:
        return Sampling()
    data = mapping(raw, loc)
    reject_unknown(data, _SAMPLING_KEYS, loc)
    temperature = get_number(data, "temperature", loc, 0.0, minimum=0)
    top_p = get_number(data, "top_p", loc, None, minimum=0)
    return Sampling(temperature=float(temperature), seed=get_int(data, "seed", loc, 0),
                    max_tokens=get_int(data, "max_tokens", loc, 128, minimum=1),
                    top_p=None if top_p is None else float(top_p))


def _assertion(raw: Any, loc: Loc, tools) -> Assertion:
    data = mapping(raw, loc)
    if len(data) != 1:
        raise loc.error(f"must have exactly one key, got {', '.join(map(str, data)) or 'none'}",
                        "write each assertion as its own list item, e.g. `- contains: Paris`")
    kind, value = next(iter(data.items()))
    reject_unknown(data, set(ASSERTION_KINDS), loc)
    a_loc = loc.child(kind)
    where = f"{loc.file}: {loc.path}"
    if kind in ("json", "refuses"):
        return Assertion(kind, get_bool(data, kind, loc, False), where)
    if kind == "json_schema":
        return Assertion(kind, _schema(value, a_loc), where)
    if kind == "regex":
        return Assertion(kind, _regex(value, a_loc), where)
    if kind in ("contains", "not_contains", "equals"):
        if not isinstance(value, str) or (kind != "equals" and not value):
            raise a_loc.error(f"must be a {'non-empty ' if kind != 'equals' else ''}string, got {value!r}")
        return Assertion(kind, value, where)
    if kind in ("max_chars", "max_tokens", "latency_ms"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise a_loc.error(f"must be a whole number ≥ 1, got {value!r}")
        return Assertion(kind, value, where)
    # tool_call
    spec = mapping(value, a_loc)
    reject_unknown(spec, {"name", "arguments"}, a_loc)
    name = get_str(spec, "name", a_loc)
    offered = [t["function"]["name"] for t in tools or ()]
    if name not in offered:
        raise a_loc.child("name").error(f"tool {name!r} is not offered to the model in this case",
                                        f"add it to the case's `tools:` (offered: {', '.join(offered) or 'none'})")
    arguments = _schema(spec["arguments"], a_loc.child("arguments")) if spec.get("arguments") is not None else None
    return Assertion(kind, {"name": name, "arguments": arguments}, where)


def load_suites(reader, rev: str, folder: str) -> list[Suite]:
    """Every `*.yaml` suite in ``folder`` at ``rev`` (the base revision: suites are trusted)."""
    from bot.core.paths import check_repo_path

    folder = check_repo_path(folder, field="suites")
    files = sorted(p for p in reader.list_files(rev, folder) if p.endswith((".yaml", ".yml")))
    if not files:
        raise Loc(folder).error(f"has no suite files at revision {rev[:12]}",
                                "add evals/<app>/*.yaml on the base branch, or point `suites:` at the right folder")
    return _unique([parse_suite(reader.read_text(rev, p) or "", p) for p in files])


def load_suite_files(paths) -> list[Suite]:
    """Suites from local files (the CLI and probes outside a Git checkout)."""
    from pathlib import Path

    return _unique([parse_suite(Path(p).read_text(), str(p)) for p in sorted(map(str, paths))])


def _unique(suites: list[Suite]) -> list[Suite]:
    seen: dict[str, str] = {}
    for s in suites:
        if s.name in seen:
            raise Loc(s.file, "suite").error(f"suite name {s.name!r} is also used by {seen[s.name]}",
                                             "give each suite file its own `suite:` name")
        seen[s.name] = s.file
    return suites


def all_cases(suites) -> list[Case]:
    """Cases in a stable order (by file, then position): the order shards split by."""
    return [c for s in sorted(suites, key=lambda s: s.file) for c in s.cases]


def shard_cases(cases: list[Case], shard: int, count: int) -> list[Case]:
    return [c for i, c in enumerate(cases) if i % count == shard]
