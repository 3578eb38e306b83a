"""Step 2a: turn a PR (base..head) into a plan: the promotions and one job per check (per shard).

`check` runs a plan in one process; `plan`/`run-check`/`report` spread the same jobs over a
GitHub Actions matrix. The plan is plain JSON so any runner can pick up one job.

Matrix entries: every job of a non-inline check (lm-eval, app flows...) gets its own entry and
runner; the cheap inline checks share one entry per runner label set, so a PR touching 500
manifests does not start 1,000 runners. GitHub refuses a matrix of more than 256 entries, so
past that, jobs with the same labels are packed into fewer entries.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from bot.checks import registry
from bot.errors import ErrorRecord, InputError
from bot.policy import Policy, load_policy_file, load_policy_from_rev
from bot.promotions import Promotion, discover
from bot.results import Removal
from bot.zoo import Zoo

PLAN_SCHEMA = 1
MAX_MATRIX = 256  # GitHub Actions' limit on jobs per matrix


@dataclass(frozen=True)
class Job:
    id: str
    promotion: int
    check: str
    position: int  # index in the environment's gate
    runs_on: tuple[str, ...]
    inline: bool
    timeout_s: float
    shard: int = 0
    shards: int = 1

    def to_json(self) -> dict:
        return {"id": self.id, "promotion": self.promotion, "check": self.check, "position": self.position,
                "runs_on": list(self.runs_on), "inline": self.inline, "timeout_s": self.timeout_s,
                "shard": self.shard, "shards": self.shards}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Job":
        return cls(id=d["id"], promotion=d["promotion"], check=d["check"], position=d["position"],
                   runs_on=tuple(d["runs_on"]), inline=d["inline"], timeout_s=d["timeout_s"],
                   shard=d.get("shard", 0), shards=d.get("shards", 1))


@dataclass(frozen=True)
class Plan:
    repo: str
    base: str
    head: str
    policy_file: str | None  # None: promotion.yaml at the base revision
    promotions: tuple[Promotion, ...] = ()
    removals: tuple[Removal, ...] = ()
    errors: tuple[ErrorRecord, ...] = ()
    promotion_errors: Mapping[int, tuple[ErrorRecord, ...]] = field(default_factory=dict)
    jobs: tuple[Job, ...] = ()

    @cached_property
    def _by_id(self) -> dict[str, Job]:
        return {job.id: job for job in self.jobs}

    @cached_property
    def _entries(self) -> tuple["MatrixEntry", ...]:
        return tuple(matrix_entries(self.jobs))

    def job(self, job_id: str) -> Job:
        if job_id in self._by_id:
            return self._by_id[job_id]
        known = [e.id for e in self._entries]
        raise InputError("plan", "jobs", f"has no job {job_id!r}",
                         f"use a matrix entry id: {', '.join(known[:20]) or 'the plan has none'}")

    @cached_property
    def plan_id(self) -> str:
        """A digest of what the plan asks (not where the repo is): result files carry it."""
        body = {"base": self.base, "head": self.head, "policy_file": self.policy_file,
                "promotions": [p.to_json() for p in self.promotions], "jobs": [j.to_json() for j in self.jobs]}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def entry_jobs(self, entry_id: str) -> tuple[Job, ...]:
        """The jobs of a matrix entry, or the one job named ``entry_id``."""
        for entry in self._entries:
            if entry.id == entry_id:
                return tuple(self.job(j) for j in entry.jobs)
        return (self.job(entry_id),)

    def matrix(self) -> dict:
        """A GitHub Actions `strategy.matrix` value: `include` lists one entry per runner."""
        include = []
        for entry in self._entries:
            job = self.job(entry.jobs[0])
            single = len(entry.jobs) == 1
            p = self.promotions[job.promotion]
            include.append({"id": entry.id, "check": entry.check, "runs_on": list(entry.runs_on),
                            "jobs": len(entry.jobs), "environment": p.environment if single else "",
                            "variant": str(p.to_variant) if single else ""})
        return {"include": include}

    def to_json(self) -> dict:
        return {
            "schema": PLAN_SCHEMA, "plan_id": self.plan_id, "repo": self.repo, "base": self.base, "head": self.head,
            "policy_file": self.policy_file,
            "promotions": [p.to_json() for p in self.promotions],
            "removals": [r.to_json() for r in self.removals],
            "errors": [e.to_json() for e in self.errors],
            "promotion_errors": {str(k): [e.to_json() for e in v] for k, v in self.promotion_errors.items()},
            "jobs": [j.to_json() for j in self.jobs],
            "matrix": self.matrix(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Plan":
        if d.get("schema") != PLAN_SCHEMA:
            raise InputError("plan", "schema", f"plan schema {d.get('schema')!r} is not {PLAN_SCHEMA}",
                             "make the plan with the same promotion-bot version")
        return cls(
            repo=d["repo"], base=d["base"], head=d["head"], policy_file=d.get("policy_file"),
            promotions=tuple(Promotion.from_json(p) for p in d["promotions"]),
            removals=tuple(Removal(**r) for r in d["removals"]),
            errors=tuple(ErrorRecord(**e) for e in d["errors"]),
            promotion_errors={int(k): tuple(ErrorRecord(**e) for e in v) for k, v in d.get("promotion_errors", {}).items()},
            jobs=tuple(Job.from_json(j) for j in d["jobs"]),
        )

    def write(self, path: Path) -> None:
        from bot.output import write_atomic

        write_atomic(Path(path), json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> "Plan":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(str(path), "", f"is not a readable plan: {exc}", "pass the file `promotion-bot plan` wrote") from exc


def load_policy(reader, base: str, policy_file: str | None) -> Policy:
    return load_policy_file(policy_file) if policy_file else load_policy_from_rev(reader, base)


def build_plan(reader, base_rev: str, head_rev: str, *, policy_file: str | None = None) -> Plan:
    base = reader.resolve(base_rev)
    head = reader.resolve(head_rev)
    repo = str(Path(reader.path).resolve())
    try:
        policy = load_policy(reader, base, policy_file)
    except InputError as exc:
        return Plan(repo, base, head, policy_file, errors=(exc.as_record(),))

    found = discover(reader, base, head, policy)
    head_zoo, jobs, promotion_errors = Zoo(reader, head), [], {}
    for i, promo in enumerate(found.promotions):
        env = policy.environment(promo.environment)
        try:
            head_zoo.get(promo.to_variant, named_in=promo.manifest, field=f"{promo.object}: variant")
        except InputError as exc:
            promotion_errors[i] = (exc.as_record(),)
            continue
        for position, spec in enumerate(env.gate):
            definition = registry.get(spec.name)
            for shard in range(spec.shards):
                suffix = f"-s{shard + 1}of{spec.shards}" if spec.shards > 1 else ""
                jobs.append(Job(id=f"p{i}-{position}-{spec.name}{suffix}", promotion=i, check=spec.name,
                                position=position, runs_on=spec.runs_on, inline=definition.inline,
                                timeout_s=spec.timeout_s, shard=shard, shards=spec.shards))
    return Plan(repo, base, head, policy_file, found.promotions, found.removals, found.errors,
                promotion_errors, tuple(jobs))


@dataclass(frozen=True)
class MatrixEntry:
    id: str
    check: str  # the check's name, or the names of the checks a packed entry runs
    runs_on: tuple[str, ...]
    jobs: tuple[str, ...]


def matrix_entries(jobs: tuple[Job, ...], limit: int = MAX_MATRIX) -> list[MatrixEntry]:
    inline: dict[tuple[str, ...], list[Job]] = {}
    heavy: list[Job] = []
    for job in jobs:
        if job.inline:
            inline.setdefault(job.runs_on, []).append(job)
        else:
            heavy.append(job)
    entries = [_pack(f"inline-{n + 1}" if n else "inline", labels, group)
               for n, (labels, group) in enumerate(inline.items())]
    room = limit - len(entries)
    if len(heavy) <= room:
        return entries + [MatrixEntry(j.id, j.check, j.runs_on, (j.id,)) for j in heavy]
    by_labels: dict[tuple[str, ...], list[Job]] = {}
    for job in heavy:
        by_labels.setdefault(job.runs_on, []).append(job)
    per_entry = math.ceil(len(heavy) / max(room - len(by_labels), 1))
    for labels, group in by_labels.items():
        for start in range(0, len(group), per_entry):
            entries.append(_pack(f"batch-{len(entries) + 1}", labels, group[start:start + per_entry]))
    return entries


def _pack(entry_id: str, labels: tuple[str, ...], group: list[Job]) -> MatrixEntry:
    return MatrixEntry(entry_id, ", ".join(dict.fromkeys(j.check for j in group)), labels, tuple(j.id for j in group))
