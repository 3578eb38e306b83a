"""The fake GitHub's rules are GitHub's: what a merge, auto-merge, the merge queue, a workflow
filter and the workflow's own token do there. The stories in test_github_stories.py rely on
them, so each rule is shown to bite here, on the fake, through the clients the bot uses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from github_fake.actions import evaluate, glob_regex, workflows_from_readme  # noqa: E402
from github_world import APP_TOKEN, HUMAN_TOKEN, REPO, REQUIRED, World  # noqa: E402

from bot.forge.protocol import ForgeError  # noqa: E402
from bot.github.api import GitHubForge, Tuning  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAST = Tuning(retries=0, seconds_between_requests=0, seconds_between_writes=0)
OLD_WORKFLOW = """\
name: promotion
on:
  pull_request:
    types: [opened, synchronize, reopened]
    paths: ["environments/**"]
permissions:
  contents: read
  pull-requests: write
  statuses: write
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - id: bot
        uses: acme-ml/promotion-bot@v1
"""


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path, workflows={"promotion.yml": OLD_WORKFLOW})
    yield w
    w.close()


def branch(world, name: str, change) -> None:
    world.git("fetch", "-q", "origin")
    world.git("checkout", "-q", "-B", name, "origin/main")
    change(world.local)
    world.local.commit(name)
    world.git("push", "-q", "origin", f"{name}:{name}")


def set_all(world, sha: str, state: str = "success") -> None:
    forge = GitHubForge(REPO, HUMAN_TOKEN, api_url=world.fake.url, tuning=FAST)
    for context in REQUIRED:
        forge.set_status(sha, state, context, state)


def test_fake__a_paths_filter_skips_the_workflow_and_the_required_status_waits_forever(world):
    number = world.propose("docs", "Docs", lambda r: r.write("docs/x.md", "x\n"))
    [run] = world.runner.runs
    assert run.conclusion == "skipped" and "paths filter" in run.reason
    assert world.statuses(number) == {}
    assert world.merge(number) == (405, 'Required status check "promotion-bot" is expected.')


def test_fake__branch_protection_refuses_until_every_required_context_is_success(world):
    branch(world, "b", lambda r: r.write("docs/x.md", "x\n"))
    number = world.fake.open_pull_request(REPO, "b")
    head = world.pull(number)["head_sha"]
    set_all(world, head, "pending")
    assert world.merge(number) == (405, 'Required status check "promotion-bot" is in progress.')
    set_all(world, head, "failure")
    assert world.merge(number) == (405, 'Required status check "promotion-bot" is failing.')
    set_all(world, head)
    before = world.fake.hosts[REPO].branch("main")
    assert world.merge(number) == (200, "Pull Request successfully merged")
    merged = world.fake.hosts[REPO].branch("main")
    assert world.fake.hosts[REPO].git("rev-list", "--parents", "-n1", merged).split()[1:] == [before, head]


def test_fake__events_the_workflow_token_causes_start_no_workflow(world):
    world.fake.add_token("ghs_workflow", None)
    branch(world, "promotion-bot/revert-x", lambda r: r.set_variant("test", "canopy-tiny/v1.1-int8"))
    forge = GitHubForge(REPO, "ghs_workflow", api_url=world.fake.url, tuning=FAST, bot_login="github-actions[bot]")
    forge.open_pull_request(head_branch="promotion-bot/revert-x", base_branch="main", title="Revert", body="b")
    [run] = world.runner.drain()
    assert run.conclusion == "skipped" and "GITHUB_TOKEN" in run.reason


def test_fake__a_token_without_a_permission_is_refused_as_on_github(world):
    world.fake.add_token("ghs_read", None, permissions={"contents": "read", "pull-requests": "write"})
    forge = GitHubForge(REPO, "ghs_read", api_url=world.fake.url, tuning=FAST, bot_login="github-actions[bot]")
    with pytest.raises(ForgeError) as err:
        forge.set_status("a" * 40, "success", "promotion-bot", "x")
    assert err.value.status == 403


def test_fake__auto_merge_refuses_when_not_allowed_or_nothing_is_left_to_wait_for(tmp_path):
    for allowed in (False, True):
        world = World(tmp_path / str(allowed), allow_auto_merge=allowed, workflows={})
        try:
            branch(world, "b", lambda r: r.write("docs/x.md", "x\n"))
            number = world.fake.open_pull_request(REPO, "b")
            forge = GitHubForge(REPO, APP_TOKEN, api_url=world.fake.url, tuning=FAST)
            assert forge.allows_auto_merge() is allowed
            if not allowed:
                with pytest.raises(ForgeError, match="Auto merge is not allowed for this repository"):
                    forge.enable_auto_merge(number)
                continue
            forge.enable_auto_merge(number)  # pending checks: GitHub waits for them
            assert world.pull(number)["merged_at"] is None
            set_all(world, world.pull(number)["head_sha"])
            assert world.pull(number)["merged_at"] is not None and world.pull(number)["merged_by"] == "promotion-bot[bot]"
            branch(world, "c", lambda r: r.write("docs/y.md", "y\n"))
            clean = world.fake.open_pull_request(REPO, "c")
            set_all(world, world.pull(clean)["head_sha"])
            with pytest.raises(ForgeError, match="is in clean status"):
                forge.enable_auto_merge(clean)
            assert forge.merge_pull_request(clean, world.pull(clean)["head_sha"])
        finally:
            world.close()


def test_fake__merge_queue_merges_on_green_and_drops_an_entry_that_fails(tmp_path):
    world = World(tmp_path, merge_queue=True, workflows={})
    try:
        numbers = []
        for name in ("a", "b"):
            branch(world, name, lambda r, n=name: r.write(f"docs/{n}.md", f"{n}\n"))
            numbers.append(world.fake.open_pull_request(REPO, name))
            set_all(world, world.pull(numbers[-1])["head_sha"])
        for n in numbers:
            assert world.fake.merge_when_ready(REPO, n) == "queued"
        groups = [e for e in world.fake.events if e.name == "merge_group"]
        assert [g.payload["merge_group"]["head_ref"].split("/pr-")[1][:1] for g in groups] == ["1", "2"]
        first, second = (g.payload["merge_group"] for g in groups)
        assert second["base_sha"] == first["head_sha"]  # the second entry is built on the first
        set_all(world, first["head_sha"], "failure")
        assert world.pull(numbers[0])["merged_at"] is None
        rebuilt = [e for e in world.fake.events
                   if e.name == "merge_group" and e.payload["action"] == "checks_requested"][-1].payload["merge_group"]
        assert rebuilt["base_sha"] == world.fake.hosts[REPO].branch("main")  # rebuilt on main without #1
        set_all(world, rebuilt["head_sha"])
        assert world.pull(numbers[1])["merged_at"] and world.fake.hosts[REPO].branch("main") == rebuilt["head_sha"]
    finally:
        world.close()


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("environments/**", "environments/prod/canopy.yaml", True),
    ("environments/**", "docs/x.md", False),
    ("environments/*", "environments/prod/canopy.yaml", False),
    ("*.md", "README.md", True),
])
def test_fake__workflow_path_globs_follow_github(pattern, path, matches):
    assert bool(glob_regex(pattern).match(path)) is matches


def test_fake__expressions_of_action_yml_evaluate_as_on_actions():
    ctx = {"inputs": {"bot-login": "", "github-token": "t1"}, "github": {"token": "t1"}}
    expr = "inputs.bot-login || (inputs.github-token == github.token && 'github-actions[bot]') || ''"
    assert evaluate(expr, ctx) == "github-actions[bot]"
    ctx["inputs"]["github-token"] = "app"
    assert evaluate(expr, ctx) == ""


def test_fake__readme_shows_the_two_workflows_a_team_commits():
    assert set(workflows_from_readme(ROOT / "README.md")) == {"promotion.yml", "monitor.yml"}
