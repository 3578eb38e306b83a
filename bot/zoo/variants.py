"""The model zoo: `models/<model>/<version>-<precision>-<config>/variant.yaml`.

The folder name is the variant's identity (`v1.3-int4-g64`); `variant.yaml` describes how it was
made and where its weights are. Parsing is strict about types and lenient about optional facts;
the `zoo` check decides which facts a policy requires.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping

from bot.core.errors import InputError
from bot.core.fields import Loc, did_you_mean, get_str, get_str_list, get_text, keyed_mapping, mapping, reject_unknown
from bot.core.paths import check_repo_path, join_repo_path
from bot.core.yamlio import load_one
from bot.verdicts.results import CardFacts

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
            raise loc.error(f"{text!r} is not a variant reference", "write `<model>/<version>-<precision>[-<config>]`, e.g. `llama-3-8b/v1.2-int4-g128`")
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
    dataset: str | None  # None until `complete` reads it from the calibration file
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


VARIANT_KEYS = ("model", "variant", "base_model", "description", "quantization", "calibration", "recipe", "weights",
                "size_bytes", "measured", "known_issues", "results")
QUANTIZATION_KEYS = ("algorithm", "scheme", "bits", "group_size", "format", "tool")
CALIBRATION_KEYS = ("dataset", "samples", "sequence_length", "file")
WEIGHTS_KEYS = ("path", "uri", "revision")
# Precisions a model is trained or released in; every other one (int8, int4, nf4, fp8, w8a8...) is
# made by quantizing, so its variant.yaml must say how.
UNQUANTIZED_PRECISIONS = ("fp64", "fp32", "fp16", "bf16")


def parse_variant(ref: VariantRef, text: str) -> Variant:
    """variant.yaml as written (pure); `complete` adds what is read from the files beside it."""
    folder = ref.folder
    file = f"{folder}/variant.yaml"
    loc = Loc(file)
    name = parse_variant_name(ref.variant, file=folder, field="folder name")
    data = mapping(load_one(text, file) or {}, loc)
    reject_unknown(data, set(VARIANT_KEYS), loc)

    declared_model = data.get("model")
    if declared_model is not None and declared_model != ref.model:
        raise loc.child("model").error(f"says {declared_model!r} but the folder is under models/{ref.model}/",
                                       "make `model:` match the folder")
    declared_variant = data.get("variant")
    if declared_variant is not None and declared_variant != ref.variant:
        raise loc.child("variant").error(f"says {declared_variant!r} but the folder is {ref.variant}",
                                         "make `variant:` match the folder name")

    quant = None
    if data.get("quantization") is not None:
        q_loc = loc.child("quantization")
        q = keyed_mapping(data["quantization"], q_loc, QUANTIZATION_KEYS,
                          example="quantization: {algorithm: GPTQ, scheme: W4A16, bits: 4, group_size: 64}",
                          otherwise="omit it for an unquantized variant")
        quant = Quantization(
            algorithm=get_str(q, "algorithm", q_loc),
            scheme=get_text(q, "scheme", q_loc) or "",
            bits=_opt_int(q, "bits", q_loc),
            group_size=_opt_int(q, "group_size", q_loc),
            format=get_text(q, "format", q_loc),
            tool=get_text(q, "tool", q_loc),
        )
    if name.precision not in UNQUANTIZED_PRECISIONS and (quant is None or quant.algorithm.lower() == "none"):
        said = "has no `quantization`" if quant is None else "says `quantization.algorithm: none`"
        raise loc.child("quantization").error(
            f"the folder name says {name.precision}, a quantized precision, but variant.yaml {said}",
            "describe how it was made: `quantization: {algorithm: GPTQ, scheme: W4A16, bits: 4, group_size: 64}`"
            f" (unquantized precisions: {', '.join(UNQUANTIZED_PRECISIONS)})")

    calib = None
    if data.get("calibration") is not None:
        c_loc = loc.child("calibration")
        c = keyed_mapping(data["calibration"], c_loc, CALIBRATION_KEYS,
                          example="calibration: {file: calibration.yaml}` (its dataset, samples and sequence_length "
                                  "are read from the file) or `calibration: {dataset: my-calib, samples: 512}")
        calib_file = get_text(c, "file", c_loc)
        dataset = get_text(c, "dataset", c_loc)
        if not (dataset or "").strip() and not calib_file:
            raise c_loc.error("needs `dataset` or a `file` describing the calibration data",
                              "write `calibration: {file: calibration.yaml}` or `calibration: {dataset: my-calib}`")
        calib = Calibration(
            dataset=dataset or None,
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
        w = keyed_mapping(data["weights"], w_loc, WEIGHTS_KEYS,
                          example="weights: {path: weights}` (a folder next to variant.yaml) or "
                                  "`weights: {uri: hf://org/model, revision: <commit>}")
        if w.get("path") is not None:
            if w.get("uri") is not None or w.get("revision") is not None:
                raise w_loc.error("has `path` and `uri`/`revision`: the weights are in one place",
                                  "keep `path` (in the repo) or `uri` with `revision` (outside it)")
            weights = Weights(path=join_repo_path(folder, get_str(w, "path", w_loc), file=file, field="weights.path"))
        elif w.get("uri") is not None:
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


CALIBRATION_FACTS = ("dataset", "samples", "sequence_length")


def complete(variant: Variant, read_text: Callable[[str], str | None], size_of: Callable[[str], int | None]) -> Variant:
    """The facts variant.yaml leaves to the files beside it: the calibration file's dataset, samples
    and sequence_length, and ``size_bytes`` from the weights folder. A calibration file that
    disagrees with variant.yaml is an error: one of them describes another run."""
    calib = variant.calibration
    file = f"{variant.folder}/variant.yaml"
    if calib is not None and calib.file and calib.file.endswith((".yaml", ".yml", ".json")):
        text = read_text(calib.file)
        if text is not None:  # a missing file is the zoo check's finding, not a parse error
            c_loc = Loc(calib.file)
            described = mapping(load_one(text, calib.file) or {}, c_loc)
            found = {"dataset": get_text(described, "dataset", c_loc),
                     "samples": _opt_int(described, "samples", c_loc),
                     "sequence_length": _opt_int(described, "sequence_length", c_loc)}
            for key, value in found.items():
                declared = getattr(calib, key)
                if value is not None and declared is not None and value != declared:
                    raise InputError(file, f"calibration.{key}", f"says {declared!r} but {calib.file} says {value!r}",
                                     f"make them agree, or remove `{key}` from variant.yaml so it is read from the file")
            calib = replace(calib, **{k: v for k, v in found.items() if v is not None and getattr(calib, k) is None})
    if calib is not None and not calib.dataset:
        raise InputError(file, "calibration.dataset", "is not given in variant.yaml"
                         + (f" nor in {calib.file}" if calib.file else ""),
                         "add `dataset: <name>` to the calibration file or to variant.yaml's `calibration:`")
    size = variant.size_bytes
    if size is None and variant.weights is not None and variant.weights.path:
        size = size_of(variant.weights.path)
    return replace(variant, calibration=calib, size_bytes=size)


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
            close = did_you_mean(ref.variant, known)
            hint = ((f"did you mean {ref.model}/{close}? " if close else "")
                    + (f"existing variants of {ref.model}: {', '.join(known)}" if known else f"add {ref.folder}/variant.yaml"))
            raise InputError(named_in or ref.folder, field, f"names variant {ref} but {ref.folder}/variant.yaml does not exist", hint)
        variant = complete(parse_variant(ref, text), lambda path: self.reader.read_text(self.rev, path),
                           lambda path: self.reader.size_of(self.rev, path))
        variant = self._cache[ref] = replace(variant, source=self.rev)
        return variant

    def models(self) -> list[str]:
        return self.reader.list_dirs(self.rev, ZOO_ROOT)

    def variants_of(self, model: str) -> list[str]:
        return self.reader.list_dirs(self.rev, f"{ZOO_ROOT}/{model}")


def tags_for(variant: Variant) -> list[str]:
    """The model card's Hugging Face tags: precision, algorithm and format, or `baseline`."""
    tags = ["quantized", variant.name.precision]
    q = variant.quantization
    if q is not None and variant.is_quantized:
        tags.append(q.algorithm.lower())
        if q.format:
            tags.append("compressed-tensors" if "pack" in q.format or "compressed" in q.format else q.format)
    elif not variant.is_quantized:
        tags[0] = "baseline"
    return list(dict.fromkeys(tags))


def card_facts(variant: Variant, *, baseline: str | None = None, baseline_variant: Variant | None = None,
               recipe_text: str | None = None) -> CardFacts:
    """What the model card says of ``variant`` (``baseline_variant``: the baseline, for its size)."""
    return CardFacts(
        ref=str(variant.ref), base_model=variant.base_model, is_quantized=variant.is_quantized,
        tags=tuple(tags_for(variant)), description=variant.description,
        quantization=None if variant.quantization is None else asdict(variant.quantization),
        calibration=None if variant.calibration is None else asdict(variant.calibration),
        recipe=variant.recipe, recipe_text=recipe_text, size_bytes=variant.size_bytes,
        known_issues=variant.known_issues, baseline=baseline,
        baseline_size_bytes=None if baseline_variant is None else baseline_variant.size_bytes)
