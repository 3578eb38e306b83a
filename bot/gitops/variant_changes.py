"""A variant is its content: what a PR changes under `models/` is judged like a manifest change.

The gate passed a variant's files, not its name. A PR that edits the files of a variant some
environment serves would otherwise ship untested weights without touching a manifest. By default
(`zoo.immutable: true`) that is refused; with `zoo.immutable: false` every environment serving the
variant re-runs its gate on the new files (a promotion of the variant to itself, change "content").
"""

from __future__ import annotations

from bot.core.errors import ErrorRecord
from bot.gitops.manifests import ManifestIndex
from bot.gitops.promotions import Promotion
from bot.policy.model import Policy
from bot.zoo.variants import ZOO_ROOT


def variant_folder(path: str) -> str | None:
    """`models/<model>/<variant>` of a path inside a variant folder; None for anything else."""
    parts = path.split("/")
    return "/".join(parts[:3]) if len(parts) >= 4 and parts[0] == ZOO_ROOT else None


def changed_variants(reader, base: str, head: str) -> dict[str, list[str]]:
    """Variant folder → the paths this PR changes in it."""
    changed: dict[str, list[str]] = {}
    for change in reader.changed_files(base, head, f"{ZOO_ROOT}/"):
        for path in {change.old_path, change.new_path} - {None}:
            folder = variant_folder(path)
            if folder:
                changed.setdefault(folder, []).append(path)
    return changed


def content_changes(reader, base: str, head: str, policy: Policy,
                    promotions: tuple[Promotion, ...]) -> tuple[tuple[Promotion, ...], tuple[ErrorRecord, ...]]:
    """Re-gating promotions (`zoo.immutable: false`) or errors (the default) for every variant this
    PR changes that an environment serves at ``base``. Objects the PR already promotes are left to
    their promotion."""
    changed = changed_variants(reader, base, head)
    if not changed:
        return (), ()
    base_index, head_index = ManifestIndex(reader, base, policy), ManifestIndex(reader, head, policy)
    promoted = {(p.environment, p.manifest, p.object) for p in promotions}
    regates: list[Promotion] = []
    errors: list[ErrorRecord] = []
    for folder, paths in sorted(changed.items()):
        serving = [(env, o) for env in policy.environments for o in base_index.environment_objects(env)
                   if o.ref.folder == folder]
        if not serving:
            continue  # not deployed anywhere: a promotion of it is gated on its new files
        envs = sorted({env.name for env, _ in serving}, key=[e.name for e in policy.environments].index)
        if policy.zoo_immutable:
            errors.append(ErrorRecord(sorted(paths)[0], "", (
                f"this PR changes {folder} ({len(paths)} file(s)), which {', '.join(envs)} serve(s): a deployed "
                f"variant is immutable, since what passed its gates was these files (fix: put the new files in a new "
                f"variant folder and promote it, or set `zoo: {{immutable: false}}` in {policy.file} on the base "
                f"branch to re-gate the environments serving it)")))
            continue
        for env, obj in serving:
            now = {(o.manifest, o.object): o for o in head_index.environment_objects(env)}.get((obj.manifest, obj.object))
            if (env.name, obj.manifest, obj.object) in promoted or now is None or now.ref != obj.ref:
                continue
            regates.append(Promotion(environment=env.name, manifest=obj.manifest, object=obj.object,
                                     application=obj.application, served_model=obj.served_model, change="content",
                                     from_variant=obj.ref, to_variant=obj.ref, canary_steps=obj.canary_steps))
    return tuple(regates), tuple(errors)
