"""`performance`: GuideLLM against the baseline and the candidate with the same profile, data
and seed, in rounds; TTFT, inter-token latency, request latency and output tokens per second each
within a relative limit, or beyond the win the policy expects (`expect:`), at the policy's
confidence, and no higher error rate; the servers' peak resident memory beside them. GuideLLM's
JSON and HTML reports of every round are kept as artifacts.

Both variants are served at once and measured in alternating rounds (B C C B B C ...), so what
else the machine does meanwhile weighs on both sides. `order: sequential` serves one variant at a
time (a GPU too small for two) and says in the result that drift between them lands on one side.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from bot.checks import CheckDefinition, register
from bot.core.fields import Loc, get_duration, get_int, get_number, get_percent, get_str, mapping, reject_unknown
from bot.core.paths import check_repo_path
from bot.perf.guidellm import PROFILES, Profile, Round, RoundSpec, command, run_rounds
from bot.perf.options import DEFAULT_LIMIT, MEMORY, METRICS, PerfLimits
from bot.perf.rounds import BASELINE, CANDIDATE, schedule
from bot.verdicts.results import CheckResult


@dataclass(frozen=True)
class PerfOptions:
    profile: Profile
    limits: PerfLimits
    tokenizer: str | None  # a folder in the repo (base revision); None: the baseline's weights folder
    data_suites: str | None  # prompts from these app-flow suites instead of synthetic text
    run_timeout_s: float  # per round
    warmup_requests: int = 2  # per side, in an untimed GuideLLM round before the measured ones
    rounds: int = 8  # both sides together
    interleaved: bool = True

    @property
    def pairs(self) -> int:
        return self.rounds // 2

    def round_profile(self, pair: int) -> Profile:
        """A pair's two rounds get the same requests: the same count, seed and prompts."""
        return replace(self.profile, requests=math.ceil(self.profile.requests / self.pairs), seed=self.profile.seed + pair)


