"""Kubernetes manifests under `environments/<env>/`: which variant each object serves, as Argo CD sees it.

Argo CD applies everything in these folders, so the bot reads what Argo CD reads (see
docs/ARCHITECTURE.md, "What the bot assumes of Argo CD"):

- a directory source: every `*.yaml`, `*.yml` and `*.json` file, in sub-folders too (as with
  `directory.recurse: true`; without it the bot judges objects Argo CD would skip, never the reverse);
  a `kind: List` is its items;
- a folder with a `kustomization.yaml` (or `.yml`, `Kustomization`) at its root: what `kustomize build`
  renders (`bot.gitops.kustomize`); Helm charts and Jsonnet are refused: the bot cannot render them;
- symlinks and git submodules are refused: what they hold is not what the revision holds;
- an object is keyed as Argo CD keys it: API group, kind, namespace and name. An object without
  `metadata.namespace` lives in the application's destination namespace, which the repository does
  not name: it is the same object only as another object without one (an object that gains or
  loses its namespace is a new object, judged again, and a removal);
- files the environment's `ignore:` names are not read (Argo CD's `directory.exclude`); a
  kustomization in a sub-folder of a directory source is refused (Argo CD would apply it as is);
- the variant is named by the annotation (`promotion-bot/variant`) and by any field the
  environment's `variant_ref` points at for the object's kind (bot.policy.variant_refs), which must all
  agree; every other reference to a zoo variant in the object (container args, `storageUri`, env
  values...) must name the same variant, and an object that references one without naming its
  variant is an error, never ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping  # not typing's: isinstance through it is several times slower
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from bot.core import globs
from bot.core.errors import InputError
from bot.core.fields import Loc, mapping, sequence
from bot.core.yamlio import MAX_BYTES, MAX_NODES, _Loader, check_size, load_all
from bot.gitops import helm, kustomize
from bot.gitops.references import as_served, served_model_name
from bot.policy.model import Environment, Policy
from bot.policy.variant_refs import DEFAULT_PATTERN, VariantRefRule, VariantRefs, suggested_pattern
from bot.zoo.variants import VARIANT_NAME, VariantRef

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
APP_ANNOTATION = "promotion-bot/app"
SERVED_MODEL_ANNOTATION = "promotion-bot/served-model"
# Files Argo CD renders with a tool the bot does not run: their objects would be invisible to it.
UNRENDERED = {"Chart.yaml": "a Helm chart", "Chart.yml": "a Helm chart"}
UNRENDERED_SUFFIXES = {".jsonnet": "Jsonnet", ".libsonnet": "Jsonnet"}
# `<model>/<variant>` anywhere in a string: the variant naming scheme is distinctive enough
# (`vllm/vllm-openai:v0.6.0` does not match) to find a zoo reference in args, URIs and env values.
ZOO_REFERENCE = re.compile(r"(?<![A-Za-z0-9._-])(?P<model>[A-Za-z0-9][A-Za-z0-9._-]{0,99})/(?P<variant>"
                           + VARIANT_NAME.pattern.replace("(?P<", "(?P<_") + r")(?![A-Za-z0-9._-])", re.ASCII)

KUSTOMIZE_API = "kustomize.config.k8s.io/"
# Kinds that run a model server: only these are promotions. Another object carrying the variant
# annotation (a Namespace or Service through kustomize's commonAnnotations) is noted and skipped.
# Kinds an environment's `variant_ref` fields name count as serving too.
SERVING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job", "Rollout",
                           "InferenceService", "LLMInferenceService", "VLLMRuntime", "LeaderWorkerSet", "RayService",
                           "Application"})
_IGNORE_FIX = " (`ignore: [<file>]`, relative to its folder)"

ObjectKey = tuple[str, str, str, str]  # API group, kind, namespace ("" = the destination's), name


@dataclass(frozen=True)
class ServedObject:
    """One Kubernetes object in a manifest file that serves a zoo variant."""

    manifest: str
    object: str  # "Kind/name", or "namespace/Kind/name" when the object names its namespace
    ref: VariantRef
    application: str
    served_model: str
    canary_steps: tuple[Mapping[str, Any], ...] | None  # None: not an Argo Rollouts canary
    key: ObjectKey = field(default=("", "", "", ""), compare=False)
    application_from: str = ""  # where the application identity came from, for messages


@dataclass(frozen=True)
class ManifestObject:
    """Any Kubernetes object of an environment, served or not: what makes two files' objects the same."""

    manifest: str
    key: ObjectKey
    label: str
    served: ServedObject | None
    keys_only: bool = False  # from a file the PR does not change: read for its keys, not what it serves
    annotated: bool = False  # names a variant but is no serving kind (commonAnnotations on a Service...)
    # An Argo Rollout's `workloadRef`: (kind, name) of the workload whose pods it rolls out, its steps
    workload: tuple[tuple[str, str], tuple[Mapping[str, Any], ...] | None] | None = None


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


