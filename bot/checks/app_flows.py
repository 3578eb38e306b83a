"""`app-flows`: the application's own flows (system prompts, JSON, tool calls, edge cases),
candidate against baseline over the OpenAI chat API.

A regression is a case that passes on the baseline and fails on the candidate, an improvement the
reverse. The check fails on more regressions than `max_regressions` (default 0, unless
`max_pass_rate_drop` is set), on a paired pass-rate drop wholly beyond `max_pass_rate_drop`
points (inconclusive when its interval straddles it), or on a candidate pass rate under
`min_pass_rate`; it is an error when more than `max_errors` cases per side could not be judged.
Suites come from the base revision. Shardable: shard k of N runs the cases whose index
(ordered by file, then position) is k mod N; `merge` decides over the union of case records.
Unsharded, with `max_pass_rate_drop`, a suite larger than `sequential.min` runs in looks of
growing batches and stops once the verdict is settled (`bot.appflows.looks`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping

from bot.appflows.options import SAMPLE_RULES, SERVER_ERRORS, GateOptions
from bot.appflows.suite import all_cases, load_suites, shard_cases
from bot.checks import CheckDefinition, register
from bot.core.fields import Loc, get_duration, get_int, get_number, get_percent, get_str, reject_unknown
from bot.core.output import write_atomic
from bot.core.paths import check_repo_path
from bot.verdicts.looks import SequentialOption, parse_sequential
from bot.verdicts.results import CheckResult


@dataclass(frozen=True)
class AppFlowOptions:
    suites: str | None  # a folder in the repo; None: evals/<application>
    gate: GateOptions
    sample_rule: str
    server_errors: str
    concurrency: int
    request_timeout_s: float
    sequential: SequentialOption | None = SequentialOption()


@register
class AppFlowsCheck(CheckDefinition):
    name = "app-flows"
    summary = "the application's flows pass on the candidate wherever they pass on the baseline"
    inline = False
    default_timeout_s = 1800.0
    shardable = True
    needs_baseline = True
    option_keys = frozenset({"suites", "max_regressions", "max_pass_rate_drop", "min_pass_rate", "max_errors", "sample_rule",
                             "server_errors", "concurrency", "request_timeout", "sequential"})

    def parse_options(self, raw: Mapping[str, Any], loc: Loc) -> AppFlowOptions:
        reject_unknown(raw, set(self.option_keys), loc)
        suites = raw.get("suites")
        if suites is not None:
            suites = check_repo_path(get_str(raw, "suites", loc), file=loc.file, field=f"{loc.path}.suites")
        drop = get_number(raw, "max_pass_rate_drop", loc, None, minimum=0)  # points, like lm-eval's max_drop
        min_rate = get_percent(raw, "min_pass_rate", loc, None)
        if min_rate is not None and not 0 <= min_rate <= 1:
            raise loc.child("min_pass_rate").error("must be between 0% and 100%")
        rule = get_str(raw, "sample_rule", loc, "majority")
        if rule not in SAMPLE_RULES:
            raise loc.child("sample_rule").error(f"{rule!r} is not a rule", f"use one of {', '.join(SAMPLE_RULES)}")
        server_errors = get_str(raw, "server_errors", loc, "error")
        if server_errors not in SERVER_ERRORS:
            raise loc.child("server_errors").error(f"{server_errors!r} is not a choice", "use `error` (default) or `fail`")
        return AppFlowOptions(
            suites=suites,
            gate=GateOptions(max_regressions=get_int(raw, "max_regressions", loc, None if drop is not None else 0,
                                                     minimum=0),
                             max_pass_rate_drop=drop, min_pass_rate=min_rate,
                             max_errors=get_int(raw, "max_errors", loc, 0, minimum=0)),
            sample_rule=rule,
            server_errors=server_errors,
            concurrency=get_int(raw, "concurrency", loc, 4, minimum=1),
            request_timeout_s=get_duration(raw, "request_timeout", loc, 60.0),
            sequential=parse_sequential(raw, loc),
        )

    # The runner and the comparison (httpx, scipy) are imported where a run needs them, not when a
    # policy is read.
    def run(self, ctx, options: AppFlowOptions) -> CheckResult:
        from bot.appflows import looks
        from bot.appflows.compare import compare

        cases, folder = _cases(ctx, options, 0, 1)
        plan = looks.plan_for(options.sequential, options.gate, len(cases), ctx.rule)
        if plan is None:
            recs, artifact = _records(ctx, options, cases, folder)
            return compare(self.name, options.gate, recs, artifacts=(artifact,), rule=ctx.rule)
        ctx.progress(f"app-flows: {len(cases)} case(s) from {folder}, in looks at {', '.join(map(str, plan.looks))}")
        with _both_served(ctx) as endpoints:
            result, recs, taken = looks.run_in_looks(
                self.name, options.gate, plan, cases, ctx.rule,
                lambda batch: _run_both(ctx, options, batch, endpoints), ctx.progress)
        artifact = _write_records(ctx, recs, "app-flows-cases.json")
        note = taken.note(ctx.rule.confidence, options.sequential.spending, " in a seeded shuffled order")
        return replace(result, detail=f"{taken.stopped()}: {result.detail}", artifacts=(artifact,),
                       notes=(*result.notes, note), findings=(*result.findings, {"title": taken.stopped(),
                                                                                 "sequential": taken.to_json()}))

    def run_shard(self, ctx, options: AppFlowOptions, shard: int, count: int) -> CheckResult:
        from bot.appflows.compare import compare

        cases, folder = _cases(ctx, options, shard, count)
        recs, artifact = _records(ctx, options, cases, folder, shard, count)
        return compare(self.name, options.gate, recs, keep_records=True, artifacts=(artifact,), rule=ctx.rule)

    def merge(self, ctx, options: AppFlowOptions, parts: list[CheckResult]) -> CheckResult:
        from bot.appflows.compare import case_records, compare

        artifacts = tuple(a for p in parts for a in p.artifacts)
        return compare(self.name, options.gate, case_records(parts), artifacts=artifacts, rule=ctx.rule)


def _cases(ctx, options: AppFlowOptions, shard: int, count: int) -> tuple[list, str]:
    folder = options.suites or f"evals/{ctx.promotion.application}"
    return shard_cases(all_cases(load_suites(ctx.reader, ctx.base, folder)), shard, count), folder


@contextlib.contextmanager
def _both_served(ctx) -> Iterator[tuple | None]:
    """Both variants' endpoints, served at once; None when the policy serves one at a time."""
    from bot.appflows.endpoints import candidate_and_baseline, one_at_a_time

    if one_at_a_time(ctx):
        yield None
        return
    with candidate_and_baseline(ctx) as endpoints:
        yield endpoints


