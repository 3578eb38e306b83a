"""Declared against actual quantization: what `variant.yaml` says, what the weights are.

vLLM picks its kernels from `config.json`'s `quantization_config`, and the tensors hold what was
actually stored; the folder name and `variant.yaml` are only what a person wrote. So the `zoo`
check reads both sides:

- `config.json` → `quantization_config` as vLLM and transformers read it: compressed-tensors
  (`quant_method: compressed-tensors`: `format`, `config_groups[*].weights` num_bits, type,
  strategy, group_size, `input_activations`, `targets`, `ignore`), and transformers' GPTQ
  (`bits`, `group_size`), AWQ (`bits`, `group_size`) and FP8 (`activation_scheme`,
  `weight_block_size`) configs; no `quantization_config` means the weights load unquantized;
- the safetensors headers (`bot.zoo.weights`): the bits each quantized layer really takes on disk
  (a packed int4 layer is an eighth of its fp32 size), and the dtype of unquantized weights;
- the recipe's `targets` and `ignore` against the config's.

Every disagreement names both sides. Data-free schemes (RTN, FP8 with dynamic activations) say
so with `calibration: {data_free: true}`; a scheme that needs calibration data cannot.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from bot.zoo.weights import Source, Tensor, WeightSet

# Algorithms that fit their scales to calibration data; without it they are not what they say.
CALIBRATED = frozenset({"gptq", "awq", "smoothquant", "spinquant", "quip", "autoround", "sparsegpt", "hqq-calibrated"})
_SCHEME = re.compile(r"^W(?P<w>\d+)A(?P<a>\d+)", re.IGNORECASE)
_FLOAT_PRECISION = re.compile(r"^(?:fp|mxfp|nvfp)(\d+)$")
_UNQUANTIZED_DTYPE = {"fp32": "F32", "fp16": "F16", "bf16": "BF16", "fp64": "F64"}
SHAPE_READ_LIMIT = 16 * 1024 * 1024  # compressed-tensors stores `weight_shape` first (I64 sorts first)


@dataclass(frozen=True)
class Actual:
    """What the weights' config says, in the terms variant.yaml uses."""

    method: str  # compressed-tensors | gptq | awq | fp8 | bitsandbytes | other quant_method
    format: str | None  # compressed-tensors' format (pack-quantized, int-quantized, float-quantized...)
    weight_bits: frozenset[int]
    weight_types: frozenset[str]  # int | float
    strategies: frozenset[str]
    group_sizes: frozenset[int]
    activation_bits: frozenset[int]  # empty: activations stay 16-bit
    dynamic_activations: bool
    targets: tuple[str, ...]
    ignore: tuple[str, ...]

    def describe(self) -> str:
        bits = "/".join(str(b) for b in sorted(self.weight_bits)) or "?"
        kind = "fp" if self.weight_types == {"float"} else "int"
        parts = [self.method + (f" {self.format}" if self.format else ""), f"{kind}{bits} weights"]
        if self.group_sizes:
            parts.append("group " + "/".join(str(g) for g in sorted(self.group_sizes)))
        elif self.strategies:
            parts.append("/".join(sorted(self.strategies)))
        parts.append(("dynamic " if self.dynamic_activations else "") + "/".join(str(b) for b in sorted(self.activation_bits))
                     + "-bit activations" if self.activation_bits else "16-bit activations")
        return ", ".join(parts)


def read_actual(config: Mapping[str, Any]) -> Actual | None:
    """The quantization ``config`` (config.json) declares; None when the weights load unquantized."""
    q = config.get("quantization_config") if isinstance(config, Mapping) else None
    if q is None:
        text = config.get("text_config") if isinstance(config, Mapping) else None
        q = text.get("quantization_config") if isinstance(text, Mapping) else None
    if not isinstance(q, Mapping):
        return None
    method = str(q.get("quant_method") or "unknown").lower()
    if method == "compressed-tensors":
        return _compressed_tensors(q)
    if method in ("gptq", "awq"):
        bits, group = q.get("bits", q.get("w_bit")), q.get("group_size", q.get("q_group_size"))
        return Actual(method, None, _ints([bits]), frozenset({"int"}), frozenset({"group" if group and group > 0 else "channel"}),
                      _ints([group]) if group and group > 0 else frozenset(), frozenset(), False, ("Linear",),
                      tuple(q.get("modules_to_not_convert") or ()))
    if method == "fp8":
        block = q.get("weight_block_size")
        return Actual(method, None, frozenset({8}), frozenset({"float"}), frozenset({"block" if block else "tensor"}),
                      frozenset(), frozenset({8}), q.get("activation_scheme") == "dynamic", ("Linear",),
                      tuple(q.get("modules_to_not_convert") or ()))
    if method == "bitsandbytes":
        bits = 4 if q.get("load_in_4bit") else 8 if q.get("load_in_8bit") else None
        return Actual(method, q.get("bnb_4bit_quant_type"), _ints([bits]), frozenset({"float" if q.get("bnb_4bit_quant_type") == "fp4" else "int"}),
                      frozenset(), frozenset(), frozenset(), False, ("Linear",), tuple(q.get("llm_int8_skip_modules") or ()))
    return Actual(method, None, _ints([q.get("bits")]), frozenset(), frozenset(), frozenset(), frozenset(), False, (), ())


