"""Candidate against baseline on GuideLLM's rounds: for each metric an interval of how much worse
the candidate is, judged against its relative limit or against the win the policy expects, and no
higher error rate; and the servers' peak resident memory, one reading per side.

An expected win is a negative limit on the same "how much worse" scale (`bot.stats.interval.decide`):
`expect: {output_tokens_per_second: +20%}` passes only when the whole interval lies at or beyond 20%
more tokens per second, fails when all of it falls short, and is inconclusive otherwise.

Per-request latencies (TTFT, inter-token latency, request latency) are pooled per side over the
rounds and compared as whole distributions (`bot.stats.shift.shift_over_rounds`: the Hodges–Lehmann
ratio with its Mann–Whitney interval, widened to the spread between pairs of rounds). Throughput and
CPU per token exist per round only, so they are compared pair of rounds by pair of rounds
(`paired_ratio`: a signed-rank interval, so one disturbed round counts as one rank, not by its
size). A pure function from (limits, rounds) to a CheckResult.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence

from bot.perf.guidellm import Round
from bot.perf.options import CPU_PER_TOKEN, MB, MEMORY, METRICS, Metric, PerfLimits, pooled_throughput
from bot.stats.interval import EPSILON, Interval, level_percent
from bot.stats.shift import log_standard_error, paired_ratio, settle_count, shift_over_rounds
from bot.verdicts.evidence import VerdictRule, amount, limit_text, worse_by
from bot.verdicts.evidence import judge as judge_by_rule
from bot.verdicts.results import ERROR, FAIL, INCONCLUSIVE, PASS, SKIPPED, CheckResult, Evidence, MetricRow


@dataclass(frozen=True)
class PeakMemory:
    """The two servers' peak resident memory in bytes (None: not readable, e.g. a server at a URL)."""

    candidate: int | None
    baseline: int | None
    why_missing: str = ""


def _interval(m: Metric, base: Sequence[Round], cand: Sequence[Round], level: float) -> tuple[Interval | None, str | None, float | None, float | None]:
    """(interval, why there is none, candidate value, baseline value) for one metric."""
    if m.per_request:
        b_rounds, c_rounds = [m.per_request(r) for r in base], [m.per_request(r) for r in cand]
        b, c = [v for r in b_rounds for v in r], [v for r in c_rounds for v in r]
        c_value, b_value = (statistics.median(c) if c else None), (statistics.median(b) if b else None)
        if not b and not c:
            return None, None, None, None
        if not b or not c:
            return None, f"GuideLLM reported no {m.label} for the {'baseline' if not b else 'candidate'}", c_value, b_value
        try:
            iv = shift_over_rounds(b_rounds, c_rounds, level=level, higher_is_better=m.higher_is_better)
            return iv, None, c_value, b_value
        except ValueError as exc:
            return None, f"{m.label}: {exc} (raise `requests`)", c_value, b_value
    b = [m.per_round(r) for r in base]
    c = [m.per_round(r) for r in cand]
    c_value, b_value = m.pooled(cand), m.pooled(base)
    if m is CPU_PER_TOKEN and (None in b or None in c):
        return None, "the servers' CPU time was not read (they run elsewhere: `serve: {mode: url}`)", c_value, b_value
    if None in b or None in c:
        return None, f"a round produced no output tokens, so no {m.label}", c_value, b_value
    try:
        return paired_ratio(b, c, level=level, higher_is_better=m.higher_is_better), None, c_value, b_value
    except ValueError as exc:
        return None, f"{m.label}: {exc} (raise `max_rounds`)", c_value, b_value


def metric_level(confidence: float, judged: int = 4) -> float:
    """Each metric's interval level: the check's error shared over its ``judged`` metrics (Bonferroni),
    so identical models fail the check with at most the chance `confidence` allows, not once per
    metric (four metrics at 95% each would fail an A/A run up to one time in ten)."""
    return 1 - (1 - confidence) / max(judged, 1)


def describe(label: str, iv: Interval) -> str:
    """`TTFT (ms) worse by 57.72% [−46.05%, +384.53%] (98.75% CI)`."""
    return f"{label} {worse_by(iv, 'relative')} ({level_percent(iv.level)} CI)"


def change(m: Metric, iv: Interval) -> tuple[float, float, float]:
    """(estimate, low, high) of the candidate's change in the metric's own direction (+ = more
    tokens per second, − = lower latency): "how much worse" turned back into what was measured."""
    if m.higher_is_better:
        return -iv.estimate, -iv.high, -iv.low
    return iv.estimate, iv.low, iv.high


def expected_text(m: Metric, win: float) -> str:
    """`expected better by ≥ 20%`: a win is a limit on the better side, in the same words."""
    return f"expected {limit_text(-abs(win), 'relative')}"


