"""A revert verified from Git and the recorded gate results, and what the monitor then does with
it: the statuses on its head and, with `rollback.merge: auto`, the merge (a recording forge)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from monitorops import PROD, prod_manifest  # noqa: E402

from bot.checks import load_policy  # noqa: E402
from bot.forge.protocol import ForgeError  # noqa: E402
from bot.monitor import restore  # noqa: E402
from bot.monitor.landing import Landing, land  # noqa: E402
from bot.vcs.reader import GitReader  # noqa: E402
from bot.vcs.writer import GitWriter  # noqa: E402
from bot.zoo.records import Record  # noqa: E402

ENVS = ["test", "staging", "prod"]


def record(env: str, variant: str, verdict: str = "pass", pr: int = 7) -> Record:
    manifest = PROD if env == "prod" else f"environments/{env}/canopy.yaml"
    return Record(commit="c" * 40, judged="d" * 40, base="b" * 40, environment=env, manifest=manifest,
                  variant=f"canopy-tiny/{variant}", from_variant=None, baseline=None, verdict=verdict, checks=(),
                  recorded_at="2026-11-25T12:00:00.000+00:00", pr=pr)


@pytest.fixture
def history(gitops):
    """prod: v1.0-fp32 (before the bot), v1.1-int8 (gated), then v1.4-int2-g64; and a revert of the last."""
    for variant in ("v1.0-fp32", "v1.1-int8", "v1.4-int2-g64"):
        gitops.write(PROD, prod_manifest(f"canopy-tiny/{variant}", "slow"))
        gitops.commit(f"prod serves {variant}")
    return gitops


def verify(repo, head: str, records, base: str | None = None):
    reader, writer = GitReader(repo.path), GitWriter(repo.path)
    try:
        base = base or repo.repo.commit("main").hexsha
        policy = load_policy.load(reader, base)
        return restore.verify(reader, writer.first_parent_history, policy, records, base, head)
    finally:
        reader.close()
        writer.close()


def revert(repo, sha: str, extra=None) -> str:
    writer = GitWriter(repo.path)
    try:
        head = writer.revert_onto_branch(sha, "promotion-bot/revert-x", repo.repo.commit("main").hexsha)
    finally:
        writer.close()
    if extra:
        repo.repo.git.checkout("-q", "promotion-bot/revert-x")
        extra(repo)
        head = repo.commit("and more")
        repo.repo.git.checkout("-q", "main")
    return head


def test_restore__a_revert_to_a_gated_state_is_verified(history):
    bad = history.repo.commit("main").hexsha
    head = revert(history, bad)
    found = verify(history, head, [record("prod", "v1.1-int8")])
    assert found.verified, found.reason
    [restored] = found.restored
    assert restored.environment == "prod" and restored.replaced_by == bad
    assert restored.served_at == history.repo.commit("main~1").hexsha
    assert found.describe() == f"verified revert: restores prod as served at {restored.served_at[:12]}, gated in #7"


@pytest.mark.parametrize(("records", "reason"), [
    ([], "no gate of prod recorded a pass for canopy-tiny/v1.1-int8 in environments/prod/canopy.yaml"),
    ([record("prod", "v1.1-int8", "fail")], "no gate of prod recorded a pass"),
    ([record("staging", "v1.1-int8")], "no gate of prod recorded a pass"),  # passed elsewhere is not prod's gate
])
def test_restore__without_a_recorded_pass_in_that_environment_it_is_not_verified(history, records, reason):
    found = verify(history, revert(history, history.repo.commit("main").hexsha), records)
    assert not found.verified and reason in found.reason


def test_restore__a_revert_that_changes_more_than_environments_is_not_verified(history):
    head = revert(history, history.repo.commit("main").hexsha, lambda r: r.write("docs/x.md", "x\n"))
    found = verify(history, head, [record("prod", "v1.1-int8")])
    assert not found.verified and found.reason == "it changes docs/x.md, outside every environment and the zoo"


def test_restore__a_tree_the_environment_never_served_is_not_verified(history):
    head = revert(history, history.repo.commit("main").hexsha,
                  lambda r: r.write(PROD, prod_manifest("canopy-tiny/v1.1-int8", "slow") + "# edited\n"))
    found = verify(history, head, [record("prod", "v1.1-int8")])
    assert not found.verified and "never served" in found.reason


def test_restore__removing_a_variant_nothing_serves_any_more_is_part_of_a_revert(history):
    history.add_variant("v1.6-int4-g32")
    history.write(PROD, prod_manifest("canopy-tiny/v1.6-int4-g32", "slow"))
    added = history.commit("Add v1.6 and serve it in prod")
    found = verify(history, revert(history, added), [record("prod", "v1.4-int2-g64")])
    assert found.verified, found.reason


def test_restore__statuses_are_success_only_when_verified():
    verified = restore.Verification(True, "", (restore.Restored("prod", "a" * 40, "b" * 40, (record("prod", "v1.1-int8"),)),))
    wanted = restore.statuses_for(verified, ENVS)
    assert set(wanted) == {"promotion-bot", "promotion-bot/test", "promotion-bot/staging", "promotion-bot/prod"}
    assert wanted["promotion-bot/prod"].description.startswith("verified revert")
    assert wanted["promotion-bot/test"].description == "nothing to promote into test: this PR changes none of its files"
    refused = restore.statuses_for(restore.Verification(False, "it changes nothing"), ENVS)
    assert {s.state for s in refused.values()} == {"failure"}
    assert refused["promotion-bot"].description == "revert not verified: it changes nothing"


class RecordingForge:
    def __init__(self, *, auto: bool, auto_fails: str | None = None, merge_fails: str | None = None) -> None:
        self.auto, self.auto_fails, self.merge_fails = auto, auto_fails, merge_fails
        self.calls: list[tuple] = []

    def allows_auto_merge(self):
        return self.auto

    def enable_auto_merge(self, number):
        self.calls.append(("auto-merge", number))
        if self.auto_fails:
            raise ForgeError("GitHub", self.auto_fails, 400)

    def set_status(self, sha, state, context, description, target_url=None):
        self.calls.append(("status", context, state))

    def merge_pull_request(self, number, sha):
        self.calls.append(("merge", number, sha))
        if self.merge_fails:
            raise ForgeError("GitHub", self.merge_fails, 405)
        return "m" * 40


LANDING = Landing(history=None, records=(), environments=tuple(ENVS), merge="auto", critical=frozenset({"p95"}))
VERIFIED = restore.Verification(True, "", (restore.Restored("prod", "a" * 40, "b" * 40, (record("prod", "v1.1-int8"),)),))


def test_land__auto_merge_is_enabled_before_the_statuses_so_github_merges_on_green():
    forge = RecordingForge(auto=True)
    said = land(forge, 5, "h" * 40, VERIFIED, LANDING, merge=True)
    assert forge.calls[0] == ("auto-merge", 5) and [c[0] for c in forge.calls[1:]] == ["status"] * 4
    assert said == "auto-merge enabled; statuses set: success"


@pytest.mark.parametrize(("forge", "said"), [
    (RecordingForge(auto=False), "statuses set: success; merged"),
    (RecordingForge(auto=True, auto_fails="Pull request Pull request is in clean status"),
     "auto-merge not enabled (Pull request Pull request is in clean status); statuses set: success; merged"),
    (RecordingForge(auto=False, merge_fails='Required status check "lint" is expected.'),
     'statuses set: success; not merged yet (Required status check "lint" is expected.); the next pass tries again'),
], ids=["no-auto-merge", "clean", "other-check-pending"])
def test_land__else_a_merge_right_after_the_statuses(forge, said):
    assert land(forge, 5, "h" * 40, VERIFIED, LANDING, merge=True) == said
    assert forge.calls[-1] == ("merge", 5, "h" * 40)


def test_land__an_unverified_revert_gets_failure_and_is_never_merged():
    forge = RecordingForge(auto=True)
    said = land(forge, 5, "h" * 40, restore.Verification(False, "it changes nothing"), LANDING, merge=True)
    assert [c for c in forge.calls if c[0] != "status"] == []
    assert {c[2] for c in forge.calls} == {"failure"} and said.endswith("not merged: the revert is not verified")


def test_land__merge_only_for_a_critical_rule_with_merge_auto():
    assert LANDING.merges(["p95", "error-rate"]) and not LANDING.merges(["error-rate"])
    assert not Landing(None, (), (), "manual", frozenset({"p95"})).merges(["p95"])
