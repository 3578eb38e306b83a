"""The fan-out on GitHub: `github plan` → `run-check` per matrix entry, in separate processes at
once → `github report`, against `github pr` on the same PR. Real Git checkouts, the Actions
environment, PyGithub talking HTTP to the fake GitHub (checked against GitHub's OpenAPI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from github_fake import FakeGitHub  # noqa: E402
from github_fake.harness import REPO, TOKEN, load_event, pr_event, read_outputs, run_action  # noqa: E402
from test_fanout import (  # noqa: E402,F401  (child_checks: the run-check children load the test-only checks)
    POLICY,
    _two_environments,
    child_checks,
    make_repo,
    run_parallel,
    without_time_footer,
    without_timings,
)

from bot.cli import main  # noqa: E402
from bot.render.markdown import COMMENT_MARKER  # noqa: E402

RUN_URL = "https://github.example.com/acme-ml/gitops/actions/runs/4242"


@pytest.fixture
def fake():
    with FakeGitHub() as server:
        server.add_repo(REPO)
        server.add_token(TOKEN, None)
        yield server
    assert server.validation_errors == []


def github(monkeypatch, tmp_path: Path, fake, repo, event_name: str, payload: dict, *argv: str,
           token: str = TOKEN) -> tuple[int, dict, str]:
    """Run `promotion-bot github ...` as an Actions step: (exit code, step outputs, step summary)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    event, output, summary = tmp_path / "event.json", tmp_path / "output.txt", tmp_path / "summary.md"
    event.write_text(json.dumps(payload))
    env = {
        "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": REPO,
        "GITHUB_TOKEN": token, "GITHUB_API_URL": fake.url, "GITHUB_SERVER_URL": "https://github.example.com",
        "GITHUB_RUN_ID": "4242", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output),
        "GITHUB_WORKSPACE": str(repo.path), "RUNNER_TEMP": str(tmp_path), "PROMOTION_BOT_CACHE": str(tmp_path / "cache"),
        "PROMOTION_BOT_GITHUB_THROTTLE": "0", "PROMOTION_BOT_GITHUB_BACKOFF": "0.01",
        "PROMOTION_BOT_GITHUB_RETRIES": "3", "PROMOTION_BOT_GITHUB_SECONDARY_WAIT": "0.01",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code = main(["github", *argv])
    return code, read_outputs(output), summary.read_text() if summary.exists() else ""


def fan_out(monkeypatch, tmp_path: Path, fake, repo, payload: dict, *, skip=(), event_name="pull_request",
            token: str = TOKEN):
    """The three jobs of docs/fanout.md; ``skip``: matrix entries whose runner never reports."""
    plan_file = tmp_path / "plan" / "plan.json"
    code, plan_out, _ = github(monkeypatch, tmp_path / "plan", fake, repo, event_name, payload,
                               "plan", "--out", str(plan_file), token=token)
    assert code == 0 and plan_out["verdict"] == "pending", plan_out
    entries = [e["id"] for e in json.loads(plan_out["matrix"])["include"]]
    assert plan_out["entries"] == str(len(entries))
    results = tmp_path / "results"
    for entry in entries:  # each runner uploads its own artifact folder
        if entry not in skip:
            run_parallel(plan_file, [entry], results / f"results-{entry}", tmp_path / "cache")
    report_json = tmp_path / "report" / "report.json"
    code, out, summary = github(monkeypatch, tmp_path / "report", fake, repo, event_name, payload,
                                "report", "--plan", str(plan_file), "--results", str(results), "--json", str(report_json),
                                token=token)
    return code, out, summary, json.loads(report_json.read_text())


def statuses(fake, sha: str) -> dict[str, list[tuple[str, str]]]:
    by_context: dict[str, list[tuple[str, str]]] = {}
    for s in fake.statuses_for(sha):
        assert s["target_url"] == RUN_URL
        by_context.setdefault(s["context"], []).append((s["state"], s["description"]))
    return by_context


