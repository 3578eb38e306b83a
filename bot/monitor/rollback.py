"""After a trip: one revert PR per promotion commit, a variant-setting PR when a revert cannot
apply, an issue when neither is possible. Never a force-push, never a commit to the default branch.

Each PR gets every `promotion-bot` status on its head from the monitor itself, `success` only
for a revert verified to restore a gated state (bot/monitor/restore.py), and with
`rollback.merge: auto` a verified revert of a critical rule's trip is merged
(bot/monitor/landing.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from markupsafe import Markup

from bot.core.errors import InputError
from bot.gitops.manifests import Deployment, parse_manifest
from bot.monitor.evaluate import Outcome
from bot.monitor.history import PromotionCommit
from bot.monitor.landing import Landing, land, try_merge
from bot.monitor.restore import Verification, verify
from bot.render.markdown import make_environment, md_escape
from bot.vcs.writer import RevertConflict

LABEL = "rollback"
PROMISE_LABEL = "promise-not-kept"
BRANCH_PREFIX = "promotion-bot/"
_SAFE_URL = re.compile(r"^(https://|file:///)[^\s<>()\[\]`]+$")
_TRIPPED_MARK = re.compile(r"<!-- promotion-bot:tripped ([a-z0-9_.,-]*) -->")


@dataclass(frozen=True)
class Action:
    """What the monitor did (or, with --dry-run, would do) for one tripped deployment."""

    kind: str  # revert-pr | set-variant-pr | existing-pr | issue
    branch: str | None
    title: str
    url: str | None
    detail: str
    body: str = ""
    commented: bool = False
    verified: bool | None = None  # the revert restores a gated state (None: not checked)
    landed: str = ""  # the statuses set on it and what became of a merge

    def to_json(self) -> dict:
        return {"kind": self.kind, "branch": self.branch, "title": self.title, "url": self.url,
                "detail": self.detail, "commented": self.commented, "verified": self.verified,
                "landed": self.landed or None}


def promise_marker(promo: PromotionCommit | None, dep: Deployment, rule: str) -> str:
    """One warning per promotion and rule: the promotion commit (or, out of sight, the variant) names it."""
    key = promo.sha if promo else f"{dep.object}@{dep.variant}"
    return f"<!-- promotion-bot:promise {key} {rule} -->"


def warn_unmet(dep: Deployment, promo: PromotionCommit | None, unmet: tuple[Outcome, ...], *, forge,
               prometheus: str, evaluated_at: str, dry_run: bool) -> Action:
    """A promised win that did not appear: one issue per promotion, linking its PR, never a revert.
    The model still works; it just did not pay what its compression promised."""
    names = ", ".join(o.rule for o in unmet)
    title = f"Promised win not seen: {dep.application} in {dep.environment} on {dep.variant} ({names})"
    markers = [promise_marker(promo, dep, o.rule) for o in unmet]
    if forge is not None and all(forge.find_issue(m, PROMISE_LABEL) for m in markers):
        found = forge.find_issue(markers[0], PROMISE_LABEL)
        return Action("existing-issue", None, found.title, found.url, "warned once for this promotion already")
    original = forge.pull_request_url_for_commit(promo.sha) if promo and forge is not None else None
    body = make_environment().from_string(
        "{% for m in markers %}{{ m | trusted }}\n{% endfor %}"
        "The promotion of **{{ variant }}** to {{ environment }} ({{ app }}, {{ manifest | code }}) promised a win "
        "that prod does not show{% if sha %}, after {{ sha | code }}{% endif %}"
        "{% if url %} ([the promotion PR]({{ url | trusted }})){% endif %}:\n\n"
        "| Rule | Promised | Before ({{ previous }}) | Now | Promised value |\n|---|---|---|---|---|\n"
        "{% for o in unmet %}| {{ o.rule }} | {{ o.condition }} | {{ o.previous | num }} | {{ o.value | num }} "
        "| {{ o.threshold | num }} |\n{% endfor %}\n\n"
        "Nothing is rolled back: the variant still serves, it just does not pay what its compression promised. "
        "Check the serving flags and kernels, or promote a variant that is faster. Set `action: rollback` on the "
        "rule to revert instead.\n\nEvaluated at {{ at }} against {{ prometheus | code }}.\n"
    ).render(markers=markers, variant=dep.variant, environment=dep.environment, app=dep.application,
             manifest=dep.manifest, sha=promo.sha[:12] if promo else None,
             url=original if original and _SAFE_URL.match(original) else None,
             previous=promo.previous_variant if promo else "the previous variant",
             unmet=[o.to_json() for o in unmet], at=evaluated_at, prometheus=prometheus)
    if dry_run or forge is None:
        return Action("issue", None, title, None, "dry run: would open a warning issue (no revert)", body)
    issue = forge.open_issue(title=title, body=body, labels=(PROMISE_LABEL,))
    return Action("issue", None, title, issue.url, "promised win not seen; warned, no revert", body)


@dataclass(frozen=True)
class Trip:
    deployment: Deployment
    promotion: PromotionCommit | None
    outcomes: tuple[Outcome, ...]
    probe_evidence: str = ""  # Markdown already escaped by its renderer

    @property
    def tripped(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.tripped)


def revert_branch(sha: str) -> str:
    return f"{BRANCH_PREFIX}revert-{sha[:12]}"


def set_variant_branch(dep: Deployment, variant: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{dep.environment}-{dep.application}-{variant}")
    slug = re.sub(r"\.{2,}", ".", slug).strip("-.")  # `..` is not allowed in a Git ref
    return f"{BRANCH_PREFIX}rollback-{slug}"


def title_for(dep: Deployment, previous_variant: str) -> str:
    return f"Revert {dep.application} in {dep.environment} to {previous_variant}"


def _marker(kind: str, key: str, tripped: tuple[Outcome, ...]) -> str:
    names = ",".join(sorted(o.rule for o in tripped))
    return f"<!-- promotion-bot:{kind} {key} -->\n<!-- promotion-bot:tripped {names} -->"


def render_body(trip: Trip, *, previous_variant: str, mode: str, fallback_reason: str, original_pr_url: str | None,
                prometheus: str, evaluated_at: str, key: str) -> str:
    env = make_environment()
    url = Markup(original_pr_url) if original_pr_url and _SAFE_URL.match(original_pr_url) else None
    promo = trip.promotion
    dep = trip.deployment
    return env.get_template("revert_pr.md.j2").render(
        marker=_marker("revert" if mode == "revert" else "rollback", key, trip.tripped),
        app=dep.application, environment=dep.environment, variant=dep.variant, served_model=dep.served_model,
        manifest=dep.manifest, previous_variant=previous_variant, tripped=[o.to_json() for o in trip.tripped],
        outcomes=[o.to_json() for o in trip.outcomes], mode=mode, fallback_reason=fallback_reason,
        promotion_sha=promo.sha if promo else None, promotion_subject=promo.subject if promo else "",
        is_merge=bool(promo and promo.is_merge), original_pr_url=url, prometheus=prometheus,
        evaluated_at=evaluated_at, probe_evidence=trip.probe_evidence,
    )


def render_comment(trip: Trip, *, evaluated_at: str) -> str:
    env = make_environment()
    text = env.from_string(
        "{{ marker | trusted }}\n### Still tripping ({{ at }})\n\n"
        "| Rule | Value | Threshold | State |\n|---|---|---|---|\n"
        "{% for o in outcomes %}| {{ o.rule }} | {{ o.value | num }} | {{ o.threshold | num }} | {{ o.state }} |\n{% endfor %}"
        "{% if probe %}\n{{ probe | trusted }}\n{% endif %}"
    ).render(marker=_marker("evidence", trip.deployment.object, trip.tripped), at=evaluated_at,
             outcomes=[o.to_json() for o in trip.outcomes], probe=trip.probe_evidence)
    return text


def set_variant_text(text: str, dep: Deployment, previous_variant: str, policy) -> str | None:
    """The manifest with this object's variant set back, or None when a textual edit cannot do it safely."""
    model, _, variant = previous_variant.rpartition("/")
    model = model or dep.model
    current, wanted = f"{dep.model}/{dep.variant}", f"{model}/{variant}"
    if text.count(current) == 0:
        return None
    new_text = text.replace(current, wanted)
    try:
        objects = parse_manifest(new_text, dep.manifest, policy.variant_ref)
    except InputError:
        return None
    serves = {o.object: f"{o.ref.model}/{o.ref.variant}" for o in objects}
    return new_text if serves.get(dep.object) == wanted else None


