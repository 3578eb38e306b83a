"""Read-only access to a Git repository at given revisions.

The gate never reads the working tree: the policy, evals and templates come from the base
revision (trusted), manifests and variants from both. Blobs are read through one persistent
`git cat-file --batch` process, so reading thousands of manifests stays fast.
"""

from __future__ import annotations

import os
import tarfile
import io
from dataclasses import dataclass
from pathlib import Path

import git
from gitdb.exc import BadName, BadObject

from bot.errors import ExternalError, InputError
from bot.paths import check_repo_path


@dataclass(frozen=True)
class FileChange:
    """One changed path between two revisions. ``status`` is added|modified|renamed|deleted."""

    status: str
    old_path: str | None
    new_path: str | None


_STATUS = {"A": "added", "M": "modified", "T": "modified", "D": "deleted", "R": "renamed", "C": "added"}


class GitReader:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.repo = git.Repo(self.path, search_parent_directories=False)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise InputError(str(path), "--repo", "is not a Git repository", "pass the path of a clone") from exc
        self._trees: dict[str, git.Tree] = {}

    def close(self) -> None:
        self.repo.close()

    def resolve(self, rev: str) -> str:
        """The full commit SHA of ``rev``; InputError if it does not name a commit."""
        try:
            return self.repo.commit(rev).hexsha
        except (BadName, BadObject, ValueError, git.GitCommandError) as exc:
            raise InputError(str(self.path), "revision", f"{rev!r} does not name a commit",
                             "fetch the full history (actions/checkout with fetch-depth: 0) or pass an existing rev") from exc

    def _tree(self, rev: str) -> git.Tree:
        tree = self._trees.get(rev)
        if tree is None:
            tree = self._trees[rev] = self.repo.commit(rev).tree
        return tree

    def read_bytes(self, rev: str, path: str) -> bytes | None:
        """The file's content at ``rev``, or None when it does not exist there."""
        path = check_repo_path(path)
        try:
            blob = self._tree(rev) / path
        except KeyError:
            return None
        if blob.type != "blob":
            return None
        return blob.data_stream.read()

    def read_text(self, rev: str, path: str) -> str | None:
        data = self.read_bytes(rev, path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def exists(self, rev: str, path: str) -> bool:
        path = check_repo_path(path)
        try:
            self._tree(rev) / path
        except KeyError:
            return False
        return True

    def list_files(self, rev: str, prefix: str) -> list[str]:
        """Paths of all blobs under ``prefix`` at ``rev``, sorted."""
        prefix = check_repo_path(prefix).rstrip("/")
        try:
            sub = self._tree(rev) / prefix if prefix else self._tree(rev)
        except KeyError:
            return []
        if sub.type != "tree":
            return []
        return sorted(item.path for item in sub.traverse() if item.type == "blob")

    def list_dirs(self, rev: str, prefix: str) -> list[str]:
        """Names of the immediate sub-folders of ``prefix`` at ``rev``."""
        prefix = check_repo_path(prefix).rstrip("/")
        try:
            sub = self._tree(rev) / prefix
        except KeyError:
            return []
        return sorted(t.name for t in sub.trees)

    def changed_files(self, base: str, head: str, prefix: str = "") -> list[FileChange]:
        """Files changed from ``base`` to ``head`` (rename detection on), limited to ``prefix``."""
        args = ["--no-commit-id", "--name-status", "-r", "-M", "-z", base, head]
        if prefix:
            args += ["--", prefix]
        try:
            out = self.repo.git.diff_tree(*args)
        except git.GitCommandError as exc:
            raise ExternalError("git", f"diff-tree {base}..{head} failed: {exc.stderr.strip()}") from exc
        fields = out.split("\0")
        changes: list[FileChange] = []
        i = 0
        while i < len(fields) and fields[i]:
            code = fields[i][0]
            if code in "RC":
                old, new = fields[i + 1], fields[i + 2]
                i += 3
                changes.append(FileChange(_STATUS[code], old if code == "R" else None, new))
            else:
                path = fields[i + 1]
                i += 2
                status = _STATUS.get(code, "modified")
                changes.append(FileChange(status, None if status == "added" else path,
                                          None if status == "deleted" else path))
        return changes

    def export(self, rev: str, prefix: str, dest: Path) -> Path:
        """Write the files under ``prefix`` at ``rev`` into ``dest`` (a fresh folder); returns dest/prefix."""
        prefix = check_repo_path(prefix).rstrip("/")
        data = io.BytesIO()
        try:
            self.repo.archive(data, rev, path=prefix, format="tar")
        except git.GitCommandError as exc:
            raise ExternalError("git", f"archive {rev}:{prefix} failed: {exc.stderr.strip()}") from exc
        data.seek(0)
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=data) as tar:
            tar.extractall(dest, filter="data")
        return dest / prefix

    def tree_sha(self, rev: str, path: str) -> str | None:
        """The object id of ``path`` at ``rev``: a content digest usable as a cache key."""
        path = check_repo_path(path).rstrip("/")
        try:
            return (self._tree(rev) / path).hexsha
        except KeyError:
            return None

    def log_paths(self, rev: str, path: str, max_count: int = 50) -> list[str]:
        """SHAs of the commits reachable from ``rev`` that touched ``path``, newest first."""
        out = self.repo.git.log(f"--max-count={max_count}", "--format=%H", rev, "--", check_repo_path(path))
        return [line for line in out.splitlines() if line]
