"""Is a revert safe to merge without a human? Verified from Git and the recorded gate results.

A revert PR rolls an environment back; the normal gate would judge it as a promotion of the old
variant and fail it (`promotion-order`: staging serves the new one now), and with the workflow's
token no gate runs on it at all. So the monitor (and the PR gate, for the bot's own revert
branches) verifies the revert instead:

1. it changes nothing but environment folders, and zoo folders of variants no environment serves
   after it (a promotion PR that added its variant is reverted with that variant);
2. each environment it changes ends exactly as it was after an earlier commit of the default
   branch's first-parent history (Argo CD served that tree), byte for byte (Git tree ids);
3. every variant that tree serves passed that environment's gate for that manifest: a `pass`
   recorded in `refs/notes/promotion-bot` (bot/zoo/records.py).

Only then is every status `success`; otherwise they are `failure`, naming what could not be
verified, and a human decides. A state from before the bot gated anything (the environment's
first variant) cannot be verified: it never passed a gate.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.errors import PromotionBotError
from bot.gate import statuses
from bot.gate.statuses import Status
from bot.gitops.manifests import ManifestIndex
from bot.gitops.variant_changes import variant_folder
from bot.policy.model import Policy
from bot.verdicts.results import PASS
from bot.zoo.records import Record


@dataclass(frozen=True)
class Restored:
    environment: str
    served_at: str  # the commit after which the environment held exactly this tree
    replaced_by: str | None  # the commit that changed it next (what the revert undoes)
    gates: tuple[Record, ...]  # a passing record for every variant the tree serves


@dataclass(frozen=True)
class Verification:
    verified: bool
    reason: str  # why not; empty when verified
    restored: tuple[Restored, ...] = ()

    @property
    def environments(self) -> tuple[str, ...]:
        return tuple(r.environment for r in self.restored)

    def describe(self) -> str:
        """One line for a status (GitHub keeps 140 characters) and the PR body."""
        if not self.verified:
            return f"revert not verified: {self.reason}"
        parts = []
        for r in self.restored:
            prs = ", ".join(dict.fromkeys(f"#{g.pr}" if g.pr else g.commit[:12] for g in r.gates))
            parts.append(f"{r.environment} as served at {r.served_at[:12]}, gated in {prs}")
        return "verified revert: restores " + "; ".join(parts)


def verify(reader, history, policy: Policy, records: list[Record], base: str, head: str) -> Verification:
    """Whether ``head`` (a revert branch), merged into ``base`` (the default branch's tip), only
    restores environments to states they served and that passed their gates.

    ``history(rev, folder)``: the first-parent commits of ``rev`` that changed ``folder``, newest
    first (bot.vcs.writer.GitWriter.first_parent_history)."""
    try:
        merged = reader.as_merged(base, head)
        changed = sorted({p for c in reader.changed_files(base, merged) for p in (c.old_path, c.new_path) if p})
    except PromotionBotError as exc:
        return Verification(False, f"cannot compare it with the default branch: {exc}")
    if not changed:
        return Verification(False, "it changes nothing")
    index = ManifestIndex(reader, merged, policy)
    envs = []
    for path in changed:
        env = policy.environment_for_path(path)
        if env is not None:
            envs.append(env)
            continue
        folder = variant_folder(path)
        if folder is None:
            return Verification(False, f"it changes {path}, outside every environment and the zoo")
        try:
            served = any(o.ref.folder == folder for e in policy.environments for o in index.environment_objects(e))
        except PromotionBotError as exc:
            return Verification(False, f"an environment cannot be read after it: {exc}")
        if served:
            return Verification(False, f"it changes {folder}, which an environment serves after it")
    restored = []
    for env in {e.name: e for e in envs}.values():
        found = _restored(reader, history, index, env, records, base, merged)
        if isinstance(found, str):
            return Verification(False, found)
        restored.append(found)
    return Verification(True, "", tuple(restored))


def _restored(reader, history, index: ManifestIndex, env, records: list[Record], base: str,
              merged: str) -> Restored | str:
    target = reader.tree_sha(merged, env.folder)
    if target is None:
        return f"it deletes {env.folder}/"
    commits = history(base, env.folder)
    served_at = replaced_by = None
    for newer, commit in zip([None, *commits], commits):
        if reader.tree_sha(commit.sha, env.folder) == target:
            served_at, replaced_by = commit.sha, newer.sha if newer else None
            break
    if served_at is None or replaced_by is None:
        return f"{env.folder}/ after it is a tree {env.name} never served on the default branch"
    try:
        objects = index.environment_objects(env)
    except PromotionBotError as exc:
        return f"{env.folder}/ cannot be read after it: {exc}"
    passed = {(r.manifest, r.variant): r for r in records if r.environment == env.name and r.verdict == PASS}
    gates = []
    for obj in objects:
        gate = passed.get((obj.manifest, str(obj.ref)))
        if gate is None:
            return (f"no gate of {env.name} recorded a pass for {obj.ref} in {obj.manifest} "
                    "(a state from before the bot, or results not recorded)")
        gates.append(gate)
    return Restored(env.name, served_at, replaced_by, tuple(gates))


def statuses_for(verification: Verification, environments: list[str]) -> dict[str, Status]:
    """Every context of the policy on the revert's head: `success` only when verified; the
    environments it does not change are untouched (it changes nothing but the verified ones)."""
    contexts = statuses.contexts_for(environments)
    if not verification.verified:
        return statuses.every(contexts, "failure", verification.describe())
    changed = set(verification.environments)
    out = {}
    for ctx in contexts:
        env = statuses.environment_of(ctx)
        out[ctx] = Status("success", verification.describe()) if env is None or env in changed else statuses.untouched(env)
    return out
