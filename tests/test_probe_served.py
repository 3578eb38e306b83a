"""Probes against real `transformers serve` endpoints of the demo's variants (slow; needs the demo
zoo from `python -m bot.demo.build_zoo`): the baseline stays healthy, the int2 variant's
system-prompt and output-format probes trip after two runs and the revert is proposed once."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from gitops import POLICY, GitOpsRepo
from monitorops import PROD, commit_time, prod_manifest, remote_branches

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "models" / "canopy-tiny"
BASELINE, INT2 = "v1.0-fp32", "v1.4-int2-g64"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not all((ZOO / v / "weights" / "config.json").is_file() for v in (BASELINE, INT2))
                       or not any((ROOT / "evals" / "canopy").glob("*.yaml")),
                       reason="the demo zoo is not built (python -m bot.demo.build_zoo)"),
]

PROBES = """\
    probes:
      suites: evals/canopy
      tags: [system-prompt, output-format]
      concurrency: 1
      history: {history}
      rules:
        - {{name: system-prompt-probes, tag: system-prompt, below: 90%, consecutive: 2}}
        - {{name: output-format-probes, tag: output-format, below: 90%, consecutive: 2}}
"""


def served_repo(tmp_path: Path, prod_variant: str):
    import git

    repo = GitOpsRepo(tmp_path / "gitops")
    repo.write("promotion.yaml", POLICY + PROBES.format(history=tmp_path / "history.json"))
    for variant in (BASELINE, INT2):
        shutil.copytree(ZOO / variant, repo.path / "models" / "canopy-tiny" / variant)
    shutil.copytree(ROOT / "evals" / "canopy", repo.path / "evals" / "canopy")
    now = time.time()
    with commit_time(now - 86400):
        repo.write(PROD, prod_manifest(f"canopy-tiny/{BASELINE}", "canopy"))
        repo.commit("canopy in prod")
    if prod_variant != BASELINE:
        with commit_time(now - 3600):
            repo.write(PROD, prod_manifest(f"canopy-tiny/{prod_variant}", "canopy"))
            repo.commit(f"Promote {prod_variant} to prod")
    bare = tmp_path / "origin.git"
    git.Repo.init(bare, bare=True, initial_branch="main")
    repo.repo.create_remote("origin", str(bare))
    repo.repo.git.push("origin", "main")
    return repo, git.Repo(bare)


def probe(repo, tmp_path):
    out = tmp_path / "probe.json"
    code = main(["probe", "--repo", str(repo.path), "--forge-dir", str(tmp_path / "forge"), "--json", str(out)])
    return code, json.loads(out.read_text())


def test_probe_served__baseline_stays_healthy(tmp_path):
    repo, bare = served_repo(tmp_path, BASELINE)
    for _ in range(2):
        code, report = probe(repo, tmp_path)
        assert code == 0, report
    rates = report["deployments"][0]["probe"]["pass_rates"]
    assert rates["system-prompt"]["total"] > 0 and rates["output-format"]["total"] > 0
    assert remote_branches(bare) == ["main"]


def test_probe_served__int2_trips_after_two_runs_and_is_reverted_once(tmp_path):
    repo, bare = served_repo(tmp_path, INT2)
    assert probe(repo, tmp_path)[0] == 0
    code, report = probe(repo, tmp_path)
    assert code == 1, report
    states = {r["rule"]: r["state"] for r in report["deployments"][0]["rules"]}
    assert states == {"system-prompt-probes": "tripped", "output-format-probes": "tripped"}
    [pr] = (tmp_path / "forge").glob("pr-*.json")
    body = json.loads(pr.read_text())
    assert body["title"] == f"Revert canopy in prod to {BASELINE}" and "Failing probe cases" in body["body"]
    assert probe(repo, tmp_path)[0] == 1
    assert len(list((tmp_path / "forge").glob("pr-*.json"))) == 1 and len(remote_branches(bare)) == 2
