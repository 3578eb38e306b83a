"""What a PR changes that the bot reads: per environment, and at all.

Every environment of the policy gets a commit status on every PR, so a team can require any of
them without a PR waiting forever on one nobody sets. An environment the PR does not touch is
`success`, but only when that is computed here, not assumed: the PR changes none of the files
Argo CD applies for it (its folder, minus `ignore:`) and none of the files of a variant it
serves, before or after the PR. An environment rendered with kustomize reads bases that may
live anywhere, so any change outside the zoo and the other environments' folders touches it.

A PR that changes nothing the bot reads at all (docs, CI files, application code) needs no
comment: the bot sets its statuses and is done in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.errors import InputError, PromotionBotError
from bot.core.yamlio import load_one
from bot.gitops.manifests import ManifestIndex, is_ignored
from bot.gitops.variant_changes import variant_folder
from bot.policy.model import ENVIRONMENTS_ROOT, POLICY_FILE, Policy
from bot.zoo.variants import ZOO_ROOT

EVALS_ROOT = "evals"  # lm-eval tasks and application-flow suites, read at the base revision


@dataclass(frozen=True)
class Scope:
    environments: tuple[str, ...]  # every environment of the policy, in promotion order
    touched: frozenset[str]  # those whose files or served variants this PR changes
    relevant: bool  # the PR changes something the bot reads


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def reads(policy: Policy, path: str, *, policy_path: str = POLICY_FILE) -> bool:
    """Whether the bot reads ``path`` when it judges a PR or watches prod."""
    folders = [ENVIRONMENTS_ROOT, ZOO_ROOT, EVALS_ROOT, *(e.folder for e in policy.environments)]
    if policy.templates:
        folders.append(policy.templates)
    return path == policy_path or any(_under(path, f) for f in folders)


def scope_of(reader, base: str, head: str, policy: Policy, *, extra_environments: tuple[str, ...] = (),
             policy_path: str = POLICY_FILE) -> Scope:
    """The environments ``head`` (the PR as merged) touches against ``base``, computed from the
    diff and, when the zoo changes, from what each environment serves on both sides."""
    changed = sorted({p for c in reader.changed_files(base, head) for p in (c.old_path, c.new_path) if p})
    names = tuple(dict.fromkeys([*(e.name for e in policy.environments), *extra_environments]))
    base_index = head_index = None
    kustomized = set()
    if changed:
        base_index, head_index = ManifestIndex(reader, base, policy), ManifestIndex(reader, head, policy)
        kustomized = {e.name for e in policy.environments
                      if base_index.renders_with_kustomize(e) or head_index.renders_with_kustomize(e)}
    folders = {e.name: e.folder for e in policy.environments}
    variants = {variant_folder(p) for p in changed} - {None}
    touched: set[str] = set()
    for env in policy.environments:
        if any(_under(p, env.folder) and not is_ignored(env, p) for p in changed):
            touched.add(env.name)
        elif env.name in kustomized and any(
                not _under(p, ZOO_ROOT) and not any(_under(p, f) for n, f in folders.items() if n != env.name)
                for p in changed):
            touched.add(env.name)
        elif variants and _serves_any(env, variants, base_index, head_index):
            touched.add(env.name)
    relevant = bool(kustomized) or any(reads(policy, p, policy_path=policy_path) for p in changed)
    return Scope(names, frozenset(touched), relevant and bool(changed))


def _serves_any(env, folders: set[str], *indexes) -> bool:
    """Whether ``env`` serves a variant in one of ``folders`` at either revision. An environment
    that cannot be read counts as touched: its verdict must come from the gate, not from here."""
    for index in indexes:
        try:
            if any(o.ref.folder in folders for o in index.environment_objects(env)):
                return True
        except PromotionBotError:  # an unreadable environment is the gate's to report, never "untouched"
            return True
    return False


def environment_names(text: str | None) -> tuple[str, ...]:
    """Environment names read leniently from a policy's text, for statuses when the policy does
    not parse: each context a team may require still gets its `error`, never stays pending."""
    try:
        data = load_one(text or "", POLICY_FILE)  # size- and alias-capped, like every YAML read
    except InputError:
        return ()
    envs = data.get("environments") if isinstance(data, dict) else None
    if not isinstance(envs, list):
        return ()
    names = [e.get("name") for e in envs if isinstance(e, dict)]
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n and "/" not in n and len(n) < 64))
