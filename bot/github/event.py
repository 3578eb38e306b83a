"""What to do with a GitHub event: one pure function, so every branch is one row of a test table.

Reads only the payload fields it needs. `pull_request_target` is refused: it runs with a
write token in the context of the base repository, and this bot checks out and evaluates
what the PR head contains. `merge_group` (a merge queue asks for the required checks on the
commit it built, `gh-readonly-queue/<branch>/pr-<number>-<sha>`) is judged on that commit
against its parent, the queue entry before it or the branch tip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from bot.core.errors import InputError

CHECK, RERUN, MONITOR, IGNORE, MERGE_GROUP = "check", "rerun", "monitor", "ignore", "merge-group"
PR_ACTIONS = ("opened", "synchronize", "reopened")
QUEUE_REF = re.compile(r"^(?:refs/heads/)?gh-readonly-queue/(?P<branch>.+)/pr-(?P<number>\d+)-[0-9a-f]{40}$")


@dataclass(frozen=True)
class Activity:
    kind: str  # check | rerun | monitor | ignore | merge-group
    reason: str
    pr_number: int | None = None
    base_sha: str | None = None  # known for `check`; a `rerun` asks the API
    head_sha: str | None = None
    head_ref: str | None = None
    base_ref: str | None = None
    title: str | None = None
    from_fork: bool = False


def _field(payload: Mapping[str, Any], dotted: str) -> Any:
    node: Any = payload
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise InputError("GITHUB_EVENT_PATH", dotted, "is missing from the event payload",
                             "run the bot from the workflow event it supports (pull_request)")
        node = node[part]
    return node


def _pr_number(raw: Any, field: str) -> int:
    text = str(raw if raw is not None else "").strip().lstrip("#")
    if not text.isdigit() or int(text) <= 0:
        raise InputError("GITHUB_EVENT_PATH", field, f"{raw!r} is not a pull request number",
                         "run the workflow with the PR number as input, e.g. `pr: 42`")
    return int(text)


def find_activity(event_name: str, payload: Mapping[str, Any], *, pr_input: str | None = None) -> Activity:
    if event_name == "pull_request":
        action = payload.get("action")
        if action not in PR_ACTIONS:
            return Activity(IGNORE, f"pull_request action {action!r} needs no check (only {', '.join(PR_ACTIONS)})")
        pr = _field(payload, "pull_request")
        head_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
        base_repo = ((pr.get("base") or {}).get("repo") or {}).get("full_name")
        return Activity(
            CHECK, f"pull_request {action}",
            pr_number=int(_field(payload, "pull_request.number")),
            base_sha=str(_field(payload, "pull_request.base.sha")),
            head_sha=str(_field(payload, "pull_request.head.sha")),
            head_ref=str(_field(payload, "pull_request.head.ref")),
            base_ref=str(_field(payload, "pull_request.base.ref")),
            title=str(pr.get("title") or ""),
            from_fork=head_repo is None or head_repo != base_repo,  # a deleted fork has no head repo
        )
    if event_name == "merge_group":
        return _merge_group(payload)
    if event_name == "pull_request_target":
        raise InputError("workflow", "on.pull_request_target",
                         "this bot must not run on pull_request_target: it would evaluate fork code with a write token",
                         "trigger the workflow with `on: pull_request`")
    if event_name == "workflow_dispatch":
        inputs = payload.get("inputs") or {}
        raw = pr_input if pr_input is not None else inputs.get("pr")
        if raw in (None, ""):
            return Activity(IGNORE, "workflow_dispatch without a `pr` input: nothing to rerun")
        number = _pr_number(raw, "inputs.pr")
        return Activity(RERUN, f"workflow_dispatch rerun of #{number}", pr_number=number)
    if event_name in ("schedule", "repository_dispatch"):
        return Activity(MONITOR, f"{event_name}: monitoring pass")
    return Activity(IGNORE, f"event {event_name!r} is not handled")


def _merge_group(payload: Mapping[str, Any]) -> Activity:
    action = payload.get("action")
    if action != "checks_requested":
        return Activity(IGNORE, f"merge_group action {action!r} needs no check (only checks_requested)")
    head_ref = str(_field(payload, "merge_group.head_ref"))
    queued = QUEUE_REF.match(head_ref)
    number = int(queued["number"]) if queued else None
    base_ref = str(_field(payload, "merge_group.base_ref")).removeprefix("refs/heads/")
    head_commit = (payload.get("merge_group") or {}).get("head_commit") or {}
    return Activity(
        MERGE_GROUP, f"merge_group into {base_ref}" + (f" for #{number}" if number else ""),
        pr_number=number,
        base_sha=str(_field(payload, "merge_group.base_sha")),  # the group's parent: judged against it, not the branch
        head_sha=str(_field(payload, "merge_group.head_sha")),
        head_ref=head_ref.removeprefix("refs/heads/"),
        base_ref=None,
        title=str(head_commit.get("message") or "").split("\n", 1)[0],
        from_fork=False,  # the queue's branch is in the base repository, built by GitHub
    )
