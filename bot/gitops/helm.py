"""Helm environments: the model a values file names, read as data, and `helm template` where it runs.

Helm is how vLLM (production-stack) and KServe are most often installed: one chart, one values
file per environment (`servingEngineSpec.modelSpec[].modelURL` in production-stack). Helm
renders those values into the pods, so the model a values file names is the model that runs.

**Values files as data** (`variant_ref.values` in the policy): each mapped file is read as YAML,
never rendered, and every place its field path reaches is one served model, a row of its own: a
`[*]` path gives one per list item, named by the item's `name` when it has one (so reordering
`modelSpec` is not a promotion). This needs no Helm binary. The item's other strings are read for
zoo references too (an `extraArgs` naming another variant is an error, as in a manifest).

**Rendering** (`template_argv`): an Argo CD `Application` with a Helm source is rendered by Argo CD
as `helm template` with its `valueFiles` (in order), then its `values` or `valuesObject` (the
object wins when both are set), then its `parameters` (`--set`, `--set-string` when
`forceString`): Argo CD's precedence, parameters > valuesObject > values > valueFiles.
"""

from __future__ import annotations

import json
import re
import shutil
from typing import Any, Iterator, Mapping

from bot.core.errors import InputError
from bot.core.fields import Loc
from bot.core.yamlio import load_one
from bot.policy.variant_refs import ValuesRef, extract

_STEP = re.compile(r"([A-Za-z0-9_-]+)|\[(\*|\d+)\]")


def walk(data: Any, field: str) -> Iterator[tuple[str, Any, Mapping[str, Any] | None]]:
    """``(concrete path, value, the list item it sits in)`` for every place ``field`` reaches."""
    steps = _STEP.findall(field)

    def go(node: Any, i: int, path: str, item: Mapping[str, Any] | None):
        if i == len(steps):
            yield path, node, item
            return
        key, index = steps[i]
        if key:
            if isinstance(node, Mapping) and key in node:
                yield from go(node[key], i + 1, f"{path}.{key}" if path else key, item)
        elif isinstance(node, list):
            positions = range(len(node)) if index == "*" else [int(index)] if int(index) < len(node) else []
            for n in positions:
                child = node[n]
                yield from go(child, i + 1, f"{path}[{n}]", child if isinstance(child, Mapping) else item)

    yield from go(data, 0, "", None)


def values_models(text: str, path: str, ref: ValuesRef) -> list[dict]:
    """Every model ``ref``'s field names in the values file ``path``: ``{"key", "label", "where",
    "value", "ref", "item"}``; InputError naming the file and field when one cannot be read."""
    data = load_one(text, path)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InputError(path, "", f"is a Helm values file but holds a {type(data).__name__}, not a mapping",
                         "write the values as a YAML mapping")
    loc = Loc(path)
    found = []
    for where, value, item in walk(data, ref.field):
        f_loc = loc.child(where)
        if not isinstance(value, str):
            raise f_loc.error(f"must be a string naming the model, got {type(value).__name__}",
                              "point it at the zoo path, e.g. /models/<model>/<variant>/weights")
        text_ref = extract(ref.pattern, value)
        if text_ref is None:
            raise f_loc.error(f"{value!r} does not name a zoo variant (`<model>/<variant>`"
                              + (f", pattern {ref.source!r}" if ref.source else ", matched at path segments") + ")",
                              "point it at the zoo path (/models/<model>/<variant>/weights), or fix "
                              f"{ref.where} in the policy")
        name = item.get("name") if isinstance(item, Mapping) and isinstance(item.get("name"), str) else None
        entry = where.rsplit("[", 1)[0] + f"[name={name}]" if name else where
        found.append({"key": entry, "label": f"{path.rsplit('/', 1)[-1]}: {entry}", "where": where, "value": value,
                      "ref": text_ref, "item": item, "name": name})
    return found


def helm_command() -> str | None:
    return shutil.which("helm")


def template_argv(release: str, chart: str, helm: Mapping[str, Any], values_dir: str) -> tuple[list[str], dict[str, str]]:
    """The `helm template` arguments Argo CD would use for an Application's ``helm`` source, and the
    files (name → content) to write into ``values_dir`` for its inline values. Precedence as Argo CD
    applies it: `valueFiles` in order, then `valuesObject` (or, without it, `values`), then
    `parameters` (later wins in Helm, so this order is the precedence)."""
    argv = ["template", release, chart]
    files: dict[str, str] = {}
    for f in helm.get("valueFiles") or []:
        if isinstance(f, str):
            argv += ["--values", f]
    inline = helm.get("valuesObject")
    if inline is None and isinstance(helm.get("values"), str) and helm["values"].strip():
        files["inline-values.yaml"] = helm["values"]
    elif inline is not None:
        files["inline-values.yaml"] = json.dumps(inline)
    if files:
        argv += ["--values", f"{values_dir}/inline-values.yaml"]
    for p in helm.get("parameters") or []:
        if isinstance(p, Mapping) and isinstance(p.get("name"), str):
            flag = "--set-string" if p.get("forceString") else "--set"
            argv += [flag, f"{p['name']}={p.get('value', '')}"]
    if helm.get("releaseName"):
        argv[1] = str(helm["releaseName"])
    return argv, files