def load_documents(text: str, path: str) -> list[Any]:
    """The documents of a YAML or JSON manifest file, a `kind: List` flattened into its items."""
    if path.endswith(".json"):
        if len(text) > MAX_BYTES:
            raise InputError(path, "", f"is {len(text):,} characters, more than the {MAX_BYTES:,} the bot reads",
                             "keep manifests small")
        if text.count(",") + text.count("[") + text.count("{") > MAX_NODES:  # values need a separator each
            raise InputError(path, "", f"holds more than {MAX_NODES:,} values, more than the bot reads in one file",
                             "keep manifests small")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InputError(path, "", f"malformed JSON: {str(exc)[:200]}", "correct the JSON syntax") from exc
        docs = data if isinstance(data, list) else [data]
    else:
        docs = load_all(text, path)
    flat = []
    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            flat.extend(doc["items"])
        else:
            flat.append(doc)
    return flat


def parse_objects(text: str, path: str, rules: VariantRefRule | VariantRefs, *,
                  affixes: tuple[str, ...] = ()) -> list[ManifestObject]:
    """Every object in ``path``, with what it serves. Every document must be a Kubernetes object.
    ``rules``: one environment's rule, or the policy's (the rule of the environment holding ``path``).
    ``affixes``: name prefixes and suffixes per environment (its name, kustomize's `namePrefix` and
    `nameSuffix`), taken off a name before it stands for the application."""
    rule = rules.for_path(path)
    objects = []
    docs = load_documents(text, path)
    configmaps = _configmaps(docs)
    consumed = _consumed_configmaps(docs)
    for i, doc in enumerate(docs):
        loc = Loc(path, f"document[{i}]")
        source = _pop_origin(doc)
        if source:  # rendered by kustomize: errors point at the file the object comes from
            loc = Loc(f"{source} (rendered by {path})", f"document[{i}]")
        meta = _object_meta(doc, loc)
        namespace = meta.get("namespace") or ""
        if not isinstance(namespace, str):
            raise loc.child("metadata.namespace").error(f"must be a string, got {type(namespace).__name__}",
                                                        "write `namespace: <name>` or remove it")
        api = doc["apiVersion"]
        key = (api.split("/", 1)[0] if "/" in api else "", doc["kind"], namespace, meta["name"])
        label = f"{namespace + '/' if namespace else ''}{doc['kind']}/{meta['name']}"
        fields = rule.fields_for(doc["kind"])
        workload = _workload_ref(doc, loc)
        # Read as the kubelet and the model server read it (ConfigMaps of the same rendering included).
        served_doc, unresolved = as_served(doc, configmaps.get(namespace, {}))
        for ref in unresolved:
            raise loc.child(ref.where).error(
                f"$({ref.name}) {ref.why}, where a model path goes: the server would load whatever the cluster "
                "supplies, which the gate cannot judge",
                f"give {ref.name} a literal `value:` in the container's env, or write the zoo path itself")
        named = _named_variants(served_doc, rule, fields, loc)
        own = {rule.annotation, APP_ANNOTATION, SERVED_MODEL_ANNOTATION}
        references = _zoo_references(served_doc, {f.field for f in fields}, own)
        if not named:
            if references and not (doc["kind"] == "ConfigMap" and (namespace, meta["name"]) in consumed):
                where, ref = references[0]
                raise loc.child(where).error(
                    f"references zoo variant {ref} but {label} does not name its variant "
                    f"({_naming(rule, fields)}), so the gate would not judge it",
                    f"name it in {label} (metadata.annotations: {{{rule.annotation}: {ref}}}), or remove the reference")
            objects.append(ManifestObject(path, key, label, None, workload=workload))
            continue
        serving = (doc["kind"] in SERVING_KINDS or any(doc["kind"] in f.kinds for f in rule.fields)
                   or any(h.startswith("field ") for h, _ in named))
        how, ref = named[0]
        for other_how, other in named[1:]:
            if other != ref:
                raise loc.error(f"{how} names {ref} but {other_how} names {other}: one object serves one variant, and "
                                "Argo CD would serve what the object points at while the gate judged one of them",
                                "make both name the same variant")
        for where, other in references:
            if other != str(ref):
                raise loc.child(where).error(
                    f"references zoo variant {other} but {how} says {ref}: one object serves one variant, and "
                    "Argo CD would serve what the object references while the gate judged the other (strings are "
                    "read as the kubelet and the server read them: $(VAR) expanded, paths normalised)",
                    "make both name the same variant")
        if not serving:
            objects.append(ManifestObject(path, key, label, None, annotated=True))
            continue
        annotations = meta.get("annotations") or {}
        application, application_from = identity(meta, affixes)
        # What the server calls itself (its metrics' `model_name`) is what its args say; the
        # annotation only stands in where they do not say (a server the bot cannot read).
        served_model = served_model_name(served_doc) or annotations.get(SERVED_MODEL_ANNOTATION) or ref.model
        objects.append(ManifestObject(path, key, label, ServedObject(
            manifest=path, object=label, ref=ref, application=application, served_model=served_model,
            canary_steps=_canary_steps(doc, loc), key=key, application_from=application_from,
        ), workload=workload))
    return objects


