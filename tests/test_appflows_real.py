"""`app-flows` on the real canopy-tiny zoo: both variants served by `transformers serve`.

The baseline and int8 pass the canopy suites; int2 breaks JSON and tool calls and fails the gate.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from real_zoo import zoo_repo

from bot.cli import main

pytestmark = pytest.mark.slow

POLICY = textwrap.dedent("""\
    version: 1
    models:
      canopy-tiny: {baseline: v1.0-fp32}
    zoo:
      require: [weights]
    serve: {mode: local, timeout: 180s}
    environments:
      - name: test
        gate: [{check: zoo}]
      - name: staging
        gate:
          - check: app-flows
            suites: evals/canopy
            server_errors: fail
            timeout: 10m
    """)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return zoo_repo(tmp_path_factory.mktemp("real") / "gitops", POLICY, ("v1.0-fp32", "v1.1-int8", "v1.4-int2-g64"))


def promote(repo, variant: str, tmp_path):
    """Each promotion is its own branch off main, like a PR."""
    repo.repo.git.checkout("-B", f"promote-{variant}", "main")
    repo.set_variant("staging", f"canopy-tiny/{variant}")
    head = repo.commit(f"Promote {variant} to staging")
    out_json, out_md = tmp_path / "report.json", tmp_path / "comment.md"
    code = main(["check", "--repo", str(repo.path), "--base", "main", "--head", head, "--json", str(out_json),
                 "--comment", str(out_md), "--cache", str(tmp_path / "cache")])
    [check] = json.loads(out_json.read_text())["promotions"][0]["checks"]
    return code, check, out_md.read_text()


def test_app_flows_real__int8_passes_with_the_baseline(repo, tmp_path):
    code, check, _ = promote(repo, "v1.1-int8", tmp_path)
    assert check["verdict"] == "pass", check
    assert code == 0


def test_app_flows_real__int2_regresses_on_json_and_tool_calls(repo, tmp_path):
    code, check, comment = promote(repo, "v1.4-int2-g64", tmp_path)
    assert code == 1 and check["verdict"] == "fail", check
    rows = {r["label"].split(" ")[0]: r for r in check["rows"]}
    assert rows["output-format"]["verdict"] == "fail"
    assert rows["agent-workflow"]["verdict"] == "fail"
    assert any(f["tag"] == "output-format" for f in check["findings"])
    # A tool-call case regressed: int2 writes malformed tool-call JSON (which `transformers serve`
    # answers with HTTP 500, counted as a failed case under `server_errors: fail`).
    assert any(f["tag"] == "agent-workflow" and "calls tool" in f["required"] for f in check["findings"])
    # The comment shows each failing case with what each side answered.
    assert "app-flows: " in comment and "candidate said: " in comment and "required: " in comment
