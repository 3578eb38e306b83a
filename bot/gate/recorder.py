"""After a gate has judged a PR: its results recorded in the GitOps repository's notes
(`bot.zoo.records` for what a record holds, `bot.vcs.notes` for the Git side).

`check` and the demo write them to the local repository; `github pr` / `github report` also push
them (no force). Recording never changes a verdict: when it cannot happen, the comment says so.
"""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from bot.core.errors import PromotionBotError
from bot.gate.plan import Plan
from bot.gitops.promotions import baseline_ref
from bot.policy.model import Policy
from bot.vcs.notes import NOTES_REF, GitNotes
from bot.verdicts.results import Report
from bot.zoo.records import Record, all_records, note_text, records_for


def version_of(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def baselines(plan: Plan, policy: Policy | None) -> dict[tuple[str, str, str], str | None]:
    out: dict[tuple[str, str, str], str | None] = {}
    if policy is None:
        return out
    for promo in plan.promotions:
        env = policy.environment(promo.environment)
        ref = baseline_ref(policy, env, promo) if env is not None else None
        out[(promo.environment, promo.manifest, str(promo.to_variant))] = str(ref) if ref else None
    return out


def record(repo: str | Path, plan: Plan, policy: Policy | None, report: Report, *, pr: int | None = None,
           now: datetime | None = None) -> list[Record]:
    """Write this run's records into the local notes ref, keyed by the PR's head; replaces the
    records an earlier run on the same commit left for the same promotions."""
    commit = plan.pr_head
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="milliseconds")
    notes = GitNotes(repo)
    records = records_for(report, commit=commit, recorded_at=stamp, pr=pr, baselines=baselines(plan, policy),
                          bot_version=version_of("promotion-bot"), lm_eval_version=version_of("lm_eval"),
                          branch=target_branch(notes, plan.base), tree=notes.tree_of(report.head))
    if records:
        notes.write(commit, note_text(notes.read(commit), records, commit))
    return records


def target_branch(notes: GitNotes, base: str) -> str | None:
    """The branch the PR was judged against: the one whose tip is the base it merged into (the
    default branch first when several point there)."""
    names = notes.branches_at(base)
    for preferred in ("main", "master"):
        if preferred in names:
            return preferred
    return names[0] if names else None


def read_all(repo: str | Path, *, fetch: bool = True) -> tuple[list[Record], str]:
    """Every recorded result of the repository (its remote's notes merged in first when ``fetch``),
    and, when they could not be read, why (the records are then empty)."""
    notes = GitNotes(repo)
    try:
        if fetch and notes.has_remote():
            notes.pull()
        return all_records(notes.all()), ""
    except PromotionBotError as exc:
        return [], f"the recorded gate results in `{NOTES_REF}` could not be read: {exc}"


# What a push says when the token lacks `contents: write` (GitHub over HTTPS: a 403).
_PERMISSION_WORDS = ("The requested URL returned error: 403", "Permission to ", "denied to ",
                     "Write access to repository not granted")


def refused_for_permission(message: str) -> bool:
    return any(word in message for word in _PERMISSION_WORDS)


def record_or_note(repo: str | Path, plan: Plan, policy: Policy | None, report: Report, *, pr: int | None = None,
                   push: bool = False) -> str | None:
    """Record (and push); None when done, else the warning for the comment."""
    try:
        notes = GitNotes(repo)
        if push and not notes.has_remote():
            record(repo, plan, policy, report, pr=pr)
            return f"results recorded in this checkout only: it has no remote `{notes.remote}` to push `{NOTES_REF}` to"
        if push:
            notes.pull()  # first, so a rerun's record replaces the pushed one in the same note
        if record(repo, plan, policy, report, pr=pr) and push:
            notes.push()
    except PromotionBotError as exc:
        if push and refused_for_permission(str(exc)):
            return (f"results not recorded: the workflow's token may not push {NOTES_REF} (fix: give the workflow "
                    "permissions: contents: write; without the records, zoo, the model card, the probes' gate "
                    "rates, the merge queue's reuse of this gate and the verification of a revert have no data)")
        return f"results not recorded in `{NOTES_REF}`: {exc}"
    except Exception as exc:  # a git that hangs or a bug here: said in the comment, the verdict stands
        return f"results not recorded in `{NOTES_REF}`: {type(exc).__name__}: {exc}"
    return None