def the_pr(tmp_path, scenario=_two_environments):
    """(repo, base, head) of a PR whose one commit makes ``scenario``'s last change."""
    repo = make_repo(tmp_path)
    scenario(repo)
    head = repo.commit("The PR")
    return repo, repo.repo.commit(f"{head}~1").hexsha, head


def _prod_after_staging(repo):
    repo.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 in staging")
    repo.set_variant("prod", "canopy-tiny/v1.3-int4-g64")


# --- the same as `github pr` -------------------------------------------------------------

def test_github_fanout__same_comment_and_statuses_as_github_pr(monkeypatch, tmp_path):
    repo, base, head = the_pr(tmp_path)
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    with FakeGitHub() as one, FakeGitHub() as spread:
        for server in (one, spread):
            server.add_repo(REPO)
            server.add_token(TOKEN, None)
        single = run_action(monkeypatch, tmp_path / "single", one, repo.path, "pull_request", payload)
        code, out, summary, report = fan_out(monkeypatch, tmp_path / "fanout", spread, repo, payload)
        assert code == single.code == 1
        [comment] = spread.comments_on(REPO, 12)
        [single_comment] = one.comments_on(REPO, 12)
        assert comment["body"].startswith(COMMENT_MARKER)
        assert without_time_footer(comment["body"]) == without_time_footer(single_comment["body"])
        assert statuses(spread, head) == statuses(one, head)
        assert [s for s, _ in statuses(spread, head)["promotion-bot/test"]] == ["pending", "failure"]
        assert [s for s, _ in statuses(spread, head)["promotion-bot/staging"]] == ["pending", "failure"]
        # The plan job wrote the pending statuses; the report job only the comment and final ones.
        assert len(spread.requests) == len(one.requests)
    assert one.validation_errors == spread.validation_errors == []
    assert without_timings(report) == without_timings(single.report)
    assert out["verdict"] == "fail" == single.outputs["verdict"]
    assert out["comment-url"].endswith(f"#issuecomment-{comment['id']}")
    assert without_time_footer(summary) == without_time_footer(single.summary)


def test_github_fanout__pass_and_rerun_edit_the_one_comment(monkeypatch, tmp_path, fake):
    repo, base, head = the_pr(tmp_path, _prod_after_staging)
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    code, out, _, report = fan_out(monkeypatch, tmp_path / "1", fake, repo, payload)
    assert code == 0 and out["verdict"] == "pass" and report["verdict"] == "pass"
    fake.add_pull(REPO, 12, base_sha=base, head_sha=head)
    code, _, _, _ = fan_out(monkeypatch, tmp_path / "2", fake, repo, load_event("workflow_dispatch.json"),
                            event_name="workflow_dispatch")
    assert code == 0
    assert len(fake.comments_on(REPO, 12)) == 1
    assert [s for s, _ in statuses(fake, head)["promotion-bot/prod"]] == ["pending", "success"] * 2
    assert statuses(fake, head)["promotion-bot/prod"][-1] == ("success", "passed: canopy-tiny/v1.3-int4-g64")


# --- fail closed -------------------------------------------------------------------------

def test_github_fanout__missing_result_is_error_never_success(monkeypatch, tmp_path, fake):
    repo, base, head = the_pr(tmp_path, _prod_after_staging)
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    code, out, summary, report = fan_out(monkeypatch, tmp_path, fake, repo, payload, skip=("p0-2-test-slow",))
    assert code == 2 and out["verdict"] == "error" and report["verdict"] == "error"
    assert statuses(fake, head)["promotion-bot/prod"] == [("pending", "judging 1 promotion(s)…"),
                                                          ("error", "could not judge: canopy-tiny/v1.3-int4-g64")]
    [comment] = fake.comments_on(REPO, 12)
    assert "no result from job p0-2-test-slow" in comment["body"] and "ERROR" in comment["body"]
    assert "no result from job p0-2-test-slow" in summary