def _compressed_tensors(q: Mapping[str, Any]) -> Actual:
    groups = q.get("config_groups") if isinstance(q.get("config_groups"), Mapping) else {}
    bits, types, strategies, sizes, act_bits, targets, formats = set(), set(), set(), set(), set(), [], set()
    dynamic = False
    for group in groups.values():
        if not isinstance(group, Mapping):
            continue
        w = group.get("weights")
        if isinstance(w, Mapping):
            bits.update(_ints([w.get("num_bits")]))
            types.add(str(w.get("type") or "int"))
            if w.get("strategy"):
                strategies.add(str(w["strategy"]))
            if w.get("group_size"):
                sizes.update(_ints([w.get("group_size")]))
        a = group.get("input_activations")
        if isinstance(a, Mapping):
            act_bits.update(_ints([a.get("num_bits")]))
            dynamic = dynamic or bool(a.get("dynamic"))
        targets.extend(str(t) for t in group.get("targets") or ())
        if group.get("format"):
            formats.add(str(group["format"]))
    fmt = q.get("format") or (formats.pop() if len(formats) == 1 else None)
    return Actual("compressed-tensors", fmt, frozenset(bits), frozenset(types), frozenset(strategies), frozenset(sizes),
                  frozenset(act_bits), dynamic, tuple(dict.fromkeys(targets)), tuple(str(i) for i in q.get("ignore") or ()))


def _ints(values: Iterable[Any]) -> frozenset[int]:
    return frozenset(v for v in values if isinstance(v, int) and not isinstance(v, bool))


@dataclass(frozen=True)
class Declared:
    quantized: bool
    algorithm: str
    weight_bits: int | None
    weight_type: str | None  # int | float
    group_size: int | None
    activation_bits: int | None  # 16: not quantized
    dynamic: bool | None
    format: str | None
    precision: str


def declared(variant) -> Declared:
    """What the folder name and variant.yaml say, as one description."""
    q, name = variant.quantization, variant.name
    scheme = (q.scheme if q else "") or ""
    m = _SCHEME.match(scheme)
    bits = (q.bits if q and q.bits is not None else None) or (int(m["w"]) if m else None) or name.bits
    float_precision = _FLOAT_PRECISION.match(name.precision)
    if float_precision and name.precision not in _UNQUANTIZED_DTYPE:
        weight_type = "float"
    elif scheme.upper().startswith(("FP8", "NVFP4", "MXFP4")):
        weight_type = "float"
    elif name.precision.startswith(("int", "w")) or m:
        weight_type = "int"
    else:
        weight_type = None
    if bits is None and scheme.upper().startswith("FP8"):
        bits = 8
    activations = int(m["a"]) if m else (8 if scheme.upper().startswith("FP8") else None)
    group = (q.group_size if q and q.group_size is not None else None) or name.group_size
    g = re.search(r"-g(\d+)$", scheme)
    if group is None and g:
        group = int(g.group(1))
    dynamic = True if "DYNAMIC" in scheme.upper() else None
    return Declared(variant.is_quantized, (q.algorithm if q else "none"), bits, weight_type, group, activations, dynamic,
                    (q.format if q else None), name.precision)


