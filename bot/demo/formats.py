"""Reading a Canopy reply: JSON answers, tool calls and refusals.

A reply reaches us in one of two shapes and both are accepted:
- parsed by the server into OpenAI ``message.tool_calls`` (``transformers serve`` does this
  for canopy-tiny because its tokenizer ships a ``response_template``), or
- raw markup in ``content``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  (servers without a parser for it, and local ``generate``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from bot.demo.corpus import REFUSAL

_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_END_MARKERS = ("<|im_end|>", "<|endoftext|>")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: object  # a dict when the arguments were valid JSON, else the raw string


@dataclass(frozen=True)
class Reply:
    content: str
    tool_calls: tuple[ToolCall, ...]


def _arguments(raw: object) -> object:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def parse_text(text: str) -> Reply:
    """Split raw generated text into content and inline ``<tool_call>`` blocks."""
    for marker in _END_MARKERS:
        text = text.split(marker, 1)[0]
    calls = []
    for block in _TOOL_CALL.findall(text):
        try:
            obj = json.loads(block)
        except ValueError:
            calls.append(ToolCall(name="", arguments=block))
            continue
        if isinstance(obj, dict):
            calls.append(ToolCall(name=str(obj.get("name", "")), arguments=_arguments(obj.get("arguments"))))
        else:
            calls.append(ToolCall(name="", arguments=block))
    # An unclosed block is a broken call, not content.
    if "<tool_call>" in _TOOL_CALL.sub("", text):
        calls.append(ToolCall(name="", arguments=text.split("<tool_call>")[-1]))
    content = _TOOL_CALL.sub("", text).split("<tool_call>")[0].strip()
    return Reply(content=content, tool_calls=tuple(calls))


def parse_message(message: dict) -> Reply:
    """Read an OpenAI chat ``message``, whichever way the server returned tool calls."""
    inline = parse_text(message.get("content") or "")
    parsed = tuple(
        ToolCall(name=tc["function"]["name"], arguments=_arguments(tc["function"].get("arguments")))
        for tc in message.get("tool_calls") or []
    )
    return Reply(content=inline.content, tool_calls=parsed + inline.tool_calls)


def json_object(content: str, keys: tuple[str, ...] | list[str]) -> dict | None:
    """The reply as a JSON object with exactly ``keys``, or None."""
    try:
        obj = json.loads(content)
    except ValueError:
        return None
    if not isinstance(obj, dict) or set(obj) != set(keys):
        return None
    return obj


_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
               "array": list}


def tool_call_valid(call: ToolCall, tools: list[dict] | tuple[dict, ...]) -> bool:
    """Names an offered tool, with a JSON object of arguments matching its schema."""
    spec = next((t["function"] for t in tools if t["function"]["name"] == call.name), None)
    if spec is None or not isinstance(call.arguments, dict):
        return False
    params = spec.get("parameters") or {}
    props = params.get("properties") or {}
    if set(params.get("required") or []) - set(call.arguments) or set(call.arguments) - set(props):
        return False
    for key, value in call.arguments.items():
        expected = _JSON_TYPES.get(props[key].get("type"))
        if expected and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
            return False
    return True


def is_refusal(content: str) -> bool:
    return content.strip() == REFUSAL


def is_one_sentence(content: str) -> bool:
    text = content.strip()
    return bool(text) and text[-1] in ".!?" and not re.search(r"[.!?]\s+\S", text) and "{" not in text