def test_github_report__plan_of_another_head_is_refused(monkeypatch, tmp_path, fake):
    repo, base, head = the_pr(tmp_path)
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    plan_file = tmp_path / "plan.json"
    assert github(monkeypatch, tmp_path / "plan", fake, repo, "pull_request", payload,
                  "plan", "--out", str(plan_file))[0] == 0
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    new_head = repo.commit("A new push")
    newer = pr_event("pull_request.synchronize.json", base=base, head=new_head)
    code, out, _ = github(monkeypatch, tmp_path / "report", fake, repo, "pull_request", newer,
                          "report", "--plan", str(plan_file), "--results", str(tmp_path / "results"))
    assert code == 2 and out["verdict"] == "error"
    assert "download the plan artifact of this workflow run" in fake.comments_on(REPO, 12)[0]["body"]
    assert {s["state"] for s in fake.statuses_for(new_head)} == {"error"}


def test_github_report__unreadable_plan_is_an_error_on_the_pr(monkeypatch, tmp_path, fake):
    repo, base, head = the_pr(tmp_path)
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    code, out, _ = github(monkeypatch, tmp_path, fake, repo, "pull_request", payload,
                          "report", "--plan", str(tmp_path / "no-plan.json"), "--results", str(tmp_path / "results"))
    assert code == 2 and out["verdict"] == "error"
    assert "no-plan.json" in fake.comments_on(REPO, 12)[0]["body"]
    assert [s["state"] for s in fake.statuses_for(head, "promotion-bot")] == ["error"]


def test_github_plan__bad_policy_is_published_by_the_plan_job(monkeypatch, tmp_path, fake):
    repo = make_repo(tmp_path, POLICY.replace("check: zoo", "check: no-such-check", 1))
    base = repo.repo.head.commit.hexsha
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    head = repo.commit("Promote")
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    code, out, _ = github(monkeypatch, tmp_path, fake, repo, "pull_request", payload, "plan", "--out",
                          str(tmp_path / "plan.json"))
    # The report job does not run (its `if:` wants verdict pending): the plan job says what is wrong.
    assert code == 2 and out["verdict"] == "error" and out["entries"] == "0"
    body = fake.comments_on(REPO, 12)[0]["body"]
    assert "ERROR" in body and "no-such-check" in body
    final = {s["context"]: s["state"] for s in fake.statuses_for(head)}
    # Read leniently from the broken policy, every environment's context gets the error too.
    assert final == {"promotion-bot": "error", "promotion-bot/test": "error", "promotion-bot/staging": "error",
                     "promotion-bot/prod": "error"}


def test_github_plan__could_not_plan_publishes_the_error_and_an_empty_matrix(monkeypatch, tmp_path, fake):
    repo, _, head = the_pr(tmp_path)
    payload = pr_event("pull_request.opened.json", base="0123456789abcdef0123456789abcdef01234567", head=head)
    code, out, _ = github(monkeypatch, tmp_path, fake, repo, "pull_request", payload, "plan", "--out",
                          str(tmp_path / "plan.json"))
    assert code == 2 and out["verdict"] == "error"
    assert json.loads(out["matrix"]) == {"include": []} and out["entries"] == "0"
    assert not (tmp_path / "plan.json").exists()
    assert "fetch-depth: 0" in fake.comments_on(REPO, 12)[0]["body"]
    assert [s["state"] for s in fake.statuses_for(head, "promotion-bot")] == ["error"]


def test_github_plan__policy_input_missing_at_base_is_reported_at_once(monkeypatch, tmp_path, fake):
    repo, base, head = the_pr(tmp_path)
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    code, out, _ = github(monkeypatch, tmp_path, fake, repo, "pull_request", payload,
                          "plan", "--policy", "policies/strict.yaml", "--out", str(tmp_path / "plan.json"))
    assert code == 2 and out["entries"] == "0"
    body = fake.comments_on(REPO, 12)[0]["body"]
    assert "policies/strict.yaml" in body and "not found at revision" in body
    final = {s["context"]: s["state"] for s in fake.statuses_for(head)}  # the last one per context wins
    assert final and set(final.values()) == {"error"}


