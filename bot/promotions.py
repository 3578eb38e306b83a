"""Step 1 of a PR: which environment manifests changed, and which variant each now serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from bot.errors import ErrorRecord, InputError
from bot.manifests import ManifestIndex, ServedObject, by_object, is_manifest
from bot.policy import ENVIRONMENTS_ROOT, Policy
from bot.results import Removal
from bot.zoo import VariantRef


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


def discover(reader, base: str, head: str, policy: Policy) -> Discovery:
    """Compare the environment manifests of ``base`` and ``head``; bad files become errors, not crashes."""
    base_index = ManifestIndex(reader, base, policy)
    head_index = ManifestIndex(reader, head, policy)
    promotions: list[Promotion] = []
    removals: list[Removal] = []
    errors: list[ErrorRecord] = []

    roots = {ENVIRONMENTS_ROOT} | {e.folder for e in policy.environments}
    changes = [c for c in reader.changed_files(base, head)
               if any((c.new_path or c.old_path or "").startswith(root + "/") for root in roots)
               and is_manifest(c.new_path or c.old_path or "")]
    base_index.prefetch(c.old_path for c in changes if c.old_path)
    head_index.prefetch(c.new_path for c in changes if c.new_path)
    for change in changes:
        try:
            _compare(change, policy, base_index, head_index, promotions, removals)
        except InputError as exc:
            errors.append(exc.as_record())
    return Discovery(tuple(promotions), tuple(removals), tuple(errors))


def _environment_of(path: str | None, policy: Policy):
    if path is None:
        return None
    env = policy.environment_for_path(path)
    if env is None:
        folder = "/".join(path.split("/")[:2])
        raise InputError(path, "", f"is in {folder}/, which is not an environment of {policy.file}",
                         f"add an environment for {folder} to {policy.file} or move the manifest "
                         f"into one of: {', '.join(e.folder for e in policy.environments)}")
    return env


def _compare(change, policy, base_index, head_index, promotions, removals) -> None:
    new_env = _environment_of(change.new_path, policy)
    old_env = _environment_of(change.old_path, policy)
    before: dict[str, ServedObject] = by_object(base_index.objects_in(change.old_path) or []) if change.old_path else {}
    after: dict[str, ServedObject] = by_object(head_index.objects_in(change.new_path) or []) if change.new_path else {}
    same_env = old_env is not None and new_env is not None and old_env.name == new_env.name

    for key, obj in after.items():
        previous = before.get(key) if same_env else None
        if previous is not None and previous.ref == obj.ref:
            continue  # the manifest changed, the variant it serves did not
        promotions.append(Promotion(
            environment=new_env.name, manifest=obj.manifest, object=obj.object, application=obj.application,
            served_model=obj.served_model,
            change=change.status if change.status != "deleted" else "modified",
            from_variant=None if previous is None else previous.ref, to_variant=obj.ref,
            canary_steps=obj.canary_steps,
        ))
    for key, obj in before.items():
        if same_env and key in after:
            continue
        removals.append(Removal(environment=old_env.name, manifest=obj.manifest, object=obj.object, variant=str(obj.ref)))


def baseline_ref(policy: Policy, env, promo: Promotion) -> VariantRef | None:
    """What the candidate is measured against: the environment's `baseline` rule, else the model's baseline."""
    if env.baseline == "deployed" and promo.from_variant is not None:
        return promo.from_variant
    if env.baseline and env.baseline != "deployed":
        return VariantRef(promo.to_variant.model, env.baseline)
    name = policy.baselines.get(promo.to_variant.model)
    return VariantRef(promo.to_variant.model, name) if name else None
