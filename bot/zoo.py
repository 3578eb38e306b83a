"""The model zoo: `models/<model>/<version>-<precision>-<config>/variant.yaml`.

The folder name is the variant's identity (`v1.3-int4-g64`); `variant.yaml` describes how it was
made and where its weights are. Parsing is strict about types and lenient about optional facts;
the `zoo` check decides which facts a policy requires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from bot.errors import InputError
from bot.fields import Loc, get_str, get_str_list, get_text, mapping
from bot.paths import check_repo_path, join_repo_path
from bot.yamlio import load_one

ZOO_ROOT = "models"

# v1.3-int4-g64: version, precision (fp32, bf16, int8, int4, nf4, w8a8, mxfp4...), optional config.
# Matched whole (fullmatch): `$` would accept a trailing newline, a different folder that renders alike.
VARIANT_NAME = re.compile(
    r"(?P<version>v\d+(?:\.\d+){0,2})-(?P<precision>(?:fp|bf|int|nf|mxfp|w\d+a)\d+)(?:-(?P<config>[a-z0-9]+(?:[._-][a-z0-9]+)*))?",
    re.ASCII,
)
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", re.ASCII)
NAMING_FIX = "name the folder {version}-{precision}-{config}, e.g. v1.3-int4-g64 or v1.0-fp16"


@dataclass(frozen=True)
class VariantName:
    version: str
    precision: str
    config: str | None

    @property
    def bits(self) -> int | None:
        m = re.search(r"(\d+)$", self.precision)
        return int(m.group(1)) if m and not self.precision.startswith("w") else None

    @property
    def group_size(self) -> int | None:
        m = re.match(r"^g(\d+)", self.config or "")
        return int(m.group(1)) if m else None


def parse_variant_name(name: str, *, file: str = "", field: str = "") -> VariantName:
    m = VARIANT_NAME.fullmatch(name) if isinstance(name, str) else None
    if not m:
        raise InputError(file or f"{ZOO_ROOT}/.../{name}", field, f"variant {name!r} does not follow the naming scheme", NAMING_FIX)
    return VariantName(m["version"], m["precision"], m["config"])


@dataclass(frozen=True)
class VariantRef:
    """``<model>/<variant>`` as a manifest names it."""

    model: str
    variant: str

    def __str__(self) -> str:
        return f"{self.model}/{self.variant}"

    @property
    def folder(self) -> str:
        return f"{ZOO_ROOT}/{self.model}/{self.variant}"

    @classmethod
    def parse(cls, text: str, loc: Loc) -> "VariantRef":
        parts = text.strip().split("/") if isinstance(text, str) else []
        if len(parts) != 2 or not MODEL_NAME.fullmatch(parts[0]) or not VARIANT_NAME.fullmatch(parts[1]):
            raise loc.error(f"{text!r} is not a variant reference", "write `<model>/<variant>`, e.g. `canopy-tiny/v1.3-int4-g64`")
        return cls(parts[0], parts[1])


@dataclass(frozen=True)
class Quantization:
    algorithm: str
    scheme: str
    bits: int | None
    group_size: int | None
    format: str | None = None
    tool: str | None = None


@dataclass(frozen=True)
class Calibration:
    dataset: str
    samples: int | None
    sequence_length: int | None
    file: str | None = None


@dataclass(frozen=True)
class Weights:
    """Either a folder in the repo (``path``, repo-relative) or an external ``uri`` pinned by ``revision``."""

    path: str | None = None
    uri: str | None = None
    revision: str | None = None


@dataclass(frozen=True)
class Variant:
    ref: VariantRef
    name: VariantName
    folder: str
    base_model: str
    description: str = ""
    quantization: Quantization | None = None
    calibration: Calibration | None = None
    recipe: str | None = None  # repo-relative path
    weights: Weights | None = None
    size_bytes: int | None = None
    measured: Mapping[str, Any] = field(default_factory=dict)
    known_issues: tuple[str, ...] = ()
    results: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The commit it was read from: its weights are exported from there and nowhere else, so a PR
    # cannot shadow the base revision's baseline with files of its own.
    source: str = field(default="", compare=False)

    @property
    def is_quantized(self) -> bool:
        return self.quantization is not None and self.quantization.algorithm.lower() not in ("none", "")


def parse_variant(ref: VariantRef, text: str) -> Variant:
    folder = ref.folder
    file = f"{folder}/variant.yaml"
    loc = Loc(file)
    name = parse_variant_name(ref.variant, file=folder, field="folder name")
    data = mapping(load_one(text, file) or {}, loc)

    declared_model = data.get("model")
    if declared_model is not None and declared_model != ref.model:
        raise loc.child("model").error(f"says {declared_model!r} but the folder is under models/{ref.model}/",
                                       "make `model:` match the folder")
    declared_variant = data.get("variant")
    if declared_variant is not None and declared_variant != ref.variant:
        raise loc.child("variant").error(f"says {declared_variant!r} but the folder is {ref.variant}",
                                         "make `variant:` match the folder name")

    quant = None
    if "quantization" in data and data["quantization"] is not None:
        q_loc = loc.child("quantization")
        q = mapping(data["quantization"], q_loc)
        quant = Quantization(
            algorithm=get_str(q, "algorithm", q_loc),
            scheme=get_text(q, "scheme", q_loc) or "",
            bits=_opt_int(q, "bits", q_loc),
            group_size=_opt_int(q, "group_size", q_loc),
            format=get_text(q, "format", q_loc),
            tool=get_text(q, "tool", q_loc),
        )

    calib = None
    if data.get("calibration") is not None:
        c_loc = loc.child("calibration")
        c = mapping(data["calibration"], c_loc)
        calib_file = get_text(c, "file", c_loc)
        calib = Calibration(
            dataset=get_str(c, "dataset", c_loc),
            samples=_opt_int(c, "samples", c_loc),
            sequence_length=_opt_int(c, "sequence_length", c_loc),
            file=join_repo_path(folder, calib_file, file=file, field="calibration.file") if calib_file else None,
        )

    recipe = data.get("recipe")
    if recipe is not None:
        if not isinstance(recipe, str):
            raise loc.child("recipe").error("must be a file name next to variant.yaml", "write `recipe: recipe.yaml`")
        recipe = join_repo_path(folder, recipe, file=file, field="recipe")

    weights = None
    if data.get("weights") is not None:
        w_loc = loc.child("weights")
        w = mapping(data["weights"], w_loc)
        if "path" in w and w["path"] is not None:
            weights = Weights(path=join_repo_path(folder, get_str(w, "path", w_loc), file=file, field="weights.path"))
        elif "uri" in w:
            weights = Weights(uri=get_str(w, "uri", w_loc), revision=_revision(w, w_loc))
        else:
            raise w_loc.error("needs `path` (a folder in the repo) or `uri` (with `revision`)",
                              "write `weights: {path: weights}` or `weights: {uri: hf://org/model, revision: <commit>}`")

    issues = get_str_list(data, "known_issues", loc)
    results = data.get("results") or {}
    measured = data.get("measured") or {}
    return Variant(
        ref=ref,
        name=name,
        folder=folder,
        base_model=get_str(data, "base_model", loc),
        description=get_text(data, "description", loc) or "",
        quantization=quant,
        calibration=calib,
        recipe=recipe,
        weights=weights,
        size_bytes=_opt_int(data, "size_bytes", loc),
        measured=mapping(measured, loc.child("measured")),
        known_issues=issues,
        results=mapping(results, loc.child("results")),
        raw=data,
    )


def _revision(w: Mapping[str, Any], loc: Loc) -> str | None:
    value = w.get("revision")
    if value is None or isinstance(value, str):
        return value
    raise loc.child("revision").error(f"must be a string (a commit or tag), got {type(value).__name__}",
                                      "quote it: `revision: \"3f2a9c1\"`")


def _opt_int(data: Mapping[str, Any], key: str, loc: Loc) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise loc.child(key).error(f"must be a whole number or null, got {type(value).__name__}",
                                   f"write `{key}: 64` or remove it")
    return value


class Zoo:
    """Variants read from one revision, parsed once."""

    def __init__(self, reader, rev: str) -> None:
        self.reader = reader
        self.rev = rev
        self._cache: dict[VariantRef, Variant] = {}

    def get(self, ref: VariantRef, *, named_in: str = "", field: str = "") -> Variant:
        """The variant, or InputError naming where it was referenced when it does not exist."""
        if ref in self._cache:
            return self._cache[ref]
        check_repo_path(ref.folder, file=named_in, field=field)
        text = self.reader.read_text(self.rev, f"{ref.folder}/variant.yaml")
        if text is None:
            known = self.variants_of(ref.model)
            hint = f"existing variants of {ref.model}: {', '.join(known)}" if known else f"add {ref.folder}/variant.yaml"
            raise InputError(named_in or ref.folder, field, f"names variant {ref} but {ref.folder}/variant.yaml does not exist", hint)
        variant = self._cache[ref] = replace(parse_variant(ref, text), source=self.rev)
        return variant

    def models(self) -> list[str]:
        return self.reader.list_dirs(self.rev, ZOO_ROOT)

    def variants_of(self, model: str) -> list[str]:
        return self.reader.list_dirs(self.rev, f"{ZOO_ROOT}/{model}")