def test_github_plan__policy_input_is_read_from_the_base_revision_by_every_job(monkeypatch, tmp_path, fake):
    repo = make_repo(tmp_path)
    (repo.path / "policies").mkdir()
    (repo.path / "policies" / "strict.yaml").write_text((repo.path / "promotion.yaml").read_text())
    base = repo.commit("A second policy")
    _two_environments(repo)
    head = repo.commit("The PR")
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    code, out, _ = github(monkeypatch, tmp_path, fake, repo, "pull_request", payload,
                          "plan", "--policy", "policies/strict.yaml", "--out", str(tmp_path / "plan.json"))
    assert code == 0 and int(out["entries"]) > 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["policy_path"] == "policies/strict.yaml" and plan["policy_file"] is None


def test_github_plan__checkout_that_is_no_git_repository_gives_an_empty_matrix(monkeypatch, tmp_path, fake):
    repo, base, head = the_pr(tmp_path / "real")

    class NotACheckout:
        path = tmp_path / "empty"

    NotACheckout.path.mkdir()
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    code, out, _ = github(monkeypatch, tmp_path, fake, NotACheckout, "pull_request", payload,
                          "plan", "--out", str(tmp_path / "plan.json"))
    assert code == 2 and out["verdict"] == "error"
    assert json.loads(out["matrix"]) == {"include": []} and out["entries"] == "0"
    assert [s["state"] for s in fake.statuses_for(head, "promotion-bot")] == ["error"]


def test_github_fanout__fork_pr_with_read_only_token_reports_in_the_jobs(monkeypatch, tmp_path, fake):
    fake.add_token("ghs_fork_read_only", None, read_only=True)
    repo, base, head = the_pr(tmp_path, _prod_after_staging)
    payload = pr_event("pull_request.opened.fork.json", base=base, head=head)
    code, out, summary, report = fan_out(monkeypatch, tmp_path, fake, repo, payload, token="ghs_fork_read_only")
    assert code == 0 and out["verdict"] == "pass" and "PASS" in summary
    assert fake.comments == [] and fake.statuses == []


def test_github_plan__ignored_event_gives_an_empty_matrix_without_requests(monkeypatch, tmp_path, fake, gitops):
    code, out, _ = github(monkeypatch, tmp_path, fake, gitops, "pull_request", load_event("pull_request.closed.json"),
                          "plan", "--out", str(tmp_path / "plan.json"))
    assert code == 0 and out["verdict"] == "skipped"
    assert json.loads(out["matrix"]) == {"include": []} and out["entries"] == "0"
    assert fake.requests == []


# --- action.yml: the three modes of the composite action's run step ------------------------

def action_step(mode: str, workspace: Path, runner_temp: Path, fake, payload: dict, **inputs: str) -> tuple[int, dict]:
    """The composite action's `Run promotion-bot` script under bash, with the environment its
    `env:` block gives it; each call has its own RUNNER_TEMP, as each job has its own runner."""
    import os
    import subprocess

    import yaml

    action = yaml.safe_load((Path(__file__).resolve().parent.parent / "action.yml").read_text())
    [step] = [s for s in action["runs"]["steps"] if s.get("id") == "run"]
    runner_temp.mkdir(parents=True, exist_ok=True)
    event, output = runner_temp / "event.json", runner_temp / "output.txt"
    event.write_text(json.dumps(payload))
    env = dict(os.environ, MODE=mode, POLICY=inputs.get("policy", "promotion.yaml"), PLAN="", RESULTS="",
               JOB=inputs.get("job", ""), PROMETHEUS_URL="", MONITOR_ENV="prod",
               GITHUB_TOKEN=TOKEN, PROMOTION_BOT_LOGIN="github-actions[bot]", GITHUB_EVENT_NAME="pull_request",
               GITHUB_EVENT_PATH=str(event), GITHUB_REPOSITORY=REPO, GITHUB_API_URL=fake.url,
               GITHUB_SERVER_URL="https://github.example.com", GITHUB_RUN_ID="4242", GITHUB_OUTPUT=str(output),
               GITHUB_STEP_SUMMARY=str(runner_temp / "summary.md"), RUNNER_TEMP=str(runner_temp),
               PROMOTION_BOT_CACHE=str(runner_temp / "cache"), PROMOTION_BOT_GITHUB_THROTTLE="0",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workspace, env=env, capture_output=True,
                          text=True, timeout=300)
    assert TOKEN not in proc.stdout + proc.stderr
    return proc.returncode, read_outputs(output)




