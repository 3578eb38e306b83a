"""YAML loading for untrusted files: safe loader only, errors that name the file and line."""

from __future__ import annotations

from typing import Any

import yaml

from bot.errors import InputError

# libyaml's C loader when present: parsing thousands of manifests is the hot path of `check`.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_error(file: str, exc: yaml.YAMLError) -> InputError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return InputError(file, where, f"malformed YAML: {problem}", "correct the YAML syntax; yamllint shows the exact spot")


def load_one(text: str, file: str) -> Any:
    """One YAML document."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc) from exc


def load_all(text: str, file: str) -> list[Any]:
    """Every document of a multi-document YAML file, empty documents dropped."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc) from exc


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