def describe_win(m: Metric, iv: Interval, win: float) -> str:
    """`throughput worse by 1.00% [−4.00%, +6.00%] (98.75% CI), expected better by ≥ 20%`."""
    return f"{m.short} {worse_by(iv, 'relative')} ({level_percent(iv.level)} CI), {expected_text(m, win)}"


def missed_win(m: Metric) -> str:
    return "no memory reduction" if m is MEMORY else "no speed-up"


def _memory_row(limits: PerfLimits, memory: PeakMemory | None) -> tuple[MetricRow, str | None, str | None]:
    """(row, why it fails, why it is an error). A server's peak is one reading per side: there is
    no interval, so the row compares the ratio itself and carries no evidence."""
    limit, win = limits.limit(MEMORY), limits.expect.get(MEMORY.key)
    c, b = (None, None) if memory is None else (memory.candidate, memory.baseline)
    if c is None or b is None or b <= 0:
        why = (memory.why_missing if memory else "") or "the servers' memory was not read"
        judged = limit is not None
        row = MetricRow(label=MEMORY.label, candidate=None if c is None else c / MB,
                        baseline=None if b is None else b / MB, threshold="not measured: " + why,
                        verdict=ERROR if judged else SKIPPED, higher_is_better=False,
                        stderr="one peak reading per side")
        return row, None, (f"peak memory: {why}, so the policy's memory " + ("expectation" if win else "limit")
                           + " cannot be judged") if judged else None
    ratio = c / b - 1
    if limit is None:
        return MetricRow(label=MEMORY.label, candidate=c / MB, baseline=b / MB, delta=ratio,
                         threshold="not judged (no limit or expect)", verdict=SKIPPED, higher_is_better=False,
                         stderr="one peak reading per side"), None, None
    threshold = limit_text(-abs(win), "relative") if win is not None else limit_text(limit, "relative")
    bad = ratio > limit + EPSILON
    row = MetricRow(label=MEMORY.label, candidate=c / MB, baseline=b / MB, delta=ratio, threshold=threshold,
                    verdict=FAIL if bad else PASS, higher_is_better=False, stderr="one peak reading per side")
    text = (f"peak memory {'worse' if ratio >= 0 else 'better'} by {amount(ratio, 'relative', signed=False)} "
            f"({c / MB:.0f} MB against {b / MB:.0f} MB)")
    if not bad:
        return row, None, None
    return row, (f"{missed_win(MEMORY)}: {text}, {expected_text(MEMORY, win)}" if win is not None
                 else f"{text}, limit {threshold}"), None


