"""Which commit put a deployment's variant into prod, and what it replaced."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import InputError
from bot.manifests import Deployment, parse_manifest


@dataclass(frozen=True)
class PromotionCommit:
    sha: str
    time: float  # committer time: when it landed on the default branch
    subject: str
    previous_variant: str | None  # None: the object was new in that commit
    is_merge: bool


def find_promotion(writer, reader, policy, base: str, deployment: Deployment, max_commits: int = 200) -> PromotionCommit | None:
    """The newest first-parent commit of ``base`` that changed this object's variant, or None when the
    history at hand (max_commits, a shallow clone) does not show it."""
    for sha in writer.first_parent_log(base, deployment.manifest, max_commits):
        if writer.is_shallow_boundary(sha):
            return None  # history cut off by a shallow clone: the promotion is out of sight
        parents = writer.parents(sha)
        now = _variant_at(reader, policy, sha, deployment)
        before = _variant_at(reader, policy, parents[0], deployment) if parents else None
        if now != before:
            return PromotionCommit(sha=sha, time=writer.commit_time(sha), subject=writer.subject(sha),
                                   previous_variant=before, is_merge=len(parents) > 1)
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
