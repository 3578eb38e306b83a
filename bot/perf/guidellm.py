"""GuideLLM benchmarks against OpenAI-compatible endpoints, in rounds, and what their reports hold.

Every round is one GuideLLM `run` (its CLI arguments, `command`). All rounds of a check run in one
child process (`RoundRunner`, `bot.perf.rounds`), which imports GuideLLM once and takes rounds as
they are sent: a fresh CLI per round (or per look) would pay its 10–70 s start-up every time. Each round writes its JSON and HTML reports into the check's
workdir; `read_round` takes the per-request timings from the JSON.

`transformers serve` rejects GuideLLM's vLLM-only `ignore_eos` with HTTP 422. GuideLLM merges
the backend's `extras.body` into every request and then drops keys whose value is null, so
`extras: {body: {ignore_eos: null}}` removes it (and leaves requests to stop at end of turn).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from bot.core.childenv import child_env, neutralise
from bot.core.errors import ExternalError
from bot.perf.rounds import unaccounted

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
class Round:
    """One GuideLLM run against one side: per-request timings of its successful requests."""

    name: str
    ttft_ms: tuple[float, ...]
    itl_ms: tuple[float, ...]  # requests with at least two output tokens
    latency_s: tuple[float, ...]
    output_tokens: int
    duration_s: float  # GuideLLM's measured window
    successful: int
    errored: int
    incomplete: int
    json_report: Path
    cpu_s: float | None = None  # CPU seconds the server's process tree used during the round; None: not read

    @property
    def output_tokens_per_s(self) -> float | None:
        return self.output_tokens / self.duration_s if self.duration_s > 0 and self.output_tokens else None

    @property
    def cpu_s_per_token(self) -> float | None:
        return self.cpu_s / self.output_tokens if self.cpu_s and self.output_tokens else None

    @property
    def total(self) -> int:
        return self.successful + self.errored + self.incomplete


def command(base_url: str, model: str, profile: Profile, tokenizer: Path, out_dir: Path, name: str) -> list[str]:
    """GuideLLM's CLI arguments (after `guidellm`) for one round."""
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
        "run",
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


@dataclass(frozen=True)
class RoundSpec:
    name: str  # the report's file stem, e.g. `round3-candidate`
    argv: tuple[str, ...]  # GuideLLM CLI arguments after `guidellm`
    cpu: Callable[[], float | None] | None = None  # the server's CPU seconds so far, read as the round starts and ends


