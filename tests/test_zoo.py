"""variant.yaml and the naming scheme: strict types, names matched whole."""

from __future__ import annotations

import copy

import pytest
import yaml

from bot.core.errors import InputError
from bot.core.fields import Loc
from bot.render.card import metadata_yaml, render_card_body
from bot.zoo.variants import VariantRef, card_facts, parse_variant, parse_variant_name

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
        metadata_yaml(card_facts(variant), [])
        render_card_body(card_facts(variant), [])


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


def test_parse_variant__unknown_key_is_error_with_did_you_mean():
    data = {k: v for k, v in GOOD.items() if k != "quantization"} | {"quantisation": GOOD["quantization"]}
    with pytest.raises(InputError, match=r"variant.yaml: quantisation: is not a known setting \(fix: did you mean `quantization`\?\)"):
        parse_variant(REF, yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"weights.paht: is not a known setting \(fix: did you mean `path`\?\)"):
        parse_variant(REF, yaml.safe_dump(with_value(GOOD, ("weights",), {"paht": "weights"})))


@pytest.mark.parametrize("variant, quantization", [("v2.4-int4-g32", None), ("v2.0-int8", {"algorithm": "none"}),
                                                   ("v2.0-fp8", None), ("v2.0-int2", None), ("v2.0-nf4", None)])
def test_parse_variant__quantized_folder_needs_quantization(variant, quantization):
    data = {k: v for k, v in GOOD.items() if k not in ("quantization", "model", "variant")}
    if quantization:
        data["quantization"] = quantization
    with pytest.raises(InputError, match="a quantized precision, but variant.yaml"):
        parse_variant(VariantRef("acme-1b", variant), yaml.safe_dump(data))


@pytest.mark.parametrize("variant", ["v1.0-bf16", "v1.0-fp16", "v1.0-fp32"])
def test_parse_variant__unquantized_folder_needs_no_quantization(variant):
    v = parse_variant(VariantRef("acme-1b", variant), "base_model: acme-1b\nweights: {path: weights}\n")
    assert not v.is_quantized and v.quantization is None


def test_parse_variant__wrong_shapes_name_the_expected_keys():
    for key, value, keys in (("quantization", "none", "algorithm, scheme, bits, group_size, format, tool — or omit it"),
                             ("calibration", "calibration.yaml", "dataset, samples, sequence_length, file"),
                             ("weights", "weights", "path, uri, revision")):
        with pytest.raises(InputError, match=f"{key}: must be a mapping with keys {keys}"):
            parse_variant(REF, yaml.safe_dump(with_value(GOOD, (key,), value)))


def _zoo_repo(tmp_path, calibration_yaml: str, calibration: dict):
    from tests.gitops import GitOpsRepo

    repo = GitOpsRepo(tmp_path)
    data = with_value(GOOD, ("calibration",), calibration)
    del data["size_bytes"]
    repo.write(f"{REF.folder}/variant.yaml", yaml.safe_dump(data))
    repo.write(f"{REF.folder}/calibration.yaml", calibration_yaml)
    repo.write(f"{REF.folder}/weights/config.json", '{"model_type": "llama"}\n')
    repo.write(f"{REF.folder}/weights/model.safetensors", b"\0" * 1000)
    return repo, repo.commit("variant")


def test_zoo_get__reads_calibration_file_and_computes_size(tmp_path):
    from bot.vcs.reader import GitReader
    from bot.zoo.variants import Zoo

    repo, rev = _zoo_repo(tmp_path, "dataset: acme-calib\nsamples: 512\nsequence_length: 2048\nseed: 3\n",
                          {"file": "calibration.yaml"})
    variant = Zoo(GitReader(repo.path), rev).get(REF)
    assert (variant.calibration.dataset, variant.calibration.samples, variant.calibration.sequence_length) == \
        ("acme-calib", 512, 2048)
    assert variant.size_bytes == 1000 + len('{"model_type": "llama"}\n')
    body = render_card_body(card_facts(variant), [])
    assert "acme-calib: 512 samples of 2048 tokens" in body
    size_row = next(line for line in body.splitlines() if line.startswith("| size on disk |"))
    assert size_row.split("|")[2].strip() not in ("", "–")  # the computed size, shown


def test_zoo_get__calibration_file_disagreeing_with_variant_yaml_is_error(tmp_path):
    from bot.vcs.reader import GitReader
    from bot.zoo.variants import Zoo

    repo, rev = _zoo_repo(tmp_path, "dataset: acme-calib\nsamples: 8\n",
                          {"file": "calibration.yaml", "dataset": "acme-calib", "samples": 512})
    with pytest.raises(InputError) as exc:
        Zoo(GitReader(repo.path), rev).get(REF)
    assert exc.value.field == "calibration.samples"
    assert "says 512 but models/canopy-tiny/v1.3-int4-g64/calibration.yaml says 8" in exc.value.message


def test_zoo_check__pass_message_lists_what_was_found():
    from bot.checks.zoo_check import metadata_found

    quantized = parse_variant(REF, yaml.safe_dump(GOOD))
    assert list(metadata_found(quantized, ("recipe", "calibration", "weights"))) == [
        "recipe models/canopy-tiny/v1.3-int4-g64/recipe.yaml",
        "calibration canopy (64 samples, 256 tokens each) in models/canopy-tiny/v1.3-int4-g64/calibration.yaml",
        "weights models/canopy-tiny/v1.3-int4-g64/weights/"]
    baseline = parse_variant(VariantRef("canopy-tiny", "v1.0-fp32"), "base_model: canopy-tiny\nweights: {path: weights}\n")
    assert list(metadata_found(baseline, ("recipe", "calibration"))) == [
        "recipe not needed for the unquantized fp32", "calibration not needed for the unquantized fp32"]
