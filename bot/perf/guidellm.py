"""One GuideLLM benchmark against one OpenAI-compatible endpoint, through its CLI.

The CLI runs in a child process (GuideLLM spawns its own workers), writes its JSON and HTML
reports into the check's workdir, and we read the few numbers the gate compares.

`transformers serve` rejects GuideLLM's vLLM-only `ignore_eos` with HTTP 422. GuideLLM merges
the backend's `extras.body` into every request and then drops keys whose value is null, so
`extras: {body: {ignore_eos: null}}` removes it (and leaves requests to stop at end of turn).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bot.errors import ExternalError

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "GUIDELLM__LOGGING__CONSOLE_LOG_LEVEL": "WARNING"}
PROFILES = ("synchronous", "concurrent", "constant", "poisson", "throughput")


@dataclass(frozen=True)
class Profile:
    """The load both variants get: the same profile, requests, data and seed."""

    kind: str = "concurrent"
    rate: float = 2  # streams for `concurrent`, requests per second for `constant`/`poisson`
    requests: int = 20
    max_seconds: float = 120.0
    prompt_tokens: int = 64
    output_tokens: int = 32
    seed: int = 42
    data_file: Path | None = None  # JSONL of {"prompt": ...}; None: synthetic text
    drop_fields: tuple[str, ...] = ("ignore_eos",)

    def profile_arg(self) -> str:
        if self.kind == "concurrent":
            return f"kind=concurrent,streams={int(self.rate)}"
        if self.kind in ("constant", "poisson"):
            return f"kind={self.kind},rate={self.rate:g}"
        return f"kind={self.kind}"

    def data_arg(self) -> str:
        if self.data_file is not None:
            return json.dumps({"kind": "json_file", "path": str(self.data_file)})
        return f"kind=synthetic_text,prompt_tokens={self.prompt_tokens},output_tokens={self.output_tokens}"


@dataclass(frozen=True)
class Measurement:
    """What the gate compares, from GuideLLM's JSON report."""

    ttft_p95_ms: float | None
    itl_p95_ms: float | None
    request_latency_p95_s: float | None
    output_tokens_per_s: float | None
    successful: int
    errored: int
    incomplete: int
    json_report: Path
    html_report: Path

    @property
    def total(self) -> int:
        return self.successful + self.errored + self.incomplete

    @property
    def error_rate(self) -> float:
        return (self.errored + self.incomplete) / self.total if self.total else 1.0


def command(base_url: str, model: str, profile: Profile, tokenizer: Path, out_dir: Path, name: str) -> list[str]:
    base_url = base_url.rstrip("/")
    # GuideLLM strips a trailing /v1 from its target and adds `v1/...` routes itself; any other
    # base URL gets routes relative to it.
    routes = {} if base_url.endswith("/v1") else {"/v1/chat/completions": "chat/completions", "/v1/models": "models"}
    backend = {
        "kind": "openai_http", "target": base_url, "model": model, "api_routes": routes,
        "extras": {"body": {field: None for field in profile.drop_fields}},
        # The serving layer already waited for the server; GuideLLM's own probe asks /health or
        # /v1/models, and offline `transformers serve` answers /v1/models with 500 (it scans the hub cache).
        "validate_backend": False,
    }
    if profile.data_file is not None:  # synthetic data carries its own output length
        backend["max_tokens"] = profile.output_tokens
    return [
        sys.executable, "-m", "guidellm", "run",
        "--backend", json.dumps(backend),
        "--profile", profile.profile_arg(),
        "--constraint", f"kind=max_requests,count={profile.requests}",
        "--constraint", f"kind=max_duration,seconds={profile.max_seconds:g}",
        "--data", profile.data_arg(),
        "--tokenizer", json.dumps({"kind": "huggingface_auto", "model": str(tokenizer)}),
        "--seed", f"kind=static,value={profile.seed}",
        "--output", json.dumps({"kind": "json", "path": str(out_dir / f"{name}.json")}),
        "--output", json.dumps({"kind": "html", "path": str(out_dir / f"{name}.html")}),
        "--disable-console-interactive",
    ]


def warm_up(base_url: str, model: str, *, requests: int, output_tokens: int, timeout_s: float = 60.0) -> None:
    """Untimed requests before GuideLLM measures: a server's first requests pay one-off costs
    (lazy initialisation, allocator growth) that would otherwise land in one side's p95 only."""
    import httpx

    url = base_url.rstrip("/") + "/chat/completions"
    body = {"model": model, "messages": [{"role": "user", "content": "Warm-up: say hello."}],
            "max_tokens": output_tokens, "temperature": 0}
    with httpx.Client(timeout=timeout_s) as client:
        for _ in range(requests):
            try:
                client.post(url, json=body)
            except httpx.HTTPError:
                return  # the benchmark itself reports a server that does not answer


def run_benchmark(base_url: str, model: str, profile: Profile, *, tokenizer: Path, out_dir: Path, name: str,
                  timeout_s: float, progress: Callable[[str], None]) -> Measurement:
    """Run GuideLLM and read its report; ExternalError when it fails or writes no report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = command(base_url, model, profile, tokenizer, out_dir, name)
    log = out_dir / f"{name}.log"
    progress(f"performance: GuideLLM {profile.profile_arg()} x {profile.requests} requests against {name} ({base_url})")
    started = time.monotonic()
    with open(log, "wb") as out:
        try:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env={**os.environ, **OFFLINE_ENV}, timeout=timeout_s, cwd=out_dir)
        except subprocess.TimeoutExpired as exc:
            raise ExternalError("GuideLLM", f"benchmark of {name} did not finish within {timeout_s:.0f}s") from exc
    report = out_dir / f"{name}.json"
    if proc.returncode != 0 or not report.exists():
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-12:])
        raise ExternalError("GuideLLM", f"benchmark of {name} exited with code {proc.returncode}:\n{tail}")
    progress(f"performance: {name} done in {time.monotonic() - started:.1f}s")
    return read_report(report, out_dir / f"{name}.html")


def _stat(metrics: dict, key: str, field: str) -> float | None:
    stats = (metrics.get(key) or {}).get("successful") or {}
    if not stats.get("count"):
        return None
    return stats["percentiles"]["p95"] if field == "p95" else stats[field]


def read_report(path: Path, html: Path) -> Measurement:
    try:
        data = json.loads(path.read_text())
        [bench] = data["benchmarks"]
        m = bench["metrics"]
        totals = m["request_totals"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ExternalError("GuideLLM", f"report {path.name} is not readable: {exc!r}") from exc
    return Measurement(
        ttft_p95_ms=_stat(m, "time_to_first_token_ms", "p95"),
        itl_p95_ms=_stat(m, "inter_token_latency_ms", "p95"),
        request_latency_p95_s=_stat(m, "request_latency", "p95"),
        output_tokens_per_s=_stat(m, "output_tokens_per_second", "mean"),
        successful=int(totals.get("successful", 0)), errored=int(totals.get("errored", 0)),
        incomplete=int(totals.get("incomplete", 0)), json_report=path, html_report=html,
    )