def _pop_origin(doc: Any) -> str | None:
    """The source file kustomize recorded on a rendered object (taken off: it is ours, not the object's)."""
    meta = doc.get("metadata") if isinstance(doc, Mapping) else None
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, dict) or kustomize.ORIGIN_ANNOTATION not in annotations:
        return None
    value = annotations.pop(kustomize.ORIGIN_ANNOTATION)
    if not annotations:
        meta.pop("annotations")
    return kustomize.origin(value) if isinstance(value, str) else None


def _configmaps(docs: list[Any]) -> dict[str, dict[str, Mapping[str, str]]]:
    """namespace → ConfigMap name → data, for the ConfigMaps among ``docs`` (env vars read them)."""
    out: dict[str, dict[str, Mapping[str, str]]] = {}
    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") == "ConfigMap" and isinstance(doc.get("metadata"), Mapping) \
                and isinstance(doc.get("data"), Mapping) and isinstance(doc["metadata"].get("name"), str):
            namespace = doc["metadata"].get("namespace") or ""
            out.setdefault(namespace if isinstance(namespace, str) else "", {})[doc["metadata"]["name"]] = doc["data"]
    return out


def _consumed_configmaps(docs: list[Any]) -> set[tuple[str, str]]:
    """(namespace, name) of the ConfigMaps a container among ``docs`` reads (`envFrom`,
    `configMapKeyRef`): their strings are judged where the container reads them, as the server sees them."""
    out: set[tuple[str, str]] = set()

    def walk(node: Any, namespace: str, depth: int) -> None:
        if depth > 64:
            return
        if isinstance(node, Mapping):
            for key in ("configMapRef", "configMapKeyRef"):
                ref = node.get(key)
                if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
                    out.add((namespace, ref["name"]))
            for value in node.values():
                walk(value, namespace, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, namespace, depth + 1)

    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") != "ConfigMap":
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
            namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
            walk(doc.get("spec"), namespace, 0)
    return out


def identity(meta: Mapping[str, Any], affixes: tuple[str, ...] = ()) -> tuple[str, str]:
    """The application an object serves, and where that came from: the annotation
    `promotion-bot/app`, else the label `app.kubernetes.io/name`, else `app`, else the object's
    name without its environment's affixes (`canopy-prod` and `prod-canopy` in prod, kustomize's
    `namePrefix`/`nameSuffix`): the same application in every environment."""
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    if annotations.get(APP_ANNOTATION):
        return annotations[APP_ANNOTATION], f"annotation {APP_ANNOTATION}"
    for label in ("app.kubernetes.io/name", "app"):
        if labels.get(label):
            return labels[label], f"label {label}"
    name = meta["name"]
    for affix in sorted((a for a in affixes if a), key=len, reverse=True):
        for sep in ("-", ".", "_", ""):
            if sep == "" and affix[-1:] not in "-._" and affix[:1] not in "-._":
                continue
            if name.startswith(affix + sep) and len(name) > len(affix + sep):
                name = name[len(affix + sep):]
            elif name.endswith(sep + affix) and len(name) > len(sep + affix):
                name = name[: -len(sep + affix)]
    return name, "the object's name" + (f" ({meta['name']} without the environment's affixes)" if name != meta["name"] else "")


