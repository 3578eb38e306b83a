"""Git notes under one ref: the gate's recorded results, attached to the commits they judged.

Notes live in their own ref (`refs/notes/promotion-bot`), whose history is separate from every
branch: writing one never commits to the default branch and never rewrites anything. Pushes are
plain fast-forwards; when the remote's notes moved on (another run recorded meanwhile), its notes
are fetched into a private tracking ref, merged with `cat_sort_uniq` (two runs that annotated the
same commit keep both sets of lines; readers take the newest per key) and pushed again.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bot.core.errors import ExternalError
from bot.vcs.writer import BOT_EMAIL, BOT_NAME

NOTES_REF = "refs/notes/promotion-bot"
PUSH_ATTEMPTS = 3
_REJECTED = ("non-fast-forward", "fetch first", "[rejected]", "stale info", "failed to update ref")


class GitNotes:
    def __init__(self, path: str | os.PathLike, *, ref: str = NOTES_REF, remote: str = "origin") -> None:
        self.path = Path(path)
        self.ref = ref
        self.remote = remote
        self.tracking = ref.replace("refs/notes/", f"refs/notes/remotes/{remote}/", 1)

    def _git(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["git", "-C", str(self.path), *args], input=input, capture_output=True,
                              env=self._env(), timeout=300)
        if check and proc.returncode != 0:
            raise ExternalError("git", f"`git {' '.join(args[:3])}` failed: "
                                       f"{proc.stderr.decode(errors='replace').strip()[-400:]}")
        return proc

    def _env(self) -> dict[str, str]:
        """Notes are commits too: the bot signs them unless the checkout has an identity."""
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        has_name = subprocess.run(["git", "-C", str(self.path), "config", "user.name"], capture_output=True).returncode == 0
        if not has_name and "GIT_AUTHOR_NAME" not in os.environ:
            env.update(GIT_AUTHOR_NAME=BOT_NAME, GIT_AUTHOR_EMAIL=BOT_EMAIL,
                       GIT_COMMITTER_NAME=BOT_NAME, GIT_COMMITTER_EMAIL=BOT_EMAIL)
        return env

    # -- reading ------------------------------------------------------------------------------

    def is_repository(self) -> bool:
        return self.path.is_dir() and self._git("rev-parse", "--git-dir", check=False).returncode == 0

    def read(self, commit: str) -> str | None:
        proc = self._git("notes", f"--ref={self.ref}", "show", commit, check=False)
        return proc.stdout.decode() if proc.returncode == 0 else None

    def all(self) -> dict[str, str]:
        """Every note of the ref: annotated commit -> text, read in one `cat-file --batch`."""
        if self._git("rev-parse", "--verify", "--quiet", self.ref, check=False).returncode != 0:
            return {}
        pairs = [line.split() for line in self._git("notes", f"--ref={self.ref}", "list").stdout.decode().splitlines()]
        if not pairs:
            return {}
        out = self._git("cat-file", "--batch", input="".join(f"{blob}\n" for blob, _ in pairs).encode()).stdout
        texts, pos = [], 0
        for _ in pairs:
            header_end = out.index(b"\n", pos)
            size = int(out[pos:header_end].split()[2])
            texts.append(out[header_end + 1:header_end + 1 + size].decode())
            pos = header_end + 1 + size + 1
        return {commit: text for (_, commit), text in zip(pairs, texts)}

    # -- writing ------------------------------------------------------------------------------

    def write(self, commit: str, text: str) -> None:
        """Replace ``commit``'s note. The text goes in as a blob (no argv limit, no whitespace clean-up)."""
        blob = self._git("hash-object", "-w", "--stdin", input=text.encode()).stdout.decode().strip()
        self._git("notes", f"--ref={self.ref}", "add", "--force", "-C", blob, commit)

    def has_remote(self) -> bool:
        return self.remote in self._git("remote").stdout.decode().split()

    def pull(self) -> bool:
        """Fetch the remote's notes and merge them into the local ref; False when the remote has none."""
        proc = self._git("fetch", "--quiet", "--no-tags", self.remote, f"+{self.ref}:{self.tracking}", check=False)
        if proc.returncode != 0:
            said = proc.stderr.decode(errors="replace")
            if "couldn't find remote ref" in said:
                return False
            raise ExternalError("git", f"`git fetch {self.remote} {self.ref}` failed: {said.strip()[-400:]}")
        self._git("notes", f"--ref={self.ref}", "merge", "--quiet", "-s", "cat_sort_uniq", self.tracking)
        return True

    def push(self) -> None:
        """Push the notes ref without force, merging the remote's notes first whenever it moved on."""
        for attempt in range(PUSH_ATTEMPTS):
            proc = self._git("push", "--quiet", "--porcelain", self.remote, f"{self.ref}:{self.ref}", check=False)
            if proc.returncode == 0:
                return
            said = proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
            if not any(word in said for word in _REJECTED) or attempt == PUSH_ATTEMPTS - 1:
                raise ExternalError("git", f"`git push {self.remote} {self.ref}` failed: {said.strip()[-400:]}")
            self.pull()

    def branches_at(self, commit: str) -> list[str]:
        """Names of the branches (local, or the remote's) whose tip is ``commit``: the branch a gate
        judged a PR against is the one whose tip it merged into."""
        proc = self._git("for-each-ref", "--points-at", commit, "--format=%(refname)", "refs/heads",
                         f"refs/remotes/{self.remote}", check=False)
        names = []
        for ref in proc.stdout.decode().split():
            name = ref.removeprefix("refs/heads/").removeprefix(f"refs/remotes/{self.remote}/")
            if name != "HEAD" and name not in names:
                names.append(name)
        return names

    def trees_on(self, branch: str) -> frozenset[str]:
        """The root tree of every commit on ``branch`` (local or the remote's): a judged tree found
        here reached the branch."""
        trees: set[str] = set()
        for ref in (f"refs/heads/{branch}", f"refs/remotes/{self.remote}/{branch}"):
            proc = self._git("log", "--format=%T", ref, "--", check=False)
            if proc.returncode == 0:
                trees.update(proc.stdout.decode().split())
        return frozenset(trees)

    def tree_of(self, commit: str) -> str | None:
        proc = self._git("rev-parse", "--verify", "--quiet", f"{commit}^{{tree}}", check=False)
        return proc.stdout.decode().strip() or None
