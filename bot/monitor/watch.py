"""`promotion-bot monitor` (and `probe`): evaluate prod's rollback rules against Prometheus and the
probe rules against prod's endpoints, and open the revert PRs.

Exit codes: 0 healthy (warnings included, and promised wins not seen: those open one warning issue
per promotion), 1 a rule tripped (a revert PR was opened or already open), 2 could not judge
(Prometheus down, a query error, bad policy): then nothing is reverted, and every deployment the
pass could not judge says `"state": "error"` in the JSON report.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from bot.checks import load_policy
from bot.core.errors import InputError, PromotionBotError
from bot.core.fields import Loc
from bot.core.output import write_atomic
from bot.gate.recorder import read_all
from bot.gitops.manifests import Deployment, deployments
from bot.monitor.evaluate import TRIPPED, UNMET, WARN, Outcome, evaluate
from bot.monitor.history import PromotionCommit, find_promotion
from bot.monitor.landing import Landing
from bot.monitor.probe_history import ProbeRun, deployment_key
from bot.monitor.probes import run_probes
from bot.monitor.prometheus import PrometheusClient
from bot.monitor.rollback import Action, Trip, act, warn_unmet
from bot.monitor.sampling import collect_all
from bot.policy.model import Environment
from bot.policy.rollback import DEFAULT_TIMEOUT_S, RollbackPolicy
from bot.vcs.reader import GitReader
from bot.vcs.writer import GitWriter

SCHEMA_VERSION = 1


@dataclass
class DeploymentResult:
    deployment: Deployment
    promotion: PromotionCommit | None
    outcomes: list[Outcome]
    extra_evidence: str = ""  # escaped Markdown from probes
    action: Action | None = None
    probe: ProbeRun | None = None
    error: str = ""  # why this deployment could not be judged (Prometheus unreadable, a probe failed)

    @property
    def tripped(self) -> bool:
        return any(o.tripped for o in self.outcomes)

    @property
    def state(self) -> str:
        if self.error:
            return "error"
        if self.tripped:
            return "tripped"
        for state in (UNMET, WARN):
            if any(o.state == state for o in self.outcomes):
                return state
        return "ok"

    def to_json(self) -> dict:
        d = self.deployment
        return {
            "manifest": d.manifest, "object": d.object, "application": d.application, "model": d.model,
            "variant": d.variant, "served_model": d.served_model,
            "promotion_commit": self.promotion.sha if self.promotion else None,
            "previous_variant": self.promotion.previous_variant if self.promotion else None,
            "state": self.state, "error": self.error or None,
            "rules": [o.to_json() for o in self.outcomes],
            "probe": None if self.probe is None else {"variant": self.probe.variant, "pass_rates": {
                t: {"passed": p, "total": n, "rate": (p / n if n else None)} for t, (p, n) in self.probe.rates.items()},
                "failing": list(self.probe.failing)},
            "action": self.action.to_json() if self.action else None,
        }


@dataclass
class MonitorRun:
    environment: str
    prometheus: str
    evaluated_at: float
    results: list[DeploymentResult] = field(default_factory=list)
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.errors:
            return "error"
        return "tripped" if any(r.tripped for r in self.results) else "healthy"

    def to_json(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "environment": self.environment, "prometheus": self.prometheus,
                "evaluated_at": _iso(self.evaluated_at), "verdict": self.verdict, "requests": self.requests,
                "deployments": [r.to_json() for r in self.results], "errors": self.errors}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_rollback(policy, env_name: str) -> tuple[Environment, RollbackPolicy]:
    env = policy.environment(env_name)
    if env is None:
        raise InputError(policy.file, "environments", f"has no environment named {env_name!r}",
                         f"use one of {', '.join(e.name for e in policy.environments)}")
    loc = Loc(policy.file, f"environments[{env.index}].rollback")
    if env.rollback is None and env.probes is None:
        raise loc.error(f"is missing, so there is nothing to monitor in {env_name}",
                        "add `rollback: {defaults: true}` to the environment for the shipped vLLM rules")
    return env, env.rollback or RollbackPolicy(rules=(), timeout_s=DEFAULT_TIMEOUT_S)


def monitor(repo_path: Path, prometheus_url: str | None, *, env: str = "prod", forge, json_path: Path | None = None,
            dry_run: bool = False, branch: str | None = None, now: float | None = None,
            out: TextIO | None = None, metrics: bool = True, probes: bool = True,
            history_path: Path | None = None, status_url: str | None = None) -> int:
    """One monitoring pass: the metric rules (when ``metrics`` and a Prometheus URL) and the probe
    rules (when ``probes`` and the environment has `probes:`), then at most one PR per deployment,
    with its statuses set (linking ``status_url``) and, with `rollback.merge: auto`, merged."""
    out = out or sys.stdout
    run = MonitorRun(environment=env, prometheus=prometheus_url or "", evaluated_at=now or time.time())
    try:
        _run(run, Path(repo_path), forge=forge, dry_run=dry_run, branch=branch, metrics=metrics and bool(prometheus_url),
             probes=probes, history_path=history_path, status_url=status_url)
    except PromotionBotError as exc:
        run.errors.append(str(exc))
        print(f"error: {exc}", file=sys.stderr)
    if json_path is not None:
        write_atomic(Path(json_path), json.dumps(run.to_json(), indent=2) + "\n")
    print_table(run, out)
    return {"healthy": 0, "tripped": 1}.get(run.verdict, 2)


def _run(run: MonitorRun, repo_path: Path, *, forge, dry_run: bool, branch: str | None, metrics: bool, probes: bool,
         history_path: Path | None, status_url: str | None = None) -> None:
    writer = GitWriter(repo_path)
    reader = GitReader(repo_path)
    try:
        writer.fetch()
        default_branch = branch or writer.default_branch()
        base = writer.base_rev(default_branch)
        policy = load_policy.from_rev(reader, base)
        env, rollback = load_rollback(policy, run.environment)
        probe_policy = env.probes if probes else None
        if not metrics and probe_policy is None:
            raise InputError(policy.file, f"environments[{env.index}].probes",
                             "is missing, so there is nothing to probe" if probes else "nothing to evaluate",
                             "add a `probes:` section, or pass --prometheus-url to evaluate the metric rules")
        rules = rollback.rules if metrics else ()
        deps = deployments(reader, base, policy, run.environment)
        print(f"monitor: {len(deps)} deployment(s) in {run.environment} × {len(rules)} metric rule(s)"
              + (f" × {len(probe_policy.rules)} probe rule(s)" if probe_policy else "")
              + (f" against {run.prometheus}" if metrics else ""), file=sys.stderr, flush=True)
        history = writer.first_parent_history(base, env.folder)
        promos = [find_promotion(writer, reader, policy, base, d, history) for d in deps]
        run.results = [DeploymentResult(d, p, []) for d, p in zip(deps, promos)]
        # Measure everything first: a Prometheus or endpoint error aborts before anything is reverted.
        if rules:
            with PrometheusClient(run.prometheus, timeout_s=rollback.timeout_s) as client:
                try:
                    samples = _unjudged_on_error(run, lambda: collect_all(client, rules, deps, promos, run.evaluated_at))
                finally:
                    run.requests = client.requests
            for result, dep_samples in zip(run.results, samples):
                result.outcomes.extend(evaluate(rule, sample) for rule, sample in zip(rules, dep_samples))
        if probe_policy is not None:
            probed = _unjudged_on_error(run, lambda: run_probes(
                policy, probe_policy, reader, base, deps, Path(history_path) if history_path else None, run.evaluated_at))
            for result in run.results:
                outcomes, evidence, probe_run = probed[deployment_key(result.deployment)]
                result.outcomes.extend(outcomes)
                result.extra_evidence = evidence
                result.probe = probe_run
        evaluated_at = _iso(run.evaluated_at)
        landing = None
        for result in run.results:
            if result.tripped:
                if landing is None and not dry_run and forge is not None:
                    landing = _landing(repo_path, writer, policy, rollback, status_url)
                trip = Trip(result.deployment, result.promotion, tuple(result.outcomes), result.extra_evidence)
                result.action = act(trip, writer=writer, reader=reader, forge=forge, policy=policy, base=base,
                                    default_branch=default_branch, prometheus=run.prometheus if metrics else "",
                                    evaluated_at=evaluated_at, dry_run=dry_run, landing=landing)
                print(f"monitor: {result.deployment.application}: {result.action.kind} {result.action.branch or ''} "
                      f"{result.action.url or ''}".rstrip(), file=sys.stderr, flush=True)
            elif result.state == UNMET:
                unmet = tuple(o for o in result.outcomes if o.state == UNMET)
                result.action = warn_unmet(result.deployment, result.promotion, unmet, forge=forge,
                                           prometheus=run.prometheus, evaluated_at=evaluated_at, dry_run=dry_run)
                print(f"monitor: {result.deployment.application}: promised win not seen: {result.action.kind} "
                      f"{result.action.url or ''}".rstrip(), file=sys.stderr, flush=True)
    finally:
        writer.close()
        reader.close()


def _landing(repo_path: Path, writer: GitWriter, policy, rollback: RollbackPolicy, status_url: str | None) -> Landing:
    """What setting a revert's statuses and merging it need, read once per pass with a trip."""
    records, note = read_all(repo_path)
    return Landing(history=writer.first_parent_history, records=tuple(records),
                   environments=tuple(e.name for e in policy.environments), merge=rollback.merge,
                   critical=frozenset(r.name for r in rollback.rules if r.critical), status_url=status_url,
                   records_note=note)


