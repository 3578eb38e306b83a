"""GitHub's REST API through PyGithub: the only module that imports it.

`GitHubForge` implements `bot.forge.protocol.Forge` and adds what a PR run needs: one sticky comment,
commit statuses, labels. Transient failures (5xx, 429, secondary rate limits with or without
Retry-After) are retried by PyGithub's own `GithubRetry`; what still fails becomes
`GitHubError` (an `ExternalError("GitHub", ...)`), so the CLI exits 2 and never reports a pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import requests
import urllib3
from github import Auth, Github, GithubException, GithubRetry

from bot.forge.protocol import STATES, ForgeError, Issue, PullRequest, PullRequestInfo
from bot.render.markdown import COMMENT_MARKER

T = TypeVar("T")

ACTIONS_BOT_LOGIN = "github-actions[bot]"  # who GITHUB_TOKEN comments as; it may not call GET /user
STATUS_DESCRIPTION_LIMIT = 140
MERGE_METHODS = ("merge", "squash", "rebase")  # tried in turn where a repository allows only some


class GitHubError(ForgeError):
    """GitHub refused or kept failing. ``status`` is the HTTP status, None for network errors."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__("GitHub", message, status)


@dataclass(frozen=True)
class Tuning:
    """Retry and pacing; the environment can override them (tests run with no sleeps)."""

    retries: int = 5
    backoff_factor: float = 2.0  # urllib3: waits factor * 2**(n-1) seconds between tries
    secondary_rate_wait: float = 60.0  # a secondary rate limit without Retry-After
    max_rate_limit_wait: float = 600.0  # give up (exit 2) rather than sleep longer
    seconds_between_requests: float = 0.25  # PyGithub's defaults, per GitHub's best practices
    seconds_between_writes: float = 1.0
    timeout: int = 30

    @classmethod
    def from_env(cls, environ=None) -> "Tuning":
        environ = os.environ if environ is None else environ
        names = {"retries": "PROMOTION_BOT_GITHUB_RETRIES", "backoff_factor": "PROMOTION_BOT_GITHUB_BACKOFF",
                 "secondary_rate_wait": "PROMOTION_BOT_GITHUB_SECONDARY_WAIT",
                 "seconds_between_requests": "PROMOTION_BOT_GITHUB_THROTTLE",
                 "seconds_between_writes": "PROMOTION_BOT_GITHUB_THROTTLE"}
        values: dict[str, Any] = {}
        for attr, key in names.items():
            raw = environ.get(key)
            if raw:
                try:
                    values[attr] = int(raw) if attr == "retries" else float(raw)
                except ValueError:
                    from bot.core.errors import InputError

                    raise InputError("environment", key, f"{raw!r} is not a number", f"set {key} to a number") from None
        return cls(**values)


def _describe(exc: BaseException) -> tuple[str, int | None]:
    if isinstance(exc, GithubException):
        data = exc.data if isinstance(exc.data, dict) else {}
        message = data.get("message") or str(exc.data or "")
        return f"HTTP {exc.status}: {message}".strip(), exc.status
    if isinstance(exc, requests.exceptions.RetryError):
        return f"still failing after retries ({exc})", None
    return f"{type(exc).__name__}: {exc}", None


