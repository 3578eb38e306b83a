"""One weight set per variant (bot/zoo/weights.py) and its declaration (bot/zoo/quantization.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from bot.core.errors import InputError
from bot.zoo import quantization
from bot.zoo.variants import VariantRef, parse_variant
from bot.zoo.weights import Source, served_files, weight_set
from bot.zoo.weights_safety import check_weights

FILE = "models/m/v1.3-int4-g64/variant.yaml"
A = {"a.weight": np.zeros((4, 8), np.float32)}
B = {"b.weight": np.ones((4, 8), np.float32)}


def folder(tmp_path: Path, files: dict[str, dict], index: dict | None = None) -> Path:
    root = tmp_path / "weights"
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "llama"}')
    for name, tensors in files.items():
        save_file(tensors, str(root / name))
    if index is not None:
        (root / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    return root


def refused(root: Path) -> str:
    with pytest.raises(InputError) as exc:
        check_weights(root, file=FILE)
    assert exc.value.file == FILE and exc.value.field == "weights.path"
    return exc.value.message


def test_weight_set__one_model_safetensors_is_the_set(tmp_path):
    root = folder(tmp_path, {"model.safetensors": {**A, **B}})
    assert served_files(root) == [root / "model.safetensors"]
    assert set(check_weights(root, file=FILE).tensors) == {"a.weight", "b.weight"}


def test_weight_set__sharded_with_its_index(tmp_path):
    root = folder(tmp_path, {"model-00001-of-00002.safetensors": A, "model-00002-of-00002.safetensors": B},
                  {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"})
    assert [p.name for p in served_files(root)] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def test_weight_set__single_file_beside_an_index_naming_other_shards_is_refused(tmp_path):
    root = folder(tmp_path, {"model.safetensors": A, "model-00001-of-00001.safetensors": B},
                  {"b.weight": "model-00001-of-00001.safetensors"})
    assert "holds model.safetensors, which model.safetensors.index.json does not name" in refused(root)
    assert "transformers loads model.safetensors alone" in refused(root)


def test_weight_set__extra_safetensors_without_an_index_is_refused(tmp_path):
    root = folder(tmp_path, {"model.safetensors": A, "adapter.safetensors": B})
    assert "vLLM would load every *.safetensors, transformers only model.safetensors" in refused(root)


def test_weight_set__tensor_in_another_shard_than_the_index_says_is_refused(tmp_path):
    root = folder(tmp_path, {"model-00001-of-00002.safetensors": A, "model-00002-of-00002.safetensors": B},
                  {"a.weight": "model-00002-of-00002.safetensors", "b.weight": "model-00001-of-00002.safetensors"})
    assert "tensors a.weight, b.weight are in another shard than model.safetensors.index.json" in refused(root)


def test_weight_set__a_tensor_in_two_shards_is_refused(tmp_path):
    root = folder(tmp_path, {"model-00001-of-00002.safetensors": A, "model-00002-of-00002.safetensors": {**A, **B}},
                  {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"})
    assert "tensor a.weight is in both" in refused(root)


def test_weight_set__index_naming_a_missing_shard_is_refused(tmp_path):
    root = folder(tmp_path, {"model-00001-of-00002.safetensors": A},
                  {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"})
    assert "names model-00002-of-00002.safetensors, which the folder does not hold" in refused(root)


def test_weight_set__safetensors_in_a_sub_folder_is_refused(tmp_path):
    root = folder(tmp_path, {"model.safetensors": A})
    (root / "old").mkdir()
    save_file(B, str(root / "old" / "model.safetensors"))
    assert "holds old/model.safetensors in a sub-folder, which no loader reads" in refused(root)


def test_weight_set__bytes_hidden_after_the_tensors_are_refused(tmp_path):
    root = folder(tmp_path, {"model.safetensors": A})
    with open(root / "model.safetensors", "ab") as f:
        f.write(b"\0" * 64)
    assert "its tensors cover 128 bytes of the 192 after the header" in refused(root)


def test_weight_set__reads_the_same_from_git_as_from_disk(gitops, tmp_path):
    from bot.vcs.reader import GitReader

    save_file({**A, **B}, str(gitops.path / "models/canopy-tiny/v1.3-int4-g64/weights/model.safetensors"))
    gitops.commit("weights")
    reader = GitReader(gitops.path)
    try:
        from_git = weight_set(Source.git(reader, "HEAD", "models/canopy-tiny/v1.3-int4-g64/weights"), file=FILE)
    finally:
        reader.close()
    from_disk = weight_set(Source.folder(gitops.path / "models/canopy-tiny/v1.3-int4-g64/weights"), file=FILE)
    assert from_git == from_disk


# --- declared against actual ----------------------------------------------------------------------

def variant(folder_name: str, quant: str = "", calibration: str = "calibration: {dataset: calib}\n"):
    text = "base_model: m/v1.0-fp32\n" + quant + calibration + "recipe: recipe.yaml\nweights: {path: weights}\n"
    return parse_variant(VariantRef("m", folder_name), text)


CT = {"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
      "config_groups": {"group_0": {"targets": ["Linear"], "format": "pack-quantized", "input_activations": None,
                                    "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 64}}}}
INT4 = "quantization: {algorithm: GPTQ, scheme: W4A16, bits: 4, group_size: 64, format: compressed-tensors}\n"


def packed(tmp_path, bits: int, rows=8, cols=128, group=64):
    tensors = {"l.weight_packed": np.zeros((rows, cols * bits // 32), np.int32),
               "l.weight_scale": np.ones((rows, cols // group), np.float16),
               "l.weight_shape": np.array([rows, cols], np.int64)}
    root = folder(tmp_path, {"model.safetensors": tensors})
    source = Source.folder(root)
    return weight_set(source, file=FILE), source


def test_quantization__declaration_that_matches_the_weights_has_no_problem(tmp_path):
    weights, source = packed(tmp_path, 4)
    recipe = {"stage": {"mods": {"GPTQModifier": {"targets": ["Linear"], "ignore": ["lm_head"], "scheme": "W4A16"}}}}
    assert quantization.problems(variant("v1.3-int4-g64", INT4), {"quantization_config": CT}, weights, source, recipe) == []


def test_quantization__int2_packed_under_an_int4_config_is_found_by_size(tmp_path):
    weights, source = packed(tmp_path, 2)
    [problem] = quantization.problems(variant("v1.3-int4-g64", INT4), {"quantization_config": CT}, weights, source)
    assert problem.startswith("1 of 1 quantized layers are not stored at the declared 4 bits (e.g. l: 2 bits per weight")


@pytest.mark.parametrize("change, needle", [
    ({"num_bits": 8}, "declares 4-bit weights"),
    ({"group_size": 128}, "declares group size 64"),
    ({"strategy": "channel", "group_size": None}, "quantizes per channel"),
    ({"type": "float"}, "declares int weights"),
])
def test_quantization__config_that_disagrees_names_both_sides(tmp_path, change, needle):
    weights, source = packed(tmp_path, 4)
    config = json.loads(json.dumps(CT))
    config["config_groups"]["group_0"]["weights"].update(change)
    found = " ".join(quantization.problems(variant("v1.3-int4-g64", INT4), {"quantization_config": config}, weights, source))
    assert needle in found and "config.json's quantization_config" in found


def test_quantization__quantized_declaration_without_a_config_loads_unquantized(tmp_path):
    root = folder(tmp_path, {"model.safetensors": A})
    source = Source.folder(root)
    found = quantization.problems(variant("v1.3-int4-g64", INT4), {}, weight_set(source, file=FILE), source)
    assert "config.json has no `quantization_config`: vLLM and transformers load these weights unquantized" in found[0]
    assert "stored as F32: nothing in them is quantized" in found[1]


def test_quantization__unquantized_folder_with_another_dtype_is_refused(tmp_path):
    root = folder(tmp_path, {"model.safetensors": {"a.weight": np.zeros((4, 8), np.float16)}})
    source = Source.folder(root)
    [problem] = quantization.problems(variant("v1.0-fp32", calibration=""), {}, weight_set(source, file=FILE), source)
    assert problem == "the folder name says fp32, but its weight matrices are stored as F16"


def test_quantization__recipe_ignore_other_than_the_configs_is_refused(tmp_path):
    weights, source = packed(tmp_path, 4)
    recipe = {"GPTQModifier": {"targets": ["Linear"], "ignore": []}}
    [problem] = quantization.problems(variant("v1.3-int4-g64", INT4), {"quantization_config": CT}, weights, source, recipe)
    assert "the recipe (models/m/v1.3-int4-g64/recipe.yaml) says ignore: [], config.json's quantization_config says " \
           "ignore: ['lm_head']" in problem


def test_quantization__fp8_dynamic_is_data_free_and_gptq_is_not():
    fp8 = variant("v1.5-fp8", "quantization: {algorithm: RTN, scheme: FP8_DYNAMIC}\n", "calibration: {data_free: true}\n")
    assert fp8.calibration.data_free and quantization.data_free_problem(fp8) is None
    gptq = variant("v1.3-int4-g64", INT4, "calibration: {data_free: true}\n")
    assert "GPTQ fits its scales to calibration data" in quantization.data_free_problem(gptq)


def test_quantization__data_free_with_a_dataset_is_refused():
    with pytest.raises(InputError) as exc:
        variant("v1.5-fp8", "quantization: {algorithm: RTN, scheme: FP8_DYNAMIC}\n",
                "calibration: {data_free: true, dataset: calib}\n")
    assert exc.value.field == "calibration" and "says `data_free: true` and names calibration data" in exc.value.message


def test_quantization__the_card_shows_the_scheme_the_weights_state():
    assert quantization.scheme_from_weights({"quantization_config": CT}) == \
        "compressed-tensors pack-quantized, int4 weights, group 64, 16-bit activations"
    assert quantization.scheme_from_weights({"model_type": "llama"}) is None
