"""Repository-relative paths. PR content is untrusted: no path may leave the repository."""

from __future__ import annotations

import posixpath

from bot.core.errors import UnsafePathError


def check_repo_path(path: str, *, file: str = "", field: str = "") -> str:
    """Normalise a repository-relative POSIX path, refusing absolute paths and `..` escapes."""
    if "\0" in path or "\\" in path:
        raise UnsafePathError(file or path, field, f"path {path!r} contains a NUL or backslash",
                              "use a forward-slash path inside the repository")
    if path.startswith("/"):
        raise UnsafePathError(file or path, field, f"path {path!r} is absolute",
                              "use a path relative to the repository root")
    norm = posixpath.normpath(path) if path else ""
    if norm == ".":
        return ""
    if norm == ".." or norm.startswith("../"):
        raise UnsafePathError(file or path, field, f"path {path!r} leaves the repository",
                              "use a path inside the repository")
    return norm


def join_repo_path(base: str, relative: str, *, file: str = "", field: str = "") -> str:
    """``relative`` resolved against folder ``base``, still inside the repository."""
    if relative.startswith("/"):
        raise UnsafePathError(file, field, f"path {relative!r} is absolute",
                              "use a path relative to its folder")
    return check_repo_path(posixpath.join(base, relative), file=file, field=field)
