"""`promotion-bot github pr` end to end: a real Git checkout, the Actions environment, and
PyGithub talking HTTP to the fake GitHub (every exchange checked against GitHub's OpenAPI)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from github_fake import FakeGitHub  # noqa: E402
from github_fake.harness import REPO, TOKEN, load_event, pr_event, run_action  # noqa: E402

from bot.render.markdown import COMMENT_MARKER, GITHUB_COMMENT_LIMIT  # noqa: E402

RUN_URL = "https://github.example.com/acme-ml/gitops/actions/runs/4242"


@pytest.fixture
def fake():
    with FakeGitHub() as server:
        server.add_repo(REPO)
        server.add_token(TOKEN, None)
        yield server
    assert server.validation_errors == []


@pytest.fixture
def promotion(gitops):
    """A PR promoting v1.3-int4-g64 into test: (base sha, head sha)."""
    base = gitops.repo.head.commit.hexsha
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    head = gitops.commit("Promote v1.3-int4-g64 to test")
    return base, head


def run_pr(monkeypatch, tmp_path, fake, gitops, base, head, *args, sample="pull_request.opened.json", **kw):
    payload = pr_event(sample, base=base, head=head)
    return run_action(monkeypatch, tmp_path, fake, gitops.path, "pull_request", payload, *args, **kw)


def states(fake, sha, context):
    return [s["state"] for s in fake.statuses_for(sha, context)]


def test_github_pr__first_run_comments_and_sets_statuses(monkeypatch, tmp_path, fake, gitops, promotion):
    base, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    assert run.code == 0
    [comment] = fake.comments_on(REPO, 12)
    assert comment["body"].startswith(COMMENT_MARKER) and "PASS" in comment["body"]
    assert states(fake, head, "promotion-bot/test") == ["pending", "success"]
    final = fake.statuses_for(head, "promotion-bot/test")[-1]
    assert final["target_url"] == RUN_URL
    assert final["description"] == "passed: canopy-tiny/v1.3-int4-g64"
    assert run.outputs["verdict"] == "pass"
    assert run.outputs["comment-url"].endswith(f"#issuecomment-{comment['id']}")
    assert Path(run.outputs["report-path"]).exists() and run.report["verdict"] == "pass"
    assert COMMENT_MARKER in run.summary and "v1.3-int4-g64" in run.summary
    # The budget for a PR with one promotion into one of three environments: pending and final on
    # the umbrella and on test, one final status each for staging and prod (untouched, decided at
    # once), one page of comments, the comment, and GET /user (this token's login is not given).
    assert len(fake.requests) == 2 * 2 + 2 + 2 + 1, [(r.method, r.path) for r in fake.requests]
    assert states(fake, head, "promotion-bot/prod") == ["success"]
    assert states(fake, head, "promotion-bot") == ["pending", "success"]


def test_github_pr__rerun_and_new_push_edit_the_one_comment(monkeypatch, tmp_path, fake, gitops, promotion):
    base, head = promotion
    assert run_pr(monkeypatch, tmp_path / "1", fake, gitops, base, head).code == 0
    assert run_pr(monkeypatch, tmp_path / "2", fake, gitops, base, head, sample="pull_request.reopened.json").code == 0
    gitops.set_variant("test", "canopy-tiny/v1.2-int4-g128")
    new_head = gitops.commit("Promote v1.2 instead")
    assert run_pr(monkeypatch, tmp_path / "3", fake, gitops, base, new_head, sample="pull_request.synchronize.json").code == 0
    [comment] = fake.comments_on(REPO, 12)
    assert "v1.2-int4-g128" in comment["body"]
    assert len(fake.calls("POST", r".*/issues/12/comments")) == 1
    assert len(fake.calls("PATCH", r".*/issues/comments/\d+")) == 2
    assert states(fake, new_head, "promotion-bot/test") == ["pending", "success"]


def test_github_pr__failed_gate_sets_failure_and_exit_1(monkeypatch, tmp_path, fake, gitops):
    base = gitops.repo.head.commit.hexsha
    gitops.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    head = gitops.commit("Straight to prod")
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    assert run.code == 1 and run.outputs["verdict"] == "fail"
    assert states(fake, head, "promotion-bot/prod") == ["pending", "failure"]
    assert "FAIL" in fake.comments_on(REPO, 12)[0]["body"]


def test_github_pr__second_environment_gets_its_own_status(monkeypatch, tmp_path, fake, gitops):
    base = gitops.repo.head.commit.hexsha
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.set_variant("staging", "canopy-tiny/v1.1-int8")
    head = gitops.commit("Two environments")
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    assert run.code == 1
    assert states(fake, head, "promotion-bot/test") == ["pending", "success"]
    assert states(fake, head, "promotion-bot/staging") == ["pending", "failure"]
    assert len(fake.comments_on(REPO, 12)) == 1


def test_github_pr__judges_against_merge_base_when_base_moved_on(monkeypatch, tmp_path, fake, gitops):
    fork_point = gitops.repo.head.commit.hexsha
    gitops.repo.git.checkout("-b", "promote")
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    head = gitops.commit("Promote v1.3 to test")
    gitops.repo.git.checkout("main")
    gitops.set_variant("staging", "canopy-tiny/v1.0-fp32", file="other.yaml", name="other")
    base = gitops.commit("Someone else's change on main")
    assert base != fork_point
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    assert run.code == 0
    assert [p["environment"] for p in run.report["promotions"]] == ["test"]  # not a "removal" from staging
    assert run.report["removals"] == []


def test_github_pr__bad_policy_leaves_error_comment_and_status(monkeypatch, tmp_path, fake, gitops):
    gitops.write("promotion.yaml", "version: 1\nenvironments: [{name: test, gate: [{check: no-such-check}]}]\n")
    base = gitops.commit("Break the policy")
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    head = gitops.commit("Promote")
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    assert run.code == 2 and run.outputs["verdict"] == "error"
    [comment] = fake.comments_on(REPO, 12)
    assert "ERROR" in comment["body"] and "promotion.yaml" in comment["body"]
    final = {s["context"]: s["state"] for s in fake.statuses_for(head)}
    assert final and set(final.values()) == {"error"}


def test_github_pr__missing_base_commit_asks_for_full_history(monkeypatch, tmp_path, fake, gitops, promotion):
    _, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, "0123456789abcdef0123456789abcdef01234567", head)
    assert run.code == 2
    body = fake.comments_on(REPO, 12)[0]["body"]
    assert "fetch-depth: 0" in body
    assert states(fake, head, "promotion-bot") == ["error"]
    # Nothing was planned; the environments named in the checkout's policy still get their error.
    assert {s["context"] for s in fake.statuses_for(head)} == {
        "promotion-bot", "promotion-bot/test", "promotion-bot/staging", "promotion-bot/prod"}
    assert run.report["verdict"] == "error"


def test_github_pr__crash_in_a_run_is_reported_as_error(monkeypatch, tmp_path, fake, gitops, promotion):
    # A work folder that cannot be created (here: a file stands in its way) fails the run itself.
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    base, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head, "--workdir", str(blocked))
    assert run.code == 2
    assert "FileExistsError" in fake.comments_on(REPO, 12)[0]["body"]
    assert states(fake, head, "promotion-bot/test") == ["pending", "error"]


def test_github_pr__502_on_comment_is_retried(monkeypatch, tmp_path, fake, gitops, promotion):
    fake.fail("POST", r".*/issues/12/comments", 502, times=1)
    base, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    assert run.code == 0
    assert len(fake.comments_on(REPO, 12)) == 1
    assert states(fake, head, "promotion-bot/test") == ["pending", "success"]


def test_github_pr__github_failing_exits_2_and_never_success(monkeypatch, tmp_path, fake, gitops, promotion):
    fake.fail("GET", r".*/issues/12/comments", 500, times=None)
    base, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    assert run.code == 2 and run.outputs["verdict"] == "error"
    assert states(fake, head, "promotion-bot/test") == ["pending", "error"]
    assert fake.comments_on(REPO, 12) == []


def test_github_pr__github_down_entirely_exits_2_without_any_status(monkeypatch, tmp_path, fake, gitops, promotion):
    for method in ("GET", "POST", "PATCH"):
        fake.fail(method, r".*", 500, times=None)
    base, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    assert run.code == 2
    assert fake.statuses == [] and fake.comments == []


def test_github_pr__fork_pr_with_read_only_token_reports_in_the_job(monkeypatch, tmp_path, fake, gitops, promotion):
    fake.add_token("ghs_fork_read_only", None, read_only=True)
    base, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head, sample="pull_request.opened.fork.json",
                 token="ghs_fork_read_only")
    assert run.code == 0 and run.outputs["verdict"] == "pass"
    assert "PASS" in run.summary
    assert fake.comments == [] and fake.statuses == []
    assert len(fake.calls("POST")) == 1  # it stops writing after the first refusal


def test_github_pr__fork_pr_statuses_go_on_the_fork_head(monkeypatch, tmp_path, fake, gitops, promotion):
    base, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head, sample="pull_request.opened.fork.json")
    assert run.code == 0
    assert states(fake, head, "promotion-bot/test") == ["pending", "success"]
    assert len(fake.comments_on(REPO, 13)) == 1


def test_github_pr__untrusted_strings_are_escaped(monkeypatch, tmp_path, fake, gitops):
    base = gitops.repo.head.commit.hexsha
    evil = "canopy-tiny/v9<img src=x onerror=alert(1)>|**merged** @acme-ml/admins"
    gitops.set_variant("test", f"'{evil}'")
    head = gitops.commit("Promote something odd")
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head, sample="pull_request.opened.untrusted-strings.json")
    assert run.code == 2
    body = fake.comments_on(REPO, 14)[0]["body"]
    for raw in ("<img", "<script", "|**merged**", "@acme-ml/admins"):
        assert raw not in body
        assert raw not in run.summary
    assert "&lt;img" in body


def test_github_pr__long_comment_is_cut_with_a_pointer(monkeypatch, tmp_path, fake, gitops):
    gitops.write("promotion.yaml", (gitops.path / "promotion.yaml").read_text() + "templates: templates\n")
    gitops.write("templates/comment.md.j2", COMMENT_MARKER + "\n{% for i in range(8000) %}row {{ i }} of the report\n{% endfor %}")
    base = gitops.commit("A verbose comment template")
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    head = gitops.commit("Promote")
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    assert run.code == 0
    body = fake.comments_on(REPO, 12)[0]["body"]
    assert len(body) <= GITHUB_COMMENT_LIMIT
    assert body.startswith(COMMENT_MARKER)
    assert f"[Full report]({RUN_URL})" in body


def test_github_pr__ignored_action_makes_no_request(monkeypatch, tmp_path, fake, gitops):
    run = run_action(monkeypatch, tmp_path, fake, gitops.path, "pull_request", load_event("pull_request.closed.json"))
    assert run.code == 0 and run.outputs["verdict"] == "skipped"
    assert fake.requests == []


def test_github_pr__workflow_dispatch_reruns_the_pr(monkeypatch, tmp_path, fake, gitops, promotion):
    base, head = promotion
    fake.add_pull(REPO, 12, base_sha=base, head_sha=head)
    run = run_action(monkeypatch, tmp_path, fake, gitops.path, "workflow_dispatch", load_event("workflow_dispatch.json"))
    assert run.code == 0
    assert states(fake, head, "promotion-bot/test") == ["pending", "success"]
    assert len(fake.comments_on(REPO, 12)) == 1


def test_github_pr__token_never_reaches_comment_summary_or_report(monkeypatch, tmp_path, fake, gitops, promotion):
    base, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    import json

    assert TOKEN not in run.summary and TOKEN not in json.dumps(run.report)
    assert all(TOKEN not in c["body"] for c in fake.comments)
    import os

    assert "GITHUB_TOKEN" not in os.environ  # dropped as soon as it was read: children cannot inherit it


def test_github_pr__policy_input_is_read_from_the_base_revision(monkeypatch, tmp_path, fake, gitops):
    gitops.write("policies/strict.yaml", (gitops.path / "promotion.yaml").read_text())
    base = gitops.commit("A second policy")
    # The PR loosens that policy in its own head: the bot must not use the PR's copy.
    gitops.write("policies/strict.yaml", "version: 1\nenvironments: [{name: prod, gate: []}]\n")
    gitops.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    head = gitops.commit("Skip the gates and go to prod")
    run = run_action(monkeypatch, tmp_path, fake, gitops.path, "pull_request",
                     pr_event("pull_request.opened.json", base=base, head=head), "--policy", "policies/strict.yaml")
    assert run.code == 1
    assert states(fake, head, "promotion-bot/prod") == ["pending", "failure"]


def test_github_pr__policy_input_missing_at_base_is_an_error(monkeypatch, tmp_path, fake, gitops, promotion):
    base, head = promotion
    run = run_action(monkeypatch, tmp_path, fake, gitops.path, "pull_request",
                     pr_event("pull_request.opened.json", base=base, head=head), "--policy", "policies/none.yaml")
    assert run.code == 2
    assert "policies/none.yaml" in fake.comments_on(REPO, 12)[0]["body"]


def test_github_pr__push_event_is_skipped_without_requests(monkeypatch, tmp_path, fake, gitops):
    run = run_action(monkeypatch, tmp_path, fake, gitops.path, "push", load_event("push.json"))
    assert run.code == 0 and run.outputs["verdict"] == "skipped"
    assert fake.requests == []


def test_github_pr__pull_request_target_is_refused(monkeypatch, tmp_path, fake, gitops, promotion, capsys):
    base, head = promotion
    run = run_action(monkeypatch, tmp_path, fake, gitops.path, "pull_request_target",
                     pr_event("pull_request.opened.json", base=base, head=head))
    assert run.code == 2
    assert "pull_request_target" in capsys.readouterr().err
    assert fake.requests == []


def test_github_pr__rerun_fetches_the_pr_head_missing_from_the_checkout(monkeypatch, tmp_path, fake, gitops):
    import git

    base = gitops.repo.head.commit.hexsha
    gitops.repo.git.checkout("-b", "contrib")
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    head = gitops.commit("Promote from a fork")
    gitops.repo.git.checkout("main")
    gitops.repo.git.update_ref("refs/pull/12/head", head)  # as GitHub keeps a fork PR's head
    gitops.repo.git.branch("-D", "contrib")
    checkout = git.Repo.clone_from(gitops.path, tmp_path / "checkout", branch="main", single_branch=True)
    assert head not in {c.hexsha for c in checkout.iter_commits("--all")}
    fake.add_pull(REPO, 12, base_sha=base, head_sha=head, head_repo="outside-contrib/gitops")
    run = run_action(monkeypatch, tmp_path / "run", fake, Path(checkout.working_dir), "workflow_dispatch",
                     load_event("workflow_dispatch.json"))
    checkout.close()
    assert run.code == 0, run.summary
    assert states(fake, head, "promotion-bot/test") == ["pending", "success"]


def _origin_at(gitops, tmp_path, base):
    """A bare origin whose main is the PR's base, as actions/checkout leaves a full-history clone."""
    import git

    bare = git.Repo.init(tmp_path / "origin.git", bare=True, initial_branch="main")
    gitops.repo.create_remote("origin", bare.git_dir)
    gitops.repo.git.push("-q", "origin", f"{base}:refs/heads/main")
    gitops.repo.git.fetch("-q", "origin")
    return bare


