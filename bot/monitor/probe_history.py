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

from bot.errors import InputError
from bot.output import write_atomic

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


def clip(text: str, limit: int = OUTPUT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
