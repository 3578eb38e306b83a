"""A merge-queue entry whose tree a gate already judged: that gate's verdict, not a second run.

GitHub's merge queue asks for the required checks again on the commit it builds (the queued PR
merged onto the branch tip, or onto the entry ahead of it). Running a GPU gate twice for the same
content costs an hour and proves nothing new, so the queue's commit passes through when, and only
when, nothing the gate judged differs:

- the queued commit has the tree a recorded gate judged (the PR as merged into its target then),
- the queue's parent commit has the tree that gate's base had (the same policy, baselines and
  environments, so `promotion-order` and every baseline read the same),
- and each promotion the queued commit makes has a recorded `pass` from that run.

The judged commit is not pushed anywhere; it is made again from the record's base and PR head
(`GitReader.as_merged` is deterministic) and must come out as the recorded one. Anything else,
a queue entry behind another one included, is judged like a PR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from bot.core.errors import PromotionBotError
from bot.gate.plan import Plan
from bot.verdicts.results import PASS
from bot.zoo.records import Record


@dataclass(frozen=True)
class Reused:
    pr: int | None  # the PR whose gate is reused
    commit: str  # that gate's PR head
    tree: str  # the tree it judged, the queued commit's tree

    def describe(self) -> str:
        who = f"#{self.pr}" if self.pr else self.commit[:12]
        return f"gate of {who} reused: this queued commit has the tree it judged ({self.tree[:12]})"


def find(reader, plan: Plan, records: Iterable[Record], *, pr: int | None) -> Reused | None:
    """The recorded gate ``plan`` (the queued commit against its parent) can reuse, or None."""
    if plan.errors or plan.promotion_errors or not plan.promotions:
        return None  # nothing costly to save, or something to report: judge it
    try:
        tree, base_tree = reader.tree_sha(plan.merged, ""), reader.tree_sha(plan.base, "")
    except PromotionBotError:
        return None
    runs: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        if pr is None or r.pr in (None, pr):
            runs.setdefault((r.commit, r.judged, r.base), []).append(r)
    needed = {(p.environment, p.manifest, str(p.to_variant)) for p in plan.promotions}
    for (commit, judged, base), run in sorted(runs.items(), key=lambda kv: max(r.recorded_at for r in kv[1]),
                                              reverse=True):
        verdicts = {(r.environment, r.manifest, r.variant): r.verdict for r in run}
        if not needed <= verdicts.keys() or any(verdicts[k] != PASS for k in needed):
            continue
        if _judged_the_same(reader, commit, judged, base, tree, base_tree):
            return Reused(next((r.pr for r in run if r.pr), None), commit, tree)
    return None


def _judged_the_same(reader, commit: str, judged: str, base: str, tree: str, base_tree: str) -> bool:
    try:
        base, commit = reader.resolve(base), reader.resolve(commit)
        if reader.tree_sha(base, "") != base_tree:
            return False
        made = reader.as_merged(base, commit)
        return made == judged and reader.tree_sha(made, "") == tree
    except PromotionBotError:  # a commit this checkout lacks, a merge that conflicts: nothing to reuse
        return False
