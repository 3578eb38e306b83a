"""The forge as files in a folder: what the bot would write (the demo, `--dry-run`, tests)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.forge.protocol import STATES, ForgeError, Issue, PullRequest, PullRequestInfo


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

    def update_comment(self, pr_number: int, body: str) -> str | None:
        path = self.folder / f"pr-{pr_number}-comment.md"
        return self.upsert_comment(pr_number, body) if path.exists() else None

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

    def allows_auto_merge(self) -> bool:
        return False  # nothing here merges by itself

    def enable_auto_merge(self, number: int) -> None:
        raise ForgeError("local forge", "has no auto-merge")

    def merge_pull_request(self, number: int, sha: str) -> str:
        """Written down, not merged: a folder of files has no branch to merge into."""
        (self.folder / f"pr-{number}-merge.json").write_text(json.dumps({"sha": sha}, indent=2) + "\n")
        return sha
