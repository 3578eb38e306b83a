"""Strings of a Kubernetes object as the components that act on them read them.

A manifest names a model path the way the kubelet and the model server will see it, not the way
it is written. Two rewrites happen before anything in the bot looks for a zoo reference:

- **the kubelet's `$(VAR)` expansion** (Kubernetes' `third_party/forked/golang/expansion`): in a
  container's `command` and `args`, `$(NAME)` becomes the value of the container's env var
  `NAME`; `$$` is a literal `$`; a reference to a name the container does not define stays as
  written. An env var's own `value` is expanded the same way from the vars defined before it.
  Values the bot cannot know (`valueFrom`, `envFrom`, service links) stay unresolved: an
  unresolved reference where a model path goes (`--model $(M)`, `$(ZOO)/weights`, a var called
  `MODEL_PATH`) is an error, since the server would load whatever the cluster supplies. A
  ConfigMap the same environment applies (a kustomize `configMapGenerator`'s, under its hashed
  name) is read as the kubelet reads it, through `envFrom` and `configMapKeyRef`;
- **path normalisation**: `//`, `/./` and `x/../` are what the filesystem makes of them, so
  `/models/m//v1.4-int2-g64` and `/models/m/v1.3-int4-g64/weights/../../v1.4-int2-g64` name int2.

`as_served(doc)` returns the object with both applied to every container (the pod template's, a
KServe predictor's: any mapping with `command`, `args` or `env`), plus every unresolved
reference that sits where a model path goes.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping  # not typing's: isinstance through it is several times slower
from dataclasses import dataclass
from typing import Any

_MODEL_FLAGS = frozenset({"--model", "--model-path", "--model_path", "--model-id", "--model_id", "--model-dir",
                          "--model_dir", "--model-name-or-path", "--model_name_or_path", "--tokenizer",
                          "--checkpoint", "--weights", "--storage-uri", "--model-uri"})
_MODEL_NAME = re.compile(r"MODEL|WEIGHT|CHECKPOINT|ZOO|VARIANT|STORAGE", re.IGNORECASE)
# A path-like run of characters: what a shell or a flag parser hands on as one word.
_WORD = re.compile(r"[^\s\"'`=,;()\[\]{}<>|&]*/[^\s\"'`=,;()\[\]{}<>|&]*")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:/)(/?)")


@dataclass(frozen=True)
class Unresolved:
    """A `$(NAME)` the bot cannot expand, where a model path goes."""

    where: str  # field path within the object, e.g. `spec.template.spec.containers[0].args[1]`
    name: str
    why: str  # "is set from valueFrom" | "comes from envFrom" | "is not defined"


def expand(text: str, lookup) -> tuple[str, list[str]]:
    """Kubernetes' `expansion.Expand`: ``lookup(name)`` gives a value or None (left as `$(name)`).
    Returns the expanded text and the names left unresolved, in order."""
    out: list[str] = []
    missing: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":  # escaped operator
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:  # incomplete reference: kept as written
                out.append("$(")
                i += 2
                continue
            name = text[i + 2:close]
            value = lookup(name)
            if value is None:
                missing.append(name)
                out.append(f"$({name})")
            else:
                out.append(value)
            i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out), missing


def normalise(text: str) -> str:
    """Every path-like word of ``text`` as the filesystem resolves it (`a//b`, `a/./b`, `a/x/../b` →
    `a/b`); a URI keeps its `scheme://host` and has its path normalised."""
    if "/" not in text or ("//" not in text and "/." not in text and "./" not in text):
        return text  # nothing a filesystem would resolve differently (the common case: fast)
    return _WORD.sub(lambda m: _normal_path(m.group(0)), text)


def _normal_path(word: str) -> str:
    m = _SCHEME.match(word)
    head, rest = ("", word) if not m else (m.group(0), word[m.end():])
    if m and m.group(2):  # scheme://authority/path: the authority is not a path segment
        authority, slash, path = rest.partition("/")
        if not slash:
            return word
        return head + authority + "/" + _normal(path, absolute=False)
    return head + _normal(rest, absolute=rest.startswith("/"))


def _normal(path: str, *, absolute: bool) -> str:
    if not path:
        return path
    trailing = "/" if path.endswith("/") and path.strip("/") else ""
    normal = posixpath.normpath(path)
    if normal.startswith("//"):  # POSIX keeps a leading `//`; the kubelet's paths and vLLM do not
        normal = "/" + normal.lstrip("/")
    if normal == ".":
        return "./" if trailing else "."
    return normal + trailing


class _Env:
    """A container's environment as the kubelet builds it: `envFrom` first (unknown to the bot),
    then `env` in order, each value expanded from the ones before it."""

    def __init__(self, container: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, str]]) -> None:
        self.values: dict[str, str | None] = {}
        self.why: dict[str, str] = {}
        self.from_sources = False
        self.expanded: dict[int, str] = {}
        self.missing: dict[int, list[str]] = {}
        for source in container.get("envFrom") or []:
            ref = source.get("configMapRef") if isinstance(source, Mapping) else None
            data = configmaps.get(ref.get("name")) if isinstance(ref, Mapping) else None
            if data is None:
                self.from_sources = True  # a Secret, or a ConfigMap this environment does not hold
                continue
            prefix = source.get("prefix") or ""
            self.values.update({f"{prefix}{k}": v for k, v in data.items() if isinstance(v, str)})
        env = container.get("env")
        for i, var in enumerate(env if isinstance(env, list) else []):
            if not isinstance(var, Mapping) or not isinstance(var.get("name"), str):
                continue
            name = var["name"]
            if "valueFrom" in var and var.get("value") is None:
                key_ref = var["valueFrom"].get("configMapKeyRef") if isinstance(var["valueFrom"], Mapping) else None
                data = configmaps.get(key_ref.get("name")) if isinstance(key_ref, Mapping) else None
                if data is not None and isinstance(data.get(key_ref.get("key")), str):
                    self.values[name] = data[key_ref["key"]]  # the ConfigMap Argo CD applies beside it
                    self.why.pop(name, None)
                    continue
                self.values[name] = None
                self.why[name] = "is set from valueFrom (known only in the cluster)"
                continue
            value = var.get("value")
            if value is None:
                value = ""
            if not isinstance(value, str):
                continue  # the manifest's type error, reported where types are checked
            expanded, self.missing[i] = expand(value, self.lookup)
            self.expanded[i] = expanded
            self.values[name] = expanded
            self.why.pop(name, None)

    def lookup(self, name: str) -> str | None:
        return self.values.get(name)

    def reason(self, name: str) -> str:
        if name in self.why:
            return self.why[name]
        if self.from_sources:
            return "may come from envFrom (known only in the cluster)"
        return "is not defined in the container's env (the kubelet leaves it as written)"


def as_served(doc: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, str]] | None = None) -> tuple[Any, list[Unresolved]]:
    """The object with every container's `command`, `args` and env values expanded as the kubelet
    expands them, and every string's paths normalised; plus the unresolved references that sit
    where a model path goes. ``configmaps``: the data of the ConfigMaps in the object's namespace
    that the environment applies (by name), which `envFrom` and `configMapKeyRef` read."""
    unresolved: list[Unresolved] = []
    configmaps = configmaps or {}

    def walk(node: Any, where: str, depth: int) -> Any:
        if depth > 64:
            return node
        if isinstance(node, str):
            return normalise(node)
        if isinstance(node, list):
            return [walk(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node)]
        if not isinstance(node, Mapping):
            return node
        if _is_container(node):
            return _container(node, where, depth, walk, unresolved, configmaps)
        return {k: walk(v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in node.items()}

    return walk(doc, "", 0), unresolved


def _is_container(node: Mapping[str, Any]) -> bool:
    return any(isinstance(node.get(k), list) for k in ("command", "args", "env"))


def _container(node, where, depth, walk, unresolved, configmaps) -> dict:
    env = _Env(node, configmaps)
    out = {}
    for key, value in node.items():
        here = f"{where}.{key}" if where else str(key)
        if key in ("command", "args") and isinstance(value, list):
            words = []
            for i, word in enumerate(value):
                if not isinstance(word, str):
                    words.append(walk(word, f"{here}[{i}]", depth + 1))
                    continue
                expanded, missing = expand(word, env.lookup)
                previous = value[i - 1] if i > 0 and isinstance(value[i - 1], str) else ""
                for name in missing:
                    if _names_model(word, name, previous, value[:i]):
                        unresolved.append(Unresolved(f"{here}[{i}]", name, env.reason(name)))
                words.append(normalise(expanded))
            out[key] = words
        elif key == "env" and isinstance(value, list):
            items = []
            for i, var in enumerate(value):
                if isinstance(var, Mapping) and i in env.expanded:
                    items.append({**var, "value": normalise(env.expanded[i])})
                    value_text = var.get("value") or ""
                    for name in env.missing.get(i, []):
                        if _names_model(value_text, name, "", [], var_name=str(var.get("name"))):
                            unresolved.append(Unresolved(f"{here}[{i}].value", name, env.reason(name)))
                else:
                    items.append(walk(var, f"{here}[{i}]", depth + 1))
            out[key] = items
        else:
            out[key] = walk(value, here, depth + 1)
    return out


def _names_model(word: str, name: str, previous: str, before: list, var_name: str = "") -> bool:
    """Whether an unresolved `$(name)` in ``word`` sits where a model path goes: a path is built
    from it, a model flag takes it, it follows `serve`, or the variable is called like a model."""
    rest = word.replace(f"$({name})", "")
    flag = word.split("=", 1)[0] if word.startswith("--") and "=" in word else previous
    return ("/" in rest or flag in _MODEL_FLAGS or previous == "serve"
            or bool(_MODEL_NAME.search(name)) or bool(_MODEL_NAME.search(var_name)))


# vLLM's `--served-model-name`; KServe's model servers' `--model_name`.
_NAME_FLAGS = frozenset({"--served-model-name", "--served_model_name", "--model_name", "--model-name"})


def served_model_name(served_doc: Mapping[str, Any]) -> str | None:
    """The name a vLLM server exports its metrics under (`model_name` label), from its own args
    (after expansion): `--served-model-name` (its first name), else `--model` or `vllm serve
    <model>`, which vLLM then uses as the name; None when no container says."""
    for container in _containers(served_doc):
        words: list[str] = []
        for key in ("command", "args"):
            for word in container.get(key) or []:
                if isinstance(word, str):
                    words.extend(word.split())
        model = None
        for i, word in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else None
            flag, eq, value = word.partition("=")
            if flag in _NAME_FLAGS and not eq and nxt and not nxt.startswith("--"):
                return nxt.strip("\"'")
            if flag in _NAME_FLAGS and eq and value.strip("\"'"):
                return value.split(",")[0].strip("\"'")
            if model is None and word == "--model" and nxt:
                model = nxt
            elif model is None and word.startswith("--model="):
                model = word.split("=", 1)[1]
            elif model is None and word == "serve" and nxt and not nxt.startswith("-"):
                model = nxt
        if model:
            return model.strip("\"'")
    return None


def _containers(node: Any, depth: int = 0):
    if depth > 64:
        return
    if isinstance(node, Mapping):
        if _is_container(node):
            yield node
        for value in node.values():
            yield from _containers(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _containers(value, depth + 1)
