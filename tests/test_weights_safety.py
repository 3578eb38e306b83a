"""The weights check every loader and server runs: data files only."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import pytest

from bot.core.errors import InputError
from bot.zoo.weights_safety import check_weights

FILE = "models/canopy-tiny/v1.3-int4-g64/variant.yaml"


@pytest.fixture
def weights(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "text_config": {"hidden_size": 8}}))
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (folder / "tokenizer.json").write_text("{}")
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    return folder


def refusal(folder) -> InputError:
    with pytest.raises(InputError) as exc:
        check_weights(folder, file=FILE)
    assert exc.value.file == FILE and exc.value.field == "weights.path" and exc.value.fix
    return exc.value


def test_check_weights__plain_safetensors_folder_passes(weights):
    check_weights(weights, file=FILE)


def test_check_weights__pickle_beside_safetensors_is_refused(weights):
    (weights / "pytorch_model.bin").write_bytes(pickle.dumps({"w": 1}))
    assert "holds pickle files (pytorch_model.bin)" in refusal(weights).message


@pytest.mark.parametrize("name", ["model.safetensors", "weights.dat", "sub/extra.data"])
def test_check_weights__pickle_under_another_name_is_refused(weights, name):
    (weights / name).parent.mkdir(exist_ok=True)
    (weights / name).write_bytes(pickle.dumps(["x"], protocol=4))
    assert "pickle" in refusal(weights).message


def test_check_weights__zipped_torch_save_is_refused(weights):
    with zipfile.ZipFile(weights / "model.weights", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(1))
    assert "pickle" in refusal(weights).message


@pytest.mark.parametrize("where", ["top", "nested"])
def test_check_weights__auto_map_is_refused(weights, where):
    config = {"model_type": "llama", "auto_map": {"AutoModelForCausalLM": "modeling_evil.Evil"}}
    if where == "nested":
        config = {"model_type": "llava", "text_config": config}
    (weights / "config.json").write_text(json.dumps(config))
    assert "`auto_map`" in refusal(weights).message


def test_check_weights__auto_map_in_tokenizer_config_is_refused(weights):
    (weights / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["tok.Evil", None]}}))
    assert "`auto_map`" in refusal(weights).message


@pytest.mark.parametrize("name", ["modeling_evil.py", "sub/helper.py", "ext.so"])
def test_check_weights__code_files_are_refused(weights, name):
    (weights / name).parent.mkdir(exist_ok=True)
    (weights / name).write_text("import os\n")
    assert f"holds code files ({name})" in refusal(weights).message


def test_check_weights__symlinks_are_refused(weights, tmp_path):
    (tmp_path / "secret").write_text("runner file")
    os.symlink(tmp_path / "secret", weights / "generation_config.json")
    assert "symlinks" in refusal(weights).message


def test_check_weights__linked_folder_is_refused(weights, tmp_path):
    os.symlink(weights, tmp_path / "link")
    assert "symlink" in refusal(tmp_path / "link").message


def test_check_weights__broken_config_is_refused(weights):
    (weights / "config.json").write_text("{not json")
    assert "a config that is not valid JSON (config.json)" in refusal(weights).message
