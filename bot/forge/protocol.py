"""The small set of code-forge calls the bot makes, as a Protocol.

Decision code depends on this, never on PyGithub: `bot.github.api.GitHubForge` speaks to
GitHub over HTTP, `bot.forge.local.LocalForge` writes pull requests, comments and statuses as files (the demo
and `--dry-run`), and tests may pass a recording fake. A GitLab or Gitea forge is one module
implementing `Forge`: the PR gate calls `get_pull_request`, `set_status`, `upsert_comment` and
`update_comment`; the monitor the rest, `set_status` on a revert's head and, for
`rollback.merge: auto`, `allows_auto_merge`, `enable_auto_merge` and `merge_pull_request`. A call that fails raises `ForgeError` (with the HTTP status when there is one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.core.errors import ExternalError

STATES = ("pending", "success", "failure", "error")


class ForgeError(ExternalError):
    """The forge refused or kept failing. ``status`` is the HTTP status, None for network errors."""

    def __init__(self, service: str, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(service, message)


@dataclass(frozen=True)
class PullRequestInfo:
    """A pull request as the PR gate needs it (what a rerun judges)."""

    number: int
    base_sha: str
    head_sha: str
    base_ref: str
    head_ref: str
    title: str
    state: str
    from_fork: bool
    url: str


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    title: str
    head_branch: str
    base_branch: str
    body: str = ""
    labels: tuple[str, ...] = ()
    head_sha: str | None = None  # the head commit, when the forge says it


@dataclass(frozen=True)
class Issue:
    number: int
    url: str
    title: str


class Forge(Protocol):
    # --- the PR gate -----------------------------------------------------------------------
    def get_pull_request(self, number: int) -> PullRequestInfo: ...

    def set_status(self, sha: str, state: str, context: str, description: str, target_url: str | None = None) -> None:
        """A commit status; ``state`` is one of `STATES`."""
        ...

    def upsert_comment(self, pr_number: int, body: str) -> str:
        """Edit the bot's one comment on the PR (found by `bot.render.markdown.COMMENT_MARKER`), or create
        it: never a second one. Returns its URL."""
        ...

    def update_comment(self, pr_number: int, body: str) -> str | None:
        """Edit the bot's comment when the PR has one; None (and nothing written) when it has none."""
        ...

    # --- the monitor -----------------------------------------------------------------------
    def find_open_pull_request(self, head_branch: str) -> PullRequest | None: ...

    def open_pull_request(
        self, *, head_branch: str, base_branch: str, title: str, body: str, labels: tuple[str, ...] = ()
    ) -> PullRequest: ...

    def comment_on_pull_request(self, number: int, body: str) -> str: ...

    def open_issue(self, *, title: str, body: str, labels: tuple[str, ...] = ()) -> Issue: ...

    def find_issue(self, marker: str, label: str) -> Issue | None:
        """An issue with ``label`` whose body holds ``marker``, open or closed: what was said once
        is not said again."""
        ...

    def pull_request_url_for_commit(self, sha: str) -> str | None:
        """The URL of the merged PR that introduced ``sha``, if the forge knows one."""
        ...

    def allows_auto_merge(self) -> bool:
        """Whether the repository lets a PR merge by itself once its required checks pass."""
        ...

    def enable_auto_merge(self, number: int) -> None:
        """Merge the PR once its required checks pass (on a branch with a merge queue: queue it
        then). Raises ForgeError when the forge refuses, e.g. nothing is left to wait for."""
        ...

    def merge_pull_request(self, number: int, sha: str) -> str:
        """Merge the PR now, only if its head is still ``sha``; the merge commit. ForgeError when
        branch protection refuses (a required check missing or failing, a merge queue)."""
        ...