def _unjudged_on_error(run: MonitorRun, measure):
    """Run ``measure``; when it fails, every deployment of the pass is marked unjudged before the
    error ends the pass: the report must not read "ok" for what nobody could look at."""
    try:
        return measure()
    except PromotionBotError as exc:
        for result in run.results:
            result.error = str(exc)
        raise


def print_table(run: MonitorRun, out: TextIO) -> None:
    rows = [("DEPLOYMENT", "VARIANT", "RULE", "VALUE", "THRESHOLD", "STATE")]
    for r in run.results:
        for o in r.outcomes:
            rows.append((f"{r.deployment.application} ({r.deployment.manifest})", r.deployment.variant, o.rule,
                         _num(o.value), _num(o.limit), o.state.upper() if o.state == TRIPPED else o.state))
    if len(rows) > 1:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), file=out)
    for r in run.results:
        if r.probe is not None:
            rates = ", ".join(f"{t} {p}/{n}" for t, (p, n) in r.probe.rates.items() if n)
            print(f"probe {r.deployment.application} ({r.probe.variant}): {rates or 'no case run'}", file=out)
    for r in run.results:
        if r.action:
            a = r.action
            print(f"{a.kind}: {a.title}" + (f" [{a.branch}]" if a.branch else "") + (f" {a.url}" if a.url else ""), file=out)
            print(f"  {a.detail}", file=out)
            if a.landed:
                print(f"  {a.landed}", file=out)
            if a.body and a.url is None:
                print("", file=out)
                print(a.body, file=out)
    print(f"verdict: {run.verdict}" + (f" ({run.requests} Prometheus requests)" if run.prometheus else ""), file=out)


def _num(value) -> str:
    return "–" if value is None else f"{value:.4g}"
