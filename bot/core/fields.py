"""Typed reads from parsed YAML, each error naming the file, the field path and the fix.

``Loc("promotion.yaml", "environments[1].gate[0]").child("max_increase")`` renders as
``promotion.yaml: environments[1].gate[0].max_increase``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from bot.core.errors import InputError, UnknownKeyError

_MISSING = object()


@dataclass(frozen=True)
class Loc:
    file: str
    path: str = ""

    def child(self, key: str | int) -> "Loc":
        if isinstance(key, int):
            return Loc(self.file, f"{self.path}[{key}]")
        return Loc(self.file, f"{self.path}.{key}" if self.path else key)

    def error(self, message: str, fix: str = "") -> InputError:
        return InputError(self.file, self.path, message, fix)


def mapping(value: Any, loc: Loc) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise loc.error(f"must be a mapping, got {type(value).__name__}", "write it as `key: value` pairs")
    return value


def sequence(value: Any, loc: Loc) -> list[Any]:
    if not isinstance(value, list):
        raise loc.error(f"must be a list, got {type(value).__name__}", "write it as a YAML list (`- item`)")
    return value


def get(data: Mapping[str, Any], key: str, loc: Loc, default: Any = _MISSING) -> Any:
    if key in data and data[key] is not None:
        return data[key]
    if default is _MISSING:
        raise loc.child(key).error("is required", f"add `{key}:`")
    return default


def get_str(data: Mapping[str, Any], key: str, loc: Loc, default: Any = _MISSING) -> Any:
    value = get(data, key, loc, default)
    if value is default and default is not _MISSING:
        return value
    if not isinstance(value, str) or not value.strip():
        raise loc.child(key).error(f"must be a non-empty string, got {_shown(value)}", f"write it as `{key}: some text`")
    return value


def get_bool(data: Mapping[str, Any], key: str, loc: Loc, default: bool, fix: str | None = None) -> bool:
    """`true` or `false` (YAML's booleans); anything else is an error naming the field."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise loc.child(key).error(f"must be true or false, got {_shown(value)}", fix or "")
    return value


def get_text(data: Mapping[str, Any], key: str, loc: Loc) -> str | None:
    """An optional string (None when absent or null); a list, mapping or number is an error."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise loc.child(key).error(f"must be a string, got {_shown(value)}", f"write it as `{key}: some text` or remove it")
    return value


def get_str_list(data: Mapping[str, Any], key: str, loc: Loc) -> tuple[str, ...]:
    """An optional list of strings (empty when absent or null)."""
    items = sequence(data.get(key) or [], loc.child(key))
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise loc.child(key).child(i).error(f"must be a string, got {_shown(item)}", "write each item as one line of text")
    return tuple(items)


def _shown(value: Any) -> str:
    """A wrong value, named by its type and cut short: it may be a huge structure from a PR."""
    if isinstance(value, (Mapping, list)):
        return f"a {'mapping' if isinstance(value, Mapping) else 'list'}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def get_number(data: Mapping[str, Any], key: str, loc: Loc, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
    value = get(data, key, loc, default)
    if value is default and default is not _MISSING:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise loc.child(key).error(f"must be a number, got {_shown(value)}", f"write `{key}: 10`")
    if minimum is not None and value < minimum:
        raise loc.child(key).error(f"must be at least {minimum}, got {_shown(value)}")
    return value


def get_int(data: Mapping[str, Any], key: str, loc: Loc, default: Any = _MISSING, *, minimum: int | None = None) -> Any:
    value = get_number(data, key, loc, default, minimum=minimum)
    if value is default and default is not _MISSING:
        return value
    if not isinstance(value, int):
        raise loc.child(key).error(f"must be a whole number, got {_shown(value)}")
    return value


_PERCENT = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*%\s*$")


def parse_percent(value: Any, loc: Loc) -> float:
    """``"3%"`` → 0.03. Relative limits must carry the % sign so nobody confuses 3 with 0.03."""
    if isinstance(value, str):
        m = _PERCENT.match(value)
        if m:
            return float(m.group(1)) / 100.0
    raise loc.error(f"must be a percentage like 3%, got {_shown(value)}", "write it as a quoted or plain string, e.g. `3%`")


def get_percent(data: Mapping[str, Any], key: str, loc: Loc, default: Any = _MISSING) -> Any:
    value = get(data, key, loc, default)
    if value is default and default is not _MISSING:
        return value
    return parse_percent(value, loc.child(key))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any, loc: Loc) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"`` or ``"2h"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and float(m.group(1)) > 0:
            return float(m.group(1)) * _UNIT[m.group(2)]
    raise loc.error(f"must be a duration like 90s, 15m or 2h, got {_shown(value)}")


def get_duration(data: Mapping[str, Any], key: str, loc: Loc, default: Any = _MISSING) -> Any:
    value = get(data, key, loc, default)
    if value is default and default is not _MISSING:
        return value
    return parse_duration(value, loc.child(key))


def reject_unknown(data: Mapping[str, Any], allowed: set[str], loc: Loc) -> None:
    for key in data:
        if key not in allowed:
            close = did_you_mean(str(key), allowed)
            hint = (f"did you mean `{close}`?" if close else f"allowed keys: {', '.join(sorted(allowed))}" if allowed
                    else f"{loc.path or 'this'} takes no settings: remove it")
            child = loc.child(str(key))
            raise UnknownKeyError(child.file, child.path, "is not a known setting", hint, key=str(key),
                                  allowed=frozenset(allowed))


def did_you_mean(word: str, choices) -> str | None:
    """The closest of ``choices`` to a mistyped ``word`` (`quantisation` → `quantization`), or None."""
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return close[0] if close else None


def keyed_mapping(value: Any, loc: Loc, keys: tuple[str, ...], *, example: str, otherwise: str = "") -> Mapping[str, Any]:
    """A mapping with only ``keys``; any other shape is an error that names the keys (a bare string
    like `quantization: none` says what was meant instead of only "must be a mapping")."""
    if not isinstance(value, Mapping):
        alt = f" — or {otherwise}" if otherwise else ""
        raise loc.error(f"must be a mapping with keys {', '.join(keys)}{alt}; got {_shown(value)}", f"write `{example}`")
    reject_unknown(value, set(keys), loc)
    return value