def test_github_pr__results_recorded_in_notes_pushed_to_origin(monkeypatch, tmp_path, fake, gitops, promotion):
    from bot.vcs.notes import NOTES_REF
    from bot.zoo.records import all_records

    base, head = promotion
    bare = _origin_at(gitops, tmp_path, base)
    run = run_pr(monkeypatch, tmp_path / "1", fake, gitops, base, head)
    assert run.code == 0
    notes = bare.git.notes(f"--ref={NOTES_REF}", "list").split()
    assert notes[1] == head  # keyed by the PR head the statuses went on
    [record] = all_records({head: bare.git.notes(f"--ref={NOTES_REF}", "show", head)})
    assert (record.pr, record.environment, record.verdict) == (12, "test", "pass")
    assert bare.heads.main.commit.hexsha == base  # nothing written to the default branch
    [comment] = fake.comments_on(REPO, 12)
    assert "not recorded" not in comment["body"] and "not pushed" not in comment["body"]

    # Another runner recorded meanwhile (here: the note moved on at origin); the rerun merges, never forces.
    gitops.repo.git.update_ref("-d", NOTES_REF)
    assert run_pr(monkeypatch, tmp_path / "2", fake, gitops, base, head, sample="pull_request.reopened.json").code == 0
    assert len(bare.git.log("--format=%H", NOTES_REF).split()) >= 2
    note = bare.git.notes(f"--ref={NOTES_REF}", "show", head)
    assert len(note.splitlines()) == 1  # the rerun's record replaced the pushed one
    assert all_records({head: note})[0].recorded_at > record.recorded_at


