"""lm-eval's task aggregates recomputed from per-document values, so results of several batches of
documents (or the first n documents of a cached result) read as one lm-eval result.

Only lm-eval's own aggregations, matched by identity in `harness.aggregation_names`:

    mean                 Σv/n                      (acc, acc_norm, exact_match...; stderr sd/√n)
    weighted_perplexity  exp(−Σll/Σw)              (word_perplexity, byte_perplexity)
    bits_per_byte        −Σll/(Σbytes·ln 2)
    perplexity           exp(−Σll/n)               (loglikelihood tasks)

Anything else (f1, bleu, a task's own function) cannot be recomputed: `unrecomputable` names it,
and the check then evaluates its documents in one run.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

RECOMPUTABLE = ("mean", "weighted_perplexity", "bits_per_byte", "perplexity")


def _pairs(values: Sequence[Any]) -> tuple[list[float], list[float]]:
    lls, weights = [], []
    for v in values:
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise ValueError(f"a weighted aggregate needs [loglikelihood, count] per document, got {v!r}")
        lls.append(float(v[0]))
        weights.append(float(v[1]))
    return lls, weights


def aggregate(name: str, values: Sequence[Any]) -> float:
    """The aggregate ``name`` of per-document ``values``, as lm-eval computes it (NaN stays NaN)."""
    if not values:
        raise ValueError("no documents to aggregate")
    if name == "mean":
        return math.fsum(float(v) for v in values) / len(values)
    if name == "perplexity":
        return math.exp(-math.fsum(float(v) for v in values) / len(values))
    if name in ("weighted_perplexity", "bits_per_byte"):
        lls, weights = _pairs(values)
        weighted_mean = math.fsum(lls) / math.fsum(weights)
        return math.exp(-weighted_mean) if name == "weighted_perplexity" else -weighted_mean / math.log(2)
    raise ValueError(f"aggregation {name!r} cannot be recomputed from per-document values")


def stderr(name: str, values: Sequence[Any]) -> float | None:
    """lm-eval's closed-form standard error where it has one (the mean's sd/√n), else None."""
    if name != "mean" or len(values) < 2:
        return None
    xs = [float(v) for v in values]
    mu = math.fsum(xs) / len(xs)
    return math.sqrt(math.fsum((x - mu) ** 2 for x in xs) / (len(xs) - 1)) / math.sqrt(len(xs))


def unrecomputable(aggregations: Mapping[str, Mapping[str, str]], wanted: Mapping[str, Iterable[str] | None]) -> list[str]:
    """The (task, metric) pairs to compare whose aggregate cannot be recomputed, as readable reasons.

    ``wanted``: task → the metrics the gate compares (None: all the task reports).
    """
    reasons = []
    for task, metrics in wanted.items():
        known = aggregations.get(task)
        if known is None:
            reasons.append(f"{task}: lm-eval reports no aggregations for it")
            continue
        for metric in (known if metrics is None else metrics):
            name = known.get(metric)
            if name not in RECOMPUTABLE:
                reasons.append(f"{task} {metric}: its aggregation {name or 'is not one of lm-eval’s own and'} "
                               "cannot be recomputed from per-document values")
    return reasons


def task_results(examples: Sequence[Mapping[str, Any]], aggregations: Mapping[str, str]) -> dict[str, Any]:
    """lm-eval's `results[task]` shape, {"metric,filter": value, "metric_stderr,filter": se | "N/A"},
    from `harness.per_document` entries; metrics without a recomputable aggregation are left out."""
    per_metric: dict[tuple[str, str], list] = {}
    for ex in examples:
        for metric, value in (ex.get("values") or {}).items():
            per_metric.setdefault((metric, ex.get("filter", "none")), []).append(value)
    out: dict[str, Any] = {}
    for (metric, filt), values in per_metric.items():
        name = aggregations.get(metric)
        if name not in RECOMPUTABLE:
            continue
        out[f"{metric},{filt}"] = aggregate(name, values)
        se = stderr(name, values)
        out[f"{metric}_stderr,{filt}"] = "N/A" if se is None else se
    return out


def _documents(examples: Sequence[Mapping[str, Any]]) -> int:
    return len({ex.get("doc_id") for ex in examples})


def rebuild(raw: Mapping[str, Any], samples: Mapping[str, list]) -> dict:
    """``raw`` (a `harness.run` result) over other per-document ``samples``: results recomputed."""
    aggregations = raw.get("aggregations") or {}
    n_samples = raw.get("n-samples") or {}
    return {
        **raw,
        "samples": {t: list(ex) for t, ex in samples.items()},
        "results": {t: task_results(ex, aggregations.get(t) or {}) for t, ex in samples.items()},
        "n-samples": {t: {**(n_samples.get(t) or {}), "effective": _documents(ex)} for t, ex in samples.items()},
    }


def _order(ex: Mapping[str, Any]) -> tuple:
    doc = ex.get("doc_id")
    return (doc if isinstance(doc, int) else -1, str(ex.get("filter", "none")))


def merge(parts: Sequence[Mapping[str, Any]]) -> dict:
    """Several `harness.run` results of one model on disjoint documents, as one result."""
    if not parts:
        raise ValueError("nothing to merge")
    samples: dict[str, list] = {}
    seen: set[tuple] = set()
    for part in parts:
        for task, examples in (part.get("samples") or {}).items():
            for ex in examples:
                key = (task, ex.get("doc_id"), ex.get("filter", "none"))
                if key in seen:
                    raise ValueError(f"{task} document {ex.get('doc_id')} was evaluated twice")
                seen.add(key)
                samples.setdefault(task, []).append(ex)
    first = parts[0]
    merged = {**first,
              "aggregations": {t: a for p in parts for t, a in (p.get("aggregations") or {}).items()},
              "higher_is_better": {t: h for p in parts for t, h in (p.get("higher_is_better") or {}).items()},
              "n-samples": {t: n for p in parts for t, n in (p.get("n-samples") or {}).items()},
              "versions": {t: v for p in parts for t, v in (p.get("versions") or {}).items()},
              "seconds": round(sum(float(p.get("seconds") or 0.0) for p in parts), 3)}
    return rebuild(merged, {t: sorted(ex, key=_order) for t, ex in samples.items()})


def first(raw: Mapping[str, Any], documents: int) -> dict:
    """``raw`` cut to its documents with index < ``documents`` (the first look's documents of a longer result)."""
    samples = {t: [ex for ex in examples if isinstance(ex.get("doc_id"), int) and ex["doc_id"] < documents]
               for t, examples in (raw.get("samples") or {}).items()}
    return rebuild(raw, {t: ex for t, ex in samples.items() if ex})


def evaluated(raw: Mapping[str, Any]) -> dict[str, int]:
    """Per task, how many documents ``raw`` holds."""
    return {t: _documents(ex) for t, ex in (raw.get("samples") or {}).items()}


def mismatches(raw: Mapping[str, Any], wanted: Mapping[str, Iterable[str] | None], *, rel: float = 1e-9) -> list[str]:
    """Where the recomputation of ``raw``'s own documents differs from the aggregate lm-eval reported:
    run on every batch, so a metric that is not what its aggregation name says is caught, not summed."""
    problems = []
    aggregations = raw.get("aggregations") or {}
    for task, reported in (raw.get("results") or {}).items():
        if task not in wanted:
            continue
        mine = task_results(raw["samples"].get(task) or [], aggregations.get(task) or {})
        metrics = wanted[task]
        for key, value in reported.items():
            metric, sep, _ = key.partition(",")
            if not sep or metric.endswith("_stderr") or (metrics is not None and metric not in metrics):
                continue
            ours = mine.get(key)
            try:
                same = ours is not None and math.isclose(float(ours), float(value), rel_tol=rel, abs_tol=1e-12)
            except (TypeError, ValueError):
                same = False
            if not same:
                problems.append(f"{task} {key}: lm-eval reports {value}, its per-document values give {ours}")
    return problems
