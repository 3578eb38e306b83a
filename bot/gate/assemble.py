"""Step 2c: merge the result files of a plan's jobs into one `Report`, exactly as `check` does.

A job without a result file (crashed, killed, never scheduled) makes its promotion `error`, and
so does a result file `bot.gate.result_files` refuses.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.checks import registry
from bot.checks.context import CheckContext
from bot.core.errors import InputError
from bot.gate import result_files
from bot.gate.plan import Plan
from bot.gate.result_files import Seals
from bot.gitops.promotions import baseline_ref
from bot.policy.model import Policy
from bot.verdicts.results import ERROR, CardFacts, CheckResult, PromotionResult, Report
from bot.zoo.variants import Variant, VariantRef, Zoo, card_facts, parse_variant


def assemble(plan: Plan, out_dir: Path, *, reader, policy: Policy | None, wall_time_s: float | None = None,
             cache_dir: Path | None = None, seals: Seals | None = None) -> Report:
    """``policy``: the one the plan was made with (None only when it could not be parsed); ``seals``:
    the digests the run took of its result files (None for a fan-out's report, which ran no job)."""
    if policy is None or (plan.errors and not plan.promotions):
        return Report(plan.base, plan.merged, removals=plan.removals, errors=plan.errors, wall_time_s=wall_time_s,
                      notes=plan.notes)
    head_zoo = Zoo(reader, plan.merged)
    files = result_files.found(out_dir)
    jobs_of: dict[tuple[int, int], list] = {}
    for job in plan.jobs:
        for promotion in job.promotions:  # a shared job's result stands for every promotion it judges
            jobs_of.setdefault((promotion, job.position), []).append(job)
    promotions = []
    for i, promo in enumerate(plan.promotions):
        env = policy.environment(promo.environment)
        errors = tuple(plan.promotion_errors.get(i, ()))
        checks: list[CheckResult] = []
        if not errors:
            for position, spec in enumerate(env.gate):
                jobs = jobs_of.get((i, position), [])
                parts = [result_files.read(plan, j, files, seals) for j in jobs]
                if not jobs or any(p is None for p in parts):
                    missing = ", ".join(j.id for j, p in zip(jobs, parts) if p is None)
                    checks.append(CheckResult(spec.name, ERROR, detail=f"no result from job {missing}: it crashed, was killed or never ran"))
                elif len(parts) == 1:
                    checks.append(parts[0])
                else:
                    checks.append(_merge(plan, policy, reader, promo, env, spec, parts, out_dir, cache_dir))
        card = None
        notes = list(_canary_notes(policy, env, promo))
        if not errors:
            try:
                card = _card(reader, plan.merged, head_zoo.get(promo.to_variant), baseline_ref(policy, env, promo))
            except InputError as exc:
                errors = errors + (exc.as_record(),)
        promotions.append(PromotionResult(
            environment=promo.environment, manifest=promo.manifest, object=promo.object,
            application=promo.application, change=promo.change,
            from_variant=None if promo.from_variant is None else str(promo.from_variant),
            to_variant=str(promo.to_variant), checks=tuple(checks), errors=errors,
            card=card, notes=tuple(notes),
        ))
    return Report(plan.base, plan.merged, tuple(promotions), plan.removals, plan.errors, wall_time_s, notes=plan.notes)


def _card(reader, rev: str, candidate: Variant, baseline: VariantRef | None) -> CardFacts:
    """The card's facts: the candidate's variant.yaml and recipe, the baseline's size when it can be read."""
    recipe = reader.read_text(rev, candidate.recipe) if candidate.recipe else None
    baseline_variant = None
    if baseline is not None:
        text = reader.read_text(rev, f"{baseline.folder}/variant.yaml")
        try:
            baseline_variant = parse_variant(baseline, text) if text is not None else None
        except InputError:
            pass  # a card without the size ratio rather than none
    return card_facts(candidate, baseline=None if baseline is None else str(baseline),
                      baseline_variant=baseline_variant, recipe_text=recipe)


def _merge(plan, policy, reader, promo, env, spec, parts, out_dir, cache_dir) -> CheckResult:
    errored = [(n, p) for n, p in enumerate(parts, 1) if p.verdict == ERROR]
    if errored:
        # Shards usually fail alike (a broken suite, a dead endpoint): say it once, with the shards.
        by_detail: dict[str, list[str]] = {}
        for n, p in errored:
            by_detail.setdefault(p.detail, []).append(f"{n}/{len(parts)}")
        return CheckResult(spec.name, ERROR, detail="; ".join(f"shard {', '.join(ns)}: {d}" for d, ns in by_detail.items()))
    ctx = CheckContext(reader=reader, base=plan.base, head=plan.merged, policy=policy, environment=env,
                       promotion=promo, workdir=Path(out_dir) / "artifacts", cache_dir=Path(cache_dir or out_dir))
    try:
        merged = registry.get(spec.name).merge(ctx, spec.options, parts)
    except Exception as exc:  # merging is check code: a bug there is an error, not a pass
        return CheckResult(spec.name, ERROR, detail=f"merging shards failed: {exc}")
    return replace(merged, wall_time_s=max((p.wall_time_s or 0) for p in parts))


def _canary_notes(policy, env, promo):
    is_last = env.index == len(policy.environments) - 1
    if promo.canary_steps:
        steps = []
        for s in promo.canary_steps:
            if "setWeight" in s:
                steps.append(f"{s['setWeight']}%")
            elif "pause" in s:
                d = (s.get("pause") or {}).get("duration")
                steps.append(f"pause {d}" if d else "pause until promoted")
            else:
                steps.append(next(iter(s), "step"))
        yield "Canary steps: " + " → ".join(str(x) for x in steps)
    elif is_last or env.require_canary:
        yield f"No canary: {promo.object} switches all of {env.name}'s traffic to the new variant at once (an Argo Rollouts canary limits the blast radius)."