class RoundRunner:
    """One child process (`bot.perf.rounds`) that runs GuideLLM rounds as they are sent, for the
    whole check: its start-up (GuideLLM's imports and its worker fork server, tens of seconds on a
    busy 2-core runner) is paid once, not once per look.

        with RoundRunner(out_dir, progress) as runner:
            first = runner.run(specs, timeout_s=...)   # blocks until these rounds are done
            more = runner.run(more_specs, timeout_s=...)

    `run` raises ExternalError when the child fails, times out or leaves a report out; the child and
    GuideLLM's workers are killed whenever the runner is left.
    """

    def __init__(self, out_dir: Path, progress: Callable[[str], None]) -> None:
        self.out_dir, self.progress = Path(out_dir), progress
        self.proc: subprocess.Popen | None = None
        self.log = self.out_dir / "rounds.log"

    def __enter__(self) -> "RoundRunner":
        from bot.perf import rounds as driver

        self.driver = driver
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "w")
        # By path, so the child runs this checkout's driver whatever `bot` its sys.path would find;
        # -P keeps the driver's folder off sys.path, where guidellm.py would shadow GuideLLM.
        self.proc = subprocess.Popen([sys.executable, "-P", driver.__file__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=child_env(**OFFLINE_ENV), cwd=self.out_dir, text=True, errors="replace",
                                     start_new_session=True)
        return self

    def __exit__(self, *exc) -> None:
        self._stop()
        self._log.close()

    def _stop(self) -> None:  # the driver and GuideLLM's worker processes with it
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def run(self, rounds: Sequence[RoundSpec], *, timeout_s: float) -> list[Round]:
        """Run ``rounds`` in order and read their reports; the server CPU each used, where readable."""
        driver, proc = self.driver, self.proc
        for r in rounds:  # a report left from an earlier attempt must not stand in for a round that failed
            (self.out_dir / f"{r.name}.json").unlink(missing_ok=True)
        by_name = {r.name: r for r in rounds}
        cpu_at_start: dict[str, float | None] = {}
        cpu_used: dict[str, float | None] = {}
        pending = [r.name for r in rounds]
        timed_out = threading.Event()
        timer = threading.Timer(timeout_s, lambda: (timed_out.set(), self._stop()))
        started = time.monotonic()
        timer.start()
        try:
            for r in rounds:
                proc.stdin.write(json.dumps({"name": r.name, "argv": list(r.argv),
                                             "report": str(self.out_dir / f"{r.name}.json")}) + "\n")
            proc.stdin.flush()
            while pending:
                line = proc.stdout.readline()
                if not line:
                    break  # the child is gone
                # The driver says when each round starts and ends; the server's CPU is read at both.
                if line.startswith(driver.STARTING):
                    name = line.removeprefix(driver.STARTING).strip()
                    if name in by_name and by_name[name].cpu:
                        cpu_at_start[name] = by_name[name].cpu()
                    continue
                if line.startswith(driver.FINISHED):
                    name = line.removeprefix(driver.FINISHED).strip()
                    if cpu_at_start.get(name) is not None and (now := by_name[name].cpu()) is not None:
                        cpu_used[name] = now - cpu_at_start[name]
                    if name in pending:
                        pending.remove(name)
                    continue
                self._log.write(neutralise(line))
                if line.startswith(driver.PROGRESS):
                    self.progress("performance: " + line.removeprefix(driver.PROGRESS).strip())
        except (BrokenPipeError, OSError):
            pass  # the child died: said below
        finally:
            timer.cancel()
            self._log.flush()
        if timed_out.is_set():
            raise ExternalError("GuideLLM", f"{len(rounds)} rounds did not finish within {timeout_s:.0f}s "
                                            f"(log: {self.log.name})")
        missing = [r.name for r in rounds if r.name in pending or not (self.out_dir / f"{r.name}.json").exists()]
        if missing:
            self._stop()
            tail = "\n".join(self.log.read_text(errors="replace").strip().splitlines()[-12:])
            raise ExternalError("GuideLLM", f"rounds exited with code {proc.poll()}, no report for "
                                            f"{', '.join(missing)}:\n{tail}")
        self.progress(f"performance: {len(rounds)} rounds done in {time.monotonic() - started:.1f}s")
        return [replace(read_round(self.out_dir / f"{r.name}.json", r.name), cpu_s=cpu_used.get(r.name))
                for r in rounds]


def run_rounds(rounds: Sequence[RoundSpec], *, out_dir: Path, timeout_s: float,
               progress: Callable[[str], None]) -> list[Round]:
    """Run ``rounds`` in one child process of their own (see `RoundRunner`)."""
    with RoundRunner(out_dir, progress) as runner:
        return runner.run(rounds, timeout_s=timeout_s)


def _values(requests: list[dict], key: str) -> tuple[float, ...]:
    """The positive timings only: GuideLLM writes 0 (or null) where a request had nothing to time, e.g.
    the inter-token latency of a one-token answer or of one that came in a single chunk. A ratio of
    such a zero means nothing; the request still counts in request latency and throughput."""
    return tuple(float(r[key]) for r in requests if isinstance(r.get(key), (int, float)) and r[key] > 0)


def read_round(path: Path, name: str) -> Round:
    try:
        data = json.loads(path.read_text())
        # The driver reran a round that lost requests (`rounds.ATTEMPTS`); one that lost them every
        # time measured less than it says: fail closed.
        if lost := unaccounted(data):
            raise ExternalError("GuideLLM", f"round {name} ended with {lost} request(s) it never accounted for, "
                                            f"in each of its attempts; its report {path.name} would leave them out")
        [bench] = data["benchmarks"]
        totals = bench["metrics"]["request_totals"]
        ok = list(bench["requests"]["successful"])
        duration = float(bench["duration"])
        output_tokens = sum(int(r.get("output_tokens") or 0) for r in ok)
    except (ValueError, KeyError, TypeError) as exc:
        raise ExternalError("GuideLLM", f"report {path.name} is not readable: {exc!r}") from exc
    return Round(
        name=name, ttft_ms=_values(ok, "time_to_first_token_ms"), itl_ms=_values(ok, "inter_token_latency_ms"),
        latency_s=_values(ok, "request_latency"), output_tokens=output_tokens, duration_s=duration,
        successful=int(totals.get("successful", 0)), errored=int(totals.get("errored", 0)),
        incomplete=int(totals.get("incomplete", 0)), json_report=path,
    )
