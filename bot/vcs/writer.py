"""Git writes for rollbacks: a new branch, a revert or a one-file commit on it, a push.

Everything happens in a temporary worktree, so the user's checkout and its default branch are
never touched. Pushes are plain fast-forward pushes of a new branch: never forced, never to the
default branch, no history rewritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import git

from bot.core.errors import ExternalError, InputError
from bot.core.paths import check_repo_path

BOT_NAME = "promotion-bot"
BOT_EMAIL = "promotion-bot@users.noreply.github.com"


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    time: float  # committer time
    subject: str
    paths: frozenset[str]


class RevertConflict(Exception):
    """`git revert` did not apply cleanly; the worktree was cleaned up."""


class GitWriter:
    def __init__(self, path: str | os.PathLike, remote: str = "origin") -> None:
        try:
            self.repo = git.Repo(path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise InputError(str(path), "--repo", "is not a Git repository", "pass the path of a clone") from exc
        self.remote = remote
        self._shallow: frozenset[str] | None = None

    def close(self) -> None:
        self.repo.close()

    def _git(self, *args: str, repo: git.Repo | None = None) -> str:
        try:
            return (repo or self.repo).git.execute(["git", *args], env=self._identity())
        except git.GitCommandError as exc:
            raise ExternalError("git", f"`git {' '.join(args[:3])}` failed: {str(exc.stderr).strip()[-400:]}") from exc

    def _identity(self) -> dict[str, str]:
        """The bot signs its commits unless the checkout has an identity (e.g. set by the workflow)."""
        env = {}
        with self.repo.config_reader() as cr:
            has_name = cr.has_option("user", "name")
        if not has_name and "GIT_AUTHOR_NAME" not in os.environ:
            env = {"GIT_AUTHOR_NAME": BOT_NAME, "GIT_AUTHOR_EMAIL": BOT_EMAIL,
                   "GIT_COMMITTER_NAME": BOT_NAME, "GIT_COMMITTER_EMAIL": BOT_EMAIL}
        return {**os.environ, **env}

    # -- reading --------------------------------------------------------------------------

    def has_remote(self) -> bool:
        return self.remote in [r.name for r in self.repo.remotes]

    def fetch(self) -> None:
        if self.has_remote():
            self._git("fetch", "--quiet", self.remote)

    def default_branch(self) -> str:
        """The remote's HEAD branch if known, else the branch checked out here."""
        try:
            ref = self.repo.git.symbolic_ref(f"refs/remotes/{self.remote}/HEAD", "--short")
            return ref.split("/", 1)[1]
        except git.GitCommandError:
            pass
        try:
            return self.repo.active_branch.name
        except TypeError as exc:
            raise InputError(str(self.repo.working_dir), "--branch", "HEAD is detached, so the default branch is unknown",
                             "pass --branch main (or check out the default branch)") from exc

    def base_rev(self, branch: str) -> str:
        """The default branch as the remote has it (after `fetch`), else the local one."""
        for rev in (f"{self.remote}/{branch}", branch):
            try:
                return self.repo.commit(rev).hexsha
            except (git.BadName, ValueError):
                continue
        raise InputError(str(self.repo.working_dir), "--branch", f"branch {branch!r} does not exist", "pass an existing branch")

    def first_parent_history(self, rev: str, folder: str, max_count: int = 500) -> list["CommitInfo"]:
        """Commits on ``rev``'s first-parent line that changed files under ``folder``, newest first,
        each with the paths it changed against its first parent: one `git log` for a whole pass.

        First-parent only: a promotion merged through a PR is the merge commit on the default
        branch, not the commit on the PR branch.
        """
        out = self._git("log", "--first-parent", "-m", "--name-only", f"--max-count={max_count}",
                        "--format=%x1e%H%x1f%P%x1f%ct%x1f%s", rev, "--", check_repo_path(folder))
        commits = []
        for record in out.split("\x1e")[1:]:
            head, _, names = record.partition("\n")
            sha, parents, ct, subject = head.split("\x1f", 3)
            commits.append(CommitInfo(sha=sha, parents=tuple(parents.split()), time=float(ct), subject=subject,
                                      paths=frozenset(n for n in names.splitlines() if n)))
        return commits

    def parents(self, sha: str) -> list[str]:
        return [p.hexsha for p in self.repo.commit(sha).parents]

    def is_shallow_boundary(self, sha: str) -> bool:
        """True when ``sha`` looks parentless only because the clone is shallow."""
        if self._shallow is None:
            path = Path(self.repo.common_dir) / "shallow"
            self._shallow = frozenset(path.read_text().split()) if path.exists() else frozenset()
        return sha in self._shallow

    def subject(self, sha: str) -> str:
        return str(self.repo.commit(sha).summary)

    def remote_branch_exists(self, branch: str) -> bool:
        return self.remote_branch_sha(branch) is not None

    def remote_branch_sha(self, branch: str) -> str | None:
        """The commit ``branch`` points at on the remote (None: no such branch, or no remote)."""
        if not self.has_remote():
            return None
        out = self._git("ls-remote", "--heads", self.remote, f"refs/heads/{branch}").split()
        return out[0] if out else None

    # -- writing --------------------------------------------------------------------------

    @contextmanager
    def _worktree(self, branch: str, base: str) -> Iterator[git.Repo]:
        folder = Path(tempfile.mkdtemp(prefix="promotion-bot-worktree-"))
        shutil.rmtree(folder)
        self._git("worktree", "add", "--quiet", "-B", branch, str(folder), base)
        tree = git.Repo(folder)
        try:
            yield tree
        finally:
            tree.close()
            self._git("worktree", "remove", "--force", str(folder))

    def revert_onto_branch(self, sha: str, branch: str, base: str) -> str:
        """Branch ``branch`` from ``base`` and revert ``sha`` on it (merge commits against their first parent).

        Raises RevertConflict when the revert does not apply cleanly; the branch is then deleted.
        """
        merge = len(self.parents(sha)) > 1
        try:
            with self._worktree(branch, base) as tree:
                args = ["revert", "--no-edit"] + (["-m", "1"] if merge else []) + [sha]
                try:
                    tree.git.execute(["git", *args], env=self._identity())
                except git.GitCommandError as exc:
                    try:
                        tree.git.execute(["git", "revert", "--abort"])
                    except git.GitCommandError:
                        pass
                    raise RevertConflict(str(exc.stderr).strip()[-400:]) from exc
                return tree.head.commit.hexsha
        except RevertConflict:
            self._git("branch", "-D", branch)
            raise

    def commit_file_on_branch(self, branch: str, base: str, path: str, text: str, message: str) -> str:
        """Branch ``branch`` from ``base`` with one commit writing ``path``."""
        path = check_repo_path(path)
        with self._worktree(branch, base) as tree:
            target = Path(tree.working_dir) / path
            target.write_text(text)
            tree.git.execute(["git", "add", "--", path])
            tree.git.execute(["git", "commit", "--quiet", "-m", message], env=self._identity())
            return tree.head.commit.hexsha

    def push(self, branch: str) -> None:
        """Push a new branch. No --force: if the remote moved, the push fails and nothing is lost."""
        if not self.has_remote():
            raise ExternalError("git", f"no remote named {self.remote!r} to push {branch} to")
        self._git("push", "--quiet", self.remote, f"refs/heads/{branch}:refs/heads/{branch}")

    def fetch_ref(self, refspec: str, *, timeout_s: float = 300) -> None:
        """Fetch one ref (a PR's head on a rerun), with the credentials the checkout already has."""
        if self.has_remote():
            try:
                self.repo.git.execute(["git", "fetch", "--no-tags", "--quiet", self.remote, refspec],
                                      kill_after_timeout=timeout_s)
            except git.GitCommandError as exc:
                raise ExternalError("git", f"`git fetch {refspec}` failed: {str(exc.stderr).strip()[-400:]}") from exc
