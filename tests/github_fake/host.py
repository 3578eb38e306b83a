"""The Git side of the fake GitHub: a bare repository holding the branches, the refs GitHub keeps
for pull requests (`refs/pull/<n>/head`, `refs/pull/<n>/merge`), merges as GitHub makes them
(a merge commit, even when a fast-forward would do), and the merge queue's branches
(`gh-readonly-queue/<branch>/pr-<n>-<sha>`). Plain `git` plumbing, so nothing touches a work tree.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GITHUB_IDENTITY = {"GIT_AUTHOR_NAME": "GitHub", "GIT_AUTHOR_EMAIL": "noreply@github.com",
                   "GIT_COMMITTER_NAME": "GitHub", "GIT_COMMITTER_EMAIL": "noreply@github.com"}


class Conflict(Exception):
    """The two commits do not merge cleanly."""


class GitHost:
    def __init__(self, bare: Path) -> None:
        self.bare = Path(bare)

    def git(self, *args: str, env: dict | None = None) -> str:
        proc = subprocess.run(["git", "-C", str(self.bare), *args], capture_output=True, text=True,
                              env={**os.environ, **GITHUB_IDENTITY, **(env or {})})
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def sha(self, ref: str) -> str | None:
        proc = subprocess.run(["git", "-C", str(self.bare), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                              capture_output=True, text=True)
        return proc.stdout.strip() or None

    def branch(self, name: str) -> str | None:
        return self.sha(f"refs/heads/{name}")

    def tree(self, sha: str) -> str:
        return self.git("rev-parse", f"{sha}^{{tree}}")

    def message(self, sha: str) -> str:
        return self.git("log", "-1", "--format=%B", sha)

    def set_ref(self, ref: str, sha: str, old: str | None = None) -> None:
        """Move ``ref`` to ``sha``; with ``old``, only if it still points there (no lost update)."""
        self.git("update-ref", ref, sha, *([old] if old else []))

    def delete_ref(self, ref: str) -> None:
        if self.sha(ref):
            self.git("update-ref", "-d", ref)

    def is_ancestor(self, a: str, b: str) -> bool:
        return subprocess.run(["git", "-C", str(self.bare), "merge-base", "--is-ancestor", a, b]).returncode == 0

    def merge(self, base: str, head: str, message: str) -> str:
        """A merge commit of ``head`` into ``base`` (parents base, head), as the merge button makes."""
        proc = subprocess.run(["git", "-C", str(self.bare), "merge-tree", "--write-tree", "--no-messages", base, head],
                              capture_output=True, text=True)
        if proc.returncode == 1:
            raise Conflict(proc.stdout)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        tree = proc.stdout.splitlines()[0].strip()
        return self.git("commit-tree", tree, "-p", base, "-p", head, "-m", message)

    def changed_files(self, base: str, head: str) -> list[str]:
        """Files a PR changes, as GitHub lists them: the three-dot diff from the merge base."""
        return [p for p in self.git("diff", "--name-only", f"{base}...{head}").splitlines() if p]
