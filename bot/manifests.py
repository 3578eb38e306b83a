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
from bot.fields import Loc
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
        if not isinstance(doc, Mapping):
            raise loc.error(f"is a {type(doc).__name__}, not a Kubernetes object", "each YAML document needs apiVersion, kind and metadata")
        missing = [k for k in ("apiVersion", "kind", "metadata") if not doc.get(k)]
        if missing:
            raise loc.error(f"is not a Kubernetes object: missing {', '.join(missing)}", "add apiVersion, kind and metadata.name")
        meta = doc["metadata"]
        if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
            raise loc.child("metadata.name").error("is required", "give the object a name")
        raw_ref, ref_loc = _variant_text(doc, rule, loc)
        if raw_ref is None:
            continue
        ref = VariantRef.parse(raw_ref, ref_loc)
        annotations = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        application = str(annotations.get(APP_ANNOTATION) or labels.get("app.kubernetes.io/name") or labels.get("app") or meta["name"])
        served_model = str(annotations.get(SERVED_MODEL_ANNOTATION) or ref.model)
        served.append(ServedObject(
            manifest=path, object=f"{doc['kind']}/{meta['name']}", ref=ref,
            application=application, served_model=served_model, canary_steps=_canary_steps(doc),
        ))
    return served


def _variant_text(doc: Mapping[str, Any], rule: VariantRefRule, loc: Loc) -> tuple[str | None, Loc]:
    if rule.annotation:
        annotations = doc["metadata"].get("annotations") or {}
        value = annotations.get(rule.annotation) if isinstance(annotations, Mapping) else None
        return (value if value is None else str(value)), loc.child(f"metadata.annotations[{rule.annotation}]")
    value = _field(doc, rule.field or "")
    if value is None:
        return None, loc.child(rule.field or "")
    m = rule.pattern.search(str(value)) if rule.pattern else None
    field_loc = loc.child(rule.field or "")
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


def _canary_steps(doc: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...] | None:
    if doc.get("kind") != "Rollout":
        return None
    canary = (((doc.get("spec") or {}).get("strategy") or {}).get("canary"))
    if not isinstance(canary, Mapping):
        return None
    steps = canary.get("steps") or []
    return tuple(s for s in steps if isinstance(s, Mapping))


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