def problems(variant, config: Mapping[str, Any] | None, weights: WeightSet, source: Source,
             recipe: Mapping[str, Any] | None = None) -> list[str]:
    """Every disagreement between the declaration and the weights, each naming both sides."""
    d = declared(variant)
    said = _said(variant, d)
    actual = read_actual(config or {})
    out: list[str] = []
    if actual is None:
        if d.quantized:
            out.append(f"variant.yaml declares {said}, but config.json has no `quantization_config`: vLLM and "
                       "transformers load these weights unquantized")
        out.extend(_unquantized_dtypes(d, weights, quantized=d.quantized))
        return out
    if not d.quantized:
        return [f"the variant is declared unquantized ({d.precision}), but config.json's quantization_config says "
                f"{actual.describe()}, which vLLM serves quantized"]
    shown = actual.describe()
    if d.format and not _same_format(d.format, actual):
        out.append(f"variant.yaml says format {d.format}, config.json's quantization_config says {shown}")
    if d.weight_bits is not None and actual.weight_bits and actual.weight_bits != {d.weight_bits}:
        out.append(f"variant.yaml declares {d.weight_bits}-bit weights ({said}), config.json's quantization_config "
                   f"says {shown}")
    if d.weight_type and actual.weight_types and actual.weight_types != {d.weight_type}:
        out.append(f"variant.yaml declares {d.weight_type} weights ({said}), config.json's quantization_config says {shown}")
    if d.group_size is not None:
        if actual.group_sizes and actual.group_sizes != {d.group_size}:
            out.append(f"variant.yaml declares group size {d.group_size}, config.json's quantization_config says {shown}")
        elif not actual.group_sizes and actual.strategies and "group" not in actual.strategies:
            out.append(f"variant.yaml declares group size {d.group_size}, but config.json's quantization_config "
                       f"quantizes per {'/'.join(sorted(actual.strategies))} ({shown})")
    if d.activation_bits is not None:
        real = actual.activation_bits or frozenset({16})
        if real != {d.activation_bits}:
            out.append(f"variant.yaml declares {d.activation_bits}-bit activations ({said}), config.json's "
                       f"quantization_config says {shown}")
    if d.dynamic and actual.activation_bits and not actual.dynamic_activations:
        out.append(f"variant.yaml declares dynamic activations ({said}), config.json's quantization_config has static "
                   f"activation scales ({shown})")
    if recipe is not None and actual.method == "compressed-tensors":
        out.extend(_recipe_problems(variant, recipe, actual))
    out.extend(_stored_bits(d, actual, weights, source))
    return out


def _said(variant, d: Declared) -> str:
    q = variant.quantization
    if q is None:
        return d.precision
    return " ".join(x for x in (q.algorithm, q.scheme, f"{q.bits} bits" if q.bits else "",
                                f"group {q.group_size}" if q.group_size else "") if x) or d.precision


def _same_format(declared_format: str, actual: Actual) -> bool:
    f = declared_format.lower()
    return f in (actual.method, (actual.format or "").lower()) or (f in ("compressed-tensors", "compressed_tensors")
                                                                  and actual.method == "compressed-tensors")


def _recipe_problems(variant, recipe: Mapping[str, Any], actual: Actual) -> list[str]:
    """The recipe's `targets` and `ignore` (the first modifier naming them) against the config's."""
    found = _modifier_with(recipe, ("targets", "ignore"))
    if found is None:
        return []
    out = []
    for key, real in (("targets", actual.targets), ("ignore", actual.ignore)):
        if key not in found:
            continue
        wanted = found[key]
        wanted = [wanted] if isinstance(wanted, str) else list(wanted or [])
        if key == "targets" and not real:
            continue
        if sorted(map(str, wanted)) != sorted(real):
            out.append(f"the recipe ({variant.recipe}) says {key}: {sorted(map(str, wanted))}, config.json's "
                       f"quantization_config says {key}: {sorted(real)}: the weights were not made by this recipe")
    return out


def _modifier_with(node: Any, keys: tuple[str, ...], depth: int = 0) -> Mapping[str, Any] | None:
    if depth > 12:
        return None
    if isinstance(node, Mapping):
        for name, value in node.items():
            if str(name).endswith("Modifier") and isinstance(value, Mapping) and any(k in value for k in keys):
                return value
        for value in node.values():
            hit = _modifier_with(value, keys, depth + 1)
            if hit is not None:
                return hit
    elif isinstance(node, list):
        for value in node:
            hit = _modifier_with(value, keys, depth + 1)
            if hit is not None:
                return hit
    return None


def _unquantized_dtypes(d: Declared, weights: WeightSet, *, quantized: bool) -> list[str]:
    """An unquantized precision must be what the matrices are stored in (an `fp32` folder of bf16 is
    another model); a quantized declaration over plain float matrices is not quantized at all."""
    matrices = [t for t in weights.tensors.values() if len(t.shape) == 2 and t.dtype.startswith(("F", "BF"))]
    if not matrices:
        return []
    dtypes = sorted({t.dtype for t in matrices})
    if quantized:
        return [f"its {len(matrices)} weight matrices are stored as {'/'.join(dtypes)}: nothing in them is quantized"]
    expected = _UNQUANTIZED_DTYPE.get(d.precision)
    if expected and dtypes != [expected]:
        return [f"the folder name says {d.precision}, but its weight matrices are stored as {'/'.join(dtypes)}"]
    return []


