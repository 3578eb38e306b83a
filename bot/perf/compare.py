"""Candidate against baseline on GuideLLM's numbers: each metric within its relative limit,
and no higher error rate. A pure function from (limits, two measurements) to a CheckResult."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from bot.perf.guidellm import Measurement
from bot.results import ERROR, FAIL, PASS, SKIPPED, CheckResult, MetricRow


@dataclass(frozen=True)
class Metric:
    key: str  # the policy's name under `limits:`
    attr: str  # Measurement attribute
    label: str
    higher_is_better: bool


METRICS = (
    Metric("ttft_p95", "ttft_p95_ms", "TTFT p95 (ms)", False),
    Metric("itl_p95", "itl_p95_ms", "inter-token latency p95 (ms)", False),
    Metric("request_latency_p95", "request_latency_p95_s", "request latency p95 (s)", False),
    Metric("output_tokens_per_second", "output_tokens_per_s", "output tokens per second", True),
)
DEFAULT_LIMIT = 0.10


@dataclass(frozen=True)
class PerfLimits:
    relative: Mapping[str, float] = field(default_factory=lambda: {m.key: DEFAULT_LIMIT for m in METRICS})
    max_error_rate_increase: float = 0.0  # absolute, 0.02 = two percentage points


def relative_change(candidate: float, baseline: float) -> float | None:
    return None if baseline == 0 else (candidate - baseline) / baseline


def decide(name: str, limits: PerfLimits, candidate: Measurement, baseline: Measurement,
           artifacts: tuple[str, ...] = ()) -> CheckResult:
    rows, worse, broken = [], [], []
    for m in METRICS:
        c, b = getattr(candidate, m.attr), getattr(baseline, m.attr)
        limit = limits.relative[m.key]
        threshold = f"{'≥ −' if m.higher_is_better else '≤ +'}{limit:.0%}"
        delta = None if c is None or b is None else relative_change(c, b)
        if c is None and b is None:
            verdict = SKIPPED
        elif c is None or b is None or delta is None:
            verdict = ERROR
            broken.append(m.label)
        else:
            regressed = -delta > limit if m.higher_is_better else delta > limit
            verdict = FAIL if regressed else PASS
            if regressed:
                worse.append(f"{m.label} {delta:+.1%} (limit {threshold})")
        rows.append(MetricRow(label=m.label, candidate=c, baseline=b, delta=delta, threshold=threshold,
                              verdict=verdict, higher_is_better=m.higher_is_better))
    err_limit = limits.max_error_rate_increase
    err_worse = candidate.error_rate > baseline.error_rate + err_limit
    rows.append(MetricRow(label=f"error rate ({candidate.errored + candidate.incomplete}/{candidate.total} vs "
                                f"{baseline.errored + baseline.incomplete}/{baseline.total})",
                          candidate=candidate.error_rate, baseline=baseline.error_rate,
                          delta=candidate.error_rate - baseline.error_rate, threshold=f"≤ baseline + {err_limit:.0%}",
                          verdict=FAIL if err_worse else PASS, higher_is_better=False))
    if err_worse:
        worse.append(f"error rate {candidate.error_rate:.0%} against the baseline's {baseline.error_rate:.0%}")

    if baseline.successful == 0 or candidate.successful == 0:
        side = "baseline" if baseline.successful == 0 else "candidate"
        verdict, detail = ERROR, f"no successful request against the {side}: nothing to compare"
        if side == "candidate" and baseline.successful:
            verdict = FAIL  # the baseline answers and the candidate never does: that is a verdict
    elif broken:
        verdict, detail = ERROR, f"GuideLLM reported no {', '.join(broken)} for one side"
    elif worse:
        verdict, detail = FAIL, "; ".join(worse)
    else:
        verdict = PASS
        detail = "every metric within its limit: " + ", ".join(
            f"{r.label} {r.delta:+.1%}" for r in rows[: len(METRICS)] if r.delta is not None)
    tps = candidate.output_tokens_per_s
    return CheckResult(
        name=name, verdict=verdict,
        candidate=None if tps is None else f"{tps:.1f} tok/s", baseline=None if baseline.output_tokens_per_s is None
        else f"{baseline.output_tokens_per_s:.1f} tok/s",
        threshold="relative limits per metric", detail=detail, rows=tuple(rows), artifacts=artifacts,
    )
