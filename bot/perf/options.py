"""The performance gate's vocabulary: its metrics and limits as `promotion.yaml` names them.

Kept apart from the comparison, so reading a policy imports no statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from bot.perf.guidellm import Round


@dataclass(frozen=True)
class Metric:
    key: str  # the policy's name under `limits:` and `expect:`
    label: str
    higher_is_better: bool
    short: str  # in sentences: "no speed-up: throughput +1.0% [...]"
    per_request: Callable[[Round], Sequence[float]] | None = None  # pooled over rounds; else per round
    old_key: str | None = None  # the name it had when the check compared one p95 per side

    @property
    def unit(self) -> str:
        return "requests" if self.per_request else "rounds"


METRICS = (
    Metric("ttft", "TTFT (ms)", False, "TTFT", lambda r: r.ttft_ms, "ttft_p95"),
    Metric("itl", "inter-token latency (ms)", False, "inter-token latency", lambda r: r.itl_ms, "itl_p95"),
    Metric("request_latency", "request latency (s)", False, "request latency", lambda r: r.latency_s,
           "request_latency_p95"),
    Metric("output_tokens_per_second", "output tokens per second", True, "throughput"),
)
# Not in METRICS: one reading per side has no interval, so it takes no share of the check's error.
MEMORY = Metric("peak_memory", "peak memory (MB)", False, "peak memory")
DEFAULT_LIMIT = 0.10
DEFAULT_CONFIDENCE = 0.95
MB = 1024 * 1024


@dataclass(frozen=True)
class PerfLimits:
    relative: Mapping[str, float] = field(default_factory=lambda: {m.key: DEFAULT_LIMIT for m in METRICS})
    max_error_rate_increase: float = 0.0  # absolute, 0.02 = two percentage points
    confidence: float = DEFAULT_CONFIDENCE
    # The win each metric must show, as a change in its own direction: +0.20 (20% more tokens per
    # second), -0.15 (15% lower TTFT or memory). A metric with an expected win has no limit.
    expect: Mapping[str, float] = field(default_factory=dict)
    memory_limit: float | None = None  # allowed growth of peak memory (0.10); None: not judged

    def limit(self, m: Metric) -> float | None:
        """The allowed worsening of ``m``: its expected win as a negative limit, else its limit."""
        if m.key in self.expect:
            return -abs(self.expect[m.key])
        return self.memory_limit if m is MEMORY else self.relative[m.key]
