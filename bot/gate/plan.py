"""Step 2a: turn a PR (base..head) into a plan: the promotions and one job per check (per shard).

`check` runs a plan in one process; `plan`/`run-check`/`report` spread the same jobs over a
GitHub Actions matrix. The plan is plain JSON so any runner can pick up one job.

Promotions that would run the same check on the same thing (the same environment, variant,
previous variant and application: 5,000 manifests naming one variant) share one job, whose
result stands for all of them. A PR may make at most `limits.max_promotions` promotions and plan
at most `limits.max_model_jobs` model jobs (lm-eval, app flows, GuideLLM): past that it is refused
as bad input, before anything runs.

Matrix entries: every job of a non-inline check (lm-eval, app flows...) gets its own entry and
runner; the cheap inline checks share one entry per runner label set, so a PR touching 500
manifests does not start 1,000 runners. GitHub refuses a matrix of more than 256 entries, so
past that, jobs with the same labels are packed into fewer entries.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from bot.checks import registry
from bot.checks.load_policy import parse as parse_policy_text
from bot.core.errors import ErrorRecord, InputError
from bot.core.output import write_atomic
from bot.gate.scope import environment_names, scope_of
from bot.gitops.promotions import Promotion, discover
from bot.gitops.variant_changes import content_changes
from bot.policy.model import POLICY_FILE, Policy
from bot.verdicts.results import Removal
from bot.zoo.variants import Zoo

PLAN_SCHEMA = 3  # 3: `merged` (was `head`), `pr_head` always set
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
    also: tuple[int, ...] = ()  # other promotions this job's result stands for (the same check on the same thing)
    fail_fast: bool = False  # skipped, if a model check, once an earlier job of its promotions failed

    @property
    def promotions(self) -> tuple[int, ...]:
        return (self.promotion, *self.also)

    def to_json(self) -> dict:
        return {"id": self.id, "promotion": self.promotion, "also": list(self.also), "check": self.check,
                "position": self.position, "runs_on": list(self.runs_on), "inline": self.inline,
                "timeout_s": self.timeout_s, "shard": self.shard, "shards": self.shards, "fail_fast": self.fail_fast}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Job":
        return cls(id=d["id"], promotion=d["promotion"], check=d["check"], position=d["position"],
                   runs_on=tuple(d["runs_on"]), inline=d["inline"], timeout_s=d["timeout_s"],
                   shard=d.get("shard", 0), shards=d.get("shards", 1), also=tuple(d.get("also", ())),
                   fail_fast=d.get("fail_fast", False))


@dataclass(frozen=True)
class Plan:
    repo: str
    base: str
    merged: str  # the commit judged: the PR's head merged into ``base`` (made, never pushed)
    policy_file: str | None  # a local file (`check --policy`); None: `policy_path` at the base revision
    promotions: tuple[Promotion, ...] = ()
    removals: tuple[Removal, ...] = ()
    errors: tuple[ErrorRecord, ...] = ()
    promotion_errors: Mapping[int, tuple[ErrorRecord, ...]] = field(default_factory=dict)
    jobs: tuple[Job, ...] = ()
    policy_path: str = POLICY_FILE
    notes: tuple[str, ...] = ()  # for reviewers, e.g. "this PR changes the policy"
    pr_head: str = ""  # the PR's own head; ``merged`` is it merged into ``base``
    environments: tuple[str, ...] = ()  # every environment of the policy: each gets a status
    touched: tuple[str, ...] = ()  # those the PR changes (bot/gate/scope.py); the others pass untouched
    relevant: bool = True  # False: the PR changes nothing the bot reads (no comment needed)

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
        body = {"base": self.base, "merged": self.merged, "pr_head": self.pr_head, "policy_file": self.policy_file, "policy_path": self.policy_path,
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
            "schema": PLAN_SCHEMA, "plan_id": self.plan_id, "repo": self.repo, "base": self.base, "merged": self.merged,
            "pr_head": self.pr_head, "environments": list(self.environments), "touched": list(self.touched),
            "relevant": self.relevant,
            "policy_file": self.policy_file, "policy_path": self.policy_path, "notes": list(self.notes),
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
            repo=d["repo"], base=d["base"], merged=d["merged"], pr_head=d["pr_head"], policy_file=d.get("policy_file"),
            environments=tuple(d.get("environments", ())), touched=tuple(d.get("touched", ())),
            relevant=d.get("relevant", True),
            policy_path=d.get("policy_path", POLICY_FILE), notes=tuple(d.get("notes", ())),
            promotions=tuple(Promotion.from_json(p) for p in d["promotions"]),
            removals=tuple(Removal(**r) for r in d["removals"]),
            errors=tuple(ErrorRecord(**e) for e in d["errors"]),
            promotion_errors={int(k): tuple(ErrorRecord(**e) for e in v) for k, v in d.get("promotion_errors", {}).items()},
            jobs=tuple(Job.from_json(j) for j in d["jobs"]),
        )

    def merged_commit(self, reader) -> str:
        """``merged``, made again from ``pr_head`` on a runner that only has the PR (the merge commit
        is deterministic, so every runner judges the same tree)."""
        try:
            return reader.resolve(self.merged)
        except InputError:
            if not self.pr_head:
                raise
        merged = reader.as_merged(self.base, self.pr_head)
        if merged != self.merged:
            raise InputError("plan", "merged", f"{self.pr_head[:12]} merged into {self.base[:12]} gives {merged[:12]} "
                                               f"here, not {self.merged[:12]}", "make the plan and run its jobs on the same PR head")
        return merged

    def write(self, path: Path) -> None:
        write_atomic(Path(path), json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> "Plan":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(str(path), "", f"is not a readable plan: {exc}", "pass the file `promotion-bot plan` wrote") from exc


def build_plan(reader, base_rev: str, head_rev: str, policy: Policy | InputError, *, policy_file: str | None = None,
               policy_path: str = POLICY_FILE, indexes: dict | None = None) -> Plan:
    """The plan of a PR judged by ``policy`` (parsed once by the caller; an `InputError` when it
    could not be, which the plan carries as its error). ``indexes``: the manifests read, by
    revision, for the checks of this process to reuse (`bot.gitops.promotions.discover`)."""
    base = reader.resolve(base_rev)
    head = reader.resolve(head_rev)
    repo = str(Path(reader.path).resolve())
    where = dict(policy_file=policy_file, policy_path=policy_path)
    notes, policy_errors = policy_change(reader, base, head, policy_path)
    new_envs = environment_names(reader.read_text(head, policy_path))  # a PR adding an environment
    if isinstance(policy, InputError):
        names = tuple(dict.fromkeys(environment_names(reader.read_text(base, policy_path)) + new_envs))
        return Plan(repo, base, head, errors=(policy.as_record(), *policy_errors), notes=notes, environments=names,
                    touched=names, **where)
    scope = scope_of(reader, base, head, policy, extra_environments=new_envs, policy_path=policy_path)
    known = {e.name for e in policy.environments}
    where.update(environments=scope.environments, relevant=scope.relevant,
                 touched=tuple(n for n in scope.environments if n in scope.touched or n not in known))

    found = discover(reader, base, head, policy, indexes=indexes,
                     whole_at_base=() if indexes is None else read_whole_at_base(policy, scope.touched))
    notes = (*notes, *found.notes)
    regates, content_errors = content_changes(reader, base, head, policy, found.promotions)
    found = replace(found, promotions=found.promotions + regates)
    errors = list(found.errors) + list(policy_errors) + list(content_errors)
    if len(found.promotions) > policy.limits.max_promotions:
        errors.append(ErrorRecord(policy.file, "limits.max_promotions",
                                  f"this PR makes {len(found.promotions)} promotions, more than the policy allows "
                                  f"({policy.limits.max_promotions}) (fix: split the PR, or raise limits.max_promotions "
                                  f"in {policy.file} on the base branch)"))
        return Plan(repo, base, head, removals=found.removals, errors=tuple(errors), notes=notes, **where)
    head_zoo, promotion_errors = Zoo(reader, head), {}
    jobs: list[Job] = []
    shared: dict[tuple, int] = {}  # what a job judges → its index in ``jobs``
    for i, promo in enumerate(found.promotions):
        env = policy.environment(promo.environment)
        try:
            head_zoo.get(promo.to_variant, named_in=promo.manifest, field=f"{promo.object}: variant")
        except InputError as exc:
            promotion_errors[i] = (exc.as_record(),)
            continue
        for position, spec in registry.run_order(env.gate):  # `servable` before the other model checks
            definition = registry.get(spec.name)
            for shard in range(spec.shards):
                key = (promo.environment, position, shard, str(promo.to_variant), str(promo.from_variant),
                       promo.application)
                if key in shared:
                    first = jobs[shared[key]]
                    jobs[shared[key]] = replace(first, also=first.also + (i,))
                    continue
                shared[key] = len(jobs)
                suffix = f"-s{shard + 1}of{spec.shards}" if spec.shards > 1 else ""
                jobs.append(Job(id=f"p{i}-{position}-{spec.name}{suffix}", promotion=i, check=spec.name,
                                position=position, runs_on=spec.runs_on, inline=definition.inline,
                                timeout_s=spec.timeout_s, shard=shard, shards=spec.shards, fail_fast=env.fail_fast))
    model_jobs = sum(not j.inline for j in jobs)
    if model_jobs > policy.limits.max_model_jobs:
        errors.append(ErrorRecord(policy.file, "limits.max_model_jobs",
                                  f"this PR needs {model_jobs} model jobs (lm-eval, app flows, GuideLLM), more than the "
                                  f"policy allows ({policy.limits.max_model_jobs}) (fix: split the PR, or raise "
                                  f"limits.max_model_jobs in {policy.file} on the base branch)"))
        return Plan(repo, base, head, found.promotions, found.removals, tuple(errors), notes=notes, **where)
    return Plan(repo, base, head, promotions=found.promotions, removals=found.removals, errors=tuple(errors),
                promotion_errors=promotion_errors, jobs=tuple(jobs), notes=notes, **where)


def read_whole_at_base(policy: Policy, touched) -> list[str]:
    """The environments that the checks of a touched environment read whole at the base."""
    names: list[str] = []
    for env in policy.environments:
        previous = policy.previous(env)
        if env.name in touched and previous is not None and previous.name not in names \
                and any(registry.get(spec.name).reads_previous_environment for spec in env.gate):
            names.append(previous.name)
    return names


def policy_change(reader, base: str, head: str, path: str) -> tuple[tuple[str, ...], tuple[ErrorRecord, ...]]:
    """A PR that edits the policy: parse its version as data (it never judges this PR), so a broken
    policy cannot merge unseen and break every later PR and the monitor."""
    new, old = reader.read_text(head, path), reader.read_text(base, path)
    if new == old:
        return (), ()
    if new is None:
        return (), (ErrorRecord(path, "", f"this PR deletes {path}: every later PR and the monitor would have no policy "
                                          f"(fix: keep {path}; change it instead)"),)
    try:
        parse_policy_text(new, path)
    except InputError as exc:
        record = exc.as_record()
        return (), (ErrorRecord(record.file, record.field,
                                f"{record.message}; this PR's version of {path} does not parse, and would break "
                                f"every later PR and the monitor"),)
    return (f"This PR changes {path}; the new policy parses, and applies from the next PR on "
            f"(this one is judged by the base branch's).",), ()


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
