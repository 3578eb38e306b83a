"""The demo's monitoring step: simulated prod traffic on a real Prometheus, one pass, the revert PR."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from monitorops import clone_with_origin, policy_with

from bot.demo.monitoring import demo_scenario


def _policy() -> str:
    """The demo promotion.yaml's own prod rollback section, on the test repo's policy."""
    text = (Path(__file__).parent.parent / "promotion.yaml").read_text()
    return policy_with("    rollback:\n" + text.split("    rollback:\n", 1)[1])


def test_demo_scenario__degraded_prod_trips_and_proposes_the_revert(tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="canopy", promoted_at=time.time() - 60, policy=_policy())
    out = io.StringIO()
    code = demo_scenario(repo.path, tmp_path / "forge", json_path=tmp_path / "m.json", out=out)
    assert code == 1, out.getvalue()
    report = json.loads((tmp_path / "m.json").read_text())
    states = {r["rule"]: r["state"] for r in report["deployments"][0]["rules"]}
    assert states["p95-latency"] == states["token-throughput"] == "tripped"
    assert states["error-rate"] == "ok"
    [pr] = (tmp_path / "forge").glob("pr-*.md")
    assert pr.read_text().startswith("# Revert canopy in prod to v1.0-fp32")
    assert len(bare.heads) == 2
    assert "revert-pr: Revert canopy in prod to v1.0-fp32" in out.getvalue()


def test_demo_scenario__healthy_prod_stays(tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="canopy", promoted_at=time.time() - 60, policy=_policy())
    assert demo_scenario(repo.path, tmp_path / "forge", degraded=False, out=io.StringIO()) == 0
    assert list((tmp_path / "forge").glob("pr-*")) == [] and len(bare.heads) == 1
