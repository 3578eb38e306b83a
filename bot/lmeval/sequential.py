"""Stage 1 in looks: evaluate both models on growing batches of documents, stop once settled.

With `limit: 400` and `sequential: {min: 50, growth: 2}` the looks are at 50, 100, 200 and 400
documents per task. At each look the candidate (and the baseline, unless the cache already holds
those documents) runs lm-eval on the new documents only (`samples=`), the per-document values are
added to the earlier ones, the task aggregates are recomputed over all of them
(`bot.lmeval.aggregate`) and the paired comparison is made at the look's level from
`bot.stats.sequential` (alpha spent over the planned looks, so peeking does not inflate the error
rates). A pass or fail stops; an inconclusive goes on to the next look, and is the verdict only at
the last one.

A check stays fixed-count (one lm-eval run of `limit` documents), and its notes say why, when its
aggregates cannot be recomputed from per-document values, when a task is a group, or when the
entry decides by the point estimate (`decide: estimate` would stop at the first look on noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

from bot.core.errors import InputError
from bot.lmeval import aggregate, harness
from bot.lmeval.cache import BaselineCache, Cached
from bot.lmeval.gate import Outcome, compare
from bot.lmeval.options import EvalOptions
from bot.lmeval.scores import parse_samples, parse_scores
from bot.stats.sequential import Sequential
from bot.verdicts import looks
from bot.verdicts.evidence import VerdictRule

# role ("candidate" | "baseline"), documents (start, stop) or None for `limit` → a harness.run result
Evaluate = Callable[[str, "tuple[int, int] | None"], dict]


@dataclass
class Evaluated:
    """Both models' results over the documents the check used, and the comparison on them."""

    outcome: Outcome
    candidate: dict
    baseline: dict
    evaluations: list[dict]  # one finding per model: where its results came from
    notes: list[str] = field(default_factory=list)
    looks: looks.Taken | None = None  # where the planned looks stopped; None: fixed count


def wanted_metrics(options: EvalOptions) -> dict[str, tuple[str, ...] | None]:
    return {t.name: t.metrics for t in options.tasks}


def seq_plan(options: EvalOptions, rule: VerdictRule, facts: Callable[[], dict]) -> tuple[Sequential | None, str | None]:
    """The looks to take, or None and why the check evaluates `limit` documents in one run.

    ``facts`` is `harness.inspect` (called only when a plan is possible: it loads the tasks).
    """
    seq = options.sequential
    if seq is None or not options.limit or options.limit <= seq.minimum:
        why = None
        if seq is not None and seq.explicit:
            why = ("sequential stopping needs `limit:` (the most documents to evaluate)" if not options.limit else
                   f"limit {options.limit} is at most sequential.min {seq.minimum}: one look")
        return None, why
    if rule.decide != "interval":
        return None, "sequential stopping needs `decide: interval` (a point estimate would stop on noise)"
    try:
        tasks = facts()
    except harness.NotSplittable as exc:
        return None, f"evaluated in one run, not in looks: {exc}"
    reasons = aggregate.unrecomputable({t: f.aggregations for t, f in tasks.items()}, wanted_metrics(options))
    if reasons:
        return None, "evaluated in one run, not in looks: " + "; ".join(reasons)
    limit = min(options.limit, max(f.documents for f in tasks.values()))
    if limit <= seq.minimum:
        return None, (f"the tasks have at most {limit} documents, no more than sequential.min {seq.minimum}: "
                      "one look") if seq.explicit else None
    return seq.plan(limit, rule.confidence), None


