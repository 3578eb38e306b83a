"""`performance`: GuideLLM against the baseline and the candidate with the same profile, data
and seed, in rounds; TTFT, inter-token latency, request latency and output tokens per second each
within a relative limit, or beyond the win the policy expects (`expect:`), at the policy's
confidence, and no higher error rate; the servers' peak resident memory beside them. GuideLLM's
JSON and HTML reports of every round are kept as artifacts.

Both variants are served at once and measured in alternating rounds (B C C B B C ...), so what
else the machine does meanwhile weighs on both sides. The round pairs come in looks (2, 4, 8, 16
pairs by default, `bot.verdicts.looks`): after each look every judged metric's interval is taken at
the look's share of the error, and the check stops once each is settled, or at its budget
(`max_rounds`, `max_duration`), where it says inconclusive with the rounds that would settle it.
`order: sequential` serves one variant at a time (a GPU too small for two), in one look, and says
in the result that drift between them lands on one side.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from bot.checks import CheckDefinition, register
from bot.core.fields import Loc, get_duration, get_int, get_number, get_percent, get_str, mapping, reject_unknown
from bot.core.paths import check_repo_path
from bot.perf.guidellm import PROFILES, Profile, Round, RoundRunner, RoundSpec, command
from bot.perf.options import DEFAULT_LIMIT, MEMORY, METRICS, PerfLimits
from bot.perf.rounds import BASELINE, CANDIDATE, pairs_in_order, round_name
from bot.verdicts import looks
from bot.verdicts.looks import SequentialOption, parse_sequential
from bot.verdicts.results import INCONCLUSIVE, CheckResult

# Looks at 2, 4, 8, 16 round pairs: two pairs are the fewest a paired interval can be taken on.
SEQUENTIAL = SequentialOption(minimum=2, growth=2.0)


@dataclass(frozen=True)
class PerfOptions:
    profile: Profile
    limits: PerfLimits
    tokenizer: str | None  # a folder in the repo (base revision); None: the baseline's weights folder
    data_suites: str | None  # prompts from these app-flow suites instead of synthetic text
    run_timeout_s: float  # per round
    warmup_requests: int = 2  # per side, in an untimed GuideLLM round before the measured ones
    max_rounds: int = 32  # both sides together: the budget in rounds
    max_duration_s: float = 600.0  # the budget in time: no look starts after it
    interleaved: bool = True
    sequential: SequentialOption | None = SEQUENTIAL

    @property
    def max_pairs(self) -> int:
        return self.max_rounds // 2

    def round_profile(self, pair: int) -> Profile:
        """A pair's two rounds get the same requests: the same count, seed and prompts."""
        return replace(self.profile, seed=self.profile.seed + pair)


