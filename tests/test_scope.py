"""Which environments a PR touches, computed from the diff and what each environment serves, and
whether it touches anything the bot reads at all: the ground for an untouched environment's
`success` and for a docs PR's statuses without a comment."""

from __future__ import annotations

import pytest

from bot.checks import load_policy
from bot.gate.scope import environment_names, scope_of
from bot.vcs.reader import GitReader


def scope(gitops, change, policy_text=None):
    if policy_text:
        gitops.write("promotion.yaml", policy_text)
        gitops.commit("policy")
    base = gitops.repo.head.commit.hexsha
    change(gitops)
    head = gitops.commit("the PR")
    reader = GitReader(gitops.path)
    try:
        return scope_of(reader, base, head, load_policy.load(reader, base))
    finally:
        reader.close()


@pytest.mark.parametrize(("change", "touched", "relevant"), [
    (lambda r: r.write("docs/runbook.md", "x\n"), set(), False),
    (lambda r: r.write(".github/workflows/ci.yml", "on: push\n"), set(), False),
    (lambda r: r.set_variant("test", "canopy-tiny/v1.1-int8"), {"test"}, True),
    (lambda r: r.write("evals/tasks/new.yaml", "task: new\n"), set(), True),
    (lambda r: r.add_variant("v1.5-int4-g32"), set(), True),  # a new variant nothing serves
    (lambda r: r.write("models/canopy-tiny/v1.0-fp32/weights/config.json", "{}\n"), {"test", "staging", "prod"}, True),
], ids=["docs", "ci", "manifest", "evals", "new-variant", "served-variant"])
def test_scope_of__touched_environments_and_relevance(gitops, change, touched, relevant):
    found = scope(gitops, change)
    assert found.environments == ("test", "staging", "prod")
    assert set(found.touched) == touched and found.relevant is relevant


def test_scope_of__a_variant_an_environment_serves_only_after_the_pr_touches_it(gitops):
    def promote_and_edit(r):
        r.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
        r.write("models/canopy-tiny/v1.3-int4-g64/recipe.yaml", "changed: true\n")

    assert set(scope(gitops, promote_and_edit).touched) == {"staging"}


def test_scope_of__an_ignored_file_leaves_its_environment_untouched(gitops):
    policy = (gitops.path / "promotion.yaml").read_text().replace(
        "  - name: test\n", "  - name: test\n    ignore: [\"drafts/*\"]\n", 1)
    found = scope(gitops, lambda r: r.write("environments/test/drafts/next.yaml", "next: v2\n"), policy)
    assert found.touched == frozenset() and found.relevant


def test_environment_names__read_leniently_from_a_policy_that_does_not_parse():
    assert environment_names("version: 1\nenvironments: [{name: test, gates: []}, {name: prod}]\n") == ("test", "prod")
    assert environment_names("environments: [") == ()
    assert environment_names(None) == ()
    assert environment_names("environments: [{name: ../x}, {name: 3}]") == ()
