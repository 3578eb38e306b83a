"""The Prometheus HTTP API over httpx: instant and range queries, nothing else.

Every failure (unreachable, timeout, HTTP error, a PromQL error, an answer we cannot read)
is an ExternalError("Prometheus", ...): the monitor then exits 2, never reports "healthy".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx

from bot.core.errors import ExternalError, InputError


def checked_url(url: str, *, file: str, field: str) -> str:
    """The Prometheus base URL as given, or an InputError with the likely fix: httpx would only say
    "unsupported protocol 'prometheus://'" of `prometheus:9090`."""
    text = (url or "").strip()
    if text.startswith(("http://", "https://")) and len(text.split("://", 1)[1]) > 0:
        return text
    hint = f"did you mean http://{text.split('://', 1)[-1]}?" if text else "pass e.g. http://prometheus:9090"
    raise InputError(file, field, f"{text!r} is not an http(s) URL of the Prometheus HTTP API", hint)


@dataclass(frozen=True)
class Series:
    labels: dict
    values: tuple[tuple[float, float], ...]  # (unix time, value), NaN dropped


class PrometheusClient:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.requests = 0
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "PrometheusClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def query(self, expr: str, at: float | None = None) -> list[Series]:
        """An instant query at ``at`` (default: now)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("/api/v1/query", params, expr)

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{max(step_s, 1.0):g}"}
        return self._get("/api/v1/query_range", params, expr)

    def _get(self, path: str, params: dict, expr: str) -> list[Series]:
        self.requests += 1
        try:
            # POST: batched queries over hundreds of deployments outgrow a URL.
            response = self._client.post(path, data=params)
        except httpx.TimeoutException as exc:
            raise ExternalError("Prometheus", f"{self.base_url} did not answer in time ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise ExternalError("Prometheus", f"{self.base_url} is unreachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            reason = body.get("error") if isinstance(body, dict) else response.text[:200]
            raise ExternalError("Prometheus", f"query failed with HTTP {response.status_code}: {reason} (query: {expr})")
        return _parse(body.get("data") or {}, expr)


def _parse(data: dict, expr: str) -> list[Series]:
    kind = data.get("resultType")
    result = data.get("result")
    try:
        if kind == "scalar":
            return [Series({}, _points([result]))]
        if kind == "vector":
            return [Series(dict(item.get("metric") or {}), _points([item["value"]])) for item in result]
        if kind == "matrix":
            return [Series(dict(item.get("metric") or {}), _points(item["values"])) for item in result]
    except (KeyError, TypeError, ValueError) as exc:
        raise ExternalError("Prometheus", f"unreadable answer for query {expr}: {exc}") from exc
    raise ExternalError("Prometheus", f"unexpected result type {kind!r} for query {expr}")


def _points(raw) -> tuple[tuple[float, float], ...]:
    points = []
    for ts, value in raw:
        number = float(value)
        if not math.isnan(number):  # histogram_quantile over no traffic is NaN: no data, not a value
            points.append((float(ts), number))
    return tuple(points)
