"""The comparison, pure: (task specs, candidate scores, baseline scores) → rows and a verdict.

"Worse" follows lm-eval's `higher_is_better` for each metric: a drop for accuracy, a rise for
perplexity. Limits are relative (`3%` of the baseline) or in points (for metrics lm-eval reports
as fractions, one point is 0.01). A missing, NaN or direction-less number is an error, never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.lmeval.options import Limit, TaskSpec
from bot.lmeval.scores import Score
from bot.results import ERROR, FAIL, PASS, MetricRow, combine

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
    if hib is None:
        return f"worse by ≤ {limit.describe()}"
    return f"{'drop' if hib else 'rise'} ≤ {limit.describe()}"


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def compare(specs: tuple[TaskSpec, ...], candidate: dict[str, list[Score]], baseline: dict[str, list[Score]]) -> Outcome:
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
            rows.append(_row(spec, label, cand.get(key), base.get(key), problems, changes))
    verdict = combine(r.verdict for r in rows) if rows else ERROR
    return Outcome(verdict, tuple(rows), tuple(problems), tuple(changes))


def _row(spec: TaskSpec, label: str, c: Score | None, b: Score | None, problems: list[str],
         changes: list[str]) -> MetricRow:
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
    worse = worse_by(cv, bv, hib, spec.limit)
    verdict = FAIL if worse > spec.limit.amount + EPSILON else PASS
    amount = f"{abs(worse) * 100:.2f}%" if spec.limit.relative else f"{abs(worse):.2f} pt"
    if verdict == FAIL:
        problems.append(f"{label}: {amount} worse than the baseline (allowed {spec.limit.describe()})")
    moved = "no change" if worse == 0 else f"{amount} {'worse' if worse > 0 else 'better'}"
    changes.append(f"{label} {cv:.4g} vs baseline {bv:.4g}: {moved} (allowed {spec.limit.describe()} worse)")
    return MetricRow(**row, delta=cv - bv, verdict=verdict)