@dataclass(frozen=True)
class Decision:
    """What rolling a deployment back takes, decided from the trip and the policy alone."""

    kind: str  # revert | set-variant | issue
    branch: str | None = None
    previous: str | None = None  # the variant to go back to
    reason: str = ""  # why not a plain revert (set-variant), or why nothing automatic (issue)

    @property
    def action_kind(self) -> str:
        return {"revert": "revert-pr", "set-variant": "set-variant-pr"}.get(self.kind, self.kind)


def decide(trip: Trip, policy, default_branch: str) -> Decision:
    """Revert the promotion commit; without one, set the variant back to the model's baseline; an
    issue when neither names a variant to go back to. Pure: nothing is read or written."""
    dep, promo = trip.deployment, trip.promotion
    if promo is not None and promo.previous_variant is None:
        return Decision("issue", reason=f"the promotion commit {promo.sha[:12]} added {dep.object} to {dep.manifest}: "
                                        f"there is no previous variant to go back to, and reverting it would remove "
                                        f"the deployment")
    if promo is not None:
        return Decision("revert", revert_branch(promo.sha), promo.previous_variant)
    baseline = policy.baselines.get(dep.model)
    if not baseline or baseline == dep.variant:
        return Decision("issue", reason=f"no commit in the history of {default_branch} changed the variant of "
                                        f"{dep.object} in {dep.manifest}, and the model has no other baseline to roll "
                                        f"back to")
    return Decision("set-variant", set_variant_branch(dep, baseline), baseline,
                    f"no promotion commit for {dep.variant} was found in the history of {default_branch}")


