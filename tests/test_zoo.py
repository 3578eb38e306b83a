"""variant.yaml and the naming scheme: strict types, names matched whole."""

from __future__ import annotations

import copy

import pytest
import yaml

from bot.card import metadata_yaml, render_card_body
from bot.errors import InputError
from bot.fields import Loc
from bot.zoo import VariantRef, parse_variant, parse_variant_name

REF = VariantRef("canopy-tiny", "v1.3-int4-g64")
GOOD = {
    "model": "canopy-tiny", "variant": "v1.3-int4-g64", "base_model": "canopy-tiny/v1.0-fp32", "description": "4-bit",
    "quantization": {"algorithm": "GPTQ", "scheme": "W4A16", "bits": 4, "group_size": 64,
                     "format": "compressed-tensors", "tool": "llmcompressor"},
    "calibration": {"dataset": "canopy", "samples": 64, "sequence_length": 256, "file": "calibration.yaml"},
    "recipe": "recipe.yaml", "weights": {"path": "weights"}, "size_bytes": 1000,
    "measured": {"perplexity": 1.9}, "known_issues": ["slow on long prompts"], "results": {"ppl": 1.9},
}
WRONG = (["a", "b"], {"a": 1}, 7, 2.5, True)


def paths(node, prefix=()):
    """Every key path of a nested mapping, outer ones first."""
    for key, value in node.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from paths(value, prefix + (key,))


def with_value(data, path, value):
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def test_parse_variant__good_file_parses():
    v = parse_variant(REF, yaml.safe_dump(GOOD))
    assert v.base_model == "canopy-tiny/v1.0-fp32" and v.quantization.format == "compressed-tensors"
    assert v.known_issues == ("slow on long prompts",)


@pytest.mark.parametrize("path", list(paths(GOOD)), ids=".".join)
def test_parse_variant__wrong_type_anywhere_is_input_error_or_harmless(path):
    for wrong in WRONG:
        text = yaml.safe_dump(with_value(GOOD, path, wrong))
        try:
            variant = parse_variant(REF, text)
        except InputError as exc:
            assert exc.file == "models/canopy-tiny/v1.3-int4-g64/variant.yaml"
            assert path[0] in exc.field and exc.fix, exc  # names the field and says what to do
            continue
        # Accepted: everything downstream must still work with it (free-form mappings like `measured`).
        metadata_yaml(variant, [])
        render_card_body(variant, [])


def test_parse_variant__wrong_type_messages_name_field_and_fix():
    with pytest.raises(InputError) as exc:
        parse_variant(REF, yaml.safe_dump(with_value(GOOD, ("base_model",), ["canopy-tiny/v1.0-fp32"])))
    assert str(exc.value) == ("models/canopy-tiny/v1.3-int4-g64/variant.yaml: base_model: must be a non-empty string, "
                              "got a list (fix: write it as `base_model: some text`)")
    with pytest.raises(InputError, match=r"known_issues\[1\]: must be a string, got a mapping"):
        parse_variant(REF, yaml.safe_dump(with_value(GOOD, ("known_issues",), ["ok", {"x": 1}])))
    with pytest.raises(InputError, match=r"calibration.file: must be a string, got a list"):
        parse_variant(REF, yaml.safe_dump(with_value(GOOD, ("calibration", "file"), ["a"])))


@pytest.mark.parametrize("name", ["v1.3-int4-g64\n", "v1.3-int4-g64\n\n", " v1.3-int4-g64", "v1.3-int4-g64 ",
                                  "v1.3-int4-g64/", "v1.3-int４-g64", "v1.3-int4-G64"])
def test_parse_variant_name__no_trailing_newline_or_lookalikes(name):
    with pytest.raises(InputError, match="does not follow the naming scheme"):
        parse_variant_name(name)


@pytest.mark.parametrize("text", ["canopy-tiny\n/v1.3-int4-g64", "canopy-tiny/v1.3-int4-g64\n/x",
                                  "cañopy/v1.3-int4-g64", ["canopy-tiny/v1.3-int4-g64"]])
def test_variant_ref_parse__refuses_newline_and_non_ascii_names(text):
    with pytest.raises(InputError, match="is not a variant reference"):
        VariantRef.parse(text, Loc("environments/test/canopy.yaml", "document[0]"))


def test_variant_ref_parse__surrounding_whitespace_names_the_same_folder():
    assert VariantRef.parse("canopy-tiny/v1.3-int4-g64\n", Loc("x")) == REF
