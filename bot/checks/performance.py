"""`performance`: GuideLLM against the baseline and the candidate with the same profile, data
and seed; TTFT p95, inter-token latency p95, request latency p95 and output tokens per second
each within a relative limit, and no higher error rate. GuideLLM's JSON and HTML reports are
kept as artifacts.

The two variants are served and measured one after the other, never side by side, so neither
run competes with the other for the machine.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from bot.checks import CheckDefinition, register
from bot.fields import Loc, get_duration, get_int, get_number, get_percent, get_str, mapping, reject_unknown
from bot.paths import check_repo_path
from bot.perf.compare import DEFAULT_LIMIT, METRICS, PerfLimits, decide
from bot.perf.guidellm import PROFILES, Profile, run_benchmark, warm_up
from bot.results import CheckResult


@dataclass(frozen=True)
class PerfOptions:
    profile: Profile
    limits: PerfLimits
    tokenizer: str | None  # a folder in the repo (base revision); None: the baseline's weights folder
    data_suites: str | None  # prompts from these app-flow suites instead of synthetic text
    run_timeout_s: float
    warmup_requests: int = 2


@register
class PerformanceCheck(CheckDefinition):
    name = "performance"
    summary = "GuideLLM latency and throughput within relative limits of the baseline"
    inline = False
    default_timeout_s = 1800.0
    needs_baseline = True
    option_keys = frozenset({"profile", "rate", "requests", "max_seconds", "prompt_tokens", "output_tokens",
                             "seed", "data", "tokenizer", "limits", "max_error_rate_increase", "run_timeout",
                             "warmup_requests"})

    def parse_options(self, raw: Mapping[str, Any], loc: Loc) -> PerfOptions:
        reject_unknown(raw, set(self.option_keys), loc)
        kind = get_str(raw, "profile", loc, "concurrent")
        if kind not in PROFILES:
            raise loc.child("profile").error(f"{kind!r} is not a GuideLLM profile this check runs",
                                             f"use one of {', '.join(PROFILES)}")
        data = get_str(raw, "data", loc, "synthetic")
        suites = None
        if data != "synthetic":
            if not data.startswith("suites:"):
                raise loc.child("data").error(f"{data!r} is not a data source",
                                              "use `synthetic` or `suites:evals/<app>` (the app-flow suites' prompts)")
            suites = check_repo_path(data.removeprefix("suites:").strip(), file=loc.file, field=f"{loc.path}.data")
        tokenizer = raw.get("tokenizer")
        if tokenizer is not None:
            tokenizer = check_repo_path(get_str(raw, "tokenizer", loc), file=loc.file, field=f"{loc.path}.tokenizer")
        limits_loc = loc.child("limits")
        raw_limits = mapping(raw.get("limits") or {}, limits_loc)
        reject_unknown(raw_limits, {m.key for m in METRICS}, limits_loc)
        relative = {m.key: get_percent(raw_limits, m.key, limits_loc, DEFAULT_LIMIT) for m in METRICS}
        for key, value in relative.items():
            if value < 0:
                raise limits_loc.child(key).error("must not be negative", "write the allowed slowdown, e.g. 10%")
        profile = Profile(
            kind=kind, rate=get_number(raw, "rate", loc, 2, minimum=0.01),
            requests=get_int(raw, "requests", loc, 20, minimum=1),
            max_seconds=get_duration(raw, "max_seconds", loc, 120.0),
            prompt_tokens=get_int(raw, "prompt_tokens", loc, 64, minimum=1),
            output_tokens=get_int(raw, "output_tokens", loc, 32, minimum=1),
            seed=get_int(raw, "seed", loc, 42),
        )
        return PerfOptions(
            profile=profile,
            limits=PerfLimits(relative=relative,
                              max_error_rate_increase=get_percent(raw, "max_error_rate_increase", loc, 0.0)),
            tokenizer=tokenizer, data_suites=suites,
            run_timeout_s=get_duration(raw, "run_timeout", loc, 600.0),
            warmup_requests=get_int(raw, "warmup_requests", loc, 2, minimum=0),
        )

    def run(self, ctx, options: PerfOptions) -> CheckResult:
        from dataclasses import replace

        from bot.appflows.endpoints import served_endpoint

        out = ctx.workdir / "guidellm"
        out.mkdir(parents=True, exist_ok=True)
        tokenizer = _tokenizer(ctx, options, out)
        profile = options.profile
        if options.data_suites:
            prompts = _suite_prompts(ctx, options.data_suites, profile.requests, out / "prompts.jsonl")
            profile = replace(profile, data_file=prompts)
        measured = {}
        # Baseline first, then the candidate: one server at a time, the same load for both.
        for side, variant in (("baseline", ctx.baseline), ("candidate", ctx.candidate)):
            with served_endpoint(ctx, variant) as ep:
                warm_up(ep.base_url, ep.model, requests=options.warmup_requests, output_tokens=profile.output_tokens)
                measured[side] = run_benchmark(ep.base_url, ep.model, profile, tokenizer=tokenizer, out_dir=out,
                                               name=side, timeout_s=options.run_timeout_s, progress=ctx.progress)
        rel = f"{ctx.workdir.parent.name}/{ctx.workdir.name}/guidellm"
        artifacts = tuple(f"{rel}/{side}.{ext}" for side in ("candidate", "baseline") for ext in ("html", "json"))
        return decide(self.name, options.limits, measured["candidate"], measured["baseline"], artifacts)


def _tokenizer(ctx, options: PerfOptions, out: Path) -> Path:
    """The tokenizer GuideLLM sizes prompts with: the same one for both runs."""
    if options.tokenizer is None:
        return ctx.weights_dir(ctx.baseline)
    dest = out / "tokenizer"
    shutil.rmtree(dest, ignore_errors=True)
    return ctx.reader.export(ctx.base, options.tokenizer, dest)


def _suite_prompts(ctx, folder: str, requests: int, path: Path) -> Path:
    """The app-flow suites' user prompts (base revision), repeated to ``requests`` rows: GuideLLM
    stops when its data runs out."""
    from bot.appflows.suite import all_cases, load_suites

    cases = all_cases(load_suites(ctx.reader, ctx.base, folder))
    prompts = [next(m["content"] for m in reversed(c.messages) if m["role"] == "user") for c in cases]
    rows = [{"prompt": prompts[i % len(prompts)]} for i in range(requests)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
