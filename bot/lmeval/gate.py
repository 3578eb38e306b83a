"""The comparison, pure: (task specs, candidate and baseline scores and per-document values) →
rows, each with a paired interval of how much worse the candidate is, and a verdict.

"Worse" follows lm-eval's `higher_is_better` for each metric: a drop for accuracy, a rise for
perplexity. Limits are relative (`3%` of the baseline) or in points (for metrics lm-eval reports
as fractions, one point is 0.01). A missing, NaN or direction-less number is an error, never a pass.

The interval pairs the two models document by document (both ran on the same documents):
perplexity-type aggregates by a paired bootstrap, mean metrics by a paired t interval (a pass-rate
interval for 0/1 scores against a points limit). `bot.verdicts.evidence.judge` turns it into pass, fail or
inconclusive by the gate entry's rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.lmeval.options import Limit, TaskSpec
from bot.lmeval.scores import Score
from bot.stats.interval import Interval
from bot.stats.paired import AGGREGATE_KINDS, aggregate_change, mean_difference, relative_mean_difference
from bot.stats.proportions import pass_rate_drop
from bot.verdicts import evidence
from bot.verdicts.evidence import VerdictRule
from bot.verdicts.results import ERROR, FAIL, INCONCLUSIVE, PASS, MetricRow, combine

EPSILON = 1e-9  # float noise: an identical model must pass a zero limit


@dataclass(frozen=True)
class Outcome:
    verdict: str
    rows: tuple[MetricRow, ...]
    problems: tuple[str, ...]  # one line per failing or broken row, for the check's detail
    changes: tuple[str, ...] = ()  # one line per compared row: how far from the baseline, and the limit


def worse_by(candidate: float, baseline: float, higher_is_better: bool, limit: Limit) -> float:
    """How much worse the candidate is, in the limit's unit (fraction of baseline, or points)."""
    diff = (baseline - candidate) if higher_is_better else (candidate - baseline)
    if limit.relative:
        if baseline == 0:
            return 0.0 if diff <= 0 else math.inf
        return diff / abs(baseline)
    return diff * (100.0 if 0.0 <= candidate <= 1.0 and 0.0 <= baseline <= 1.0 else 1.0)


def _fmt_stderr(c: Score | None, b: Score | None) -> str | None:
    if (c is None or c.stderr is None) and (b is None or b.stderr is None):
        return None
    f = lambda s: "–" if s is None or s.stderr is None else f"±{s.stderr:.3g}"  # noqa: E731
    return f"{f(c)} / {f(b)}"


def _threshold(limit: Limit, hib: bool | None) -> str:
    return f"worse by ≤ {limit.describe()}"  # worse: a drop of accuracy, a rise of perplexity


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def compare(specs: tuple[TaskSpec, ...], candidate: dict[str, list[Score]], baseline: dict[str, list[Score]], *,
            candidate_docs: dict | None = None, baseline_docs: dict | None = None,
            rule: VerdictRule = VerdictRule()) -> Outcome:
    """``*_docs``: `scores.parse_samples` of each side (per task, (metric, filter) → document → value)."""
    rows: list[MetricRow] = []
    problems: list[str] = []
    changes: list[str] = []
    for spec in specs:
        cand = {(s.metric, s.filter): s for s in candidate.get(spec.name, [])}
        base = {(s.metric, s.filter): s for s in baseline.get(spec.name, [])}
        keys = list(dict.fromkeys([*cand, *base]))
        if spec.metrics is not None:
            keys = [k for k in keys if k[0] in spec.metrics]
            missing = [m for m in spec.metrics if not any(k[0] == m for k in keys)]
            for m in missing:
                reported = sorted({k[0] for k in cand} | {k[0] for k in base})
                problems.append(f"{spec.name} reports no {m!r} (it reports: {', '.join(reported) or 'nothing'})")
                rows.append(MetricRow(f"{spec.name} {m}", None, None, _threshold(spec.limit, None), ERROR))
        elif not keys:
            problems.append(f"lm-eval returned no metrics for {spec.name}")
            rows.append(MetricRow(f"{spec.name}", None, None, _threshold(spec.limit, None), ERROR))
        filters: dict[str, int] = {}
        for metric, _ in keys:
            filters[metric] = filters.get(metric, 0) + 1
        for key in keys:
            # The filter goes into the label only when a metric has several (the card reads "task metric").
            label = f"{spec.name} {key[0]}" + (f" [{key[1]}]" if filters[key[0]] > 1 else "")
            docs = [((d or {}).get(spec.name) or {}).get(key) for d in (candidate_docs, baseline_docs)]
            rows.append(_row(spec, label, cand.get(key), base.get(key), problems, changes, docs, rule))
    verdict = combine(r.verdict for r in rows) if rows else ERROR
    return Outcome(verdict, tuple(rows), tuple(problems), tuple(changes))


