"""`ignore:` globs matched as Argo CD's directory.exclude matches them (bot/core/globs.py)."""

from __future__ import annotations

import pytest

from bot.core.globs import GlobError, compile_glob, match


@pytest.mark.parametrize("pattern, path, expected", [
    ("notes.yaml", "notes.yaml", True),
    ("notes.yaml", "sub/notes.yaml", False),       # the whole relative path, not a name anywhere
    ("*notes.yaml", "sub/notes.yaml", True),       # `*` crosses `/` (no separators given to gobwas)
    ("**/notes.yaml", "a/b/notes.yaml", True),
    ("*.yaml", "deep/er/x.yaml", True),
    ("drafts/*", "drafts/a/b.yaml", True),
    ("drafts/*", "other/drafts/a.yaml", False),
    ("{a.yaml,b/*}", "b/c.yaml", True),
    ("{a.yaml,b/*}", "c.yaml", False),
    ("x?.yaml", "x1.yaml", True),
    ("x[0-9].yaml", "x7.yaml", True),
    ("x[!0-9].yaml", "x7.yaml", False),
    ("x\\*.yaml", "x*.yaml", True),
    ("x\\*.yaml", "xa.yaml", False),
])
def test_match__argo_cd_directory_exclude_semantics(pattern, path, expected):
    assert match(pattern, path) is expected


@pytest.mark.parametrize("pattern", ["x[ab", "{a,b", "trailing\\"])
def test_compile_glob__what_gobwas_cannot_compile_is_refused(pattern):
    with pytest.raises(GlobError):
        compile_glob(pattern)
    assert match(pattern, "anything") is False


def test_policy__an_uncompilable_ignore_glob_is_an_error_naming_it():
    from gitops import POLICY

    from bot.checks.load_policy import parse
    from bot.core.errors import InputError

    with pytest.raises(InputError) as exc:
        parse(POLICY.replace("  - name: prod\n", "  - name: prod\n    ignore: ['drafts/{a,b']\n"), "promotion.yaml")
    assert exc.value.field == "environments[2].ignore[0]" and "`{` without its `}`" in exc.value.message
