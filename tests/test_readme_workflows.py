"""The workflows the README tells users to commit agree with action.yml: every input they pass and
every output they read exists, every job output they read is declared, and every workflow that
gates PRs also runs for merge queues and filters no paths (a skipped run leaves required statuses
pending)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
BOT = "acme-ml/promotion-bot@"


def readme_workflows() -> list[dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    found = [yaml.safe_load(b) for b in blocks]
    return [w for w in found if isinstance(w, dict) and "jobs" in w]


WORKFLOWS = readme_workflows()


def on(workflow: dict) -> dict:
    triggers = workflow.get("on", workflow.get(True))
    return triggers if isinstance(triggers, dict) else {t: {} for t in ([triggers] if isinstance(triggers, str) else triggers)}


def test_readme_workflows__the_readme_has_the_gate_the_fan_out_and_the_monitor():
    assert sorted(w["name"] for w in WORKFLOWS) == ["monitor", "promotion", "promotion gate"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w["name"])
def test_readme_workflows__inputs_and_outputs_exist_in_action_yml(workflow):
    text = yaml.safe_dump(workflow)
    for job_id, job in workflow["jobs"].items():
        bot_ids = set()
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith(BOT):
                assert set(step.get("with") or {}) <= set(ACTION["inputs"]), (job_id, step.get("with"))
                if "id" in step:
                    bot_ids.add(step["id"])
        job_text = yaml.safe_dump(job)
        for step_id, output in re.findall(r"steps\.([\w-]+)\.outputs\.([\w-]+)", job_text):
            if step_id in bot_ids:
                assert output in ACTION["outputs"], f"{job_id}: steps.{step_id}.outputs.{output}"
    for needed, output in re.findall(r"needs\.([\w-]+)\.outputs\.([\w-]+)", text):
        assert output in (workflow["jobs"][needed].get("outputs") or {}), f"needs.{needed}.outputs.{output}"


@pytest.mark.parametrize("workflow", [w for w in WORKFLOWS if "pull_request" in on(w)], ids=lambda w: w["name"])
def test_readme_workflows__pr_gates_run_on_every_pr_and_on_merge_queues(workflow):
    triggers = on(workflow)
    assert "merge_group" in triggers
    assert not {"paths", "paths-ignore", "branches-ignore"} & set(triggers["pull_request"] or {})
    assert "pull_request_target" not in triggers
    assert "merge_group" in str(workflow["concurrency"]["group"])  # queue entries do not cancel each other


def test_readme_workflows__the_gate_may_push_its_results_and_set_statuses():
    [gate] = [w for w in WORKFLOWS if w["name"] == "promotion"]
    assert gate["permissions"] == {"contents": "write", "pull-requests": "write", "statuses": "write"}
    [fanout] = [w for w in WORKFLOWS if w["name"] == "promotion gate"]
    assert fanout["jobs"]["report"]["permissions"]["contents"] == "write"
    assert fanout["jobs"]["run-check"]["permissions"] == {"contents": "read"}  # the checks run the PR's files


def test_readme_workflows__the_monitor_acts_with_a_github_app_token():
    [monitor] = [w for w in WORKFLOWS if w["name"] == "monitor"]
    steps = monitor["jobs"]["monitor"]["steps"]
    assert steps[0]["uses"].startswith("actions/create-github-app-token@")
    [bot] = [s for s in steps if str(s.get("uses", "")).startswith(BOT)]
    assert bot["with"]["github-token"] == "${{ steps.app.outputs.token }}"