def act(trip: Trip, *, writer, reader, forge, policy, base: str, default_branch: str, prometheus: str,
        evaluated_at: str, dry_run: bool, landing: Landing | None = None) -> Action:
    """Open (or find) the single PR that rolls this deployment back; with ``dry_run``, only read
    and say what would be done. With ``landing``, the PR's statuses are set and it may be merged."""
    dep, promo = trip.deployment, trip.promotion
    decision = decide(trip, policy, default_branch)
    if decision.kind == "issue":
        return _issue(trip, forge, dry_run, decision.reason)
    title = title_for(dep, decision.previous)
    original = forge.pull_request_url_for_commit(promo.sha) if promo and forge is not None else None

    def body(d: Decision) -> str:
        return render_body(trip, previous_variant=d.previous, mode=d.kind, fallback_reason=d.reason,
                           original_pr_url=original, prometheus=prometheus, evaluated_at=evaluated_at,
                           key=promo.sha if promo else d.branch)

    existing = forge.find_open_pull_request(decision.branch) if forge is not None else None
    if existing is not None:
        if dry_run:
            return Action("existing-pr", decision.branch, existing.title, existing.url, "dry run: revert PR already open")
        action = _comment_once(trip, forge, existing, evaluated_at)
        return _merge_again(action, trip, existing, reader=reader, policy=policy, base=base, forge=forge,
                            landing=landing)
    if decision.kind == "set-variant":
        new_text = set_variant_text(reader.read_text(base, dep.manifest) or "", dep, decision.previous, policy)
        if new_text is None:
            return _issue(trip, forge, dry_run, _cannot_set(decision, dep))
    if dry_run:
        what = (f"would revert {promo.sha[:12]}" if decision.kind == "revert"
                else f"would set {dep.manifest} back to {decision.previous}")
        return Action(decision.action_kind, decision.branch, title, None, f"dry run: {what} on {decision.branch}",
                      body(decision))
    return _carry_out(decision, trip, writer=writer, reader=reader, forge=forge, policy=policy, base=base,
                      default_branch=default_branch, title=title, body=body, landing=landing)


def _carry_out(decision: Decision, trip: Trip, *, writer, reader, forge, policy, base: str, default_branch: str,
               title: str, body, landing: Landing | None) -> Action:
    """The writes: the branch (a `git revert`, else a one-line variant change), its push, the PR,
    then its statuses and, with `merge: auto`, its merge."""
    dep, promo = trip.deployment, trip.promotion
    if writer.remote_branch_exists(decision.branch):
        # An earlier run pushed the branch but did not get to open the PR.
        d = replace(decision, reason=decision.reason or "the revert was prepared by an earlier run")
        head = writer.remote_branch_sha(d.branch)
        verification = _verify(landing, reader, policy, base, head)
        text = body(d) + landing_note(verification, trip, landing)
        pr = forge.open_pull_request(head_branch=d.branch, base_branch=default_branch, title=title, body=text,
                                     labels=(LABEL,))
        return _landed(Action(d.action_kind, d.branch, title, pr.url, "branch existed; PR opened", text),
                       trip, pr.number, head, verification, forge, landing)
    head = None
    if decision.kind == "revert":
        try:
            head = writer.revert_onto_branch(promo.sha, decision.branch, base)
        except RevertConflict:
            decision = replace(decision, kind="set-variant", reason=f"reverting {promo.sha[:12]} does not apply "
                                                                    f"cleanly: later commits changed {dep.manifest}")
    if decision.kind == "set-variant":
        new_text = set_variant_text(reader.read_text(base, dep.manifest) or "", dep, decision.previous, policy)
        if new_text is None:
            return _issue(trip, forge, False, _cannot_set(decision, dep))
        head = writer.commit_file_on_branch(decision.branch, base, dep.manifest, new_text,
                                            f"{title}\n\n{decision.reason}.")
    verification = _verify(landing, reader, policy, base, head)
    text = body(decision) + landing_note(verification, trip, landing)
    writer.push(decision.branch)
    pr = forge.open_pull_request(head_branch=decision.branch, base_branch=default_branch, title=title, body=text,
                                 labels=(LABEL,))
    action = Action(decision.action_kind, decision.branch, title, pr.url,
                    decision.reason or f"reverted {promo.sha[:12]}", text)
    return _landed(action, trip, pr.number, head, verification, forge, landing)