def test_github_pr__fork_pr_skips_recording_with_a_note(monkeypatch, tmp_path, fake, gitops, promotion):
    from bot.vcs.notes import NOTES_REF

    base, head = promotion
    bare = _origin_at(gitops, tmp_path, base)
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head, sample="pull_request.opened.fork.json")
    assert run.code == 0
    [comment] = fake.comments_on(REPO, 13)
    assert "results not recorded: the token of a fork PR cannot push" in comment["body"]
    assert bare.git.for_each_ref("refs/notes/") == "" and gitops.repo.git.for_each_ref(NOTES_REF) == ""


def test_github_pr__links_point_at_the_pr_diff_and_the_full_card_is_in_the_run_summary(
        monkeypatch, tmp_path, fake, gitops, promotion):
    import hashlib

    base, head = promotion
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head)
    body = fake.comments_on(REPO, 12)[0]["body"]
    # The manifest links to its diff in the PR (GitHub anchors a file by the SHA-256 of its path).
    anchor = hashlib.sha256(b"environments/test/canopy.yaml").hexdigest()
    assert f"(https://github.example.com/{REPO}/pull/12/files#diff-{anchor})" in body
    # The comment carries the card's summary and points at the run's summary for the whole card.
    assert "**Model card** · canopy-tiny/v1.3-int4-g64" in body
    assert f"[in the run's summary](https://github.example.com/{REPO}/actions/runs/4242)" in body
    assert "](../" not in body and "](./" not in body
    # The whole card is there, its base model (a zoo variant) linked as a file of the repository:
    # on GitHub a relative link would resolve against the run page.
    assert "<summary>Model card: canopy-tiny/v1.3-int4-g64 (test)</summary>" in run.summary
    assert "base_model_relation: quantized" in run.summary
    assert f"(https://github.example.com/{REPO}/blob/{head}/models/canopy-tiny/v1.0-fp32/)" in run.summary
    assert "](../" not in run.summary


def test_github_pr__missing_statuses_permission_is_said_in_the_comment(monkeypatch, tmp_path, fake, gitops, promotion):
    base, head = promotion
    fake.add_token("ghs_no_statuses", None, permissions={"contents": "write", "pull-requests": "write"})
    run = run_pr(monkeypatch, tmp_path, fake, gitops, base, head, token="ghs_no_statuses")
    assert run.code == 2 and fake.statuses == []
    assert len(fake.calls("POST", r".*/statuses/[0-9a-f]{40}")) == 1  # refused once, not tried for every context
    body = fake.comments_on(REPO, 12)[0]["body"]
    assert "PASS" in body and "give the workflow `permissions: statuses: write`" in body
