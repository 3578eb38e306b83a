"""Judging one reply against a case's assertions. Pure functions: no I/O.

A reply is what the OpenAI chat API returned: ``content`` text, ``tool_calls`` (parsed by the
server, or inline ``<tool_call>{...}</tool_call>`` markup that a server without a tool parser
passes through as text), the completion token count and the latency.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import jsonschema

from bot.appflows.suite import Assertion, Case

_INLINE_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Any  # a dict when the arguments were valid JSON, else the raw text


@dataclass(frozen=True)
class Reply:
    content: str
    tool_calls: tuple[ToolCall, ...]
    completion_tokens: int | None
    latency_ms: float

    def summary(self) -> str:
        """What the model said, as one text: content, then its tool calls."""
        parts = [self.content] if self.content else []
        for c in self.tool_calls:
            args = c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments, sort_keys=True)
            parts.append(f"tool_call {c.name}({args})")
        return "\n".join(parts) if parts else "(empty reply)"


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def reply_from_message(message: dict, completion_tokens: int | None, latency_ms: float) -> Reply:
    content = message.get("content") or ""
    calls = []
    for tc in message.get("tool_calls") or []:
        fn = (tc or {}).get("function") or {}
        calls.append(ToolCall(name=str(fn.get("name", "")), arguments=_arguments(fn.get("arguments"))))
    for block in _INLINE_CALL.findall(content):
        obj = _arguments(block.strip())
        if isinstance(obj, dict):
            calls.append(ToolCall(name=str(obj.get("name", "")), arguments=_arguments(obj.get("arguments"))))
        else:
            calls.append(ToolCall(name="", arguments=block))
    text = _INLINE_CALL.sub("", content)
    if "<tool_call>" in text:  # an unclosed block is a broken call, not text
        calls.append(ToolCall(name="", arguments=text.split("<tool_call>", 1)[1]))
        text = text.split("<tool_call>", 1)[0]
    return Reply(content=text.strip(), tool_calls=tuple(calls), completion_tokens=completion_tokens,
                 latency_ms=latency_ms)


def _json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def failure(assertion: Assertion, reply: Reply, case: Case) -> str | None:
    """Why ``reply`` breaks ``assertion``, or None when it holds."""
    kind, v, text = assertion.kind, assertion.value, reply.content
    if kind == "json":
        ok, _ = _json(text)
        return None if ok == v else ("not valid JSON" if v else "is JSON but must not be")
    if kind == "json_schema":
        ok, obj = _json(text)
        if not ok:
            return "not valid JSON"
        err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(v).iter_errors(obj))
        return None if err is None else f"JSON does not match the schema: {err.message}"
    if kind == "regex":
        return None if v.search(text) else f"does not match /{v.pattern}/"
    if kind == "contains":
        return None if v in text else f"does not contain {v!r}"
    if kind == "not_contains":
        return None if v not in text else f"contains {v!r}"
    if kind == "equals":
        return None if text.strip() == v.strip() else f"is not exactly {v!r}"
    if kind == "max_chars":
        return None if len(text) <= v else f"{len(text)} characters, more than {v}"
    if kind == "max_tokens":
        if reply.completion_tokens is None:
            return "the server reported no completion token count"
        return None if reply.completion_tokens <= v else f"{reply.completion_tokens} tokens, more than {v}"
    if kind == "latency_ms":
        return None if reply.latency_ms <= v else f"took {reply.latency_ms:.0f} ms, more than {v}"
    if kind == "refuses":
        declined = not reply.tool_calls and any(p.search(text) for p in case.refusal_patterns)
        if declined == v:
            return None
        return "did not decline" if v else "declined a request it should answer"
    if kind == "tool_call":
        return _tool_call_failure(v, reply)
    raise AssertionError(f"unknown assertion kind {kind!r}")


def _tool_call_failure(spec: dict, reply: Reply) -> str | None:
    if not reply.tool_calls:
        return f"made no tool call (expected {spec['name']})"
    matching = [c for c in reply.tool_calls if c.name == spec["name"]]
    if not matching:
        return f"called {', '.join(repr(c.name) for c in reply.tool_calls)} instead of {spec['name']!r}"
    problems = []
    for call in matching:
        if not isinstance(call.arguments, dict):
            problems.append("arguments are not a JSON object")
            continue
        if spec.get("arguments") is None:
            return None
        err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(spec["arguments"]).iter_errors(call.arguments))
        if err is None:
            return None
        problems.append(f"arguments do not match the schema: {err.message}")
    return f"{spec['name']}: " + "; ".join(problems)


def judge(case: Case, reply: Reply) -> tuple[str, ...]:
    """Every assertion ``reply`` breaks; empty when the sample passes."""
    return tuple(f"{a.kind}: {why}" for a in case.expect if (why := failure(a, reply, case)) is not None)
