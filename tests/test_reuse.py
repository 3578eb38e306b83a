"""A merge-queue commit passes through only when a recorded gate judged exactly its tree on a base
with exactly its parent's tree, and passed every promotion it makes."""

from __future__ import annotations

import subprocess

import pytest

from bot.gate import pipeline, reuse
from bot.vcs.reader import GitReader
from bot.zoo.records import Record


def queued(repo, base: str, head: str) -> str:
    """The commit a merge queue builds: a merge of the PR into its parent, as GitHub's merge button."""
    tree = subprocess.run(["git", "-C", str(repo.path), "merge-tree", "--write-tree", base, head],
                          capture_output=True, text=True, check=True).stdout.split()[0]
    return subprocess.run(["git", "-C", str(repo.path), "commit-tree", tree, "-p", base, "-p", head, "-m", "queue"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def gated(gitops):
    """main, a PR promoting v1.1-int8 into test branched from it, and the record its gate left."""
    base = gitops.repo.head.commit.hexsha
    gitops.repo.git.checkout("-q", "-b", "promote")
    gitops.set_variant("test", "canopy-tiny/v1.1-int8")
    head = gitops.commit("Promote v1.1-int8 to test")
    gitops.repo.git.checkout("-q", "main")
    gitops.write("docs/other.md", "someone else's change\n")
    gitops.repo.git.checkout("-q", "-b", "unrelated")
    gitops.commit("Docs")
    gitops.repo.git.checkout("-q", "main")
    reader = GitReader(gitops.path)
    record = Record(commit=head, judged=reader.as_merged(base, head), base=base, environment="test",
                    manifest="environments/test/canopy.yaml", variant="canopy-tiny/v1.1-int8",
                    from_variant="canopy-tiny/v1.0-fp32", baseline=None, verdict="pass", checks=(),
                    recorded_at="2026-11-25T12:00:00.000+00:00", pr=12)
    yield gitops, reader, base, head, record
    reader.close()


def find(reader, base, group, records, pr=12):
    plan, _ = pipeline.plan_pr(reader, base, group)
    return reuse.find(reader, plan, records, pr=pr)


def test_reuse__the_queued_commit_of_the_gated_tree_reuses_the_gate(gated):
    repo, reader, base, head, record = gated
    found = find(reader, base, queued(repo, base, head), [record])
    assert found == reuse.Reused(12, head, reader.tree_sha(reader.as_merged(base, head), ""))
    assert found.describe().startswith("gate of #12 reused: this queued commit has the tree it judged")


def test_reuse__a_queue_entry_on_another_base_is_judged_again(gated):
    repo, reader, base, head, record = gated
    other = repo.repo.commit("unrelated").hexsha  # main moved (or an entry ahead in the queue)
    assert find(reader, other, queued(repo, other, head), [record]) is None


@pytest.mark.parametrize("change", [
    dict(verdict="fail"), dict(verdict="inconclusive"), dict(pr=13), dict(judged="e" * 40),
    dict(variant="canopy-tiny/v1.3-int4-g64"),
], ids=["failed", "inconclusive", "another-pr", "another-judged-commit", "another-variant"])
def test_reuse__nothing_to_reuse_unless_the_record_passed_this_very_promotion(gated, change):
    from dataclasses import replace

    repo, reader, base, head, record = gated
    assert find(reader, base, queued(repo, base, head), [replace(record, **change)]) is None


def test_reuse__a_queued_commit_with_more_than_the_gate_judged_is_judged(gated):
    repo, reader, base, head, record = gated
    repo.repo.git.checkout("-q", "promote")
    repo.set_variant("staging", "canopy-tiny/v1.1-int8")
    more = repo.commit("and staging")
    repo.repo.git.checkout("-q", "main")
    assert find(reader, base, queued(repo, base, more), [record]) is None
