"""Which commit put a deployment's variant into prod, and what it replaced."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.errors import InputError
from bot.gitops.manifests import Deployment, parse_manifest


@dataclass(frozen=True)
class PromotionCommit:
    sha: str
    time: float  # committer time: when it landed on the default branch
    subject: str
    previous_variant: str | None  # None: the object was new in that commit
    is_merge: bool


def find_promotion(writer, reader, policy, base: str, deployment: Deployment, history=None) -> PromotionCommit | None:
    """The newest first-parent commit of ``base`` that changed this object's variant, or None when the
    history at hand (``history``'s length, a shallow clone) does not show it.

    ``history`` is `GitWriter.first_parent_history` of the environment's folder, shared by all
    deployments of one pass.
    """
    if history is None:
        history = writer.first_parent_history(base, deployment.manifest)
    for commit in history:
        if deployment.manifest not in commit.paths:
            continue
        if writer.is_shallow_boundary(commit.sha):
            return None  # history cut off by a shallow clone: the promotion is out of sight
        now = _variant_at(reader, policy, commit.sha, deployment)
        before = _variant_at(reader, policy, commit.parents[0], deployment) if commit.parents else None
        if now != before:
            return PromotionCommit(sha=commit.sha, time=commit.time, subject=commit.subject,
                                   previous_variant=before, is_merge=len(commit.parents) > 1)
    return None


def _variant_at(reader, policy, rev: str, deployment: Deployment) -> str | None:
    text = reader.read_text(rev, deployment.manifest)
    if text is None:
        return None
    try:
        objects = parse_manifest(text, deployment.manifest, policy.variant_ref)
    except InputError:
        return None  # a broken manifest in history served nothing we can roll back to
    for obj in objects:
        if obj.object == deployment.object:
            return obj.ref.variant if obj.ref.model == deployment.model else f"{obj.ref.model}/{obj.ref.variant}"
    return None
