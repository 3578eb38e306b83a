"""lm-eval's result dict → frozen scores. The direction of each metric is lm-eval's own
`higher_is_better`, read from the same result; the gate never assumes one.

    results: {task: {"acc,none": 0.41, "acc_stderr,none": 0.05, "alias": ...}}
    higher_is_better: {task: {"acc": true}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Score:
    task: str
    metric: str
    filter: str
    value: float  # NaN when lm-eval produced a non-number (the gate turns that into an error)
    stderr: float | None
    higher_is_better: bool | None
    samples: int | None = None


def as_number(value: Any) -> float | None:
    """A number lm-eval reported (a float, an int or a numeric string); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # "nan", "inf" as _plain stored them
        except ValueError:
            return None
    return None


def parse_scores(raw: Mapping[str, Any]) -> dict[str, list[Score]]:
    """Scores per task name, in lm-eval's order. Raises ValueError on a malformed result."""
    results = raw["results"]
    directions = raw.get("higher_is_better") or {}
    samples = raw.get("n-samples") or {}
    if not isinstance(results, Mapping):
        raise ValueError("`results` is not a mapping")
    out: dict[str, list[Score]] = {}
    for task, metrics in results.items():
        if not isinstance(metrics, Mapping):
            raise ValueError(f"results[{task!r}] is not a mapping")
        task_dirs = directions.get(task) or {}
        n = (samples.get(task) or {}).get("effective") if isinstance(samples.get(task), Mapping) else None
        scores = []
        for key, value in metrics.items():
            metric, sep, filt = key.partition(",")
            if not sep or metric.endswith("_stderr"):
                continue
            number = as_number(value)
            if number is None and value != "N/A":
                number = math.nan
            if number is None:
                continue
            stderr = as_number(metrics.get(f"{metric}_stderr,{filt}"))
            hib = task_dirs.get(metric)
            scores.append(Score(task, metric, filt, number, stderr if stderr is None or math.isfinite(stderr) else None,
                                hib if isinstance(hib, bool) else None, n if isinstance(n, int) else None))
        out[str(task)] = scores
    return out


DocKey = tuple  # (doc_id, doc_hash): the same document on both sides


def parse_samples(raw: Mapping[str, Any]) -> dict[str, dict[tuple[str, str], dict[DocKey, Any]]]:
    """Per-document values per task and (metric, filter), as `harness.per_document` stored them;
    empty for a result without them (a group task's own name, an old cache entry)."""
    out: dict[str, dict[tuple[str, str], dict[DocKey, Any]]] = {}
    for task, examples in (raw.get("samples") or {}).items():
        if not isinstance(examples, list):
            raise ValueError(f"samples[{task!r}] is not a list")
        per_metric: dict[tuple[str, str], dict[DocKey, Any]] = {}
        for ex in examples:
            key = (ex.get("doc_id"), ex.get("doc_hash"))
            for metric, value in (ex.get("values") or {}).items():
                per_metric.setdefault((metric, ex.get("filter", "none")), {})[key] = value
        out[str(task)] = per_metric
    return out
