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

from bot.appflows.assertions import Reply, ToolCall, reply_from_message
from bot.demo.corpus import REFUSAL

_END_MARKERS = ("<|im_end|>", "<|endoftext|>")


def parse_text(text: str) -> Reply:
    """Split raw generated text into content and inline ``<tool_call>`` blocks, as the gate reads a reply."""
    for marker in _END_MARKERS:
        text = text.split(marker, 1)[0]
    return reply_from_message({"content": text}, completion_tokens=None, latency_ms=0.0)


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
