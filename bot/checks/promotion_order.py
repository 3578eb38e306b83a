"""`promotion-order`: a variant enters environment N only if environment N-1 serves it, for the same
application, with the same files, at the base revision.

Like Kargo's stages: prod takes only what staging already runs, so nothing skips a gate. The
variant is compared by content (the Git tree id of its folder), not by name: a PR cannot copy other
weights into a folder staging serves and promote that.
"""

from __future__ import annotations

from bot.checks import CheckDefinition, register
from bot.verdicts.results import FAIL, PASS, CheckResult

# How an object's application is named (bot.gitops.manifests.identity), said where a fail names it.
IDENTITY = ("identity: the promotion-bot/app annotation, else the app.kubernetes.io/name or app label, else the name "
            "without the environment's affixes")


@register
class PromotionOrderCheck(CheckDefinition):
    name = "promotion-order"
    summary = "the variant, with the same files, already serves the application in the previous environment"
    reads_previous_environment = True

    def run(self, ctx, options) -> CheckResult:
        env, promo = ctx.environment, ctx.promotion
        ref = promo.to_variant
        previous = ctx.policy.previous(env)
        if previous is None:
            return CheckResult(self.name, PASS, candidate=str(ref), detail=f"{env.name} is the first environment")
        threshold = f"deployed in {previous.name} for {promo.application}"
        served = ctx.manifests(ctx.base).served_for(previous, promo.application)
        if ref not in {o.ref for o in served}:
            same_model = sorted({str(o.ref) for o in served if o.ref.model == ref.model})
            now = f"; {previous.name} serves {', '.join(same_model)} for it" if same_model else ""
            others = sorted({f"{o.application} ({o.object}, from {o.application_from or 'its name'})"
                             for o in ctx.manifests(ctx.base).serving(previous, ref)
                             if o.application != promo.application})
            hint = ""
            if others:
                hint = (f"; {previous.name} serves {ref} for {', '.join(others)}: if that is the same application, give "
                        f"both objects the annotation `promotion-bot/app: <name>` (in a PR of its own for the "
                        f"{env.name} object)")
            return CheckResult(self.name, FAIL, candidate=str(ref), threshold=threshold,
                               detail=f"{ref} has not passed {previous.name} for application {promo.application} "
                                      f"({IDENTITY}): promote it to {previous.name} first{now}{hint}")
        passed, promoted = ctx.reader.tree_sha(ctx.base, ref.folder), ctx.reader.tree_sha(ctx.head, ref.folder)
        if passed != promoted:
            if promo.change == "content" and ctx.manifests(ctx.head).serving(previous, ref):
                return CheckResult(self.name, PASS, candidate=f"{ref} @ {short(promoted)}", threshold=threshold,
                                   detail=f"{ref}'s files change in this PR; {previous.name} re-runs its gate on them "
                                          f"in this PR too")
            return CheckResult(self.name, FAIL, candidate=f"{ref} @ {short(promoted)}", threshold=threshold,
                               detail=f"{ref}'s files change in this PR (tree {short(passed)} in {previous.name}, "
                                      f"{short(promoted)} here): what passed {previous.name} is not what is promoted")
        return CheckResult(self.name, PASS, candidate=f"{ref} @ {short(promoted)}", threshold=threshold,
                           detail=f"{ref} (tree {short(promoted)}) is deployed in {previous.name} at the base revision")


def short(tree: str | None) -> str:
    return tree[:12] if tree else "none"
