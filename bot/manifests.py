"""Kubernetes manifests under `environments/<env>/`: which variant each object serves.

Argo CD applies everything in these folders, so the bot asks nothing of them but valid
Kubernetes objects: the variant is named by an annotation (`promotion-bot/variant`) or by a
field the policy points at (e.g. a KServe `storageUri`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from bot.errors import InputError
from bot.fields import Loc, mapping, sequence
from bot.policy import Environment, Policy, VariantRefRule
from bot.yamlio import load_all
from bot.zoo import VariantRef

MANIFEST_SUFFIXES = (".yaml", ".yml")
APP_ANNOTATION = "promotion-bot/app"
SERVED_MODEL_ANNOTATION = "promotion-bot/served-model"


@dataclass(frozen=True)
class ServedObject:
    """One Kubernetes object in a manifest file that serves a zoo variant."""

    manifest: str
    object: str  # "Kind/name"
    ref: VariantRef
    application: str
    served_model: str
    canary_steps: tuple[Mapping[str, Any], ...] | None  # None: not an Argo Rollouts canary


@dataclass(frozen=True)
class Deployment:
    """A variant deployed in an environment at some revision (what monitoring watches)."""

    environment: str
    manifest: str
    object: str
    application: str
    model: str
    variant: str
    served_model: str


def is_manifest(path: str) -> bool:
    return path.endswith(MANIFEST_SUFFIXES)


def parse_manifest(text: str, path: str, rule: VariantRefRule) -> list[ServedObject]:
    """The objects in ``path`` that name a variant. Every document must be a Kubernetes object."""
    served = []
    for i, doc in enumerate(load_all(text, path)):
        loc = Loc(path, f"document[{i}]")
        meta = _object_meta(doc, loc)
        raw_ref, ref_loc = _variant_text(doc, rule, loc)
        if raw_ref is None:
            continue
        ref = VariantRef.parse(raw_ref, ref_loc)
        annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
        application = annotations.get(APP_ANNOTATION) or labels.get("app.kubernetes.io/name") or labels.get("app") or meta["name"]
        served_model = annotations.get(SERVED_MODEL_ANNOTATION) or ref.model
        served.append(ServedObject(
            manifest=path, object=f"{doc['kind']}/{meta['name']}", ref=ref,
            application=application, served_model=served_model, canary_steps=_canary_steps(doc, loc),
        ))
    return served


def _object_meta(doc: Any, loc: Loc) -> Mapping[str, Any]:
    """The object's metadata, with every field the bot reads of the type Kubernetes requires."""
    if not isinstance(doc, Mapping):
        raise loc.error(f"is a {type(doc).__name__}, not a Kubernetes object", "each YAML document needs apiVersion, kind and metadata")
    missing = [k for k in ("apiVersion", "kind", "metadata") if not doc.get(k)]
    if missing:
        raise loc.error(f"is not a Kubernetes object: missing {', '.join(missing)}", "add apiVersion, kind and metadata.name")
    for key in ("apiVersion", "kind"):
        if not isinstance(doc[key], str):
            raise loc.child(key).error(f"must be a string, got {type(doc[key]).__name__}", f"write e.g. `{key}: apps/v1`"
                                       if key == "apiVersion" else "write e.g. `kind: Deployment`")
    meta = mapping(doc["metadata"], loc.child("metadata"))
    if not isinstance(meta.get("name"), str) or not meta["name"]:
        raise loc.child("metadata.name").error("is required and must be a string", "give the object a name")
    for key in ("annotations", "labels"):
        values = meta.get(key)
        if values is None:
            continue
        m_loc = loc.child(f"metadata.{key}")
        for name, value in mapping(values, m_loc).items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise m_loc.child(str(name)).error(
                    f"must map a string to a string, got {type(value).__name__}",
                    "Kubernetes takes only string values here: quote it (`\"true\"`, `\"3\"`)")
    return meta