def test_action__plan_run_check_report_modes_publish_the_fan_out(tmp_path, fake):
    import shutil

    repo, base, head = the_pr(tmp_path, _prod_after_staging)
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    code, planned = action_step("plan", repo.path, tmp_path / "plan-runner", fake, payload)
    assert code == 0 and planned["verdict"] == "pending"
    plan_file = Path(planned["plan-path"])
    assert plan_file == tmp_path / "plan-runner" / "promotion-bot" / "plan.json"  # outside the checkout
    report_temp = tmp_path / "report-runner"
    for entry in json.loads(planned["matrix"])["include"]:
        runner = tmp_path / f"runner-{entry['id']}"
        shutil.copytree(plan_file.parent, runner / "promotion-bot")  # actions/download-artifact of the plan
        code, ran = action_step("run-check", repo.path, runner, fake, payload, job=entry["id"])
        assert code == 0
        # actions/download-artifact with `pattern:` gives each artifact its own folder.
        shutil.copytree(ran["results-path"], report_temp / "promotion-bot" / "results" / f"results-{entry['id']}")
    shutil.copy(plan_file, report_temp / "promotion-bot" / "plan.json")
    code, reported = action_step("report", repo.path, report_temp, fake, payload)
    assert code == 0 and reported["verdict"] == "pass"
    assert [s["state"] for s in fake.statuses_for(head, "promotion-bot/prod")] == ["pending", "success"]
    assert len(fake.comments_on(REPO, 12)) == 1
    # The workflow's token needs no GET /user: pending and final on the umbrella and prod, one
    # final status each for test and staging (untouched), the comments page and the comment.
    assert fake.calls("GET", "/user") == [] and len(fake.requests) == 2 * 2 + 2 + 2
    assert [s["state"] for s in fake.statuses_for(head, "promotion-bot/test")] == ["success"]


def test_action__run_check_without_a_job_names_the_input(tmp_path, fake):
    repo, base, head = the_pr(tmp_path)
    payload = pr_event("pull_request.opened.json", base=base, head=head)
    code, _ = action_step("run-check", repo.path, tmp_path / "runner", fake, payload)
    assert code == 2
    assert fake.requests == []


def test_github_pr__an_inconclusive_report_exits_3_like_check(monkeypatch, tmp_path, fake):
    # One exit-code table: `github pr` says "inconclusive" with 3, as `check` does, not 2 ("could not judge").
    policy = POLICY[:POLICY.index("  - name: staging")] + (
        "  - name: staging\n    gate:\n      - {check: test-slow, verdict: inconclusive}\n"
        "  - name: prod\n    gate:\n      - check: zoo\n")
    repo = make_repo(tmp_path, policy)
    repo.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    head = repo.commit("v1.3 into staging")
    payload = pr_event("pull_request.opened.json", base=repo.repo.commit(f"{head}~1").hexsha, head=head)
    code, out, _ = github(monkeypatch, tmp_path / "pr", fake, repo, "pull_request", payload, "pr")
    assert (code, out["verdict"]) == (3, "inconclusive")
    assert main(["check", "--repo", str(repo.path), "--base", "HEAD~1", "--head", "HEAD",
                 "--cache", str(tmp_path / "cache"), "--no-record"]) == 3
    assert [s for s, _ in statuses(fake, head)["promotion-bot/staging"]] == ["pending", "failure"]