def compare(name: str, limits: PerfLimits, baseline: Sequence[Round], candidate: Sequence[Round], *,
           notes: tuple[str, ...] = (), artifacts: tuple[str, ...] = (), rule: VerdictRule = VerdictRule(),
           memory: PeakMemory | None = None, final: bool = True, check_confidence: float | None = None) -> CheckResult:
    """``baseline[i]`` and ``candidate[i]`` are the i-th pair of rounds; ``memory`` the servers' peaks.
    ``final``: no look follows. An earlier look's very high level may leave an interval unbounded (too
    few values for it): not settled yet. At the last look an interval with no finite width to scale
    (`log_standard_error`) is a setting that can never decide: an error. One whose bound merely reads
    as a ratio of 0 or ∞ (a t interval over two pairs) is inconclusive, with the count that settles it.
    ``check_confidence``: the check's own confidence when ``limits.confidence`` is one look's share of it."""
    if len(baseline) != len(candidate) or not baseline:
        raise ValueError("baseline and candidate need the same number of rounds, at least one")
    rows, worse, unsure, broken = [], [], [], []
    level = metric_level(limits.confidence, len(limits.judged()))
    for m in METRICS:
        limit, win = limits.limit(m), limits.expect.get(m.key)
        iv, problem, c_value, b_value = _interval(m, baseline, candidate, level)
        if final and iv is not None and log_standard_error(iv, higher_is_better=m.higher_is_better) is None:
            seen = iv.n if m.unit == "requests" else 2 * iv.n
            iv, problem = None, (f"{m.label}: {seen} {m.unit} are too few for a {level:.2%} interval "
                                 f"(raise `{'requests' if m.unit == 'requests' else 'max_rounds'}`)")
        if limit is None:  # shown beside the judged ones, with its interval, judged by nothing
            rows.append(MetricRow(label=m.label, candidate=c_value, baseline=b_value,
                                  delta=None if iv is None else iv.estimate,
                                  threshold="not judged (no limit or expect)", verdict=SKIPPED,
                                  higher_is_better=m.higher_is_better,
                                  stderr=f"{worse_by(iv, 'relative')} ({level_percent(iv.level)} CI)"
                                  if iv is not None else problem))
            continue
        threshold = limit_text(limit, "relative")
        evidence = None
        if iv is None and problem is None:
            verdict = SKIPPED
        elif iv is None:
            verdict = ERROR
            broken.append(problem)
        else:
            verdict, _ = judge_by_rule(iv, limit, "relative", rule)
            settle = settle_count(iv, limit, higher_is_better=m.higher_is_better,
                                  per_pair=iv.n / len(baseline)) if verdict == INCONCLUSIVE else None
            if settle is not None and m.unit == "rounds":
                settle *= 2  # pairs → rounds
            evidence = Evidence(interval=iv, limit=limit, unit="relative", settle_n=settle, observations=m.unit)
            text = describe_win(m, iv, win) if win is not None else describe(m.label, iv) + f", limit {threshold}"
            if verdict == FAIL:
                worse.append(f"{missed_win(m)}: {text}" if win is not None else text)
            elif verdict == INCONCLUSIVE:
                seen = iv.n if m.unit == "requests" else 2 * iv.n
                unsure.append(f"{text}: at {seen} {m.unit}, about {settle} would settle it" if settle else
                              f"{text}: {seen} {m.unit} are too few for a {level:.2%} interval yet")
        rows.append(MetricRow(label=m.label, candidate=c_value, baseline=b_value,
                              delta=None if iv is None else iv.estimate, threshold=threshold, verdict=verdict,
                              higher_is_better=m.higher_is_better, evidence=evidence))

    row, failed, problem = _memory_row(limits, memory)
    rows.append(row)
    worse += [failed] if failed else []
    broken += [problem] if problem else []

    c_err = sum(r.errored + r.incomplete for r in candidate)
    b_err = sum(r.errored + r.incomplete for r in baseline)
    c_total, b_total = sum(r.total for r in candidate), sum(r.total for r in baseline)
    c_rate, b_rate = (c_err / c_total if c_total else 1.0), (b_err / b_total if b_total else 1.0)
    err_limit = limits.max_error_rate_increase
    err_worse = c_rate > b_rate + err_limit
    rows.append(MetricRow(label=f"error rate ({c_err}/{c_total} vs {b_err}/{b_total})", candidate=c_rate,
                          baseline=b_rate, delta=c_rate - b_rate, threshold=limit_text(err_limit * 100, "points"),
                          verdict=FAIL if err_worse else PASS, higher_is_better=False))
    err_text = f"error rate {c_rate:.0%} against the baseline's {b_rate:.0%}"
    worse += [err_text] if err_worse else []

    b_ok, c_ok = sum(r.successful for r in baseline), sum(r.successful for r in candidate)
    if b_ok == 0 or c_ok == 0:
        side = "baseline" if b_ok == 0 else "candidate"
        verdict, detail = ERROR, f"no successful request against the {side}: nothing to compare"
        if side == "candidate" and b_ok:  # the baseline answers and the candidate never does: a verdict
            verdict = FAIL
            detail = "; ".join(([err_text] if err_worse else []) + ["no successful request against the candidate"])
    elif err_worse:  # more failed requests is a verdict, even when they leave too few timings to compare
        verdict, detail = FAIL, "; ".join(worse + broken)
    elif broken:
        verdict, detail = ERROR, "; ".join(broken)
    elif worse:
        verdict, detail = FAIL, "; ".join(worse)
    elif unsure:
        verdict, detail = INCONCLUSIVE, "the measurements cannot tell: " + "; ".join(unsure)
    else:
        verdict = PASS
        by_label = {m.label: m for m in METRICS}
        detail = "every metric within its limit" + (" or beyond its expected win" if limits.expect else "") + ": " + ", ".join(
            describe_win(by_label[r.label], r.evidence.interval, limits.expect[by_label[r.label].key])
            if by_label[r.label].key in limits.expect else describe(r.label, r.evidence.interval)
            for r in rows if r.evidence is not None)
        if row.verdict == PASS:
            detail += (f", peak memory {'worse' if row.delta >= 0 else 'better'} by "
                       f"{amount(row.delta, 'relative', signed=False)} ({row.threshold})")
    tps_c, tps_b = pooled_throughput(candidate), pooled_throughput(baseline)
    return CheckResult(
        name=name, verdict=verdict,
        candidate=None if tps_c is None else f"{tps_c:.1f} tok/s",
        baseline=None if tps_b is None else f"{tps_b:.1f} tok/s",
        threshold=f"relative limits per metric, {level_percent(level)} intervals ({level_percent(check_confidence or limits.confidence)} "
                  f"for the check{' over its looks' if check_confidence else ''})", detail=detail, rows=tuple(rows),
        notes=notes, artifacts=artifacts,
    )