@register
class PerformanceCheck(CheckDefinition):
    name = "performance"
    summary = "GuideLLM latency and throughput within relative limits of the baseline, in interleaved rounds"
    inline = False
    default_timeout_s = 1800.0
    needs_baseline = True
    option_keys = frozenset({"profile", "rate", "requests", "max_seconds", "prompt_tokens", "output_tokens",
                             "seed", "data", "tokenizer", "limits", "max_error_rate_increase", "run_timeout",
                             "warmup_requests", "rounds", "order", "expect"})

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
        limits_loc, expect_loc = loc.child("limits"), loc.child("expect")
        raw_limits = _metric_mapping(raw, "limits", loc)
        raw_expect = _metric_mapping(raw, "expect", loc)
        expect = {}
        for m, key in raw_expect.items():
            win = get_percent(raw["expect"], key, expect_loc)
            if (win > 0) != m.higher_is_better or win == 0:
                way, sign = ("higher", "+") if m.higher_is_better else ("lower", "-")
                raise expect_loc.child(key).error(
                    f"a win on {m.short} is a {way} value, got {win:+.0%}".replace("-", "−"),
                    f"write the expected change with its sign, e.g. `{key}: {sign}{abs(win) or 0.2:.0%}`")
            if m in raw_limits:
                raise limits_loc.child(raw_limits[m]).error(
                    f"is set while `expect.{key}` requires a win on the same metric",
                    "keep one: a limit allows a slowdown, `expect` requires a speed-up")
            expect[m.key] = win
        relative = {}
        for m in METRICS:
            key = raw_limits.get(m, m.key)
            relative[m.key] = get_percent(raw.get("limits") or {}, key, limits_loc, DEFAULT_LIMIT)
            if relative[m.key] < 0:
                raise limits_loc.child(key).error("must not be negative",
                                                  f"write the allowed slowdown, e.g. 10%, or a required win under "
                                                  f"`expect:` (e.g. `expect: {{{m.key}: {'+' if m.higher_is_better else '-'}20%}}`)")
        memory_limit = None
        if MEMORY in raw_limits:
            memory_limit = get_percent(raw["limits"], MEMORY.key, limits_loc)
            if memory_limit < 0:
                raise limits_loc.child(MEMORY.key).error(
                    "must not be negative", "write the allowed growth, e.g. 10%, or a required reduction under "
                                            "`expect:` (e.g. `expect: {peak_memory: -30%}`)")
        rounds = get_int(raw, "rounds", loc, 8, minimum=2)
        if rounds % 2:
            raise loc.child("rounds").error(f"must be even (half baseline, half candidate), got {rounds}",
                                            f"write `rounds: {rounds + 1}`")
        order = get_str(raw, "order", loc, "interleaved")
        if order not in ("interleaved", "sequential"):
            raise loc.child("order").error(f"must be `interleaved` or `sequential`, got {order!r}",
                                           "use `sequential` only when the two variants cannot be served at once")
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
            limits=PerfLimits(relative=relative, expect=expect, memory_limit=memory_limit,
                              max_error_rate_increase=get_percent(raw, "max_error_rate_increase", loc, 0.0)),
            tokenizer=tokenizer, data_suites=suites,
            run_timeout_s=get_duration(raw, "run_timeout", loc, 600.0),
            warmup_requests=get_int(raw, "warmup_requests", loc, 2, minimum=0),
            rounds=rounds, interleaved=order == "interleaved",
        )

    def run(self, ctx, options: PerfOptions) -> CheckResult:
        from bot.appflows.endpoints import candidate_and_baseline, served_endpoint
        from bot.perf.compare import PeakMemory, compare  # statistics: imported by a run, not by a policy read

        out = ctx.workdir / "guidellm"
        out.mkdir(parents=True, exist_ok=True)
        tokenizer = _tokenizer(ctx, options, out)
        profiles = [options.round_profile(pair) for pair in range(options.pairs)]
        if options.data_suites:
            per_round = profiles[0].requests
            prompts = _suite_prompts(ctx, options.data_suites, per_round * options.pairs, out / "prompts.jsonl")
            profiles = [replace(p, data_file=_slice(prompts, i * per_round, per_round, out / f"prompts-pair{i + 1}.jsonl"))
                        for i, p in enumerate(profiles)]
        order = schedule(options.rounds, interleaved=options.interleaved)
        names = {(pair, side): f"round{k + 1}-{side}" for k, (pair, side) in enumerate(order)}

        def spec(endpoints, side, name, profile) -> RoundSpec:
            ep = endpoints[side]
            return RoundSpec(name, tuple(command(ep.base_url, ep.model, profile, tokenizer, out, name)))

        def measure(endpoints, sides) -> list[Round]:
            # Untimed first rounds: the first one in a process pays GuideLLM's and the server's
            # one-off costs (worker start-up, lazy initialisation), which must not land on one side.
            warm = replace(profiles[0], requests=options.warmup_requests)
            rounds = [spec(endpoints, side, f"warmup-{side}", warm) for side in sides] if options.warmup_requests else []
            rounds += [spec(endpoints, side, names[(pair, side)], profiles[pair]) for pair, side in order if side in sides]
            ctx.progress(f"performance: {len(rounds)} rounds of {profiles[0].requests} requests "
                         f"({options.profile.profile_arg()}), {' '.join(s[0].upper() for _, s in order if s in sides)}"
                         + (f" after {len(sides)} untimed of {options.warmup_requests}" if options.warmup_requests else ""))
            done = run_rounds(rounds, out_dir=out, timeout_s=options.run_timeout_s * len(rounds) + 120,
                              progress=ctx.progress)
            return [r for r in done if not r.name.startswith("warmup-")]

        measured: dict[str, Round] = {}
        notes: tuple[str, ...] = ()
        peaks: dict[str, int | None] = {}
        if options.interleaved:
            with candidate_and_baseline(ctx) as (cand, base):
                done = measure({CANDIDATE: cand, BASELINE: base}, (BASELINE, CANDIDATE))
                peaks = {CANDIDATE: _peak(cand), BASELINE: _peak(base)}
            measured = {r.name: r for r in done}
        else:
            notes = ("measured one variant after the other (`order: sequential`): whatever changed on the machine "
                     "between them counts as a difference between the variants",)
            for side, variant in ((BASELINE, ctx.baseline), (CANDIDATE, ctx.candidate)):
                with served_endpoint(ctx, variant) as ep:
                    measured.update((r.name, r) for r in measure({side: ep}, (side,)))
                    peaks[side] = _peak(ep)
        memory = PeakMemory(peaks.get(CANDIDATE), peaks.get(BASELINE),
                            "" if None not in peaks.values() else "the servers run elsewhere (`serve: {mode: url}`)")
        baseline = [measured[names[(i, BASELINE)]] for i in range(options.pairs)]
        candidate = [measured[names[(i, CANDIDATE)]] for i in range(options.pairs)]
        artifacts = tuple(ctx.artifact(out / f"{names[key]}.{ext}") for key in order for ext in ("html", "json"))
        # The gate entry's `confidence:` and `decide:` (bot.policy.model.VerdictRule), like every other check.
        limits = replace(options.limits, confidence=ctx.rule.confidence)
        return compare(self.name, limits, baseline, candidate, notes=notes, artifacts=artifacts, rule=ctx.rule,
                      memory=memory)


def _metric_mapping(raw: Mapping[str, Any], key: str, loc: Loc) -> dict:
    """`limits:` or `expect:` as {metric: the key it was written under}; the old p95 names count."""
    m_loc = loc.child(key)
    data = mapping(raw.get(key) or {}, m_loc)
    every = (*METRICS, MEMORY)
    reject_unknown(data, {m.key for m in every} | {m.old_key for m in every if m.old_key}, m_loc)
    found = {}
    for m in every:
        if m.old_key in data and m.key in data:
            raise m_loc.child(m.old_key).error(f"sets the same {key[:-1] if key == 'limits' else key} as `{m.key}`",
                                               f"keep only `{m.key}`")
        if m.key in data or m.old_key in data:
            found[m] = m.key if m.key in data else m.old_key
    return found


def _peak(endpoint) -> int | None:
    """The server's peak resident memory so far, when the bot started it (bot.zoo.serving.PeakMemory)."""
    return None if endpoint.memory is None else endpoint.memory.peak_bytes()


def _slice(prompts: Path, start: int, count: int, path: Path) -> Path:
    lines = prompts.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[start:start + count]))
    return path


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
