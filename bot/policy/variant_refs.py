"""Where a manifest names its variant: `variant_ref:` in promotion.yaml, for all environments or one.

Every object may name its variant with the annotation (`promotion-bot/variant: <model>/<variant>`,
the name `annotation:` sets); a policy may also point at fields, per object kind, whose value holds
the variant (a KServe `storageUri`, a container argument). An object that has both must name the
same variant in both (bot.gitops.manifests checks it), so a field never switches the annotation off.

A field's pattern is matched at path segments: the match starts at the start of the value or right
after a `/`, and ends at its end, at a `/` or right after one. So `models/(?P<model>...)` cannot start
inside a bucket called `acme-models`, and `.../weights` after the variant needs no pattern of its own.
Named groups: `model` and `variant`, or `ref` holding `<model>/<variant>`. Without a pattern: the
first `<model>/<variant>` pair whose variant follows the zoo's naming scheme.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from bot.core.fields import Loc, get_str, mapping, reject_unknown, sequence
from bot.zoo.variants import MODEL_NAME, VARIANT_NAME

DEFAULT_ANNOTATION = "promotion-bot/variant"
_KEYS = {"annotation", "field", "pattern", "kind", "fields", "values"}
_FIELD_KEYS = {"field", "pattern", "kind"}
# The naming scheme's own groups renamed, so a pattern built from it has only `model` and `variant`.
_SCHEME = VARIANT_NAME.pattern.replace("(?P<", "(?P<_")
DEFAULT_PATTERN = f"(?P<model>{MODEL_NAME.pattern})/(?P<variant>{_SCHEME})"
PATTERN_EXAMPLE = "models/(?P<model>[^/]+)/(?P<variant>[^/]+)"


def anchored(pattern: str) -> str:
    """``pattern`` matched only from the start of a path segment to the end of one."""
    return f"(?:^|(?<=/))(?:{pattern})(?:$|(?=/)|(?<=/))"


@dataclass(frozen=True)
class FieldRef:
    """One field that names the variant, for objects of ``kinds`` (all kinds when empty)."""

    field: str
    pattern: re.Pattern
    source: str  # the pattern as the policy writes it (or the default), for messages
    where: str  # the policy field that set it, e.g. `environments[2].variant_ref`
    kinds: tuple[str, ...] = ()

    def applies_to(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds

    def extract(self, value: str) -> str | None:
        """The `<model>/<variant>` text the pattern finds in ``value``, or None when it matches nowhere."""
        m = self.pattern.search(value)
        if not m:
            return None
        if "ref" in self.pattern.groupindex:
            return m["ref"]
        return f"{m['model']}/{m['variant']}"


@dataclass(frozen=True)
class ValuesRef:
    """A Helm values file of the environment (``file``, relative to its folder) and the field in it
    that names the model (``field``: dotted, `[*]` for every item of a list, `[N]` for one)."""

    file: str
    field: str
    pattern: re.Pattern
    source: str  # the pattern as written, or "" for the default
    where: str


@dataclass(frozen=True)
class VariantRefRule:
    """How the objects of one environment name their variant: the annotation, any fields, and any
    Helm values files read as data (`values:`)."""

    annotation: str = DEFAULT_ANNOTATION
    fields: tuple[FieldRef, ...] = ()
    values: tuple[ValuesRef, ...] = ()

    def for_path(self, path: str) -> "VariantRefRule":
        return self

    def fields_for(self, kind: str) -> tuple[FieldRef, ...]:
        return tuple(f for f in self.fields if f.applies_to(kind))


@dataclass(frozen=True)
class VariantRefs:
    """The policy's rules: the global one, and the environments' own by folder."""

    default: VariantRefRule = VariantRefRule()
    by_folder: tuple[tuple[str, VariantRefRule], ...] = ()

    def for_path(self, path: str) -> VariantRefRule:
        return next((rule for folder, rule in self.by_folder if path.startswith(folder + "/")), self.default)


def parse_variant_ref(raw: Any, loc: Loc, inherited: VariantRefRule | None = None) -> VariantRefRule:
    """A `variant_ref:` mapping. An environment's inherits the global `annotation` unless it sets one,
    and replaces the global fields when it names any."""
    inherited = inherited or VariantRefRule()
    if raw is None:
        return inherited
    spec = mapping(raw, loc)
    reject_unknown(spec, _KEYS, loc)
    annotation = get_str(spec, "annotation", loc, inherited.annotation)
    if "fields" in spec and ("field" in spec or "pattern" in spec or "kind" in spec):
        raise loc.error("has both `fields:` and `field:`", "list every field under `fields:` (each with its own "
                                                           "`field`, `pattern` and `kind`), or name one with `field:`")
    if "fields" in spec:
        f_loc = loc.child("fields")
        fields = tuple(_parse_field(mapping(item, f_loc.child(i)), f_loc.child(i), _FIELD_KEYS)
                       for i, item in enumerate(sequence(spec["fields"], f_loc)))
    elif "field" in spec:
        fields = (_parse_field(spec, loc, _KEYS),)
    elif "pattern" in spec or "kind" in spec:
        key = "pattern" if "pattern" in spec else "kind"
        raise loc.child(key).error("applies to a field, but `variant_ref` names none",
                                   "add `field:` (e.g. `field: spec.predictor.model.storageUri`), or remove it")
    else:
        fields = inherited.fields
    values = _parse_values(spec["values"], loc.child("values")) if "values" in spec else inherited.values
    return VariantRefRule(annotation=annotation, fields=fields, values=values)


_VALUES_FIELD = re.compile(r"[A-Za-z0-9_-]+(?:\[(?:\*|\d+)\])*(?:\.[A-Za-z0-9_-]+(?:\[(?:\*|\d+)\])*)*")


def _parse_values(raw: Any, loc: Loc) -> tuple[ValuesRef, ...]:
    """`values: {values-prod.yaml: servingEngineSpec.modelSpec[*].modelURL}`, or a file mapped to
    `{field: ..., pattern: ...}`."""
    out = []
    for file, spec in mapping(raw, loc).items():
        f_loc = Loc(loc.file, f"{loc.path}[{file}]")  # a file name has dots: bracketed, not a path step
        if not isinstance(file, str) or file.startswith("/") or ".." in file.split("/") or not file.endswith((".yaml", ".yml", ".json")):
            raise f_loc.error(f"{file!r} must be a values file relative to the environment's folder",
                              "write e.g. `values: {values-prod.yaml: servingEngineSpec.modelSpec[*].modelURL}`")
        if isinstance(spec, str):
            spec = {"field": spec}
        spec = mapping(spec, f_loc)
        reject_unknown(spec, {"field", "pattern"}, f_loc)
        field_path = get_str(spec, "field", f_loc)
        if not _VALUES_FIELD.fullmatch(field_path):
            raise f_loc.child("field").error(f"{field_path!r} is not a field path",
                                             "write dotted keys with `[*]` for every list item, e.g. "
                                             "`servingEngineSpec.modelSpec[*].modelURL`")
        source = get_str(spec, "pattern", f_loc, "")
        try:
            pattern = re.compile(anchored(source or DEFAULT_PATTERN))
        except re.error as exc:
            raise f_loc.child("pattern").error(f"is not a valid regular expression: {exc}", f"e.g. '{PATTERN_EXAMPLE}'") from exc
        if source and not ({"model", "variant"} <= set(pattern.groupindex) or "ref" in pattern.groupindex):
            raise f_loc.child("pattern").error(f"{source!r} must have the named groups `model` and `variant`, or `ref`",
                                               f"e.g. '{PATTERN_EXAMPLE}'")
        out.append(ValuesRef(file=file, field=field_path, pattern=pattern, source=source, where=f_loc.path))
    return tuple(out)


def extract(pattern: re.Pattern, value: str) -> str | None:
    """The `<model>/<variant>` text ``pattern`` finds in ``value``."""
    m = pattern.search(value)
    if not m:
        return None
    return m["ref"] if "ref" in pattern.groupindex else f"{m['model']}/{m['variant']}"


def _parse_field(spec: Mapping[str, Any], loc: Loc, allowed: set[str]) -> FieldRef:
    reject_unknown(spec, allowed, loc)
    field_path = get_str(spec, "field", loc)
    source = get_str(spec, "pattern", loc, DEFAULT_PATTERN)
    try:
        pattern = re.compile(anchored(source))
    except re.error as exc:
        raise loc.child("pattern").error(f"is not a valid regular expression: {exc}",
                                         f"e.g. '{PATTERN_EXAMPLE}'") from exc
    groups = set(pattern.groupindex)
    if not ({"model", "variant"} <= groups or "ref" in groups):
        raise loc.child("pattern").error(
            f"{source!r} must have the named groups `model` and `variant`, or `ref` holding `<model>/<variant>`",
            f"e.g. '{PATTERN_EXAMPLE}' or 'models/(?P<ref>[^/]+/[^/]+)'")
    kinds = spec.get("kind")
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = sequence(kinds, loc.child("kind")) if kinds is not None else []
    for i, kind in enumerate(kinds):
        if not isinstance(kind, str) or not kind:
            raise loc.child("kind").child(i).error("must be a Kubernetes kind", "e.g. `kind: InferenceService`")
    return FieldRef(field=field_path, pattern=pattern, source=source, where=loc.path, kinds=tuple(kinds))


def suggested_pattern(value: str, model: str, variant: str) -> str:
    """A pattern that matches ``value`` with the variant's model and name as its groups: the fix
    speaks of the repository's own path, not of an example's."""
    literal = re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", value)
    return literal.replace(re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", f"{model}/{variant}"),
                           "(?P<model>[^/]+)/(?P<variant>[^/]+)", 1)
