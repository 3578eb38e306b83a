"""A GitOps repo holding the real canopy-tiny zoo (models/ of this repository) and the canopy
suites, for the tests that run real `transformers serve` servers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gitops import GitOpsRepo

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "models" / "canopy-tiny"


def require_zoo(*variants: str) -> None:
    missing = [v for v in variants if not (ZOO / v / "weights" / "config.json").is_file()]
    if missing:
        pytest.skip(f"the canopy-tiny zoo is not built here (missing {', '.join(missing)}): python -m bot.demo.build_zoo")


def zoo_repo(path: Path, policy: str, variants: tuple[str, ...]) -> GitOpsRepo:
    """A repo with ``variants`` copied from the zoo, evals/canopy, and v1.0-fp32 everywhere."""
    require_zoo(*variants)
    repo = GitOpsRepo(path)
    repo.write("promotion.yaml", policy)
    for v in variants:
        shutil.copytree(ZOO / v, path / "models" / "canopy-tiny" / v)
    shutil.copytree(ROOT / "evals" / "canopy", path / "evals" / "canopy")
    for env in ("test", "staging", "prod"):
        repo.set_variant(env, "canopy-tiny/v1.0-fp32")
    repo.commit("GitOps repo with the canopy-tiny zoo")
    return repo