def object_keys(text: str, path: str) -> list[ManifestObject] | None:
    """The keys of the objects in a YAML file, from the parsed node tree without building the data
    (a third of the cost); None when the file is not plain enough to read so (then parse it)."""
    if path.endswith(".json"):
        return None
    try:
        check_size(text, path)
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except (yaml.YAMLError, InputError):
        return None
    objects = []
    for node in nodes:
        if node is None:
            continue
        fields = _scalars(node, ("apiVersion", "kind"))
        meta = _child(node, "metadata")
        names = _scalars(meta, ("name", "namespace")) if meta is not None else None
        if fields is None or names is None or fields.get("kind") in ("List", "Rollout") or not names.get("name") \
                or not fields.get("apiVersion") or not fields.get("kind"):
            return None  # (a Rollout may roll out another object's pods: read whole, for its workloadRef)
        api, kind, name, namespace = fields["apiVersion"], fields["kind"], names["name"], names.get("namespace", "")
        key = (api.split("/", 1)[0] if "/" in api else "", kind, namespace, name)
        objects.append(ManifestObject(path, key, f"{namespace + '/' if namespace else ''}{kind}/{name}", None, keys_only=True))
    return objects


def _child(node, key: str):
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _scalars(node, keys: tuple[str, ...]) -> dict[str, str] | None:
    """The string values of ``keys`` in a mapping node (absent keys left out); None when one is not a plain string."""
    if not isinstance(node, yaml.MappingNode):
        return None
    out = {}
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value in keys:
            if not isinstance(v, yaml.ScalarNode) or v.tag != "tag:yaml.org,2002:str":
                return None
            out[k.value] = v.value
    return out


def parse_manifest(text: str, path: str, rules: VariantRefRule | VariantRefs) -> list[ServedObject]:
    """The objects in ``path`` that name a variant. Every document must be a Kubernetes object."""
    return [o.served for o in parse_objects(text, path, rules) if o.served is not None]


def _naming(rule: VariantRefRule, fields) -> str:
    return " or ".join([f"annotation {rule.annotation}"] + [f"field {f.field}" for f in fields])


def _zoo_references(doc: Mapping[str, Any], variant_fields: set[str], own: set[str]) -> list[tuple[str, str]]:
    """``(field path, "<model>/<variant>")`` for every string of the object that names a zoo variant,
    annotations included but the bot's own (``own``); the fields the policy names the variant with
    are read by the rule, not here."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, where: str, depth: int) -> None:
        if depth > 64:
            return
        if isinstance(node, str):
            if where not in variant_fields:
                found.extend((where, f"{m['model']}/{m['variant']}") for m in ZOO_REFERENCE.finditer(node))
        elif isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{where}.{k}" if where else str(k), depth + 1)
        elif isinstance(node, list):
            for n, v in enumerate(node):
                walk(v, f"{where}[{n}]", depth + 1)

    for key, value in doc.items():
        if key != "metadata":
            walk(value, str(key), 1)
    annotations = doc.get("metadata", {}).get("annotations") or {}
    for name, value in annotations.items():
        if name not in own:
            walk(value, f"metadata.annotations[{name}]", 2)
    return found


def _wildcard(where: str) -> str:
    """A field path with its list positions as `[*]`: every item of the list, as a values mapping reads it."""
    return re.sub(r"\[\d+\]", "[*]", where)


def _object_meta(doc: Any, loc: Loc) -> Mapping[str, Any]:
    """The object's metadata, with every field the bot reads of the type Kubernetes requires."""
    if not isinstance(doc, Mapping):
        raise loc.error(f"is a {type(doc).__name__}, not a Kubernetes object", "each YAML document needs apiVersion, kind and metadata")
    if str(doc.get("apiVersion", "")).startswith(KUSTOMIZE_API) or doc.get("kind") in ("Kustomization", "Component"):
        raise loc.error("is a kustomization, not a Kubernetes object: Argo CD renders with kustomize only the "
                        "kustomization at the root of an application's folder, and applies every other file as it is",
                        f"make it the environment's own kustomization (at its root, listing the rest under "
                        f"`resources:`), or list it under the environment's `ignore:` in the policy{_IGNORE_FIX}")
    missing = [k for k in ("apiVersion", "kind", "metadata") if not doc.get(k)]
    if missing and not doc.get("apiVersion") and not doc.get("kind"):
        held = _zoo_references(doc, set(), set())
        if held:  # a file that names the model is Helm values (or the like): never steer it into `ignore:`
            where, ref = held[0]
            name = loc.file.rsplit("/", 1)[-1]
            raise loc.error(f"is not a Kubernetes object, and it names zoo variant {ref} at {where}: a Helm values "
                            "file, which the bot reads as data once the policy says which field names the model",
                            f"map it on the environment: `variant_ref: {{values: {{{name}: <field>}}}}`, e.g. "
                            f"`{{{name}: {_wildcard(where)}}}` (README, \"Helm environments\")")
    if missing:
        raise loc.error(f"is not a Kubernetes object: missing {', '.join(missing)}",
                        "add apiVersion, kind and metadata.name; or, if Argo CD does not apply this file, list it "
                        f"under the environment's `ignore:` in the policy{_IGNORE_FIX}")
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


