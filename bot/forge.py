"""The small set of code-forge calls the bot makes, as a Protocol.

Decision code depends on this, never on PyGithub: `bot.github.api.GitHubForge` speaks to
GitHub over HTTP, `LocalForge` writes pull requests as files (the demo and `--dry-run`), and
tests may pass a recording fake.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol


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
    def find_open_pull_request(self, head_branch: str) -> PullRequest | None: ...

    def open_pull_request(
        self, *, head_branch: str, base_branch: str, title: str, body: str, labels: tuple[str, ...] = ()
    ) -> PullRequest: ...

    def comment_on_pull_request(self, number: int, body: str) -> str: ...

    def open_issue(self, *, title: str, body: str, labels: tuple[str, ...] = ()) -> Issue: ...

    def pull_request_url_for_commit(self, sha: str) -> str | None:
        """The URL of the merged PR that introduced ``sha``, if the forge knows one."""
        ...


@dataclass
class LocalForge:
    """Pull requests and issues as JSON + Markdown files in a folder: what the bot would open."""

    folder: Path
    _prs: list[PullRequest] = field(default_factory=list)

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

    def pull_request_url_for_commit(self, sha: str) -> str | None:
        return None
