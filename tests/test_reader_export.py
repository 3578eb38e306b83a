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