def _named_variants(doc: Mapping[str, Any], rule: VariantRefRule, fields, loc: Loc) -> list[tuple[str, VariantRef]]:
    """``(how, variant)`` for the annotation and each of the rule's fields the object has."""
    named = []
    annotations = doc["metadata"].get("annotations") or {}
    if rule.annotation in annotations:
        a_loc = loc.child(f"metadata.annotations[{rule.annotation}]")
        named.append((f"annotation {rule.annotation}", parse_ref(annotations[rule.annotation], a_loc)))
    for f in fields:
        value = _field(doc, f.field)
        if value is None:
            continue
        f_loc = loc.child(f.field)
        if not isinstance(value, str):
            raise f_loc.error(f"must be a string, got {type(value).__name__}",
                              "point it at a zoo path like models/<model>/<variant>")
        text = f.extract(value)
        if text is None:
            raise f_loc.error(f"{_full(value)} does not match {_pattern_words(f)} (matched at path "
                              "segments: from the value's start or a `/`, to its end or a `/`)", _pattern_fix(value, f))
        try:
            ref = VariantRef.parse(text, f_loc)
        except InputError as exc:
            raise f_loc.error(f"{_full(value)}: {_pattern_words(f)} finds {text!r} in it, which is not "
                              "`<model>/<variant>`", _pattern_fix(value, f)) from exc
        named.append((f"field {f.field} ({_full(value)})", ref))
    return named


def _pattern_words(f) -> str:
    """The field's pattern as the policy wrote it; an omitted one in words, not as the bot's regex."""
    if f.source == DEFAULT_PATTERN:
        return (f"the default pattern of {f.where} (a `<model>/<variant>` whose variant follows the zoo's naming "
                "scheme, e.g. canopy-tiny/v1.3-int4-g64; no `pattern:` is set)")
    return f"{f.where}.pattern {f.source!r}"


def parse_ref(text: str, loc: Loc) -> VariantRef:
    """``<model>/<variant>``, with a fix citing the variant the text seems to mean when it holds one."""
    try:
        return VariantRef.parse(text, loc)
    except InputError as exc:
        m = ZOO_REFERENCE.search(text) if isinstance(text, str) else None
        example = f"`{m['model']}/{m['variant']}`" if m else "`<model>/<version>-<precision>-<config>`"
        raise loc.error(exc.message, f"write the zoo folder models/<model>/<variant>/ as `<model>/<variant>`, "
                                     f"e.g. {example}") from exc