@register
class PerformanceCheck(CheckDefinition):
    name = "performance"
    summary = "GuideLLM latency and throughput within relative limits of the baseline, in interleaved rounds"
    inline = False
    default_timeout_s = 1800.0
    needs_baseline = True
    option_keys = frozenset({"profile", "rate", "requests", "max_seconds", "prompt_tokens", "output_tokens",
                             "seed", "data", "tokenizer", "limits", "max_error_rate_increase", "run_timeout",
                             "warmup_requests", "max_rounds", "max_duration", "sequential", "order", "expect"})

    def parse_options(self, raw: Mapping[str, Any], loc: Loc) -> PerfOptions:
        if "rounds" in raw:
            raise loc.child("rounds").error("is not a setting: rounds come in looks until the verdict is settled",
                                            f"write the budget instead, `max_rounds: {raw['rounds']}`")
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
            if not m.judged_by_default and m not in raw_limits:
                continue  # shown, not judged, unless the policy sets its limit
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
        max_rounds = get_int(raw, "max_rounds", loc, 32, minimum=4)
        if max_rounds % 2:
            raise loc.child("max_rounds").error(f"must be even (half baseline, half candidate), got {max_rounds}",
                                                f"write `max_rounds: {max_rounds + 1}`")
        order = get_str(raw, "order", loc, "interleaved")
        if order not in ("interleaved", "sequential"):
            raise loc.child("order").error(f"must be `interleaved` or `sequential`, got {order!r}",
                                           "use `sequential` only when the two variants cannot be served at once")
        profile = Profile(
            kind=kind, rate=get_number(raw, "rate", loc, 2, minimum=0.01),
            requests=get_int(raw, "requests", loc, 8, minimum=1),  # per round
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
            max_rounds=max_rounds, max_duration_s=get_duration(raw, "max_duration", loc, 600.0),
            interleaved=order == "interleaved", sequential=parse_sequential(raw, loc, default=SEQUENTIAL),
        )

    def run(self, ctx, options: PerfOptions) -> CheckResult:
        from bot.appflows.endpoints import candidate_and_baseline, served_endpoint
        from bot.perf.compare import PeakMemory, compare  # statistics: imported by a run, not by a policy read

        out = ctx.workdir / "guidellm"
        out.mkdir(parents=True, exist_ok=True)
        tokenizer = _tokenizer(ctx, options, out)
        profiles = [options.round_profile(pair) for pair in range(options.max_pairs)]
        if options.data_suites:
            per_round = options.profile.requests
            prompts = _suite_prompts(ctx, options.data_suites, per_round * options.max_pairs, out / "prompts.jsonl")
            profiles = [replace(p, data_file=_slice(prompts, i * per_round, per_round, out / f"prompts-pair{i + 1}.jsonl"))
                        for i, p in enumerate(profiles)]
        names: dict[tuple[int, str], str] = {}
        warmed: set[str] = set()

        def measure(runner, endpoints, sides, start: int, stop: int) -> dict[str, Round]:
            """Round pairs ``start``..``stop`` on ``sides`` (after an untimed round per side, the first time)."""
            order = [(pair, side) for pair, side in pairs_in_order(start, stop, interleaved=options.interleaved)
                     if side in sides]
            for pair, side in order:
                names[(pair, side)] = round_name(pair, side, pairs=options.max_pairs, interleaved=options.interleaved)
            # Untimed first rounds: the first one in a process pays GuideLLM's and the server's
            # one-off costs (worker start-up, lazy initialisation), which must not land on one side.
            warm = replace(profiles[0], requests=options.warmup_requests)
            specs = [spec(endpoints, side, f"warmup-{side}", warm) for side in sides
                     if options.warmup_requests and side not in warmed]
            warmed.update(sides)
            specs += [spec(endpoints, side, names[(pair, side)], profiles[pair]) for pair, side in order]
            ctx.progress(f"performance: {len(specs)} rounds of {options.profile.requests} requests "
                         f"({options.profile.profile_arg()}), {' '.join(s[0].upper() for _, s in order)}")
            done = runner.run(specs, timeout_s=options.run_timeout_s * len(specs) + 120)
            return {r.name: r for r in done if not r.name.startswith("warmup-")}

        def spec(endpoints, side, name, profile) -> RoundSpec:
            ep = endpoints[side]
            cpu = ep.memory.cpu_seconds if ep.memory is not None else None
            return RoundSpec(name, tuple(command(ep.base_url, ep.model, profile, tokenizer, out, name)), cpu)

        measured: dict[str, Round] = {}
        peaks: dict[str, int | None] = {}
        notes: list[str] = []
        started = time.monotonic()

        def result(confidence: float, final: bool = True) -> CheckResult:
            pairs = sorted({pair for pair, _ in names})
            memory = PeakMemory(peaks.get(CANDIDATE), peaks.get(BASELINE),
                                "" if None not in peaks.values() else "the servers run elsewhere (`serve: {mode: url}`)")
            in_order = sorted(names.values(), key=lambda name: int(name.split("-")[0].removeprefix("round")))
            artifacts = tuple(ctx.artifact(out / f"{name}.{ext}") for name in in_order for ext in ("html", "json"))
            # The gate entry's `confidence:` and `decide:` (bot.verdicts.evidence.VerdictRule), like every other check.
            return compare(self.name, replace(options.limits, confidence=confidence),
                           [measured[names[(i, BASELINE)]] for i in pairs],
                           [measured[names[(i, CANDIDATE)]] for i in pairs],
                           notes=tuple(notes), artifacts=artifacts, rule=ctx.rule, memory=memory, final=final,
                           check_confidence=ctx.rule.confidence if confidence != ctx.rule.confidence else None)

        if not options.interleaved:
            notes.append("measured one variant after the other (`order: sequential`), in one look: whatever changed "
                         "on the machine between them counts as a difference between the variants")
            with RoundRunner(out, ctx.progress) as runner:
                for side, variant in ((BASELINE, ctx.baseline), (CANDIDATE, ctx.candidate)):
                    with served_endpoint(ctx, variant) as ep:
                        measured.update(measure(runner, {side: ep}, (side,), 0, options.max_pairs))
                        peaks[side] = _peak(ep)
            return self._budget_notes(result(ctx.rule.confidence), options, options.max_pairs)

        plan = (options.sequential or SequentialOption(minimum=options.max_pairs)).plan(options.max_pairs,
                                                                                         ctx.rule.confidence)
        with candidate_and_baseline(ctx) as (cand, base), RoundRunner(out, ctx.progress) as runner:
            endpoints = {CANDIDATE: cand, BASELINE: base}

            def look(at: looks.Look) -> tuple[CheckResult, str]:
                measured.update(measure(runner, endpoints, (BASELINE, CANDIDATE), at.start, at.stop))
                peaks.update({CANDIDATE: _peak(cand), BASELINE: _peak(base)})
                settled = _settled(result(at.level, final=at.last))
                if settled == INCONCLUSIVE and not at.last and time.monotonic() - started > options.max_duration_s:
                    notes.append(f"the time budget ran out after {2 * at.stop} rounds (`max_duration: "
                                 f"{options.max_duration_s:g}s`)")
                    return result(at.level, final=False), looks.EXHAUSTED  # again: with the note
                return result(at.level, final=at.last), settled

            outcome, taken = looks.run_in_looks(plan, look, name=self.name, unit="round pairs", progress=ctx.progress)
        if len(plan.looks) > 1:
            outcome = replace(outcome, notes=(*outcome.notes, taken.note(ctx.rule.confidence, plan_spending(options))),
                              detail=f"{taken.stopped()}: {outcome.detail}",
                              findings=(*outcome.findings, {"title": taken.stopped(), "sequential": taken.to_json()}))
        return self._budget_notes(outcome, options, taken.observations)

    @staticmethod
    def _budget_notes(outcome: CheckResult, options: PerfOptions, pairs: int) -> CheckResult:
        """An inconclusive row whose settling count is beyond the budget says so up front: this runner
        cannot resolve that limit with these settings."""
        said = []
        for row in outcome.rows:
            ev = row.evidence
            if row.verdict != INCONCLUSIVE or ev is None or not ev.settle_n:
                continue
            # Requests are counted over both sides; each round adds `requests` to one side.
            rounds = ev.settle_n if ev.observations == "rounds" else -(-ev.settle_n // options.profile.requests)
            if rounds > options.max_rounds:
                said.append(f"this runner cannot resolve {abs(ev.limit):.0%} on {row.label} within "
                            f"{options.max_rounds} rounds (`max_rounds`); it would need about {rounds}")
        return replace(outcome, notes=(*said, *outcome.notes)) if said else outcome


def plan_spending(options: PerfOptions) -> str:
    return (options.sequential or SEQUENTIAL).spending


def _settled(outcome: CheckResult) -> str:
    """What a look may stop on: the interval metrics settled (`bot.verdicts.looks.settled`); a memory
    or error-rate fail (no interval: one reading, or a count) stands at once."""
    interval_rows = [r for r in outcome.rows if r.evidence is not None]
    plain_fail = any(r.verdict == "fail" and r.evidence is None for r in outcome.rows)
    if outcome.verdict == "fail" and plain_fail:
        return "fail"
    return looks.settled(outcome.verdict, interval_rows)


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
