"""Which flow judges an event's commits: a PR's gate, a merge-queue entry, or the bot's own revert.

- `merge_group`: the queue built a commit; when a recorded gate judged exactly its tree on the
  same base (bot/gate/reuse.py), every status passes through saying whose gate it reuses; a queued
  revert of the bot's that is verified passes as on its PR; anything else is judged like a PR,
  its verdict in the statuses and the job summary (a queue entry has no PR comment of its own).
- a PR from the bot's revert branch (`promotion-bot/...`, in this repository): verified as the
  monitor verifies it (bot/monitor/restore.py), since the gate would judge it a promotion of the
  old variant and fail `promotion-order`. The branch name only picks the rule: the verification
  reads Git and the recorded results, so a revert pushed by hand under that name gains nothing.
  Not verified: the normal gate judges it.
- anything else: bot/github/pr.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from bot.checks import load_policy
from bot.core.errors import InputError, PromotionBotError
from bot.core.output import write_atomic
from bot.forge.protocol import ForgeError
from bot.gate import pipeline, reuse, statuses
from bot.gate.recorder import read_all
from bot.gate.statuses import Status
from bot.github import actions
from bot.github.event import MERGE_GROUP, RERUN, Activity
from bot.github.pr import NO_MATRIX, plan_contexts, run_pull_request
from bot.github.settings import Settings
from bot.monitor import restore
from bot.monitor.rollback import BRANCH_PREFIX
from bot.policy.model import POLICY_FILE
from bot.render.markdown import COMMENT_MARKER, md_escape
from bot.vcs.reader import GitReader
from bot.vcs.writer import GitWriter
from bot.verdicts.results import PASS, Report


def run_activity(settings: Settings, forge, activity: Activity, *, step: str = "pr", **options) -> int:
    if activity.kind == MERGE_GROUP:
        return run_merge_group(settings, forge, activity, step=step, **options)
    if step != "report":
        revert = _revert_activity(forge, activity)
        if revert is not None:
            code = run_revert(settings, forge, revert, step=step, **options)
            if code is not None:
                return code
    return run_pull_request(settings, forge, activity, step=step, **options)


class NoComment:
    """The forge without PR comments: a merge-queue entry's verdict lives in its statuses and the
    job summary they link to, not in the sticky comment of one of the PRs it holds."""

    def __init__(self, forge) -> None:
        self._forge = forge

    def __getattr__(self, name: str):
        return getattr(self._forge, name)

    def upsert_comment(self, pr_number: int, body: str) -> str:
        return ""

    def update_comment(self, pr_number: int, body: str) -> str | None:
        return None


# --- the merge queue -------------------------------------------------------------------------------

def run_merge_group(settings: Settings, forge, activity: Activity, *, step: str = "pr", **options) -> int:
    if step != "report":  # the plan job already decided whether the gate runs
        shortcut = _queued_shortcut(settings, forge, activity, options.get("policy_path", POLICY_FILE))
        if shortcut is not None:
            wanted, summary = shortcut
            return _publish_statuses(settings, forge, activity.head_sha, wanted, summary, step=step,
                                     json_path=options.get("json_path"))
    return run_pull_request(settings, NoComment(forge), activity, step=step, **options)


def _queued_shortcut(settings: Settings, forge, activity: Activity,
                     policy_path: str) -> tuple[dict[str, Status], str] | None:
    """The statuses of a queued commit that needs no gate run, or None to judge it."""
    reader = GitReader(settings.workspace)
    try:
        plan, policy = pipeline.plan_pr(reader, activity.base_sha, activity.head_sha, policy_path=policy_path)
        if policy is None or plan.errors:
            return None
        records, note = read_all(settings.workspace)
        if note:
            actions.log(note)
        reused = reuse.find(reader, plan, records, pr=activity.pr_number)
        if reused is not None:
            text = reused.describe()
            return statuses.every(plan_contexts(plan), "success", text), f"promotion-bot: {text}"
        if activity.pr_number and forge.get_pull_request(activity.pr_number).head_ref.startswith(BRANCH_PREFIX):
            return _verified(reader, policy, records, activity.base_sha, activity.head_sha, plan.environments)
        return None
    except (PromotionBotError, ForgeError) as exc:  # judged the long way, which reports what fails
        actions.log(f"merge group: no shortcut ({exc})")
        return None
    finally:
        reader.close()


# --- the bot's own revert PRs ----------------------------------------------------------------------

def _revert_activity(forge, activity: Activity) -> Activity | None:
    """The activity of a PR from the bot's revert branch in this repository, else None."""
    if activity.kind == RERUN:
        info = forge.get_pull_request(activity.pr_number)
        if info.state != "open":
            return None
        activity = replace(activity, base_sha=info.base_sha, head_sha=info.head_sha, base_ref=info.base_ref,
                           head_ref=info.head_ref, title=info.title, from_fork=info.from_fork)
    if activity.from_fork or not (activity.head_ref or "").startswith(BRANCH_PREFIX):
        return None
    return activity


