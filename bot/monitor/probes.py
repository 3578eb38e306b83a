"""Prod probes: the application-flow suites run against what prod serves, as rollback rules.

Each pass runs a small rotating sample of the suite's cases against every prod deployment's
endpoint (`bot.zoo.serving`: local `transformers serve`, a URL, or a command), records the pass rate
per tag in the probe history, and evaluates the probe rules over the runs of the variant now
served. An endpoint that does not answer is an error (exit 2), never a trip.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Sequence

from bot.appflows.runner import ERROR, FAIL, Endpoint, run_cases
from bot.appflows.suite import all_cases, load_suites
from bot.core.errors import ExternalError, InputError
from bot.core.output import clip
from bot.gitops.manifests import Deployment
from bot.monitor.evaluate import NO_DATA, OK, TRIPPED, WARN, Outcome
from bot.monitor.probe_history import OUTPUT_LIMIT, ProbeHistory, ProbeRun, PushgatewayHistory, deployment_key
from bot.policy.probes import ProbePolicy, ProbeRule
from bot.render.markdown import make_environment
from bot.vcs.notes import GitNotes
from bot.zoo.records import all_records, gate_pass_rate
from bot.zoo.serving import parse_serve, served
from bot.zoo.variants import VariantRef, parse_variant

EVIDENCE_CASES = 6


def _progress(message: str) -> None:
    print(f"probe: {message}", file=sys.stderr, flush=True)


def evaluate_probe(rule: ProbeRule, runs: Sequence[ProbeRun], gate_rate: float | None) -> Outcome:
    """Pure: ``runs`` are the runs of the variant now served, oldest first."""
    measured = [r.rate(rule.tag) for r in runs if r.rate(rule.tag) is not None]
    condition = rule.describe()
    if rule.under_gate is not None:
        if gate_rate is None:
            return Outcome(rule.name, condition, measured[-1] if measured else None, None, None, WARN,
                           f"no gate recorded an app-flows pass rate for {rule.tag} of this variant "
                           f"(refs/notes/promotion-bot): nothing to compare with")
        limit = gate_rate - rule.under_gate / 100.0
    else:
        limit = rule.below
    if not measured:
        return Outcome(rule.name, condition, None, gate_rate, limit, NO_DATA, f"no {rule.tag} case probed yet")
    current = measured[-1]
    recent = measured[-rule.consecutive:]
    low = sum(v < limit - 1e-9 for v in recent)
    if len(recent) == rule.consecutive and low == rule.consecutive:
        return Outcome(rule.name, condition, current, gate_rate, limit, TRIPPED,
                       f"{rule.tag} pass rate {_pct(recent)} in the last {rule.consecutive} probe(s), under {limit:.0%}")
    return Outcome(rule.name, condition, current, gate_rate, limit, OK,
                   f"{low} of the last {len(recent)} probe(s) under {limit:.0%} (needs {rule.consecutive})")


def _pct(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.0%}" for v in values)


def render_evidence(dep: Deployment, run: ProbeRun, tags: set[str]) -> str:
    """Failing cases of the tripped tags, quoted and escaped: model output is untrusted."""
    failing = [f for f in run.failing if f["tag"] in tags][:EVIDENCE_CASES]
    if not failing:
        return ""
    env = make_environment()
    return env.from_string(
        "#### Failing probe cases ({{ variant }})\n\n"
        "| Case | Tag | Expected | Reply |\n|---|---|---|---|\n"
        "{% for f in failing %}| {{ f.case }} | {{ f.tag }} | {{ f.required | truncate_text(160) }} | "
        "{{ f.output | truncate_text(240) | code }} |\n{% endfor %}"
    ).render(variant=run.variant, failing=failing)


class ProbeRunner:
    def __init__(self, policy, probes: ProbePolicy, reader, base: str, history, now: float) -> None:
        self.policy = policy
        self.probes = probes
        self.reader = reader
        self.base = base
        self.history = history
        self.now = now
        serve_raw = probes.serve if probes.serve is not None else policy.serve
        self.serve = parse_serve(serve_raw, policy.file)
        self._suites: dict[str, list] = {}
        self._records: list | None = None

    def cases_for(self, dep: Deployment) -> list:
        folder = self.probes.suites or f"evals/{dep.application}"
        if folder not in self._suites:
            suites = load_suites(self.reader, self.base, folder)
            if not suites:
                raise InputError(self.policy.file, f"{self.probes.loc.path}.suites",
                                 f"no application-flow suite in {folder}/ on the default branch",
                                 f"add suites to {folder}/ or point `suites:` at them")
            self._suites[folder] = [c for c in all_cases(suites) if set(c.tags) & set(self.probes.tags)]
        return self._suites[folder]

    def sample(self, dep: Deployment, cases: list) -> list:
        """A window of the suite that moves on every run, so successive probes cover all of it."""
        n = self.probes.sample
        if n is None or n >= len(cases):
            return list(cases)
        start = (len(self.history.runs(deployment_key(dep))) * n) % len(cases)
        return [cases[(start + i) % len(cases)] for i in range(n)]

    def probe(self, dep: Deployment) -> ProbeRun:
        cases = self.sample(dep, self.cases_for(dep))
        name = f"{dep.model}/{dep.variant}"
        with tempfile.TemporaryDirectory(prefix="promotion-bot-probe-") as tmp:
            weights = None if self.serve.mode == "url" else self._weights(dep, Path(tmp))
            with served(self.serve, weights, name=name) as ep:
                model = ep.model if self.serve.mode == "local" or self.serve.model else dep.served_model
                _progress(f"{len(cases)} case(s) against {dep.application} ({name}) at {ep.base_url}")
                run = run_cases(Endpoint(ep.base_url, model), cases, concurrency=self.probes.concurrency,
                                timeout_s=self.probes.request_timeout_s, sample_rule=self.probes.sample_rule,
                                progress=_progress)
        errors = [r for r in run.results if r.status == ERROR]
        if errors:
            raise ExternalError("model server", f"{dep.application} ({name}) did not answer {len(errors)} of "
                                                f"{len(run.results)} probe case(s): {errors[0].error}")
        failing = tuple({"case": r.case.key, "tag": t, "required": r.case.required(), "output": clip(r.output, OUTPUT_LIMIT)}
                        for r in run.results if r.status == FAIL for t in r.case.tags)
        return ProbeRun(at=self.now, variant=name, rates=run.pass_rates(), failing=failing)

    def _weights(self, dep: Deployment, tmp: Path) -> Path:
        ref = VariantRef(dep.model, dep.variant)
        text = self.reader.read_text(self.base, f"{ref.folder}/variant.yaml")
        if text is None:
            raise InputError(f"{ref.folder}/variant.yaml", "", "does not exist on the default branch",
                             "probe prod through `probes.serve: {mode: url, ...}`, or commit the variant")
        variant = parse_variant(ref, text)
        if variant.weights is None or variant.weights.path is None:
            raise InputError(f"{ref.folder}/variant.yaml", "weights.path", "local probes need the weights in the repo",
                             "probe prod through `probes.serve: {mode: url, url: https://...}`")
        return self.reader.export(self.base, variant.weights.path, tmp)

    def gate_rate(self, dep: Deployment, tag: str) -> float | None:
        """The pass rate of ``tag`` the gate recorded for the variant now served (bot/zoo/records.py):
        prod's own gate when it ran app-flows, else the newest gate that did."""
        found = gate_pass_rate(self.records(), f"{dep.model}/{dep.variant}", tag, environment=dep.environment)
        return None if found is None else found[0]

    def records(self) -> list:
        """The gate's records, the remote's merged in first: a CI checkout starts without notes."""
        if self._records is None:
            notes = GitNotes(self.reader.path)
            if notes.has_remote():
                notes.pull()
            self._records = all_records(notes.all())
        return self._records


