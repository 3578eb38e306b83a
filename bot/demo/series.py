"""Synthetic vLLM-style metric history as OpenMetrics text, for backfilling a local Prometheus.

A served model's traffic is described by phases (healthy, then degraded...). Counters and
histogram buckets are integrated from per-second rates, so `rate()` and `histogram_quantile()`
over any window give back the phase's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

# vLLM's own bucket bounds are finer; these are enough for p95 within a bucket.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Phase:
    """Traffic of one served model from ``start`` to ``end`` (Unix seconds)."""

    start: float
    end: float
    latency_s: float = 0.8
    ttft_s: float = 0.08
    requests_per_s: float = 2.0
    tokens_per_request: float = 60.0
    error_ratio: float = 0.0
    feedback_per_s: float = 0.5
    feedback_down_ratio: float = 0.05


def openmetrics(phases_by_model: dict[tuple[str, str], list[Phase]], step_s: float = 15.0) -> str:
    """``{(app, served_model): [phases]}`` → one OpenMetrics document (without `# EOF`)."""
    families: dict[str, list[str]] = {
        "vllm:e2e_request_latency_seconds": [], "vllm:time_to_first_token_seconds": [],
        "vllm:generation_tokens": [], "http_requests": [], "canopy_feedback": [],
    }
    for (app, model), phases in phases_by_model.items():
        _model_samples(families, app, model, sorted(phases, key=lambda p: p.start), step_s)
    out = []
    types = {"vllm:e2e_request_latency_seconds": "histogram", "vllm:time_to_first_token_seconds": "histogram"}
    for name, lines in families.items():
        out.append(f"# TYPE {name} {types.get(name, 'counter')}")
        out.extend(lines)
    return "\n".join(out) + "\n"


def _model_samples(families, app: str, model: str, phases: list[Phase], step_s: float) -> None:
    lab = f'model_name="{model}"'
    app_lab = f'app="{app}"'
    acc = {"req": 0.0, "tok": 0.0, "ok": 0.0, "err": 0.0, "up": 0.0, "down": 0.0, "lat_sum": 0.0, "ttft_sum": 0.0}
    lat_buckets = dict.fromkeys(LATENCY_BUCKETS, 0.0)
    ttft_buckets = dict.fromkeys(TTFT_BUCKETS, 0.0)
    for phase in phases:
        t = phase.start
        while t < phase.end:
            req = phase.requests_per_s * step_s
            acc["req"] += req
            acc["tok"] += req * phase.tokens_per_request
            acc["err"] += req * phase.error_ratio
            acc["ok"] += req * (1 - phase.error_ratio)
            fb = phase.feedback_per_s * step_s
            acc["down"] += fb * phase.feedback_down_ratio
            acc["up"] += fb * (1 - phase.feedback_down_ratio)
            acc["lat_sum"] += req * phase.latency_s
            acc["ttft_sum"] += req * phase.ttft_s
            for le in lat_buckets:
                if phase.latency_s <= le:
                    lat_buckets[le] += req
            for le in ttft_buckets:
                if phase.ttft_s <= le:
                    ttft_buckets[le] += req
            ts = f"{t:.3f}"
            _histogram(families["vllm:e2e_request_latency_seconds"], "vllm:e2e_request_latency_seconds", lab,
                       lat_buckets, acc["req"], acc["lat_sum"], ts)
            _histogram(families["vllm:time_to_first_token_seconds"], "vllm:time_to_first_token_seconds", lab,
                       ttft_buckets, acc["req"], acc["ttft_sum"], ts)
            families["vllm:generation_tokens"].append(f"vllm:generation_tokens_total{{{lab}}} {acc['tok']:.3f} {ts}")
            families["http_requests"].append(f'http_requests_total{{{app_lab},status="2xx"}} {acc["ok"]:.3f} {ts}')
            families["http_requests"].append(f'http_requests_total{{{app_lab},status="5xx"}} {acc["err"]:.3f} {ts}')
            families["canopy_feedback"].append(f'canopy_feedback_total{{{app_lab},rating="up"}} {acc["up"]:.3f} {ts}')
            families["canopy_feedback"].append(f'canopy_feedback_total{{{app_lab},rating="down"}} {acc["down"]:.3f} {ts}')
            t += step_s


def _histogram(lines: list[str], name: str, lab: str, buckets: dict[float, float], count: float, total: float, ts: str) -> None:
    for le, value in buckets.items():
        lines.append(f'{name}_bucket{{{lab},le="{le}"}} {value:.3f} {ts}')
    lines.append(f'{name}_bucket{{{lab},le="+Inf"}} {count:.3f} {ts}')
    lines.append(f"{name}_count{{{lab}}} {count:.3f} {ts}")
    lines.append(f"{name}_sum{{{lab}}} {total:.3f} {ts}")