def _full(value: str, limit: int = 1000) -> str:
    """A field's value in a message, whole unless it is huge (it comes from the PR)."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"… ({len(value):,} characters)"


def _pattern_fix(value: str, f) -> str:
    m = ZOO_REFERENCE.search(value)
    if m is None:
        return f"point it at a zoo path (`<model>/<variant>`), or change {f.where}.pattern in the policy"
    return (f"set {f.where}.pattern to one that matches the whole path, e.g. "
            f"'{suggested_pattern(value, m['model'], m['variant'])}'")


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


def _workload_ref(doc: Mapping[str, Any], loc: Loc):
    """An Argo Rollout that rolls out another workload's pods (`spec.workloadRef`): that workload's
    (kind, name) and the Rollout's canary steps."""
    if doc.get("kind") != "Rollout" or not isinstance(doc.get("spec"), Mapping):
        return None
    ref = doc["spec"].get("workloadRef")
    if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str):
        return None
    return (str(ref.get("kind") or "Deployment"), ref["name"]), _canary_steps(doc, loc)


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
        s_loc = loc.child("steps").child(n)
        mapping(step, s_loc)
        if "pause" in step:
            pause = step["pause"]
            if pause is not None and not isinstance(pause, Mapping):
                raise s_loc.child("pause").error(f"must be a mapping, got {pause!r}", "write `pause: {}` (until promoted) "
                                                 "or `pause: {duration: 10m}`, as Argo Rollouts reads it")
            duration = (pause or {}).get("duration")
            if duration is not None and not (isinstance(duration, int) and not isinstance(duration, bool) and duration >= 0
                                             or isinstance(duration, str) and _DURATION.fullmatch(duration)):
                raise s_loc.child("pause.duration").error(f"{duration!r} is not a duration Argo Rollouts reads",
                                                          "write seconds (`600`) or a number with s, m or h (`10m`)")
        if "setWeight" in step:
            weight = step["setWeight"]
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                raise s_loc.child("setWeight").error(f"must be a whole percentage from 0 to 100, got {weight!r}",
                                                     "write e.g. `setWeight: 10`")
    return tuple(steps)


_DURATION = re.compile(r"\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)?(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))*")


