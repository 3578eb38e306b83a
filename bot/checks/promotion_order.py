"""`promotion-order`: a variant enters environment N only if environment N-1 serves it at the base revision.

Like Kargo's stages: prod takes only what staging already runs, so nothing skips a gate.
"""

from __future__ import annotations

from bot.checks import CheckDefinition, register
from bot.results import FAIL, PASS, CheckResult


@register
class PromotionOrderCheck(CheckDefinition):
    name = "promotion-order"
    summary = "the variant is already deployed in the previous environment"

    def run(self, ctx, options) -> CheckResult:
        env = ctx.environment
        ref = ctx.promotion.to_variant
        previous = ctx.policy.previous(env)
        if previous is None:
            return CheckResult(self.name, PASS, candidate=str(ref), detail=f"{env.name} is the first environment")
        deployed = ctx.manifests(ctx.base).deployed_refs(previous)
        if ref in deployed:
            return CheckResult(self.name, PASS, candidate=str(ref), threshold=f"deployed in {previous.name}",
                               detail=f"{ref} is deployed in {previous.name} at the base revision")
        same_model = sorted(str(r) for r in deployed if r.model == ref.model)
        now = f"; {previous.name} serves {', '.join(same_model)}" if same_model else ""
        return CheckResult(
            self.name, FAIL, candidate=str(ref), threshold=f"deployed in {previous.name}",
            detail=f"{ref} has not passed {previous.name}: promote it to {previous.name} first{now}",
        )
