"""A revert PR that merges in minutes: its statuses set by the monitor, and with
`rollback.merge: auto`, its merge.

Events created with the workflow's `GITHUB_TOKEN` start no workflow runs, so on the revert PR
the monitor opens no gate ever sets the required `promotion-bot` contexts: the monitor sets every
one of them itself on the revert's head, `success` only for a verified revert
(bot/monitor/restore.py). With `merge: auto` and a tripped rule marked `critical`, a verified
revert is merged through the forge: GitHub's auto-merge when the repository allows it (enabled
before the statuses are set, so GitHub merges once every required check, the repository's other
workflows' included, is green), else a plain merge once the statuses are set. A merge GitHub
refuses (another required check still pending) is tried again by the next pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bot.forge.protocol import ForgeError
from bot.monitor.restore import Verification, statuses_for
from bot.policy.rollback import AUTO
from bot.zoo.records import Record


@dataclass(frozen=True)
class Landing:
    """What the monitor needs to land a revert: read once per pass."""

    history: Callable  # (rev, folder) -> first-parent commits changing folder, newest first
    records: tuple[Record, ...]  # every recorded gate result
    environments: tuple[str, ...]  # the policy's, one status context each
    merge: str  # rollback.merge: manual | auto
    critical: frozenset[str]  # names of the rules marked critical
    status_url: str | None = None  # the run the statuses link to
    records_note: str = ""  # why no records could be read, for the PR body

    def merges(self, tripped_rules: list[str]) -> bool:
        return self.merge == AUTO and any(name in self.critical for name in tripped_rules)


def land(forge, number: int, head_sha: str, verification: Verification, landing: Landing, *,
         merge: bool) -> str:
    """Set the revert's statuses and, when ``merge`` and verified, merge it. Returns what happened,
    in words, for the monitor's report."""
    enabled = False
    said = []
    if merge and verification.verified:
        if forge.allows_auto_merge():
            try:
                forge.enable_auto_merge(number)
                enabled = True
                said.append("auto-merge enabled")
            except ForgeError as exc:  # e.g. nothing left to wait for ("clean status"): merge below
                said.append(f"auto-merge not enabled ({exc.message})")
    for context, status in statuses_for(verification, list(landing.environments)).items():
        forge.set_status(head_sha, status.state, context, status.description, landing.status_url)
    said.append("statuses set: " + ("success" if verification.verified else "failure"))
    if merge and verification.verified and not enabled:
        said.append(try_merge(forge, number, head_sha))
    elif merge and not verification.verified:
        said.append("not merged: the revert is not verified")
    return "; ".join(said)


def try_merge(forge, number: int, head_sha: str) -> str:
    try:
        forge.merge_pull_request(number, head_sha)
        return "merged"
    except ForgeError as exc:  # a required check still pending, a merge queue: the next pass tries again
        return f"not merged yet ({exc.message}); the next pass tries again"