class ManifestIndex:
    """Manifests read from one revision, parsed once per file (and once per content across revisions
    when two indexes share ``parsed``)."""

    def __init__(self, reader, rev: str, policy: Policy, *, parsed: dict | None = None) -> None:
        self.reader = reader
        self.rev = rev
        self.policy = policy
        self.parsed: dict[tuple[str, str, bool], list[ManifestObject] | InputError] = {} if parsed is None else parsed
        self._environments: dict[tuple, dict[ObjectKey, ManifestObject] | InputError] = {}
        self._served: dict[str, tuple[ServedObject, ...] | InputError] = {}
        self._groups: dict[tuple[str, str], dict[Any, tuple[ServedObject, ...]]] = {}
        self.remote: dict[str, tuple[str, ...]] = {}  # environment → the pinned remote resources it renders
        self.unread: dict[str, tuple[str, ...]] = {}  # environment → files of a Helm chart the bot does not render
        self.rendered: dict[str, str] = {}  # environment → digest of what kustomize rendered

    def _cache_key(self, path: str, keys_only: bool) -> tuple[str, str, bool]:
        # By content: an unchanged file is parsed once for base and head.
        return path, self.reader.tree_sha(self.rev, path) or f"{self.rev}:{path}", keys_only

    def _cached(self, path: str, keys_only: bool) -> bool:
        key = self._cache_key(path, keys_only)
        return key in self.parsed or (keys_only and isinstance(self.parsed.get(key[:2] + (False,)), list))

    def _objects(self, path: str, text: str | None, *, keys_only: bool = False) -> list[ManifestObject]:
        cache_key = self._cache_key(path, keys_only)
        whole = self.parsed.get(cache_key[:2] + (False,))
        if keys_only and isinstance(whole, list):
            return whole  # read whole already (a file keys cannot be read from is, too): its keys are there

        def parse():
            keys = object_keys(text, path) if keys_only and text is not None else None
            env = self.policy.environment_for_path(path)
            return keys if keys is not None else [] if text is None else parse_objects(
                text, path, self.policy.variant_ref, affixes=(env.name,) if env else ())

        return _remembered(self.parsed, cache_key, parse)

    def all_objects(self, env: Environment, *, changed: frozenset[str] | None = None) -> dict[ObjectKey, ManifestObject]:
        """Every object Argo CD would apply for ``env``, by key; InputError when the bot cannot see
        them as Argo CD does (a symlink, a submodule, a Helm chart, a failed kustomize build, the
        same object twice). With ``changed``, files not in it are read for their keys only."""
        return _remembered(self._environments, (env.name, changed), lambda: self._read_environment(env, changed))

    def _read_environment(self, env: Environment, changed: frozenset[str] | None) -> dict[ObjectKey, ManifestObject]:
        refuse_special_entries(self.reader, self.rev, env.folder, ignored=lambda p: is_ignored(env, p))
        files = [p for p in self.reader.list_files(self.rev, env.folder) if not is_ignored(env, p)]
        values = {f"{env.folder}/{v.file}": v for v in self.policy.variant_ref.for_path(env.folder + "/").values}
        chart = f"{env.folder}/Chart.yaml" in files or f"{env.folder}/Chart.yml" in files
        for path in files:
            name = path.rsplit("/", 1)[-1]
            what = UNRENDERED.get(name) or next((v for k, v in UNRENDERED_SUFFIXES.items() if name.endswith(k)), None)
            if what == "a Helm chart" and values:
                continue  # the model is read from the mapped values files (bot.gitops.helm)
            if what == "a Helm chart":
                raise InputError(path, "", f"makes Argo CD render {env.folder} as a Helm chart, which the bot does not "
                                 "render, so it cannot see which model the chart's values set",
                                 f"map the values file that names the model in the policy, e.g. `variant_ref: "
                                 f"{{values: {{values.yaml: servingEngineSpec.modelSpec[*].modelURL}}}}` on environment "
                                 f"{env.name} (docs: README, \"Helm environments\"); it is read as data, no Helm needed")
            if what:
                raise InputError(path, "", f"makes Argo CD render {env.folder} as {what}, which the bot cannot render, "
                                 "so it cannot see what would be applied",
                                 "commit the rendered manifests, or use a kustomization")
        if values:
            missing = [p for p in values if p not in files]
            if missing:
                raise InputError(self.policy.file, values[missing[0]].where, f"maps {missing[0]}, which {env.folder}/ "
                                 f"does not hold at {self.rev[:12]}", "fix the file name in `variant_ref.values`")
        if chart:
            # A chart's templates are Go templates, not manifests: the bot reads only the mapped values.
            self.unread[env.name] = tuple(p for p in files if p not in values)
            files = [p for p in files if p in values]
        kustomization = kustomize.kustomization_in(files, env.folder)
        if kustomization:
            remote = kustomize.remote_resources(self.reader, self.rev, kustomization)
            if remote:
                self.remote[env.name] = tuple(remote)
            rendered = kustomize.build(self.reader, self.rev, env.folder, kustomization)
            self.rendered[env.name] = hashlib.sha256(rendered.encode()).hexdigest()
            affixes = (env.name, *kustomize.name_affixes(self.reader, self.rev, kustomization))
            objects = parse_objects(rendered, kustomization, self.policy.variant_ref, affixes=affixes)
        else:
            nested = kustomize.nested_kustomization(files)
            if nested:
                raise InputError(nested, "", f"is a kustomization in a sub-folder of {env.folder}/, which has none at "
                                 "its root: Argo CD renders with kustomize only a kustomization at the root of the "
                                 "application's folder, so it would apply this file as a Kubernetes object",
                                 f"move the kustomization to {env.folder}/ (listing the sub-folders under "
                                 f"`resources:`), or, if Argo CD does not apply it, list it under `ignore:` of "
                                 f"environment {env.name} in the policy{_IGNORE_FIX}")
            paths = [p for p in files if is_manifest(p) and p not in values]
            keys_only = {p: changed is not None and p not in changed for p in paths}
            todo = [p for p in paths if not self._cached(p, keys_only[p])]
            texts = self.reader.read_many(self.rev, todo) if todo else {}
            objects = [o for p in paths for o in self._objects(p, texts.get(p), keys_only=keys_only[p])]
            for path, ref in values.items():
                objects += values_objects(self.reader.read_text(self.rev, path) or "", path, ref, env)
        by_key: dict[ObjectKey, ManifestObject] = {}
        for obj in objects:
            if obj.key in by_key:
                first = by_key[obj.key]
                raise InputError(obj.manifest, obj.label, f"is defined twice in {env.name} (also in {first.manifest}); "
                                 "Argo CD refuses to sync an application with a duplicate object",
                                 "keep one definition, or give the copies different names or namespaces")
            by_key[obj.key] = obj
        return _rolled_out(by_key)

    def environment_objects(self, env: Environment) -> tuple[ServedObject, ...]:
        return _remembered(self._served, env.name,
                           lambda: tuple(o.served for o in self.all_objects(env).values() if o.served is not None))

    def served_for(self, env: Environment, application: str) -> tuple[ServedObject, ...]:
        """What ``env`` serves for ``application``: a lookup, as every promotion of a PR asks it."""
        return self._grouped(env, "application").get(application, ())

    def serving(self, env: Environment, ref: VariantRef) -> tuple[ServedObject, ...]:
        """The objects of ``env`` that serve ``ref``."""
        return self._grouped(env, "ref").get(ref, ())

    def _grouped(self, env: Environment, attribute: str) -> dict[Any, tuple[ServedObject, ...]]:
        if (env.name, attribute) not in self._groups:
            groups: dict[Any, list[ServedObject]] = {}
            for obj in self.environment_objects(env):
                groups.setdefault(getattr(obj, attribute), []).append(obj)
            self._groups[env.name, attribute] = {value: tuple(objs) for value, objs in groups.items()}
        return self._groups[env.name, attribute]

    def renders_with_kustomize(self, env: Environment) -> bool:
        files = [p for p in self.reader.list_files(self.rev, env.folder) if not is_ignored(env, p)]
        return kustomize.kustomization_in(files, env.folder) is not None


