"""Globs as Argo CD matches `directory.include` / `directory.exclude`.

Argo CD's repo server calls `glob.Match(exclude, relPath)` (util/glob) on each manifest's path
relative to the application's folder, which compiles the pattern with gobwas/glob and no
separators. So, unlike a shell or `.gitignore`:

- `*` and `**` match any run of characters, `/` included: `*.yaml` excludes files in sub-folders too;
- the pattern must match the whole relative path: `secret.yaml` excludes only the root's file,
  not `overlays/secret.yaml` (write `*secret.yaml` or `**/secret.yaml` for those);
- `?` is one character, `[abc]`, `[a-z]` and `[!abc]` are classes, `{a,b}` is either, `\\` escapes;
- a pattern that does not compile (an unclosed `[` or `{`) matches nothing in Argo CD; here it is
  refused when the policy is read (`check`), since a typo would otherwise exclude nothing quietly.
"""

from __future__ import annotations

import functools
import re


class GlobError(ValueError):
    pass


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern:
    """The regular expression gobwas/glob's `Compile(pattern)` (no separators) matches with."""
    out, i, depth = [], 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                raise GlobError("ends with a lone `\\`")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            while i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] == "!" else i + 1)
            if end < 0:
                raise GlobError("has a `[` without its `]`")
            body = pattern[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body:
                raise GlobError("has an empty `[]` class")
            escaped = "".join(c if c == "-" else re.escape(c) for c in body)
            out.append(f"[{'^' if negate else ''}{escaped}]")
            i = end
        elif ch == "{":
            depth += 1
            out.append("(?:")
        elif ch == "}" and depth:
            depth -= 1
            out.append(")")
        elif ch == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(ch))
        i += 1
    if depth:
        raise GlobError("has a `{` without its `}`")
    return re.compile("".join(out), re.DOTALL)


def match(pattern: str, path: str) -> bool:
    try:
        return compile_glob(pattern).fullmatch(path) is not None
    except GlobError:
        return False  # what Argo CD does with a pattern that does not compile; the policy parser refuses it