def _variant_text(doc: Mapping[str, Any], rule: VariantRefRule, loc: Loc) -> tuple[str | None, Loc]:
    if rule.annotation:
        annotations = doc["metadata"].get("annotations") or {}
        return annotations.get(rule.annotation), loc.child(f"metadata.annotations[{rule.annotation}]")
    field_loc = loc.child(rule.field or "")
    value = _field(doc, rule.field or "")
    if value is None:
        return None, field_loc
    if not isinstance(value, str):
        raise field_loc.error(f"must be a string, got {type(value).__name__}",
                              "point it at a zoo path like models/<model>/<variant>")
    m = rule.pattern.search(value) if rule.pattern else None
    if not m:
        raise field_loc.error(f"{value!r} does not match the policy's variant_ref.pattern",
                              "point it at a zoo path like models/<model>/<variant>")
    return f"{m['model']}/{m['variant']}", field_loc


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _field(doc: Any, path: str) -> Any:
    """Follow ``spec.predictor.model.storageUri`` or ``spec.containers[0].args`` into a document."""
    node = doc
    for name, index in _SEGMENT.findall(path):
        if name:
            if not isinstance(node, Mapping) or name not in node:
                return None
            node = node[name]
        else:
            if not isinstance(node, list) or int(index) >= len(node):
                return None
            node = node[int(index)]
    return node


def _canary_steps(doc: Mapping[str, Any], loc: Loc) -> tuple[Mapping[str, Any], ...] | None:
    if doc.get("kind") != "Rollout":
        return None
    node: Any = doc
    for key in ("spec", "strategy", "canary"):
        node = node.get(key) if isinstance(node, Mapping) else None
        if node is None:
            return None
        loc = loc.child(key)
        mapping(node, loc)
    steps = sequence(node.get("steps") or [], loc.child("steps"))
    for n, step in enumerate(steps):
        mapping(step, loc.child("steps").child(n))
    return tuple(steps)


class ManifestIndex:
    """Manifests read from one revision, parsed once per file."""

    def __init__(self, reader, rev: str, policy: Policy) -> None:
        self.reader = reader
        self.rev = rev
        self.policy = policy
        self._files: dict[str, list[ServedObject] | None] = {}
        self._environments: dict[str, list[ServedObject]] = {}
        self._refs: dict[str, frozenset[VariantRef]] = {}

    def objects_in(self, path: str) -> list[ServedObject] | None:
        """Served objects of one file, or None when the file does not exist at this revision."""
        if path not in self._files:
            self._parse(path, self.reader.read_text(self.rev, path))
        return self._files[path]

    def prefetch(self, paths: Iterable[str]) -> None:
        """Read many files in one batch; parse errors surface later, from `objects_in`."""
        todo = [p for p in dict.fromkeys(paths) if p not in self._files]
        if len(todo) > 1 and hasattr(self.reader, "read_many"):
            for path, text in self.reader.read_many(self.rev, todo).items():
                try:
                    self._parse(path, text)
                except InputError:
                    pass  # left unparsed: objects_in reads it again and raises for the caller

    def _parse(self, path: str, text: str | None) -> None:
        self._files[path] = None if text is None else parse_manifest(text, path, self.policy.variant_ref)

    def environment_objects(self, env: Environment) -> list[ServedObject]:
        if env.name not in self._environments:
            paths = [p for p in self.reader.list_files(self.rev, env.folder) if is_manifest(p)]
            self.prefetch(paths)
            objects: list[ServedObject] = []
            for path in paths:
                objects.extend(self.objects_in(path) or [])
            self._environments[env.name] = objects
        return self._environments[env.name]

    def deployed_refs(self, env: Environment) -> frozenset[VariantRef]:
        if env.name not in self._refs:
            self._refs[env.name] = frozenset(o.ref for o in self.environment_objects(env))
        return self._refs[env.name]


def deployments(reader, rev: str, policy: Policy, environment: str) -> list[Deployment]:
    """Every variant the named environment serves at ``rev``."""
    env = policy.environment(environment)
    if env is None:
        raise InputError(policy.file, "environments", f"has no environment named {environment!r}",
                         f"use one of {', '.join(e.name for e in policy.environments)}")
    index = ManifestIndex(reader, rev, policy)
    return [
        Deployment(environment=env.name, manifest=o.manifest, object=o.object, application=o.application,
                   model=o.ref.model, variant=o.ref.variant, served_model=o.served_model)
        for o in index.environment_objects(env)
    ]


def by_object(objects: Iterable[ServedObject]) -> dict[str, ServedObject]:
    return {o.object: o for o in objects}