class GitHubForge:
    def __init__(self, repository: str, token: str, *, api_url: str = "https://api.github.com",
                 bot_login: str | None = None, tuning: Tuning | None = None) -> None:
        tuning = tuning or Tuning()
        retry = GithubRetry(
            total=tuning.retries,
            backoff_factor=tuning.backoff_factor,
            secondary_rate_wait=tuning.secondary_rate_wait,
            max_rate_limit_wait=tuning.max_rate_limit_wait,
            status_forcelist=[429, *range(500, 600)],  # GithubRetry adds 403 for rate limits
            # PATCH edits the sticky comment; urllib3 does not retry it by default.
            allowed_methods=urllib3.Retry.DEFAULT_ALLOWED_METHODS | {"GET", "POST", "PATCH"},
        )
        self._gh = Github(auth=Auth.Token(token), base_url=api_url.rstrip("/"), retry=retry, lazy=True,
                          per_page=100, timeout=tuning.timeout,
                          seconds_between_requests=tuning.seconds_between_requests,
                          seconds_between_writes=tuning.seconds_between_writes)
        self.repository = repository
        self._repo = self._gh.get_repo(repository)
        self._login = bot_login

    def __repr__(self) -> str:
        return f"GitHubForge({self.repository!r})"

    def close(self) -> None:
        self._gh.close()

    def __enter__(self) -> "GitHubForge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (GithubException, requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            message, status = _describe(exc)
            raise GitHubError(f"{what}: {message}", status) from None

    # --- who we are -------------------------------------------------------------------------

    def login(self) -> str:
        """The login our comments carry: GET /user, or the Actions bot for GITHUB_TOKEN."""
        if self._login is None:
            try:
                self._login = self._gh.get_user().login
            except GithubException as exc:
                if exc.status not in (401, 403):
                    message, status = _describe(exc)
                    raise GitHubError(f"GET /user: {message}", status) from None
                # An installation token (GITHUB_TOKEN) may not read /user: it comments as the Actions bot.
                self._login = ACTIONS_BOT_LOGIN
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
                message, status = _describe(exc)
                raise GitHubError(f"GET /user: {message}", status) from None
        return self._login

    # --- the sticky comment -----------------------------------------------------------------

    def find_comment(self, pr_number: int):
        login = self.login()

        def scan():
            for comment in self._repo.get_issue(pr_number).get_comments():
                if comment.user is not None and comment.user.login == login and COMMENT_MARKER in (comment.body or ""):
                    return comment
            return None

        return self._call(f"listing the comments of #{pr_number}", scan)

    def upsert_comment(self, pr_number: int, body: str) -> str:
        """Edit the bot's comment on the PR, or create it: never a second one. Returns its URL."""
        if COMMENT_MARKER not in body:
            raise ValueError("a comment without the marker could not be found again")
        existing = self.find_comment(pr_number)
        if existing is not None:
            self._call(f"editing comment {existing.id} on #{pr_number}", lambda: existing.edit(body))
            return existing.html_url
        created = self._call(f"commenting on #{pr_number}",
                             lambda: self._repo.get_issue(pr_number).create_comment(body))
        return created.html_url

    def update_comment(self, pr_number: int, body: str) -> str | None:
        if COMMENT_MARKER not in body:
            raise ValueError("a comment without the marker could not be found again")
        existing = self.find_comment(pr_number)
        if existing is None:
            return None
        self._call(f"editing comment {existing.id} on #{pr_number}", lambda: existing.edit(body))
        return existing.html_url

    # --- statuses and labels ----------------------------------------------------------------

    def set_status(self, sha: str, state: str, context: str, description: str, target_url: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown commit status state {state!r}")
        description = " ".join(description.split())
        if len(description) > STATUS_DESCRIPTION_LIMIT:
            description = description[: STATUS_DESCRIPTION_LIMIT - 1] + "…"
        extra = {"target_url": target_url} if target_url else {}
        self._call(f"setting status {context}={state} on {sha[:12]}",
                   lambda: self._repo.get_commit(sha).create_status(state, description=description,
                                                                     context=context, **extra))

    def add_labels(self, pr_number: int, *labels: str) -> None:
        if labels:
            self._call(f"labelling #{pr_number}", lambda: self._repo.get_issue(pr_number).add_to_labels(*labels))

    def get_pull_request(self, number: int) -> PullRequestInfo:
        def fetch() -> PullRequestInfo:
            pr = self._repo.get_pull(number)
            head_repo = pr.head.repo.full_name if pr.head.repo is not None else None
            return PullRequestInfo(number=pr.number, base_sha=pr.base.sha, head_sha=pr.head.sha,
                                   base_ref=pr.base.ref, head_ref=pr.head.ref, title=pr.title or "",
                                   state=pr.state, from_fork=head_repo != pr.base.repo.full_name,
                                   url=pr.html_url)

        return self._call(f"reading pull request #{number}", fetch)

    # --- bot.forge.protocol.Forge --------------------------------------------------------------------

    def find_open_pull_request(self, head_branch: str) -> PullRequest | None:
        owner = self.repository.split("/")[0]

        def find():
            for pr in self._repo.get_pulls(state="open", head=f"{owner}:{head_branch}"):
                return self._as_pull_request(pr)
            return None

        return self._call(f"finding the open PR for {head_branch}", find)

    def open_pull_request(self, *, head_branch: str, base_branch: str, title: str, body: str,
                          labels: tuple[str, ...] = ()) -> PullRequest:
        pr = self._call(f"opening a PR from {head_branch}",
                        lambda: self._repo.create_pull(base=base_branch, head=head_branch, title=title, body=body))
        self.add_labels(pr.number, *labels)
        return PullRequest(pr.number, pr.html_url, title, head_branch, base_branch, body, tuple(labels),
                           head_sha=pr.head.sha)

    def comment_on_pull_request(self, number: int, body: str) -> str:
        return self._call(f"commenting on #{number}",
                          lambda: self._repo.get_issue(number).create_comment(body).html_url)

    def open_issue(self, *, title: str, body: str, labels: tuple[str, ...] = ()) -> Issue:
        issue = self._call("opening an issue",
                           lambda: self._repo.create_issue(title=title, body=body, labels=list(labels)))
        return Issue(issue.number, issue.html_url, title)

    def find_issue(self, marker: str, label: str) -> Issue | None:
        def find():
            for issue in self._repo.get_issues(state="all", labels=[label]):
                if issue.pull_request is None and marker in (issue.body or ""):
                    return Issue(issue.number, issue.html_url, issue.title)
            return None

        return self._call(f"finding the issue labelled {label}", find)

    def pull_request_url_for_commit(self, sha: str) -> str | None:
        def find():
            for pr in self._repo.get_commit(sha).get_pulls():
                if pr.merged_at is not None:
                    return pr.html_url
            return None

        return self._call(f"finding the PR of commit {sha[:12]}", find)

    # --- landing a revert -----------------------------------------------------------------------

    def allows_auto_merge(self) -> bool:
        return bool(self._call("reading the repository's merge settings", lambda: self._repo.allow_auto_merge))

    def enable_auto_merge(self, number: int) -> None:
        """GraphQL `enablePullRequestAutoMerge` (REST has no call for it), with the first merge
        method the repository allows."""
        pr = self._call(f"reading pull request #{number}", lambda: self._repo.get_pull(number))
        self._with_allowed_method(f"enabling auto-merge on #{number}", MERGE_METHODS,
                                  lambda method: pr.enable_automerge(merge_method=method.upper()))

    def merge_pull_request(self, number: int, sha: str) -> str:
        pr = self._call(f"reading pull request #{number}", lambda: self._repo.get_pull(number))
        status = self._with_allowed_method(f"merging #{number}", MERGE_METHODS,
                                           lambda method: pr.merge(sha=sha, merge_method=method))
        return status.sha

    def _with_allowed_method(self, what: str, methods: tuple[str, ...], fn: Callable[[str], T]) -> T:
        """``fn(method)`` with each merge method in turn while the repository says it is not allowed."""
        for i, method in enumerate(methods):
            try:
                return self._call(what, lambda: fn(method))
            except GitHubError as exc:
                if "not allowed" not in exc.message.lower() or i == len(methods) - 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _as_pull_request(pr) -> PullRequest:
        return PullRequest(pr.number, pr.html_url, pr.title or "", pr.head.ref, pr.base.ref, pr.body or "",
                           tuple(label.name for label in pr.labels), head_sha=pr.head.sha)