def values_objects(text: str, path: str, ref, env: Environment) -> list[ManifestObject]:
    """The models a Helm values file names (``ref``: its `variant_ref.values` entry), one served
    object each; every other zoo reference in the same list item must name the same variant."""
    objects = []
    for found in helm.values_models(text, path, ref):
        loc = Loc(path, found["where"])
        variant = parse_ref(found["ref"], loc)
        if isinstance(found["item"], Mapping):
            for where, other in _zoo_references(as_served(found["item"])[0], {found["where"].rsplit(".", 1)[-1]}, set()):
                if other != str(variant):
                    raise Loc(path, found["key"] + "." + where).error(
                        f"references zoo variant {other} but {found['where']} names {variant}: Helm renders both into "
                        "the same server", "make both name the same variant")
        application = found["name"] or identity({"name": found["key"]}, (env.name,))[0]
        key = ("helm.sh", "Values", "", f"{path.rsplit('/', 1)[-1]}:{found['key']}")
        objects.append(ManifestObject(path, key, found["label"], ServedObject(
            manifest=path, object=found["label"], ref=variant, application=application, served_model=found["value"],
            canary_steps=None, key=key,
            application_from="the values item's `name`" if found["name"] else "the field's path")))
    return objects


def _rolled_out(by_key: dict[ObjectKey, ManifestObject]) -> dict[ObjectKey, ManifestObject]:
    """A workload an Argo Rollout rolls out through `workloadRef` is served with the Rollout's canary
    steps (Argo Rollouts scales the workload itself down and runs its template)."""
    for rollout in [o for o in by_key.values() if o.workload is not None]:
        (kind, name), steps = rollout.workload
        for key, obj in list(by_key.items()):
            if key[1] == kind and key[3] == name and key[2] == rollout.key[2] and obj.served is not None:
                served = obj.served
                if rollout.served is not None and rollout.served.ref != served.ref:
                    raise InputError(rollout.manifest, rollout.label, f"names {rollout.served.ref} but rolls out "
                                     f"{obj.label} (workloadRef), which names {served.ref}", "make both name the same variant")
                if rollout.served is not None:  # the Rollout is the promotion; its workload is not a second one
                    by_key[key] = replace(obj, served=None, annotated=True)
                else:
                    by_key[key] = replace(obj, served=replace(served, canary_steps=steps if steps is not None
                                                              else served.canary_steps))
    return by_key


def is_ignored(env: Environment, path: str) -> bool:
    """A file the environment's `ignore:` names, as Argo CD's `directory.exclude` does: each glob is
    matched against the whole path relative to the folder (`bot.core.globs`), so `*` crosses `/`
    and `secret.yaml` names only the file at the folder's root."""
    if not env.ignore or not path.startswith(env.folder + "/"):
        return False
    relative = path[len(env.folder) + 1:]
    return any(globs.match(glob, relative) for glob in env.ignore)


def refuse_special_entries(reader, rev: str, folder: str, *, ignored=lambda path: False) -> None:
    """InputError for a symlink or submodule at or under ``folder``: Argo CD would read another
    folder, or a repository the revision does not hold."""
    for path, kind in reader.special_entries(rev, folder):
        if ignored(path):
            continue
        fix = "commit the manifests themselves" if kind == "symlink" else "commit the manifests instead of a submodule"
        raise InputError(path, "", f"is a {kind} under {folder}/; the bot judges only files the revision holds, "
                         "and Argo CD would apply what it points at", fix)


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


def _remembered(cache: dict, key, compute):
    """``compute()`` once per key; an InputError is remembered too and raised again on every ask
    (a broken file is reported for each promotion that reads it, and parsed once)."""
    if key not in cache:
        try:
            cache[key] = compute()
        except InputError as exc:
            cache[key] = exc
    result = cache[key]
    if isinstance(result, InputError):
        raise result
    return result
