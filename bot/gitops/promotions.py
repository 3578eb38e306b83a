"""Step 1 of a PR: which environment manifests changed, and which variant each now serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from bot.core.errors import ErrorRecord, InputError
from bot.gitops.manifests import ManifestIndex, is_ignored, is_manifest, refuse_special_entries
from bot.policy.model import ENVIRONMENTS_ROOT, Policy
from bot.verdicts.results import Removal
from bot.zoo.variants import ZOO_ROOT, VariantRef


@dataclass(frozen=True)
class Promotion:
    environment: str
    manifest: str
    object: str
    application: str
    served_model: str
    change: str  # added | modified | renamed
    from_variant: VariantRef | None
    to_variant: VariantRef
    canary_steps: tuple[Mapping[str, Any], ...] | None = None

    def to_json(self) -> dict:
        return {
            "environment": self.environment, "manifest": self.manifest, "object": self.object,
            "application": self.application, "served_model": self.served_model, "change": self.change,
            "from_variant": None if self.from_variant is None else str(self.from_variant),
            "to_variant": str(self.to_variant),
            "canary_steps": None if self.canary_steps is None else [dict(s) for s in self.canary_steps],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Promotion":
        def ref(text):
            return None if text is None else VariantRef(*text.split("/", 1))

        steps = d.get("canary_steps")
        return cls(environment=d["environment"], manifest=d["manifest"], object=d["object"],
                   application=d["application"], served_model=d["served_model"], change=d["change"],
                   from_variant=ref(d.get("from_variant")), to_variant=ref(d["to_variant"]),
                   canary_steps=None if steps is None else tuple(steps))


@dataclass(frozen=True)
class Discovery:
    promotions: tuple[Promotion, ...]
    removals: tuple[Removal, ...]
    errors: tuple[ErrorRecord, ...]
    notes: tuple[str, ...] = ()


def discover(reader, base: str, head: str, policy: Policy, *, indexes: dict | None = None,
             whole_at_base: Iterable[str] = ()) -> Discovery:
    """Compare what Argo CD would apply in each environment the PR touches, at ``base`` and ``head``;
    bad files become errors, not crashes.

    An environment is touched when any file under its folder changes, and always when it renders
    with kustomize (its bases may live anywhere in the repository). Objects are matched by key (API
    group, kind, namespace, name) across the environment's files, so moving an object between files
    is not a promotion unless its variant changes.

    ``indexes``: revision → ManifestIndex, filled here for the caller's checks to reuse.
    ``whole_at_base``: environments the caller's checks read whole at the base; read so first, the
    keys of their unchanged files are taken from that one parse instead of being read twice.
    """
    indexes = {} if indexes is None else indexes
    parsed: dict = next((i.parsed for i in indexes.values()), {})  # a file unchanged between revisions: parsed once
    base_index = indexes.setdefault(base, ManifestIndex(reader, base, policy, parsed=parsed))
    head_index = indexes.setdefault(head, ManifestIndex(reader, head, policy, parsed=parsed))
    promotions: list[Promotion] = []
    removals: list[Removal] = []
    errors: list[ErrorRecord] = []

    roots = {ENVIRONMENTS_ROOT} | {e.folder for e in policy.environments}
    touched: set[str] = set()
    changes = reader.changed_files(base, head)
    changed = frozenset(p for c in changes for p in (c.old_path, c.new_path) if p)
    errors.extend(attribute_changes(changes, policy))
    for change in changes:
        for path in (change.old_path, change.new_path):
            if path is None or not any(path == root or path.startswith(root + "/") for root in roots):
                continue
            env = policy.environment_for_path(path)
            if env is not None:
                touched.add(env.name)
            elif is_manifest(path) or path in roots:
                errors.append(_outside_environments(path, policy).as_record())
    def ignored(path: str) -> bool:
        env = policy.environment_for_path(path)
        return env is not None and is_ignored(env, path)

    try:
        for root in sorted(roots):
            refuse_special_entries(reader, head, root, ignored=ignored)
    except InputError as exc:
        errors.append(exc.as_record())
    notes: list[str] = []
    for name in whole_at_base:
        try:
            base_index.all_objects(policy.environment(name))
        except InputError:
            pass  # the check that reads it reports it
    for env in policy.environments:
        if env.name not in touched and not (head_index.renders_with_kustomize(env) or base_index.renders_with_kustomize(env)):
            continue
        try:
            _compare(env, base_index, head_index, changed, promotions, removals, errors, notes,
                     touched=env.name in touched)
        except InputError as exc:
            errors.append(exc.as_record())
    notes += [f"{name} renders remote kustomize resources, pinned: {', '.join(entries)}"
              for name, entries in sorted(head_index.remote.items())]
    return Discovery(tuple(promotions), tuple(removals), tuple(dict.fromkeys(errors)), tuple(notes))


def attribute_changes(changes, policy: Policy) -> list[ErrorRecord]:
    """An error for each `.gitattributes` the PR adds, changes or removes whose rules reach the
    environments or the zoo. The bot reads blobs as committed; a checkout (Argo CD's, a server's)
    applies the attributes (`filter`, `eol`, `working-tree-encoding`...) and `git archive` applies
    `export-subst` and `export-ignore`, so such a file can make what runs differ from what was judged."""
    roots = {ENVIRONMENTS_ROOT, ZOO_ROOT} | {e.folder for e in policy.environments}
    out = []
    for change in changes:
        for path in dict.fromkeys(p for p in (change.old_path, change.new_path) if p):
            if path.rsplit("/", 1)[-1] != ".gitattributes":
                continue
            folder = path.rsplit("/", 1)[0] if "/" in path else ""
            reached = sorted(r for r in roots if not folder or r == folder or r.startswith(folder + "/")
                             or folder.startswith(r + "/"))
            if reached:
                out.append(ErrorRecord(path, "", (
                    f"this PR {change.status if change.status != 'renamed' else 'moves'} a .gitattributes whose rules reach "
                    f"{', '.join(r + '/' for r in reached)}: attributes (filters, eol conversion, export-subst, "
                    "export-ignore) change the files a checkout or an archive writes, so what Argo CD and the model "
                    "servers read could differ from the blobs the bot judges (fix: leave .gitattributes out of PRs "
                    "that touch environments/ or models/, and keep attribute rules away from those folders)")))
    return out


def _outside_environments(path: str, policy: Policy) -> InputError:
    folder = "/".join(path.split("/")[:2])
    return InputError(path, "", f"is in {folder}/, which is not an environment of {policy.file}",
                      f"add an environment for {folder} to {policy.file} or move the manifest "
                      f"into one of: {', '.join(e.folder for e in policy.environments)}")


def _compare(env, base_index, head_index, changed, promotions, removals, errors, notes, *, touched: bool) -> None:
    after = head_index.all_objects(env, changed=changed)
    try:
        before = base_index.all_objects(env, changed=changed)
    except InputError:
        before = {}  # the base cannot be read as Argo CD would: judge everything the head serves
    # A kustomize environment changes when what it renders does, wherever its bases live.
    if touched or head_index.rendered.get(env.name) != base_index.rendered.get(env.name):
        errors.extend(_blind(env, before, after, changed, head_index, base_index))
    annotated = sorted({o.label for o in after.values() if o.annotated and not o.keys_only})
    if annotated:
        notes.append(f"{env.name}: {len(annotated)} object(s) carry the variant but serve no model, and are not "
                     f"promotions: {', '.join(annotated[:5])}{' …' if len(annotated) > 5 else ''}")
    for key, obj in after.items():
        if obj.keys_only:
            continue  # in a file the PR does not change: the same object at base
        previous = before.get(key)
        served = obj.served
        if served is None:
            if previous is not None and previous.served is not None:
                raise InputError(obj.manifest, obj.label,
                                 f"no longer names its variant (it served {previous.served.ref}), but Argo CD still "
                                 "applies it", "keep the variant annotation; to take the variant out of "
                                 f"{env.name}, delete the object")
            continue
        if previous is not None and previous.served is not None and previous.served.ref == served.ref:
            continue  # the manifest changed, the variant it serves did not
        application = served.application
        if previous is not None and previous.served is not None:
            # Who the object serves is what it was at the base: a PR that relabels prod's object as
            # another application would otherwise ride that application's evidence (promotion-order).
            application = previous.served.application
            if served.application != application:
                raise InputError(obj.manifest, obj.label,
                                 f"changes its application from {application!r} to {served.application!r} in the "
                                 f"same PR that changes its variant ({previous.served.ref} -> {served.ref}): the gate "
                                 "judges a promotion by the application the object served",
                                 "change the application (promotion-bot/app annotation, app.kubernetes.io/name or app "
                                 "label) in a PR of its own, then promote")
        change = "added" if previous is None else "renamed" if previous.manifest != obj.manifest else "modified"
        if env.require_canary and served.canary_steps is None:
            errors.append(ErrorRecord(obj.manifest, obj.label, (
                f"is promoted to {served.ref} in {env.name}, whose policy says `require_canary: true`, but it is not an "
                "Argo Rollouts Rollout with canary steps: all of the traffic would switch at once (fix: serve it with "
                "a Rollout whose spec.strategy.canary.steps shift traffic in steps, or one whose workloadRef names "
                f"this object; or remove require_canary from {env.name})")))
            continue
        promotions.append(Promotion(
            environment=env.name, manifest=served.manifest, object=served.object, application=application,
            served_model=served.served_model, change=change,
            from_variant=None if previous is None or previous.served is None else previous.served.ref,
            to_variant=served.ref, canary_steps=served.canary_steps,
        ))
    for key, obj in before.items():
        if key not in after and obj.served is not None and not obj.keys_only:
            removals.append(Removal(environment=env.name, manifest=obj.manifest, object=obj.label,
                                    variant=str(obj.served.ref)))


def _served_at(index, env) -> list:
    try:
        return index.environment_objects(env)
    except InputError:
        return []


def _blind(env, before, after, changed, head_index, base_index) -> list[ErrorRecord]:
    """Errors for what the bot cannot see in an environment the PR touches: no object there names a
    variant (so a model bump would pass as "nothing to promote"), or the PR changes files of an
    environment that serves a model which the bot does not read (ignored ones)."""
    served = any(o.served is not None for o in (*before.values(), *after.values()))
    if not served:  # files the PR does not change were read for their keys only: read them whole
        served = bool(head_index.environment_objects(env)) or bool(_served_at(base_index, env))
    mine = sorted(p for p in changed if p.startswith(env.folder + "/"))
    if not served:
        return [ErrorRecord(env.folder, "", (
            f"this PR changes {env.name} ({', '.join(mine[:3]) or 'what its kustomization renders'}), but no object "
            "there names a zoo variant, before or after, so the bot cannot see which model it serves or whether the "
            "PR changes it (fix: name the variant where the model is set: the annotation promotion-bot/variant on the "
            "serving object; `variant_ref` fields for the field that holds it (a KServe storageUri, a kustomize "
            "`images:` tag, container args); `variant_ref.values` for a Helm values file)"))]
    unread = set(head_index.unread.get(env.name, ())) | set(base_index.unread.get(env.name, ()))
    chart = [p for p in mine if p in unread]
    if chart:
        return [ErrorRecord(chart[0], "", (
            f"this PR changes {', '.join(chart[:3])}, part of {env.name}'s Helm chart, which the bot does not render "
            "(it reads only the values files `variant_ref.values` maps): it cannot see whether the chart now serves "
            "another model (fix: change the chart in a PR of its own, or map every values file that can set the model "
            f"under `variant_ref.values` of {env.name})"))]
    hidden = [p for p in mine if is_ignored(env, p)]
    if hidden:
        return [ErrorRecord(hidden[0], "", (
            f"this PR changes {', '.join(hidden[:3])}, which {env.name}'s `ignore:` keeps the bot from reading, in an "
            f"environment that serves a model: if Argo CD applies it, the bot cannot see what it changes (fix: if "
            f"Argo CD applies the file, take it out of `ignore:` of {env.name} so it is judged; if it does not, change "
            "it in a PR of its own)"))]
    return []


def baseline_ref(policy: Policy, env, promo: Promotion) -> VariantRef | None:
    """What the candidate is measured against: the environment's `baseline` rule, else the model's baseline."""
    if env.baseline == "deployed" and promo.from_variant is not None:
        return promo.from_variant
    if env.baseline and env.baseline != "deployed":
        return VariantRef(promo.to_variant.model, env.baseline)
    name = policy.baselines.get(promo.to_variant.model)
    return VariantRef(promo.to_variant.model, name) if name else None
