"""Read-only access to a Git repository at given revisions.

The gate never reads the working tree: the policy, evals and templates come from the base
revision (trusted), manifests and variants from both. Each revision's file list comes from one
`git ls-tree -r` (walking GitPython trees path by path re-parses every parent folder, which made
5,000 manifests take minutes); blobs are read through the persistent `git cat-file --batch`
process, or in bulk through one `cat-file --batch` call (`read_many`).

Files are written to disk (`export`) from the blobs themselves, never through `git archive` or a
checkout: `.gitattributes` (`export-subst`, `export-ignore`, filters, eol conversion) in a PR
would otherwise change what the bot reads into something no commit holds.
"""

from __future__ import annotations

import bisect
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import git
from gitdb.exc import BadName, BadObject

from bot.core.errors import ExternalError, InputError, UnsafePathError
from bot.core.paths import check_repo_path


class ExportTooLarge(InputError):
    """An export refused before writing: its blobs add up to more than the cap."""


@dataclass(frozen=True)
class FileChange:
    """One changed path between two revisions. ``status`` is added|modified|renamed|deleted."""

    status: str
    old_path: str | None
    new_path: str | None


SMALL_BLOB, SMALL_BLOBS_KEPT = 16 * 1024, 2048  # at most 32 MB, usually far less

_STATUS = {"A": "added", "M": "modified", "T": "modified", "D": "deleted", "R": "renamed", "C": "added"}