def _row(spec: TaskSpec, label: str, c: Score | None, b: Score | None, problems: list[str],
         changes: list[str], docs: list, rule: VerdictRule) -> MetricRow:
    s = c or b
    hib = c.higher_is_better if c is not None else None
    if hib is None and b is not None:
        hib = b.higher_is_better
    cv, bv = (None if c is None else c.value), (None if b is None else b.value)
    row = dict(label=label, candidate=_finite(cv), baseline=_finite(bv), threshold=_threshold(spec.limit, hib),
               stderr=_fmt_stderr(c, b), higher_is_better=hib)
    if cv is None or bv is None:
        problems.append(f"{label}: missing from the {'candidate' if cv is None else 'baseline'} results")
        return MetricRow(**row, verdict=ERROR)
    if not (math.isfinite(cv) and math.isfinite(bv)):
        problems.append(f"{label}: not a finite number (candidate {cv}, baseline {bv})")
        return MetricRow(**row, verdict=ERROR)
    if hib is None:
        problems.append(f"{label}: lm-eval gives no higher_is_better for {s.metric}; name the metrics to compare")
        return MetricRow(**row, delta=cv - bv, verdict=ERROR)
    limit = spec.limit
    unit = "relative" if limit.relative else "points"
    interval = paired_interval(s.metric, hib, limit, docs[0], docs[1], rule.confidence)
    if isinstance(interval, str):
        # No per-document values (a group's own row): the point estimate decides, and the row says so.
        worse = worse_by(cv, bv, hib, limit)
        verdict, proof = (FAIL if worse > limit.amount + EPSILON else PASS), None
        said = f"{evidence.amount(worse, unit)} worse, limit {evidence.amount(limit.amount, unit)} (no interval: {interval})"
    else:
        verdict, proof = evidence.judge(interval, limit.amount, unit, rule, observations="documents")
        said = evidence.describe(proof)
    if verdict == FAIL:
        problems.append(f"{label}: {said}")
    elif verdict == INCONCLUSIVE:
        problems.append(f"{label}: inconclusive, {said}")
    changes.append(f"{label} {cv:.4g} vs baseline {bv:.4g}: {said}")
    return MetricRow(**row, delta=cv - bv, verdict=verdict, evidence=proof)


def paired_interval(metric: str, higher_is_better: bool, limit: Limit, cand_docs: dict | None, base_docs: dict | None,
                    level: float) -> Interval | str:
    """How much worse the candidate is, paired over the documents both models ran; a reason when
    there is no interval to give."""
    if not cand_docs or not base_docs:
        return "no per-document values"
    if set(cand_docs) != set(base_docs):
        return "the two models were not evaluated on the same documents"
    keys = sorted(cand_docs, key=lambda k: (k[0] if isinstance(k[0], int) else -1, str(k)))  # lm-eval's order
    c, b = [cand_docs[k] for k in keys], [base_docs[k] for k in keys]
    try:
        if metric in AGGREGATE_KINDS:
            if not limit.relative:
                return f"{metric} limits are relative (e.g. `max_increase: 3%`)"
            if any(x[1] != y[1] for x, y in zip(c, b)):
                return "the two models' word or byte counts differ"
            return aggregate_change([x[0] for x in c], [y[0] for y in b], [y[1] for y in b], kind=metric, level=level)
        c, b = [float(x) for x in c], [float(y) for y in b]
        if limit.relative:
            return relative_mean_difference(c, b, higher_is_better=higher_is_better, level=level)
        if higher_is_better and all(v in (0.0, 1.0) for v in c + b):
            return pass_rate_drop(c, b, level=level)
        fractions = all(0.0 <= v <= 1.0 for v in c + b)
        return mean_difference(c, b, higher_is_better=higher_is_better, level=level, scale=100.0 if fractions else 1.0)
    except (ValueError, TypeError, IndexError) as exc:
        return f"per-document values unusable ({exc})"