def _verify(landing: Landing | None, reader, policy, base: str, head: str | None) -> Verification | None:
    if landing is None or head is None:
        return None
    return verify(reader, landing.history, policy, list(landing.records), base, head)


def _tripped_names(trip: Trip) -> list[str]:
    return [o.rule for o in trip.tripped]


def _landed(action: Action, trip: Trip, number: int, head: str | None, verification: Verification | None, forge,
            landing: Landing | None) -> Action:
    if landing is None or verification is None or head is None:
        return action
    said = land(forge, number, head, verification, landing, merge=landing.merges(_tripped_names(trip)))
    return replace(action, verified=verification.verified, landed=said)


def _merge_again(action: Action, trip: Trip, pr, *, reader, policy, base: str, forge, landing: Landing | None) -> Action:
    """A later pass over an open revert PR that `merge: auto` should have merged: try again (a
    required check of another workflow may have been pending before)."""
    if landing is None or not pr.head_sha or not landing.merges(_tripped_names(trip)):
        return action
    verification = verify(reader, landing.history, policy, list(landing.records), base, pr.head_sha)
    if not verification.verified:
        return replace(action, verified=False, landed="not merged: the revert is not verified")
    return replace(action, verified=True, landed=try_merge(forge, pr.number, pr.head_sha))


def landing_note(verification: Verification | None, trip: Trip, landing: Landing | None) -> str:
    """The PR body's paragraph on its statuses and merge: what was verified, or why not."""
    if verification is None or landing is None:
        return ""
    state = "success" if verification.verified else "failure"
    text = (f"\n\n### Statuses\n\nThe monitor set every `promotion-bot` status on this PR's head itself (a PR opened "
            f"with the workflow's token starts no workflow): **{state}**, {md_escape(verification.describe())}.")
    if not verification.verified:
        text += (" Only a revert that restores exactly a tree the environment served and whose variants passed its "
                 "gate is verified: review this one and merge it by hand.")
        if landing.records_note:
            text += f" ({md_escape(landing.records_note)})"
    if landing.merges(_tripped_names(trip)):
        names = ", ".join(n for n in _tripped_names(trip) if n in landing.critical)
        text += (f"\n\n`rollback.merge: auto` and the critical rule(s) {md_escape(names)} tripped: "
                 + ("the bot merges this PR once every required check is green." if verification.verified
                    else "not merged automatically, since the revert is not verified."))
    return text


def _cannot_set(decision: Decision, dep: Deployment) -> str:
    return (f"{decision.reason}, and {dep.manifest} cannot be set back to {decision.previous} by replacing "
            f"{dep.model}/{dep.variant}")


def _comment_once(trip: Trip, forge, pr, evaluated_at: str) -> Action:
    """The PR is open: comment only when the set of tripped rules changed since its body was written."""
    names = ",".join(sorted(o.rule for o in trip.tripped))
    m = _TRIPPED_MARK.search(pr.body or "")
    if m and m.group(1) == names:
        return Action("existing-pr", pr.head_branch, pr.title, pr.url, "revert PR already open; evidence unchanged")
    url = forge.comment_on_pull_request(pr.number, render_comment(trip, evaluated_at=evaluated_at))
    return Action("existing-pr", pr.head_branch, pr.title, url, "revert PR already open; commented with new evidence",
                  commented=True)


def _issue(trip: Trip, forge, dry_run: bool, reason: str) -> Action:
    dep = trip.deployment
    title = f"Roll back {dep.application} in {dep.environment}: no automatic revert possible"
    env = make_environment()
    body = env.from_string(
        "Rollback rule(s) {% for o in tripped %}**{{ o.rule }}** ({{ o.detail }}){{ ', ' if not loop.last }}{% endfor %} "
        "tripped for {{ app }} ({{ variant }}) in {{ environment }}, but the bot cannot open a revert PR: {{ reason }}.\n\n"
        "Roll back by hand: set {{ manifest | code }} to the variant to serve and open a PR.\n"
    ).render(tripped=[o.to_json() for o in trip.tripped], app=dep.application, variant=dep.variant,
             environment=dep.environment, reason=reason, manifest=dep.manifest)
    if dry_run:
        return Action("issue", None, title, None, f"dry run: would open an issue: {reason}", body)
    issue = forge.open_issue(title=title, body=body, labels=(LABEL,))
    return Action("issue", None, title, issue.url, reason, body)