def _run_both(ctx, options: AppFlowOptions, cases, endpoints) -> list[dict]:
    """Run ``cases`` on both variants, at once, or one after the other when ``endpoints`` is None
    (`serve: {max_servers: 1}`); their case records."""
    import asyncio  # here: every step loads the check registry, and only a run needs an event loop

    from bot.appflows.compare import records
    from bot.appflows.runner import run_cases_async

    kwargs = dict(concurrency=options.concurrency, timeout_s=options.request_timeout_s,
                  sample_rule=options.sample_rule, server_errors=options.server_errors, progress=ctx.progress)
    if endpoints is None:
        from bot.appflows.endpoints import served_endpoint

        runs = []
        for variant in (ctx.candidate, ctx.baseline):
            with served_endpoint(ctx, variant) as endpoint:
                runs.append(asyncio.run(run_cases_async(endpoint, cases, **kwargs)))
        cand, base = runs
    else:
        cand, base = asyncio.run(_both(*endpoints, cases, kwargs))
    ctx.progress(f"app-flows: candidate {cand.wall_s:.1f}s, baseline {base.wall_s:.1f}s")
    return records(cand, base)


def _records(ctx, options: AppFlowOptions, cases, folder: str, shard: int = 0, count: int = 1) -> tuple[list[dict], str]:
    """Run this shard's cases on both variants; the records, and the artifact keeping them."""
    ctx.progress(f"app-flows: {len(cases)} case(s) from {folder}" + (f", shard {shard + 1}/{count}" if count > 1 else ""))
    with _both_served(ctx) as endpoints:
        recs = _run_both(ctx, options, cases, endpoints)
    return recs, _write_records(ctx, recs, f"app-flows-cases{'-shard' + str(shard + 1) if count > 1 else ''}.json")


def _write_records(ctx, recs: list[dict], name: str) -> str:
    path = ctx.workdir / name
    write_atomic(path, json.dumps(
        {"candidate": str(ctx.promotion.to_variant), "baseline": str(ctx.baseline_ref()), "cases": recs},
        indent=2) + "\n")
    return ctx.artifact(path)


async def _both(cand_ep, base_ep, cases, kwargs):
    import asyncio

    from bot.appflows.runner import run_cases_async

    return await asyncio.gather(run_cases_async(cand_ep, cases, **kwargs), run_cases_async(base_ep, cases, **kwargs))