def run_revert(settings: Settings, forge, activity: Activity, *, step: str = "pr", policy_path: str = POLICY_FILE,
               json_path: Path | None = None, **_) -> int | None:
    """Publish a verified revert's statuses and comment; None when it is not verified (the gate
    then judges it like any PR)."""
    reader = GitReader(settings.workspace)
    try:
        base = _tip(reader, activity)
        head = reader.resolve(activity.head_sha)
        policy = load_policy.load(reader, base, policy_path=policy_path)
        records, _ = read_all(settings.workspace)
        environments = tuple(e.name for e in policy.environments)
        shortcut = _verified(reader, policy, records, base, head, environments)
    except PromotionBotError as exc:
        actions.log(f"revert PR: not verified ({exc}); judged by the gate")
        return None
    finally:
        reader.close()
    if shortcut is None:
        return None
    wanted, summary = shortcut
    comment = f"{COMMENT_MARKER}\n## ✅ promotion-bot: verified revert\n\n{summary}\n"
    url = ""
    try:
        url = forge.upsert_comment(activity.pr_number, comment)
    except ForgeError as exc:
        actions.annotate("warning", f"could not comment on #{activity.pr_number}: {exc}")
    return _publish_statuses(settings, forge, activity.head_sha, wanted, comment, step=step, json_path=json_path,
                             comment_url=url)


def _tip(reader: GitReader, activity: Activity) -> str:
    if activity.base_ref:
        try:
            return reader.resolve(f"refs/remotes/origin/{activity.base_ref}")
        except InputError:
            pass
    return reader.resolve(activity.base_sha)


def _verified(reader, policy, records, base: str, head: str,
              environments: tuple[str, ...]) -> tuple[dict[str, Status], str] | None:
    writer = GitWriter(reader.path)
    try:
        verification = restore.verify(reader, writer.first_parent_history, policy, records, base, head)
    finally:
        writer.close()
    actions.log(verification.describe())
    if not verification.verified:
        return None
    summary = (f"{md_escape(verification.describe())}.\n\nThis revert restores exactly what the environment served "
               "before, and each variant it serves passed that environment's gate (recorded in "
               "`refs/notes/promotion-bot`), so it is not judged again as a promotion.")
    return restore.statuses_for(verification, list(environments)), summary


# --- publishing ----------------------------------------------------------------------------------

def _publish_statuses(settings: Settings, forge, sha: str, wanted: dict[str, Status], summary: str, *,
                      step: str, json_path: Path | None, comment_url: str = "") -> int:
    actions.append_summary(settings.step_summary, summary)
    report_path = Path(json_path or Path(pipeline.temp_root()) / "promotion-bot-report.json")
    write_atomic(report_path, json.dumps(Report(sha, sha, notes=(summary,)).to_json(), indent=2) + "\n")
    try:
        for context, status in wanted.items():
            forge.set_status(sha, status.state, context, status.description, settings.run_url)
    except ForgeError as exc:
        fix = " (fix: give the workflow `permissions: statuses: write`)" if exc.status == 403 else ""
        actions.annotate("error", f"GitHub failed while setting the statuses: {exc}{fix}")
        return 2
    verdict = PASS if all(s.state == "success" for s in wanted.values()) else "fail"
    outputs = {"verdict": verdict, "comment-url": comment_url, "report-path": str(report_path)}
    actions.set_outputs(settings.output, {**outputs, **NO_MATRIX} if step == "plan" else outputs)
    actions.log(f"verdict: {verdict} ({len(wanted)} statuses set without a gate run)")
    return 0 if verdict == PASS else 1