def run_probes(policy, probes: ProbePolicy, reader, base: str, deps: Sequence[Deployment], history_path: Path | None,
               now: float) -> dict[str, tuple[list[Outcome], str, ProbeRun]]:
    """Probe every deployment, then record the runs (only when all answered) and evaluate the rules."""
    # A history file named on the command line wins over the policy's Pushgateway.
    if probes.pushgateway and history_path is None:
        history = PushgatewayHistory.load(probes.pushgateway)
    else:
        history = ProbeHistory.load(history_path or Path(probes.history))
    runner = ProbeRunner(policy, probes, reader, base, history, now)
    runs = {deployment_key(d): runner.probe(d) for d in deps}  # an ExternalError here records nothing
    out = {}
    for dep in deps:
        key = deployment_key(dep)
        history.add(key, runs[key], probes.keep)
        same_variant = [r for r in history.runs(key) if r.variant == runs[key].variant]
        outcomes = [evaluate_probe(rule, same_variant, runner.gate_rate(dep, rule.tag) if rule.under_gate is not None else None)
                    for rule in probes.rules]
        tripped_tags = {rule.tag for rule, o in zip(probes.rules, outcomes) if o.state == TRIPPED}
        out[key] = (outcomes, render_evidence(dep, runs[key], tripped_tags), runs[key])
    history.save()
    return out
