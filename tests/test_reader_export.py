"""GitReader.export: the only place the bot writes repository files to disk, plain files only."""

from __future__ import annotations

import os

import pytest

from bot.core.errors import UnsafePathError
from bot.vcs.reader import GitReader

WEIGHTS = "models/canopy-tiny/v1.4-int2-g64/weights"


def test_export__plain_folder_is_written(gitops, tmp_path):
    reader = GitReader(gitops.path)
    out = reader.export("HEAD", WEIGHTS, tmp_path / "out")
    assert (out / "config.json").read_text() == '{"model_type": "llama"}\n'
    reader.close()


@pytest.mark.parametrize("target", ["../../v1.0-fp32/weights/config.json", "/etc/passwd", "config.json"])
def test_export__symlink_is_refused_naming_it(gitops, tmp_path, target):
    os.symlink(target, gitops.path / WEIGHTS / "model.safetensors")
    gitops.commit("Weights that point elsewhere")
    reader = GitReader(gitops.path)
    with pytest.raises(UnsafePathError) as exc:
        reader.export("HEAD", WEIGHTS, tmp_path / "out")
    assert exc.value.file == f"{WEIGHTS}/model.safetensors"
    assert f"is a symlink to {target!r}" in exc.value.message and "commit the file itself" in exc.value.fix
    assert not (tmp_path / "out" / WEIGHTS).exists()  # nothing was written
    reader.close()


def test_export__linked_folder_is_refused(gitops, tmp_path):
    import shutil

    shutil.rmtree(gitops.path / WEIGHTS)
    os.symlink("../v1.0-fp32/weights", gitops.path / WEIGHTS)
    gitops.commit("The int2 weights folder is the baseline's")
    reader = GitReader(gitops.path)
    with pytest.raises(UnsafePathError, match="is a symlink"):
        reader.export("HEAD", WEIGHTS, tmp_path / "out")
    reader.close()


def test_export__submodule_is_refused(gitops, tmp_path):
    head = gitops.repo.head.commit.hexsha
    gitops.repo.git.update_index("--add", "--cacheinfo", f"160000,{head},{WEIGHTS}/shards")
    gitops.repo.index.update()
    gitops.repo.git.commit("-m", "Weights from a submodule")
    reader = GitReader(gitops.path)
    with pytest.raises(UnsafePathError) as exc:
        reader.export("HEAD", WEIGHTS, tmp_path / "out")
    assert exc.value.file == f"{WEIGHTS}/shards" and "git submodule" in exc.value.message
    reader.close()


def test_export__attributes_at_the_base_do_not_change_what_is_written(gitops, tmp_path):
    # export-ignore, export-subst and eol conversion act on `git archive` and checkouts; the bot
    # writes the blobs as committed, so every runner judges the same bytes.
    weights = gitops.path / WEIGHTS
    (weights / "model.safetensors").write_bytes(b"line one\r\n$Format:%H$\n")
    gitops.write(".gitattributes", "*.safetensors export-ignore\n*.json export-subst eol=crlf\n")
    gitops.write(f"{WEIGHTS}/config.json", '{"model_type": "llama", "v": "$Format:%H$"}\n')
    gitops.commit("Attributes that git archive would apply")
    reader = GitReader(gitops.path)
    out = reader.export("HEAD", WEIGHTS, tmp_path / "out")
    reader.close()
    assert (out / "model.safetensors").read_bytes() == b"line one\r\n$Format:%H$\n"
    assert (out / "config.json").read_bytes() == b'{"model_type": "llama", "v": "$Format:%H$"}\n'


def test_export__a_cap_refuses_before_writing_anything(gitops, tmp_path):
    from bot.core.errors import InputError

    gitops.write(f"{WEIGHTS}/zeros.dat", bytes(5 * 2**20))
    gitops.commit("5 MB of zeros")
    reader = GitReader(gitops.path)
    with pytest.raises(InputError) as exc:
        reader.export("HEAD", WEIGHTS, tmp_path / "out", max_bytes=2**20, what="allowed here")
    reader.close()
    assert "more than the 1,048,576 allowed here" in exc.value.message
    assert not (tmp_path / "out").exists()


def test_export__the_cache_key_is_the_tree_of_exactly_what_is_written(gitops, tmp_path):
    reader = GitReader(gitops.path)
    before = reader.tree_sha("HEAD", WEIGHTS)
    reader.close()
    gitops.write(".gitattributes", "*.json export-ignore\n")  # outside the weights: the tree id is unchanged...
    gitops.commit("attributes")
    reader = GitReader(gitops.path)
    assert reader.tree_sha("HEAD", WEIGHTS) == before
    out = reader.export("HEAD", WEIGHTS, tmp_path / "out")  # ...and so is what is written under it
    reader.close()
    assert (out / "config.json").is_file()
