"""Run cases against one OpenAI-compatible endpoint: httpx.AsyncClient, bounded concurrency.

Fail closed: an HTTP error, a timeout or an unreadable response makes the sample (and so the
case) an `error`, never a pass. Callers decide how many errors a run may have.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import httpx

from bot.appflows.assertions import Reply, judge, reply_from_message
from bot.appflows.options import SAMPLE_RULES, SERVER_ERRORS
from bot.appflows.suite import Case

PASS, FAIL, ERROR = "pass", "fail", "error"


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: ``base_url`` ends before `/chat/completions` (e.g. `.../v1`)."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    memory: Any = field(default=None, compare=False, repr=False)  # bot.zoo.serving.PeakMemory of a server started here

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class Sample:
    reply: Reply | None
    failures: tuple[str, ...] = ()
    error: str | None = None
    started: float = 0.0  # monotonic seconds, for measuring time spent in the server
    ended: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and not self.failures


@dataclass(frozen=True)
class CaseResult:
    case: Case
    status: str  # pass | fail | error
    samples: tuple[Sample, ...]

    @property
    def output(self) -> str:
        """The reply a reviewer should see: the first failing (or erroring) sample, else the first."""
        pick = next((s for s in self.samples if not s.passed), self.samples[0])
        if pick.error is not None:
            return f"(error: {pick.error})"
        if pick.reply is None:
            return f"(no reply: {pick.failures[0] if pick.failures else 'none'})"
        return pick.reply.summary()

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for s in self.samples for f in s.failures))

    @property
    def error(self) -> str | None:
        return next((s.error for s in self.samples if s.error), None)


@dataclass(frozen=True)
class Run:
    endpoint: Endpoint
    results: tuple[CaseResult, ...]
    wall_s: float
    server_s: float  # time at least one request was in flight

    def pass_rates(self) -> dict[str, tuple[int, int]]:
        """Per tag: (cases passed, cases run). A case with several tags counts under each."""
        return tag_tally(self.results)


def tag_tally(results: Iterable[CaseResult]) -> dict[str, tuple[int, int]]:
    from bot.appflows.suite import TAGS

    tally = {t: [0, 0] for t in TAGS}
    for r in results:
        for t in r.case.tags:
            tally[t][1] += 1
            tally[t][0] += r.status == PASS
    return {t: (p, n) for t, (p, n) in tally.items()}


def case_status(samples: tuple[Sample, ...], rule: str) -> str:
    if any(s.error is not None for s in samples):
        return ERROR
    passed = sum(s.passed for s in samples)
    ok = {"majority": passed * 2 > len(samples), "all": passed == len(samples), "any": passed > 0}[rule]
    return PASS if ok else FAIL


def request_body(case: Case, endpoint: Endpoint, sample: int) -> dict:
    s = case.sampling
    body = {"model": endpoint.model, "messages": [dict(m) for m in case.messages], "stream": False,
            "temperature": s.temperature, "seed": s.seed + sample, "max_tokens": s.max_tokens}
    if s.top_p is not None:
        body["top_p"] = s.top_p
    if case.tools:
        body["tools"] = [dict(t) for t in case.tools]
    return body


async def _sample(client: httpx.AsyncClient, endpoint: Endpoint, case: Case, n: int, server_errors: str) -> Sample:
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    started = time.monotonic()

    def server_error(text: str) -> Sample:
        # `fail`: the server broke on this reply (transformers serve answers 500, or drops the
        # connection, when the model's tool-call markup does not parse): the case fails.
        if server_errors == "fail":
            return Sample(None, failures=(f"server error: {text}",), started=started, ended=time.monotonic())
        return Sample(None, error=text, started=started, ended=time.monotonic())

    try:
        resp = await client.post(endpoint.chat_url, json=request_body(case, endpoint, n), headers=headers)
        ended = time.monotonic()
        if resp.status_code >= 500:
            return server_error(f"HTTP {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:  # the request itself is wrong: never the model's fault
            return Sample(None, error=f"HTTP {resp.status_code}: {resp.text[:200]}", started=started, ended=ended)
        data = resp.json()
        message = data["choices"][0]["message"]
        tokens = (data.get("usage") or {}).get("completion_tokens")
    except httpx.TimeoutException:
        return Sample(None, error=f"timed out after {client.timeout.read}s", started=started, ended=time.monotonic())
    except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
        return server_error(f"connection dropped ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return Sample(None, error=f"{type(exc).__name__}: {exc}", started=started, ended=time.monotonic())
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return Sample(None, error=f"unreadable response: {type(exc).__name__} {exc}", started=started, ended=time.monotonic())
    reply = reply_from_message(message, tokens if isinstance(tokens, int) else None, (ended - started) * 1000)
    return Sample(reply, judge(case, reply), started=started, ended=ended)


async def run_cases_async(endpoint: Endpoint, cases: list[Case], *, concurrency: int = 4, timeout_s: float = 60.0,
                          sample_rule: str = "majority", server_errors: str = "error",
                          progress: Callable[[str], None] | None = None) -> Run:
    if sample_rule not in SAMPLE_RULES:
        raise ValueError(f"sample_rule must be one of {SAMPLE_RULES}")
    if server_errors not in SERVER_ERRORS:
        raise ValueError(f"server_errors must be one of {SERVER_ERRORS}")
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client, case: Case, n: int) -> Sample:
        async with gate:
            sample = await _sample(client, endpoint, case, n, server_errors)
            if _dropped(sample):
                # A server that crashes on one reply can drop its neighbours' connections too:
                # ask once more, so only a reply that breaks the server again counts.
                sample = await _sample(client, endpoint, case, n, server_errors)
            return sample

    async def whole(client, case: Case) -> CaseResult:
        nonlocal done
        samples = tuple(await asyncio.gather(*(one(client, case, n) for n in range(case.samples))))
        done += 1
        if progress and (done % 10 == 0 or done == len(cases)):
            progress(f"app-flows: {done}/{len(cases)} cases on {endpoint.model}")
        return CaseResult(case, case_status(samples, sample_rule), samples)

    # trust_env=False: a proxy from the environment must not see loopback traffic or keys.
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
                                 limits=limits, trust_env=False) as client:
        results = await asyncio.gather(*(whole(client, c) for c in cases))
    wall = time.monotonic() - started
    return Run(endpoint, tuple(results), wall, busy_time(s for r in results for s in r.samples))


def _dropped(sample: Sample) -> bool:
    return any("connection dropped" in text for text in (sample.error or "", *sample.failures))


def busy_time(samples: Iterable[Sample]) -> float:
    """Length of the union of the samples' request intervals."""
    total, end = 0.0, float("-inf")
    for s in sorted(samples, key=lambda s: s.started):
        if s.ended <= end:
            continue
        total += s.ended - max(s.started, end)
        end = s.ended
    return total


def run_cases(endpoint: Endpoint, cases: list[Case], **kwargs) -> Run:
    """Run ``cases`` against ``endpoint``; see `run_cases_async` for the options."""
    return asyncio.run(run_cases_async(endpoint, cases, **kwargs))
