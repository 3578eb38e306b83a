"""Probe runs kept between scheduled passes, so "two probes in a row" works across runs.

A JSON file (the workflow caches it between runs):

    {"schema_version": 1,
     "deployments": {"prod:environments/prod/canopy.yaml#Rollout/canopy": [
         {"at": 1795600000.0, "variant": "canopy-tiny/v1.4-int2-g64",
          "rates": {"system-prompt": [1, 3], ...},
          "failing": [{"case": "flows/json-spain", "tag": "output-format", "required": "...", "output": "..."}]}]}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.errors import InputError
from bot.core.output import write_atomic

SCHEMA_VERSION = 1
OUTPUT_LIMIT = 400


@dataclass(frozen=True)
class ProbeRun:
    at: float
    variant: str
    rates: dict[str, tuple[int, int]]  # tag -> (passed, run)
    failing: tuple[dict, ...] = ()

    def rate(self, tag: str) -> float | None:
        passed, total = self.rates.get(tag, (0, 0))
        return passed / total if total else None

    def to_json(self) -> dict:
        return {"at": self.at, "variant": self.variant, "rates": {t: list(v) for t, v in self.rates.items()},
                "failing": list(self.failing)}

    @classmethod
    def from_json(cls, d: dict) -> "ProbeRun":
        return cls(at=float(d["at"]), variant=str(d["variant"]),
                   rates={str(t): (int(v[0]), int(v[1])) for t, v in d["rates"].items()},
                   failing=tuple(dict(f) for f in d.get("failing", ())))


def deployment_key(dep) -> str:
    return f"{dep.environment}:{dep.manifest}#{dep.object}"


@dataclass
class ProbeHistory:
    path: Path
    deployments: dict[str, list[ProbeRun]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "ProbeHistory":
        path = Path(path)
        if not path.exists():
            return cls(path)
        fix = f"delete {path} to start a new history (the next probes start counting again)"
        try:
            data: Any = json.loads(path.read_text())
            if data.get("schema_version") != SCHEMA_VERSION:
                raise InputError(str(path), "schema_version", f"is {data.get('schema_version')!r}, expected {SCHEMA_VERSION}", fix)
            runs = {str(k): [ProbeRun.from_json(r) for r in v] for k, v in data["deployments"].items()}
        except InputError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise InputError(str(path), "", f"is not a probe history: {type(exc).__name__}: {exc}", fix) from exc
        return cls(path, runs)

    def runs(self, key: str) -> list[ProbeRun]:
        return list(self.deployments.get(key, []))

    def add(self, key: str, run: ProbeRun, keep: int) -> None:
        self.deployments[key] = (self.deployments.get(key, []) + [run])[-keep:]

    def save(self) -> None:
        data = {"schema_version": SCHEMA_VERSION,
                "deployments": {k: [r.to_json() for r in v] for k, v in sorted(self.deployments.items())}}
        write_atomic(self.path, json.dumps(data, indent=1) + "\n")


JOB = "promotion-bot-probes"


class PushgatewayHistory:
    """The same history kept in a Prometheus Pushgateway, one group per deployment.

    Each kept run is a set of gauges labelled ``run`` (0 = oldest), ``tag`` and ``variant``:
    `promotion_bot_probe_passed`, `promotion_bot_probe_cases` and `promotion_bot_probe_time_seconds`,
    so Prometheus scraping the Pushgateway can chart probe pass rates too. Failing cases are not
    kept there (they are evidence of the current run only).
    """

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s, trust_env=False)
        self.deployments: dict[str, list[ProbeRun]] = {}
        self._changed: set[str] = set()

    @classmethod
    def load(cls, url: str) -> "PushgatewayHistory":
        history = cls(url)
        data = history._call("GET", "/api/v1/metrics").json()
        try:
            for group in data["data"]:
                labels = group.get("labels") or {}
                if labels.get("job") != JOB or "deployment" not in labels:
                    continue
                history.deployments[labels["deployment"]] = _runs_from_group(group)
        except (KeyError, TypeError, ValueError) as exc:
            raise _error(f"unreadable /api/v1/metrics answer: {exc}") from exc
        return history

    def runs(self, key: str) -> list[ProbeRun]:
        return list(self.deployments.get(key, []))

    def add(self, key: str, run: ProbeRun, keep: int) -> None:
        self.deployments[key] = (self.deployments.get(key, []) + [run])[-keep:]
        self._changed.add(key)

    def save(self) -> None:
        import base64

        try:
            for key in sorted(self._changed):
                group = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
                self._call("PUT", f"/metrics/job/{JOB}/deployment@base64/{group}", _exposition(self.deployments[key]))
        finally:
            self._client.close()

    def _call(self, method: str, path: str, body: str | None = None):
        import httpx

        try:
            response = self._client.request(method, self.url + path, content=body,
                                            headers={"Content-Type": "text/plain; version=0.0.4"} if body else None)
        except httpx.HTTPError as exc:
            raise _error(f"{self.url} is unreachable: {exc}") from exc
        if response.status_code >= 300:
            raise _error(f"{method} {path} answered HTTP {response.status_code}: {response.text[:200]}")
        return response


def _error(message: str):
    from bot.core.errors import ExternalError

    return ExternalError("Pushgateway", message)


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _exposition(runs: list[ProbeRun]) -> str:
    lines = ["# TYPE promotion_bot_probe_passed gauge", "# TYPE promotion_bot_probe_cases gauge",
             "# TYPE promotion_bot_probe_time_seconds gauge"]
    passed, cases, times = [], [], []
    for i, run in enumerate(runs):
        base = f'run="{i}",variant="{_label(run.variant)}"'
        times.append(f"promotion_bot_probe_time_seconds{{{base}}} {run.at:.3f}")
        for tag, (p, n) in sorted(run.rates.items()):
            passed.append(f'promotion_bot_probe_passed{{{base},tag="{_label(tag)}"}} {p}')
            cases.append(f'promotion_bot_probe_cases{{{base},tag="{_label(tag)}"}} {n}')
    return "\n".join([lines[0], *passed, lines[1], *cases, lines[2], *times]) + "\n"


def _runs_from_group(group: dict) -> list[ProbeRun]:
    def points(name: str):
        return [(m["labels"], float(m["value"])) for m in (group.get(name) or {}).get("metrics", [])]

    runs: dict[int, dict] = {}
    for labels, value in points("promotion_bot_probe_time_seconds"):
        runs[int(labels["run"])] = {"at": value, "variant": labels["variant"], "rates": {}}
    for name, slot in (("promotion_bot_probe_passed", 0), ("promotion_bot_probe_cases", 1)):
        for labels, value in points(name):
            rates = runs[int(labels["run"])]["rates"]
            pair = rates.setdefault(labels["tag"], [0, 0])
            pair[slot] = int(value)
    return [ProbeRun(at=r["at"], variant=r["variant"], rates={t: (p, n) for t, (p, n) in r["rates"].items()})
            for _, r in sorted(runs.items())]