class GitReader:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.repo = git.Repo(self.path, search_parent_directories=False)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise InputError(str(path), "--repo", "is not a Git repository", "pass the path of a clone") from exc
        self._index: dict[str, dict[str, tuple[str, str]]] = {}
        self._modes: dict[str, dict[str, str]] = {}
        self._sorted: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._small_blobs: dict[str, bytes] = {}  # by object id: the same recipe is read once per promotion

    def close(self) -> None:
        self.repo.close()

    def resolve(self, rev: str) -> str:
        """The full commit SHA of ``rev``; InputError if it does not name a commit."""
        try:
            with self._lock:  # the persistent cat-file process answers one thread at a time
                return self.repo.commit(rev).hexsha
        except (BadName, BadObject, ValueError, git.GitCommandError) as exc:
            raise InputError(str(self.path), "revision", f"{rev!r} does not name a commit",
                             "fetch the full history (actions/checkout with fetch-depth: 0) or pass an existing rev") from exc

    def _entries(self, rev: str) -> dict[str, tuple[str, str]]:
        """``path -> (type, object id)`` of every blob and tree at ``rev``, listed once per revision."""
        entries = self._index.get(rev)
        if entries is None:
            try:
                out = self.repo.git.ls_tree("-r", "-t", "-z", "--full-tree", rev)
            except git.GitCommandError as exc:
                raise ExternalError("git", f"ls-tree {rev} failed: {exc.stderr.strip()}") from exc
            entries, modes = {}, {}
            for record in out.split("\0"):
                if record:
                    meta, _, path = record.partition("\t")
                    mode, kind, sha = meta.split(" ")
                    entries[path] = (kind, sha)
                    modes[path] = mode
            self._index[rev] = entries
            self._modes[rev] = modes
            self._sorted[rev] = sorted(entries)
        return entries

    def _under(self, rev: str, prefix: str) -> list[str]:
        """Every path below folder ``prefix`` at ``rev``, in sorted order."""
        self._entries(rev)
        paths = self._sorted[rev]
        if not prefix:
            return paths
        start = prefix + "/"
        i = bisect.bisect_left(paths, start)
        j = bisect.bisect_left(paths, prefix + "0")  # "0" is the character after "/"
        return paths[i:j]

    def read_bytes(self, rev: str, path: str) -> bytes | None:
        """The file's content at ``rev``, or None when it does not exist there."""
        path = check_repo_path(path)
        entry = self._entries(rev).get(path)
        if entry is None or entry[0] != "blob":
            return None
        sha = entry[1]
        if sha in self._small_blobs:
            return self._small_blobs[sha]
        with self._lock:  # one cat-file process serves every thread
            data = self.repo.odb.stream(bytes.fromhex(sha)).read()
        if len(data) <= SMALL_BLOB and len(self._small_blobs) < SMALL_BLOBS_KEPT:
            self._small_blobs[sha] = data
        return data

    def read_text(self, rev: str, path: str) -> str | None:
        data = self.read_bytes(rev, path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def read_many(self, rev: str, paths: list[str]) -> dict[str, str | None]:
        """Several files' text at ``rev`` through one `git cat-file --batch` call (None: missing)."""
        entries = self._entries(rev)
        wanted = {}
        for path in paths:
            entry = entries.get(check_repo_path(path))
            wanted[path] = entry[1] if entry and entry[0] == "blob" else None
        shas = sorted({sha for sha in wanted.values() if sha})
        blobs: dict[str, bytes] = {}
        if shas:
            proc = subprocess.run(["git", "-C", str(self.path), "cat-file", "--batch"],
                                  input="\n".join(shas).encode() + b"\n", capture_output=True)
            if proc.returncode != 0:
                raise ExternalError("git", f"cat-file --batch failed: {proc.stderr.decode(errors='replace').strip()}")
            out, pos = proc.stdout, 0
            for sha in shas:
                eol = out.index(b"\n", pos)
                size = int(out[pos:eol].split()[2])
                blobs[sha] = out[eol + 1:eol + 1 + size]
                pos = eol + 1 + size + 1
        return {path: None if sha is None else blobs[sha].decode("utf-8", errors="replace")
                for path, sha in wanted.items()}

    def exists(self, rev: str, path: str) -> bool:
        path = check_repo_path(path)
        return not path or path in self._entries(rev)

    def kind(self, rev: str, path: str) -> str | None:
        """What ``path`` is at ``rev``: "folder", "file", "symlink", "submodule", or None when absent."""
        path = check_repo_path(path).rstrip("/")
        entry = self._entries(rev).get(path)
        if entry is None:
            return None
        mode = self._modes[rev][path]
        return {"120000": "symlink", "160000": "submodule", "040000": "folder"}.get(
            mode, "folder" if entry[0] == "tree" else "file")

    def list_files(self, rev: str, prefix: str) -> list[str]:
        """Paths of all blobs under ``prefix`` at ``rev``, sorted."""
        prefix = check_repo_path(prefix).rstrip("/")
        entries = self._entries(rev)
        if prefix and entries.get(prefix, ("",))[0] != "tree":
            return []
        return [p for p in self._under(rev, prefix) if entries[p][0] == "blob"]

    def list_dirs(self, rev: str, prefix: str) -> list[str]:
        """Names of the immediate sub-folders of ``prefix`` at ``rev``."""
        prefix = check_repo_path(prefix).rstrip("/")
        entries = self._entries(rev)
        cut = len(prefix) + 1 if prefix else 0
        return sorted(p[cut:] for p in self._under(rev, prefix)
                      if entries[p][0] == "tree" and "/" not in p[cut:])

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

    def export(self, rev: str, prefix: str, dest: Path, *, exclude: tuple[str, ...] = (),
               max_bytes: int | None = None, what: str = "") -> Path:
        """Write the files under ``prefix`` at ``rev`` (but those under ``exclude``) into ``dest`` (a
        fresh folder) from their blobs, byte for byte; returns dest/prefix.

        Only plain files and folders: a symlink points elsewhere once the folder moves (into the
        weights cache: another variant's files, or outside the repository), and a submodule is
        content the revision does not hold. ``max_bytes``: refuse, before writing anything, when
        the blobs add up to more (a few MB pushed can expand to GBs: zeros compress well).
        """
        prefix = check_repo_path(prefix).rstrip("/")
        exclude = tuple(check_repo_path(e).rstrip("/") for e in exclude)
        entries, modes = self._entries(rev), self._modes[rev]
        if prefix and prefix not in entries:
            raise InputError(prefix, "", f"does not exist at {rev[:12]}", "commit it or fix the path")

        def kept(p: str) -> bool:
            return not any(p == e or p.startswith(e + "/") for e in exclude)

        paths = [p for p in ([prefix] if prefix else []) + self._under(rev, prefix) if kept(p)]
        for p in paths:
            kind, mode = entries[p][0], modes[p]
            if kind == "commit":
                raise UnsafePathError(p, "", f"is a git submodule at {rev[:12]}; the bot reads only files the "
                                      "repository itself holds", "commit the files instead of a submodule")
            if mode == "120000":
                target = self.read_bytes(rev, p) or b""
                raise UnsafePathError(p, "", f"is a symlink to {target.decode('utf-8', 'replace')!r} at {rev[:12]}; the "
                                      "bot exports only plain files and folders", "commit the file itself, not a link to it")
        files = [p for p in paths if entries[p][0] == "blob"]
        if max_bytes is not None:
            total = self.blob_bytes(rev, files)
            if total > max_bytes:
                raise ExportTooLarge(prefix or ".", "", f"holds {total:,} bytes at {rev[:12]}, more than the "
                                 f"{max_bytes:,} {what or 'allowed'}", "check what the PR adds there")
        dest.mkdir(parents=True, exist_ok=True)
        for p in paths:
            if entries[p][0] == "tree":
                (dest / p).mkdir(parents=True, exist_ok=True)
        self._write_blobs(rev, {p: dest / p for p in files})
        return dest / prefix

    def blob_bytes(self, rev: str, paths: list[str]) -> int:
        """The bytes ``paths`` take once written out (their blobs' sizes, from `cat-file --batch-check`)."""
        entries = self._entries(rev)
        shas = [entries[p][1] for p in paths if entries.get(p, ("",))[0] == "blob"]
        if not shas:
            return 0
        proc = subprocess.run(["git", "-C", str(self.path), "cat-file", "--batch-check"],
                              input="\n".join(shas).encode() + b"\n", capture_output=True)
        if proc.returncode != 0:
            raise ExternalError("git", f"cat-file --batch-check failed: {proc.stderr.decode(errors='replace').strip()}")
        return sum(int(line.split()[2]) for line in proc.stdout.decode().splitlines() if line.strip())

    def _write_blobs(self, rev: str, targets: dict[str, Path]) -> None:
        """Stream each path's blob into its target through one `git cat-file --batch` process."""
        if not targets:
            return
        entries = self._entries(rev)
        proc = subprocess.Popen(["git", "-C", str(self.path), "cat-file", "--batch"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for path, target in targets.items():
                proc.stdin.write(entries[path][1].encode() + b"\n")
                proc.stdin.flush()
                header = proc.stdout.readline().split()
                if len(header) != 3 or header[1] != b"blob":
                    raise ExternalError("git", f"cat-file --batch: no blob for {path} at {rev[:12]}")
                left = int(header[2])
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as f:
                    while left:
                        chunk = proc.stdout.read(min(left, 1 << 20))
                        if not chunk:
                            raise ExternalError("git", f"cat-file --batch ended inside {path}")
                        f.write(chunk)
                        left -= len(chunk)
                proc.stdout.read(1)  # the newline after each object
        finally:
            proc.stdin.close()
            proc.stdout.close()
            proc.stderr.close()
            proc.wait()

    def read_head(self, rev: str, path: str, size: int) -> bytes | None:
        """The first ``size`` bytes of a file at ``rev`` without reading the rest (a safetensors
        header of a multi-GB shard); None when it does not exist."""
        entry = self._entries(rev).get(check_repo_path(path))
        if entry is None or entry[0] != "blob":
            return None
        proc = subprocess.Popen(["git", "-C", str(self.path), "cat-file", "blob", entry[1]],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            data = proc.stdout.read(size)
        finally:
            proc.stdout.close()
            proc.kill()
            proc.wait()
        return data

    def special_entries(self, rev: str, prefix: str) -> list[tuple[str, str]]:
        """``(path, "symlink" | "submodule")`` for every symlink and submodule at or under ``prefix``."""
        prefix = check_repo_path(prefix).rstrip("/")
        try:
            out = self.repo.git.ls_tree("-r", "-t", "-z", "--full-tree", rev, "--", prefix or ".")
        except git.GitCommandError as exc:
            raise ExternalError("git", f"ls-tree {rev} failed: {exc.stderr.strip()}") from exc
        found = []
        for record in out.split("\0"):
            if record:
                meta, _, path = record.partition("\t")
                mode = meta.split(" ")[0]
                if mode in ("120000", "160000"):
                    found.append((path, "symlink" if mode == "120000" else "submodule"))
        return found

    def tree_sha(self, rev: str, path: str) -> str | None:
        """The object id of ``path`` at ``rev``: a content digest usable as a cache key."""
        path = check_repo_path(path).rstrip("/")
        if not path:
            with self._lock:
                return self.repo.commit(rev).tree.hexsha
        entry = self._entries(rev).get(path)
        return entry[1] if entry else None

    def size_of(self, rev: str, prefix: str) -> int | None:
        """Bytes of every blob under folder ``prefix`` at ``rev`` (None: no such folder), as on disk."""
        files = self.list_files(rev, prefix)
        if not files:
            return None
        entries = self._entries(rev)
        with self._lock:
            return sum(self.repo.odb.info(bytes.fromhex(entries[p][1])).size for p in files)

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two commits; None when they share no history."""
        with self._lock:
            bases = self.repo.merge_base(a, b)
        return bases[0].hexsha if bases else None

    def as_merged(self, base: str, head: str) -> str:
        """The commit ``head`` would make if merged into ``base`` now: ``head`` itself when it already
        contains ``base``, else a merge commit written to the object store (no ref, no history changed).

        Deterministic (fixed author, the head's date), so every runner of a fan-out computes the same
        commit. Conflicts are bad input: the PR must be brought up to date first.
        """
        base, head = self.resolve(base), self.resolve(head)
        with self._lock:
            if self.repo.is_ancestor(base, head):
                return head
            result = subprocess.run(["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", base, head],
                                    cwd=self.path, capture_output=True, text=True)
            if result.returncode == 1:
                conflicts = [line for line in result.stdout.splitlines()[1:] if line]
                raise InputError("", "", f"{head[:12]} does not merge cleanly into {base[:12]} (conflicts in "
                                         f"{', '.join(conflicts[:5]) or 'some files'})",
                                 "merge the target branch into the PR (or rebase it) and push")
            if result.returncode != 0:
                raise ExternalError("git", f"merge-tree {base[:12]} {head[:12]} failed: {result.stderr.strip()[-300:]}")
            tree = result.stdout.splitlines()[0].strip()
            date = self.repo.commit(head).committed_datetime.isoformat()
            env = {**os.environ, "GIT_AUTHOR_NAME": "promotion-bot", "GIT_AUTHOR_EMAIL": "promotion-bot@localhost",
                   "GIT_COMMITTER_NAME": "promotion-bot", "GIT_COMMITTER_EMAIL": "promotion-bot@localhost",
                   "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
            commit = subprocess.run(["git", "commit-tree", tree, "-p", base, "-p", head,
                                     "-m", f"{head[:12]} as merged into {base[:12]}"],
                                    cwd=self.path, capture_output=True, text=True, env=env)
            if commit.returncode != 0:
                raise ExternalError("git", f"commit-tree failed: {commit.stderr.strip()[-300:]}")
            return commit.stdout.strip()
