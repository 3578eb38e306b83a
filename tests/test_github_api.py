"""GitHubForge over real HTTP against the fake GitHub: sticky comment, statuses, retries."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from github_fake import FakeGitHub  # noqa: E402
from github_fake.harness import REPO, TOKEN  # noqa: E402

from bot.core.errors import ExternalError  # noqa: E402
from bot.github.api import ACTIONS_BOT_LOGIN, GitHubError, GitHubForge, Tuning  # noqa: E402
from bot.render.markdown import COMMENT_MARKER  # noqa: E402

FAST = Tuning(retries=3, backoff_factor=0.01, secondary_rate_wait=0.01,
              seconds_between_requests=0, seconds_between_writes=0)
HEAD = "9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6"


@pytest.fixture
def fake():
    with FakeGitHub() as server:
        server.add_repo(REPO)
        server.add_token(TOKEN, None)  # an Actions installation token: GET /user is refused
        server.add_token("ghp_personal", "release-bot")
        server.add_pull(REPO, 12, base_sha="3" * 40, head_sha=HEAD)
        yield server
    assert server.validation_errors == []


def forge(fake, token=TOKEN, **kw):
    return GitHubForge(REPO, token, api_url=fake.url, tuning=kw.pop("tuning", FAST), **kw)


def body(text):
    return f"{COMMENT_MARKER}\n{text}"


def test_upsert_comment__creates_then_edits_in_place(fake):
    f = forge(fake)
    first = f.upsert_comment(12, body("run 1"))
    second = f.upsert_comment(12, body("run 2"))
    third = forge(fake).upsert_comment(12, body("run 3"))  # a new process: finds it again
    [comment] = fake.comments_on(REPO, 12)
    assert comment["body"].endswith("run 3") and comment["author"] == ACTIONS_BOT_LOGIN
    assert first == second == third
    assert len(fake.calls("POST", r".*/issues/12/comments")) == 1
    assert len(fake.calls("PATCH", r".*/issues/comments/\d+")) == 2


def test_upsert_comment__ignores_marker_in_someone_elses_comment(fake):
    fake.add_comment(REPO, 12, body("quoted by a human"), "quant-dev")
    forge(fake).upsert_comment(12, body("ours"))
    bodies = sorted(c["body"] for c in fake.comments_on(REPO, 12))
    assert bodies == [body("ours"), body("quoted by a human")]


def test_upsert_comment__finds_ours_on_a_later_page(fake):
    for i in range(150):
        fake.add_comment(REPO, 12, f"review comment {i}", "reviewer")
    ours = fake.add_comment(REPO, 12, body("old"), "release-bot")
    forge(fake, token="ghp_personal").upsert_comment(12, body("new"))
    assert ours["body"] == body("new")
    pages = fake.calls("GET", r".*/issues/12/comments")
    assert [r.query.get("page", ["1"])[0] for r in pages] == ["1", "2"]
    assert len(fake.comments_on(REPO, 12)) == 151


def test_upsert_comment__refuses_a_body_without_marker(fake):
    with pytest.raises(ValueError):
        forge(fake).upsert_comment(12, "no marker")
    assert fake.comments_on(REPO, 12) == []


def test_login__personal_token_asks_get_user_once(fake):
    f = forge(fake, token="ghp_personal")
    assert f.login() == "release-bot" and f.login() == "release-bot"
    assert len(fake.calls("GET", "/user")) == 1


def test_set_status__description_cut_to_140_and_link_kept(fake):
    forge(fake).set_status(HEAD, "failure", "promotion-bot/prod", "x" * 300, "https://github.example.com/run/1")
    [status] = fake.statuses_for(HEAD)
    assert len(status["description"]) == 140 and status["description"].endswith("…")
    assert status["target_url"] == "https://github.example.com/run/1"
    assert status["context"] == "promotion-bot/prod" and status["state"] == "failure"


def test_retry__502_once_then_success(fake):
    fake.fail("POST", r".*/statuses/.*", 502, times=1)
    forge(fake).set_status(HEAD, "success", "promotion-bot/test", "passed")
    assert [r.status for r in fake.calls("POST", r".*/statuses/.*")] == [502, 201]
    assert len(fake.statuses_for(HEAD)) == 1


def test_retry__edit_of_comment_is_retried_too(fake):
    f = forge(fake)
    f.upsert_comment(12, body("v1"))
    fake.fail("PATCH", r".*/issues/comments/\d+", 503, times=2)
    f.upsert_comment(12, body("v2"))
    assert fake.comments_on(REPO, 12)[0]["body"] == body("v2")


def test_retry__secondary_rate_limit_honours_retry_after(fake):
    fake.fail("GET", r".*/issues/12/comments", 403, times=1, retry_after=1)
    started = time.monotonic()
    forge(fake).upsert_comment(12, body("after the limit"))
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in fake.calls("GET", r".*/issues/12/comments")] == [403, 200]


def test_retry__secondary_rate_limit_without_retry_after_waits_and_retries(fake):
    fake.fail("POST", r".*/statuses/.*", 403, times=1)
    forge(fake).set_status(HEAD, "pending", "promotion-bot/test", "judging")
    assert [r.status for r in fake.calls("POST", r".*/statuses/.*")] == [403, 201]


def test_retry__429_is_retried(fake):
    fake.fail("POST", r".*/statuses/.*", 429, times=1, retry_after=0)
    forge(fake).set_status(HEAD, "pending", "promotion-bot/test", "judging")
    assert [r.status for r in fake.calls("POST", r".*/statuses/.*")] == [429, 201]  # the 429 fired, then the retry
    assert len(fake.statuses_for(HEAD)) == 1


def test_retry__permanent_500_raises_external_error_after_retries(fake):
    fake.fail("POST", r".*/statuses/.*", 500, times=None)
    with pytest.raises(GitHubError) as err:
        forge(fake).set_status(HEAD, "success", "promotion-bot/test", "passed")
    assert isinstance(err.value, ExternalError) and err.value.service == "GitHub"
    assert len(fake.calls("POST", r".*/statuses/.*")) == FAST.retries + 1
    assert fake.statuses_for(HEAD) == []


def test_forbidden_write_is_not_retried(fake):
    fake.add_token("ghs_read_only", None, read_only=True)
    with pytest.raises(GitHubError) as err:
        forge(fake, token="ghs_read_only").set_status(HEAD, "success", "promotion-bot/test", "passed")
    assert err.value.status == 403
    assert len(fake.calls("POST", r".*/statuses/.*")) == 1


def test_enterprise_api_prefix():
    with FakeGitHub(prefix="/api/v3") as server:
        server.add_repo(REPO)
        server.add_token(TOKEN, None)
        server.add_pull(REPO, 12, base_sha="3" * 40, head_sha=HEAD)
        f = GitHubForge(REPO, TOKEN, api_url=server.url, tuning=FAST)
        assert server.url.endswith("/api/v3")
        f.upsert_comment(12, body("on GHES"))
        assert f.get_pull_request(12).head_sha == HEAD
    assert server.validation_errors == []
    assert len(server.comments_on(REPO, 12)) == 1


def test_forge_protocol__pull_requests_issues_labels(fake):
    f = forge(fake)
    pr = f.open_pull_request(head_branch="revert/canopy", base_branch="main", title="Revert canopy", body="why",
                             labels=("rollback",))
    assert f.find_open_pull_request("revert/canopy") == pr
    assert f.find_open_pull_request("nope") is None
    assert fake.labels[(REPO, pr.number)] == ["rollback"]
    issue = f.open_issue(title="Rollback failed", body="details", labels=("rollback",))
    assert issue.number == pr.number + 1
    assert f.comment_on_pull_request(pr.number, "note").endswith(f"/pull/{pr.number}#issuecomment-{fake.comments[-1]['id']}")
    fake.pulls[(REPO, 12)].update(merged_at="2026-11-25T10:00:00Z", merge_commit_sha="c" * 40)
    assert f.pull_request_url_for_commit("c" * 40).endswith("/pull/12")


def test_openapi__records_its_source_and_catches_a_missing_field():
    from github_fake import openapi

    assert "@octokit/openapi@23.0.2" in openapi.spec_version()
    comment = b'{"id": 1, "body": "x"}'  # far from GitHub's issue-comment shape
    errors = openapi.check("POST", f"/repos/{REPO}/issues/12/comments", {}, {"Content-Type": "application/json"},
                           b'{"body": "x"}', 201, {"Content-Type": "application/json"}, comment)
    assert errors and "response" in errors[0] and "required" in "\n".join(errors)
    bad_request = openapi.check("POST", f"/repos/{REPO}/statuses/{HEAD}", {}, {"Content-Type": "application/json"},
                                b'{"state": "done"}', 201, {"Content-Type": "application/json"}, b"{}")
    assert any("request" in e for e in bad_request)
