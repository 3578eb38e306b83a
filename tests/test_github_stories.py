"""Day one on GitHub, played whole: the README's workflows and branch protection exactly as the
README says, on the fake GitHub (real Git behind it, its workflow runner, its merge rules), with a
real Prometheus for the monitor. Every PR kind a team opens ends merged or blocked by a verdict;
none waits on a status nobody sets."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from github_fake.actions import workflows_from_readme  # noqa: E402
from github_world import REPO, REQUIRED, World, story_policy, with_workflow_token  # noqa: E402

from bot.demo.local_prometheus import LocalPrometheus  # noqa: E402
from bot.demo.series import Phase, openmetrics  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTHING_READ = "nothing to promote: this PR changes nothing promotion-bot reads"


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


def states(world, number) -> dict[str, str]:
    return {c: s for c, (s, _) in world.statuses(number).items()}


# --- PRs that promote nothing -----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["docs/runbook.md", "tests/manifests_test.sh"])
def test_story__docs_or_test_only_pr_gets_every_status_at_once_and_merges(world, path):
    number = world.propose("docs", "Update the runbook", lambda r: r.write(path, "how we roll back\n"))
    [run] = world.runner.runs
    assert run.conclusion == "success" and run.outputs["verdict"] == "pass"
    assert world.statuses(number)["promotion-bot"] == ("success", NOTHING_READ)
    assert world.statuses(number)["promotion-bot/prod"] == (
        "success", "nothing to promote into prod: this PR changes none of its files")
    assert set(world.statuses(number)) == set(REQUIRED)
    assert world.comments(number) == []  # a docs PR gets no bot comment
    assert world.merge(number) == (200, "Pull Request successfully merged")


def test_story__models_only_pr_adding_a_variant_merges_and_one_editing_a_served_variant_is_blocked(world):
    def new_variant(r):
        r.add_variant("v1.5-int4-g32")

    added = world.propose("zoo-v1.5", "Add v1.5-int4-g32 to the zoo", new_variant)
    assert set(states(world, added).values()) == {"success"}
    assert "nothing to promote" in world.comments(added)[0]
    assert world.merge(added)[0] == 200

    edited = world.propose("zoo-edit", "Retune v1.0", lambda r: r.write(
        "models/canopy-tiny/v1.0-fp32/weights/config.json", '{"model_type": "llama", "rope_theta": 1}\n'))
    assert set(states(world, edited).values()) == {"error"}  # immutable: every environment serves it
    assert "immutable" in world.comments(edited)[0]
    assert world.merge(edited) == (405, 'Required status check "promotion-bot" is failing.')


def test_story__policy_pr_merges_and_a_broken_one_is_blocked(world):
    def stricter(r):
        text = (r.path / "promotion.yaml").read_text()
        r.write("promotion.yaml", text.replace("  - name: test\n", "  - name: test\n    fail_fast: false\n", 1))

    good = world.propose("policy", "test runs every check", stricter)
    assert set(states(world, good).values()) == {"success"}
    assert "applies from the next PR on" in world.comments(good)[0]
    assert world.merge(good)[0] == 200

    broken = world.propose("policy-typo", "Typo", lambda r: r.write(
        "promotion.yaml", (r.path / "promotion.yaml").read_text().replace("gate:", "gates:", 1)))
    assert set(states(world, broken).values()) == {"error"}
    assert world.merge(broken)[0] == 405


def test_story__promotion_passes_and_merges_and_straight_to_prod_is_blocked(world):
    ok = world.propose("promote-v1.1", "Promote v1.1-int8 to test",
                       lambda r: r.set_variant("test", "canopy-tiny/v1.1-int8"))
    assert states(world, ok) == {c: "success" for c in REQUIRED}
    assert world.statuses(ok)["promotion-bot/test"][1] == "passed: canopy-tiny/v1.1-int8"
    assert world.merge(ok)[0] == 200 and world.main_serves("test") == "canopy-tiny/v1.1-int8"

    from monitorops import PROD, prod_manifest

    skip = world.propose("promote-prod", "Straight to prod",
                         lambda r: r.write(PROD, prod_manifest("canopy-tiny/v1.3-int4-g64", "slow")))
    assert states(world, skip)["promotion-bot/prod"] == "failure"
    assert states(world, skip)["promotion-bot/test"] == "success"  # computed: it changes none of test's files
    assert world.merge(skip) == (405, 'Required status check "promotion-bot" is failing.')


def test_story__missing_contents_write_is_a_warning_in_the_comment_naming_the_permission(tmp_path):
    workflows = workflows_from_readme(ROOT / "README.md")
    workflows["promotion.yml"] = workflows["promotion.yml"].replace("  contents: write", "  contents: read", 1)
    world = World(tmp_path, workflows=workflows)
    try:
        number = world.propose("promote-v1.1", "Promote v1.1-int8 to test",
                               lambda r: r.set_variant("test", "canopy-tiny/v1.1-int8"))
        assert states(world, number)["promotion-bot"] == "success"  # the verdict stands
        assert ("results not recorded: the workflow's token may not push refs/notes/promotion-bot (fix: give the "
                "workflow permissions: contents: write") in world.comments(number)[0]
    finally:
        world.close()


# --- the merge queue --------------------------------------------------------------------------------

def test_story__merge_queue_reuses_the_gate_of_the_same_tree_and_judges_an_entry_behind_another(tmp_path):
    world = World(tmp_path, merge_queue=True)
    try:
        first = world.propose("promote-v1.1", "Promote v1.1-int8 to test",
                              lambda r: r.set_variant("test", "canopy-tiny/v1.1-int8"))
        second = world.propose("promote-other", "Serve v1.3 as a second test app",
                               lambda r: r.set_variant("test", "canopy-tiny/v1.3-int4-g64", file="other.yaml",
                                                       name="other"))
        assert world.merge(first) == (405, "Changes must be made through the merge queue")
        assert world.fake.merge_when_ready(REPO, first) == "queued"
        assert world.fake.merge_when_ready(REPO, second) == "queued"
        world.runner.drain()
        groups = [r for r in world.runner.runs if r.event == "merge_group" and r.action == "checks_requested"]
        assert [g.conclusion for g in groups] == ["success", "success"]
        assert world.pull(first)["merged_at"] and world.pull(second)["merged_at"]
        first_group, second_group = (world.fake.pull(REPO, n)["merge_commit_sha"] for n in (first, second))
        reused = world.fake.latest_status(first_group, "promotion-bot")["description"]
        assert reused.startswith(f"gate of #{first} reused: this queued commit has the tree it judged")
        # Behind the first entry, the second's base is not the one its gate judged: judged again.
        judged = world.fake.latest_status(second_group, "promotion-bot/test")["description"]
        assert judged == "passed: canopy-tiny/v1.3-int4-g64"
        assert world.main_serves("test") == "canopy-tiny/v1.1-int8"
    finally:
        world.close()


# --- a trip, and the revert PR that follows -----------------------------------------------------------

@pytest.fixture(scope="module")
def slow_prod():
    """Prometheus with prod's `slow` model at a 3 s p95 from half an hour ago (the rule: above 2.5).
    The series runs three hours into the future, so the monitor, reading the clock, finds it
    however slowly a loaded machine plays the stories."""
    now = time.time()
    history = openmetrics({("canopy", "slow"): [Phase(now - 3 * 3600, now - 1800),
                                                 Phase(now - 1800, now + 3 * 3600, latency_s=3.0)]})
    with LocalPrometheus(history) as prom:
        yield prom.url


def promoted_to_prod(world) -> tuple[int, int]:
    """v1.1-int8 gated into prod, then v1.4-int2-g64: both through PRs the gate passed."""
    from monitorops import PROD, prod_manifest

    numbers = []
    for variant in ("v1.1-int8", "v1.4-int2-g64"):
        n = world.propose(f"prod-{variant}", f"Promote {variant} to prod",
                          lambda r, v=variant: r.write(PROD, prod_manifest(f"canopy-tiny/{v}", "slow")))
        assert world.merge(n)[0] == 200, world.statuses(n)
        numbers.append(n)
    return numbers[0], numbers[1]


def revert_pr(world) -> int:
    [(_, number)] = [k for k, pr in world.fake.pulls.items() if pr["head_ref"].startswith("promotion-bot/revert-")]
    return number


@pytest.mark.parametrize("allow_auto_merge", [True, False], ids=["auto-merge", "merge-once-green"])
def test_story__trip_opens_a_verified_revert_pr_that_merges_itself(tmp_path, slow_prod, allow_auto_merge):
    world = World(tmp_path, policy=story_policy("auto", ordered=False), prometheus=slow_prod,
                  allow_auto_merge=allow_auto_merge)
    try:
        gated, bad = promoted_to_prod(world)
        world.monitor_pass()
        number = revert_pr(world)
        pr = world.pull(number)
        assert pr["author"] == "promotion-bot[bot]" and pr["merged_at"], world.runner.runs[-1].log[-3000:]
        assert world.main_serves("prod") == "canopy-tiny/v1.1-int8"
        # The monitor's own statuses (the promotion workflow's run on the merged PR comes later).
        [status] = [s for s in world.fake.statuses_for(pr["head_sha"], "promotion-bot/prod")
                    if s["creator"] == "promotion-bot[bot]"]
        assert status["state"] == "success"
        assert status["description"].startswith("verified revert: restores prod as served at ")
        assert status["description"].endswith(f"gated in #{gated}")
        assert "The monitor set every `promotion-bot` status" in pr["body"]
        # The App's PR started the promotion workflow, which ran on it like on any PR.
        assert any(r.workflow == "promotion.yml" and r.event == "pull_request" for r in world.runner.runs[-2:])
    finally:
        world.close()


def test_story__without_merge_auto_the_on_call_merges_the_revert_with_no_rerun(tmp_path, slow_prod):
    world = World(tmp_path, policy=story_policy("manual", ordered=False), prometheus=slow_prod)
    try:
        promoted_to_prod(world)
        world.monitor_pass()
        number = revert_pr(world)
        assert world.pull(number)["merged_at"] is None
        assert states(world, number) == {c: "success" for c in REQUIRED}
        # The App's PR started the promotion workflow: it verified the revert too, and said so.
        assert any("verified revert: restores prod as served at" in c for c in world.comments(number))
        assert world.merge(number)[0] == 200
    finally:
        world.close()


def test_story__with_a_merge_queue_the_verified_revert_is_queued_and_merged(tmp_path, slow_prod):
    world = World(tmp_path, policy=story_policy("auto", ordered=False), prometheus=slow_prod, merge_queue=True)
    try:
        for n in promoted_to_prod_through_the_queue(world):
            assert world.pull(n)["merged_at"]
        world.monitor_pass()
        number = revert_pr(world)
        group = [r for r in world.runner.runs if r.event == "merge_group" and r.action == "checks_requested"][-1]
        assert group.conclusion == "success"
        assert world.pull(number)["merged_at"] and world.main_serves("prod") == "canopy-tiny/v1.1-int8"
        queued = world.pull(number)["merge_commit_sha"]
        assert world.fake.latest_status(queued, "promotion-bot")["description"].startswith("verified revert")
    finally:
        world.close()


def promoted_to_prod_through_the_queue(world) -> list[int]:
    from monitorops import PROD, prod_manifest

    numbers = []
    for variant in ("v1.1-int8", "v1.4-int2-g64"):
        n = world.propose(f"prod-{variant}", f"Promote {variant} to prod",
                          lambda r, v=variant: r.write(PROD, prod_manifest(f"canopy-tiny/{v}", "slow")))
        assert world.fake.merge_when_ready(REPO, n, actor="octocat") == "queued"
        world.runner.drain()
        numbers.append(n)
    return numbers


def test_story__revert_opened_with_the_workflow_token_starts_no_workflow_yet_is_mergeable(tmp_path, slow_prod):
    workflows = workflows_from_readme(ROOT / "README.md")
    workflows["monitor.yml"] = with_workflow_token(workflows["monitor.yml"])
    world = World(tmp_path, policy=story_policy("manual", ordered=False), prometheus=slow_prod, workflows=workflows)
    try:
        promoted_to_prod(world)
        world.monitor_pass()
        number = revert_pr(world)
        assert world.pull(number)["author"] == "github-actions[bot]"
        opened = [r for r in world.runner.runs if r.event == "pull_request" and r.action == "opened"][-1]
        assert opened.conclusion == "skipped" and "GITHUB_TOKEN" in opened.reason
        assert states(world, number) == {c: "success" for c in REQUIRED}  # set by the monitor itself
        assert world.merge(number)[0] == 200
    finally:
        world.close()


def test_story__a_revert_to_a_state_no_gate_passed_is_blocked_for_a_human(tmp_path, slow_prod):
    workflows = workflows_from_readme(ROOT / "README.md")
    workflows["monitor.yml"] = with_workflow_token(workflows["monitor.yml"])  # only the monitor's statuses
    world = World(tmp_path, policy=story_policy("auto", ordered=False), prometheus=slow_prod, workflows=workflows)
    try:
        from monitorops import PROD, prod_manifest

        n = world.propose("prod-v1.4", "Promote v1.4-int2-g64 to prod",
                          lambda r: r.write(PROD, prod_manifest("canopy-tiny/v1.4-int2-g64", "slow")))
        assert world.merge(n)[0] == 200
        world.monitor_pass()  # back to v1.0-fp32, which prod served from before the bot: never gated
        number = revert_pr(world)
        assert world.pull(number)["merged_at"] is None
        state, description = world.statuses(number)["promotion-bot/prod"]
        assert state == "failure" and "no gate of prod recorded a pass for canopy-tiny/v1.0-fp32" in description
        assert "review this one and merge it by hand" in world.pull(number)["body"]
        assert world.merge(number) == (405, 'Required status check "promotion-bot" is failing.')
    finally:
        world.close()
