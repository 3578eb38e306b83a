"""A GitOps repository on the fake GitHub, set up exactly as the README says: its workflows
(parsed from the README), branch protection requiring the bot's statuses, a GitHub App for the
monitor, and people who push branches, open PRs and press the merge button."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import git
from github_fake import FakeGitHub
from github_fake.actions import Runner, workflows_from_readme
from gitops import POLICY, demo_like_repo
from monitorops import PROD, prod_manifest

ROOT = Path(__file__).resolve().parent.parent
REPO = "acme-ml/gitops"
HUMAN_TOKEN = "ghp_octocat_personal_token_0123456789"
APP_TOKEN = "ghs_promotion_bot_app_installation_token"
APP_LOGIN = "promotion-bot[bot]"
# What the README tells a team to require: the umbrella context (here every environment's too,
# to show none of them waits on a status nobody sets).
REQUIRED = ("promotion-bot", "promotion-bot/test", "promotion-bot/staging", "promotion-bot/prod")

ROLLBACK = """\
    rollback:
      defaults: false
      merge: {merge}
      rules:
        - name: p95-latency
          query: histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{{model_name="{{model_name}}"}}[{{window}}])))
          above: 2.5
          window: 10m
          critical: true
"""


def story_policy(merge: str = "auto", *, ordered: bool = True) -> str:
    """The tests' policy with prod's rollback rules; ``ordered``: staging and prod check promotion-order."""
    policy = POLICY if ordered else POLICY.replace("      - check: promotion-order\n", "")
    return policy + ROLLBACK.format(merge=merge)


class World:
    def __init__(self, root: Path, *, policy: str | None = None, merge_queue: bool = False,
                 allow_auto_merge: bool = True, workflows: dict[str, str] | None = None,
                 prometheus: str = "http://127.0.0.1:9") -> None:
        self.root = Path(root)
        self.local = demo_like_repo(self.root / "clone", policy=policy or story_policy())
        self.local.write(PROD, prod_manifest("canopy-tiny/v1.0-fp32", "slow"))
        self.local.commit("prod serves through an Argo Rollout")
        self.bare = self.root / "origin.git"
        git.Repo.init(self.bare, bare=True, initial_branch="main")
        self.git("remote", "add", "origin", str(self.bare))
        self.git("push", "-q", "origin", "main")
        self.fake = FakeGitHub().start()
        self.fake.add_repo(REPO, git_dir=self.bare, allow_auto_merge=allow_auto_merge)
        self.fake.add_token(HUMAN_TOKEN, "octocat")
        self.fake.add_token(APP_TOKEN, APP_LOGIN)
        self.fake.protect(REPO, "main", REQUIRED, merge_queue=merge_queue)
        self.runner = Runner(
            self.fake, REPO, workflows if workflows is not None else workflows_from_readme(ROOT / "README.md"),
            self.root / "actions",
            app_token=APP_TOKEN, app_slug="promotion-bot",
            variables={"PROMETHEUS_URL": prometheus, "PROMOTION_BOT_APP_ID": "4242"},
            secrets={"PROMOTION_BOT_APP_KEY": "-----BEGIN PRIVATE KEY-----"},
            env={"PROMOTION_BOT_CACHE": str(self.root / "cache"), "PROMOTION_BOT_GITHUB_THROTTLE": "0",
                 "PROMOTION_BOT_GITHUB_BACKOFF": "0.01", "PROMOTION_BOT_GITHUB_RETRIES": "2"})

    def close(self) -> None:
        self.fake.stop()
        assert self.fake.validation_errors == []

    def git(self, *args: str) -> str:
        return self.local.repo.git.execute(["git", *args])

    # --- what people do ---------------------------------------------------------------------------

    def propose(self, branch: str, title: str, change) -> int:
        """Branch from main as GitHub has it, ``change(local)``, commit, push, open the PR; the
        workflows it starts run to their end."""
        self.git("fetch", "-q", "origin")
        self.git("checkout", "-q", "-B", branch, "origin/main")
        change(self.local)
        self.local.commit(title)
        self.git("push", "-q", "origin", f"{branch}:{branch}")
        number = self.fake.open_pull_request(REPO, branch, title=title, actor="octocat")
        self.runner.drain()
        return number

    def merge(self, number: int) -> tuple[int, str]:
        return self.fake.merge(REPO, number, actor="octocat")

    def monitor_pass(self) -> None:
        """The schedule fires the monitoring workflow."""
        self.runner.dispatch("schedule", {"schedule": "*/15 * * * *"})
        self.runner.drain()

    # --- what people see ---------------------------------------------------------------------------

    def pull(self, number: int) -> dict:
        return self.fake.pull(REPO, number)

    def statuses(self, number: int) -> dict[str, tuple[str, str]]:
        """The latest (state, description) per context on the PR's head."""
        head = self.pull(number)["head_sha"]
        return {c: (s["state"], s["description"]) for c in REQUIRED if (s := self.fake.latest_status(head, c))}

    def comments(self, number: int) -> list[str]:
        return [c["body"] for c in self.fake.comments_on(REPO, number)]

    def main_serves(self, env: str) -> str:
        path = PROD if env == "prod" else f"environments/{env}/canopy.yaml"
        text = subprocess.run(["git", "-C", str(self.bare), "show", f"main:{path}"], capture_output=True,
                              text=True, check=True).stdout
        return text.split("promotion-bot/variant:", 1)[1].split()[0]


def with_workflow_token(monitor_yml: str) -> str:
    """The README's monitoring workflow without the App: the workflow's own token does the writes."""
    text = monitor_yml.replace("permissions:\n  contents: read ", textwrap.dedent("""\
        permissions:
          contents: write
          pull-requests: write
          issues: write
          statuses: write
          #"""), 1)
    lines, out, skip = text.splitlines(), [], False
    for line in lines:
        if line.strip().startswith("- id: app"):
            skip = True
            continue
        if skip and line.strip().startswith("- uses:"):
            skip = False
        if skip or "steps.app.outputs" in line:
            continue
        out.append(line)
    return "\n".join(out) + "\n"