class Baseline:
    """The baseline's results for the first n documents: from the cache, grown when more are needed."""

    def __init__(self, evaluate: Evaluate, cache: BaselineCache, key: str | None, describe: dict,
                 options: EvalOptions, progress: Callable[[str], None]) -> None:
        self.evaluate, self.cache, self.key, self.describe = evaluate, cache, key, describe
        self.options, self.progress = options, progress
        self.cached: Cached | None = cache.get(key) if key else None
        self.have: dict | None = None if self.cached is None else self.cached.raw
        self.have_documents = None if self.cached is None else self.cached.documents
        self.from_cache = self.cached is not None
        self.seconds = 0.0
        self.evaluated_here = False

    def _store(self, raw: dict, documents: int | None) -> None:
        self.have, self.have_documents = raw, documents
        if self.key and all(math.isfinite(s.value) for ss in parse_scores(raw).values() for s in ss):
            self.cache.put(self.key, raw, documents=documents, describe=self.describe)

    def _recomputable(self) -> bool:
        return not aggregate.unrecomputable(self.have.get("aggregations") or {}, wanted_metrics(self.options))

    def results(self, documents: int | None) -> dict:
        """Results over the first ``documents`` documents per task (None: lm-eval's `limit`, maybe all)."""
        have = None if self.have is None else Cached(self.have, self.have_documents)
        if have is not None and have.covers(documents):
            if documents is None or have.documents == documents:
                return self.have
            return aggregate.first(self.have, documents)
        if have is not None and documents is not None and have.documents is not None and self._recomputable():
            start = have.documents
            self.progress(f"baseline: documents 1–{start} from the cache, evaluating {start + 1}–{documents}")
            part = self._run((start, documents))
            check_batch(part, self.options)
            self._store(aggregate.merge([self.have, part]), documents)
            return self.have
        self._store(self._run(None if documents == self.options.limit else (0, documents)), documents)
        return self.have

    def _run(self, window: tuple[int, int] | None) -> dict:
        raw = self.evaluate("baseline", window)
        self.seconds += float(raw.get("seconds") or 0.0)
        self.evaluated_here = True
        return raw

    def finding(self, variant: str, documents: int | None) -> dict:
        source = ("cache+lm-eval" if self.from_cache else "lm-eval") if self.evaluated_here else "cache"
        how = {"cache": "cached lm-eval results", "lm-eval": f"evaluated by lm-eval in {self.seconds:.1f}s",
               "cache+lm-eval": f"cached lm-eval results, grown by lm-eval in {self.seconds:.1f}s"}[source]
        return _finding("baseline", variant, source, self.seconds, how, documents)


def _finding(role: str, variant: str, source: str, seconds: float, how: str, documents: int | None) -> dict:
    return {"title": f"{role} {variant}: {how}", "role": role, "variant": variant, "source": source,
            "seconds": seconds, "documents": documents}


def check_batch(raw: dict, options: EvalOptions) -> None:
    """A batch's recomputed aggregates must equal lm-eval's own, or adding batches up would be wrong."""
    problems = aggregate.mismatches(raw, wanted_metrics(options))
    if problems:
        raise InputError(options.where or "promotion.yaml", "sequential",
                         "the aggregates recomputed from per-document values differ from lm-eval's: " + "; ".join(problems),
                         "set `sequential: off` for this check")


def evaluate(evaluate: Evaluate, options: EvalOptions, rule: VerdictRule, baseline: Baseline, *,
             candidate_variant: str, baseline_variant: str, plan: Sequential | None,
             progress: Callable[[str], None]) -> Evaluated:
    """Run the check's looks (one look of `limit` documents when ``plan`` is None) and compare."""
    if plan is None:
        base = baseline.results(options.limit)
        cand = evaluate("candidate", None)
        outcome = _compare(options, cand, base, rule)
        seconds = float(cand.get("seconds") or 0.0)
        return Evaluated(outcome, cand, base, [
            baseline.finding(baseline_variant, options.limit),
            _finding("candidate", candidate_variant, "lm-eval", seconds, f"evaluated by lm-eval in {seconds:.1f}s",
                     options.limit)])

    parts: list[dict] = []
    state: dict = {}

    def look(at: looks.Look) -> tuple[Outcome, str]:
        state["base"] = base = baseline.results(at.stop)
        part = evaluate("candidate", (at.start, at.stop))
        check_batch(part, options)
        parts.append(part)
        state["cand"] = cand = aggregate.merge(parts)
        outcome = _compare(options, cand, base, replace(rule, confidence=at.level))
        return outcome, looks.settled(outcome.verdict, outcome.rows)

    outcome, taken = looks.run_in_looks(plan, look, name=options.check, unit="documents per task", progress=progress)
    cand, n = state["cand"], taken.observations
    seconds = float(cand.get("seconds") or 0.0)
    evaluated = Evaluated(outcome, cand, state["base"], [
        baseline.finding(baseline_variant, n),
        _finding("candidate", candidate_variant, "lm-eval", seconds,
                 f"evaluated by lm-eval in {seconds:.1f}s over {taken.look} look{'s' if taken.look > 1 else ''}", n)],
        looks=taken)
    evaluated.notes.append(taken.note(rule.confidence, options.sequential.spending))
    return evaluated


def _compare(options: EvalOptions, cand: dict, base: dict, rule: VerdictRule) -> Outcome:
    return compare(options.tasks, parse_scores(cand), parse_scores(base),
                   candidate_docs=parse_samples(cand), baseline_docs=parse_samples(base), rule=rule)

