"""The small set of code-forge calls the bot makes, as a Protocol.

Decision code depends on this, never on PyGithub: `bot.github.api.GitHubForge` speaks to
GitHub over HTTP, `LocalForge` writes pull requests, comments and statuses as files (the demo
and `--dry-run`), and tests may pass a recording fake. A GitLab or Gitea forge is one module
implementing `Forge`: the PR gate calls `get_pull_request`, `set_status` and `upsert_comment`;
the monitor the rest. A call that fails raises `ForgeError` (with the HTTP status when there is one).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from bot.errors import ExternalError

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
        """Edit the bot's one comment on the PR (found by `bot.render.COMMENT_MARKER`), or create
        it: never a second one. Returns its URL."""
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


@dataclass
class LocalForge:
    """Pull requests, issues, the sticky comment and statuses as files in a folder: what the bot would write."""

    folder: Path
    _prs: list[PullRequest] = field(default_factory=list)

    def get_pull_request(self, number: int) -> PullRequestInfo:
        raise ForgeError("local forge", f"knows no pull request #{number}", 404)

    def set_status(self, sha: str, state: str, context: str, description: str, target_url: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown commit status state {state!r}")
        path = self.folder / "statuses.json"
        statuses = json.loads(path.read_text()) if path.exists() else []
        statuses.append({"sha": sha, "state": state, "context": context, "description": description,
                         "target_url": target_url})
        path.write_text(json.dumps(statuses, indent=2) + "\n")

    def upsert_comment(self, pr_number: int, body: str) -> str:
        path = self.folder / f"pr-{pr_number}-comment.md"
        path.write_text(body)  # edited in place: one comment per PR
        return path.resolve().as_uri()

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.folder.glob("pr-*.json")):
            data = json.loads(path.read_text())
            data["labels"] = tuple(data.get("labels", ()))
            self._prs.append(PullRequest(**data))

    def find_open_pull_request(self, head_branch: str) -> PullRequest | None:
        return next((pr for pr in self._prs if pr.head_branch == head_branch), None)

    def open_pull_request(
        self, *, head_branch: str, base_branch: str, title: str, body: str, labels: tuple[str, ...] = ()
    ) -> PullRequest:
        number = len(self._prs) + 1
        md = self.folder / f"pr-{number}.md"
        pr = PullRequest(number, md.resolve().as_uri(), title, head_branch, base_branch, body, tuple(labels))
        md.write_text(f"# {title}\n\n{head_branch} → {base_branch}  labels: {', '.join(labels)}\n\n{body}\n")
        (self.folder / f"pr-{number}.json").write_text(json.dumps(asdict(pr), indent=2))
        self._prs.append(pr)
        return pr

    def comment_on_pull_request(self, number: int, body: str) -> str:
        path = self.folder / f"pr-{number}-comments.md"
        with path.open("a") as fh:
            fh.write(body + "\n\n---\n\n")
        return path.resolve().as_uri()

    def open_issue(self, *, title: str, body: str, labels: tuple[str, ...] = ()) -> Issue:
        number = len(list(self.folder.glob("issue-*.md"))) + 1
        path = self.folder / f"issue-{number}.md"
        path.write_text(f"# {title}\n\nlabels: {', '.join(labels)}\n\n{body}\n")
        return Issue(number, path.resolve().as_uri(), title)

    def find_issue(self, marker: str, label: str) -> Issue | None:
        for path in sorted(self.folder.glob("issue-*.md")):
            text = path.read_text()
            labels = text.split("\n\n", 2)[1].removeprefix("labels: ").split(", ")
            if marker in text and label in labels:
                title = text.split("\n", 1)[0].removeprefix("# ")
                return Issue(int(path.stem.split("-")[1]), path.resolve().as_uri(), title)
        return None

    def pull_request_url_for_commit(self, sha: str) -> str | None:
        return None