def _stored_bits(d: Declared, actual: Actual, weights: WeightSet, source: Source) -> list[str]:
    """The bits each quantized layer takes on disk, from the tensors' shapes and dtypes."""
    if not weights.tensors:
        return []
    layers = _quantized_layers(actual, weights, source)
    if layers is None:
        return []
    if not layers:
        return [f"config.json's quantization_config says {actual.describe()}, but no tensor of the weights is "
                "stored quantized"]
    expected = d.weight_bits or (min(actual.weight_bits) if actual.weight_bits else None)
    if expected is None:
        return []
    off = {name: bits for name, bits in layers.items() if bits is None or abs(bits - expected) > 0.01}
    if not off:
        return []
    name, bits = next(iter(sorted(off.items())))
    stored = "an unreadable shape" if bits is None else f"{bits:g} bits per weight"
    return [f"{len(off)} of {len(layers)} quantized layers are not stored at the declared {expected} bits "
            f"(e.g. {name}: {stored}, from its tensors' sizes on disk)"]


def _quantized_layers(actual: Actual, weights: WeightSet, source: Source) -> dict[str, float | None] | None:
    """Layer → stored bits per weight; None for a format whose layout the bot does not know."""
    t = weights.tensors
    layers: dict[str, float | None] = {}
    if actual.method == "compressed-tensors":
        for name, tensor in t.items():
            if name.endswith(".weight_packed"):
                layer = name[: -len(".weight_packed")]
                logical = _logical_numel(layer, t, weights, source, actual)
                layers[layer] = None if not logical else tensor.nbytes * 8 / logical
            elif name.endswith(".weight") and f"{name[:-len('.weight')]}.weight_scale" in t and tensor.dtype in (
                    "I8", "U8", "F8_E4M3", "F8_E5M2"):
                layers[name[: -len(".weight")]] = 8.0
            elif name.endswith(".weight") and f"{name[:-len('.weight')]}.weight_scale" in t:
                layers[name[: -len(".weight")]] = float(8 * tensor.nbytes / max(tensor.numel, 1))
        return layers
    if actual.method == "gptq":
        for name, tensor in t.items():
            if name.endswith(".qweight"):
                layer = name[: -len(".qweight")]
                g_idx = t.get(f"{layer}.g_idx")
                layers[layer] = tensor.shape[0] * 32 / g_idx.shape[0] if g_idx is not None and g_idx.shape[0] else None
        return layers
    if actual.method == "awq":
        for name, tensor in t.items():
            if name.endswith(".qweight"):
                layer = name[: -len(".qweight")]
                scales = t.get(f"{layer}.scales")
                layers[layer] = tensor.shape[1] * 32 / scales.shape[1] if scales is not None and len(scales.shape) == 2 else None
        return layers
    if actual.method == "fp8":
        return {n[: -len(".weight")]: (8.0 if x.dtype.startswith("F8") else 8 * x.nbytes / max(x.numel, 1))
                for n, x in t.items() if n.endswith(".weight") and (n[: -len(".weight")] + ".weight_scale_inv" in t
                                                                     or n[: -len(".weight")] + ".weight_scale" in t)}
    return None


def _logical_numel(layer: str, t: Mapping[str, Tensor], weights: WeightSet, source: Source, actual: Actual) -> int | None:
    """The unpacked weight's element count: from `weight_shape` (two int64s, stored first), else
    from a group scale's shape and the group size."""
    shape = t.get(f"{layer}.weight_shape")
    if shape is not None and shape.dtype in ("I64", "I32") and shape.numel == 2:
        data = weights.read(source, shape, SHAPE_READ_LIMIT)
        if data is not None and len(data) == shape.nbytes:
            rows, cols = struct.unpack("<qq" if shape.dtype == "I64" else "<ii", data)
            return rows * cols if rows > 0 and cols > 0 else None
    scale = t.get(f"{layer}.weight_scale")
    if scale is not None and len(scale.shape) == 2 and len(actual.group_sizes) == 1:
        return scale.shape[0] * scale.shape[1] * next(iter(actual.group_sizes))
    return None


def data_free_problem(variant) -> str | None:
    """`calibration: {data_free: true}` on an algorithm that fits its scales to data."""
    q = variant.quantization
    if q is not None and q.algorithm.lower().replace("_", "").replace("-", "") in CALIBRATED:
        return (f"calibration says data_free, but {q.algorithm} fits its scales to calibration data: name the "
                "dataset it was calibrated on")
    return None


def scheme_from_weights(config: Mapping[str, Any] | None) -> str | None:
    """The scheme as the weights' config states it, for the model card."""
    actual = read_actual(config or {})
    return actual.describe() if actual else None
