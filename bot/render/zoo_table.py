"""Every variant of a model side by side on what its gates recorded (`zoo --compare`).

Metrics are read generically from the recorded rows: one line per (check, metric), so a metric a
check starts reporting shows up here without a change. A change is how much worse the candidate
is than the baseline, as every comparison reads (`bot.verdicts.evidence`: "worse by 0.5%",
"better by 4%"), with the interval the gate judged it by; rows without an interval show the
candidate's value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from bot.render.markdown import fmt_number, md_escape
from bot.stats.interval import EPSILON, Interval
from bot.verdicts.evidence import amount, worse_by
from bot.verdicts.results import MetricRow
from bot.zoo.records import Record, latest_checks
from bot.zoo.variants import Variant

# Counts in labels ("system-prompt (4/4 vs 4/4)", "pass rate, paired over 17 cases") differ between
# runs of one metric; units ("TTFT (ms)") do not.
_COUNTS = re.compile(r"\s*\([^)]*\d+/\d+[^)]*\)|,\s*paired over \d+ \w+")


def metric_key(label: str) -> str:
    return _COUNTS.sub("", label).strip()


@dataclass(frozen=True)
class Change:
    """How much worse the candidate is than the baseline (positive = worse), in its gate's unit."""

    estimate: float
    low: float
    high: float
    unit: str
    level: float

    def text(self, interval: bool = True) -> str:
        if not interval:
            if abs(self.estimate) <= EPSILON:
                return "no change"
            return f"{'better' if self.estimate < 0 else 'worse'} by {amount(self.estimate, self.unit, signed=False)}"
        return worse_by(Interval(self.estimate, self.low, self.high, self.level, "", 0), self.unit)

    def to_json(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "unit": self.unit, "level": self.level}


def change_of(row: MetricRow) -> Change | None:
    """The row's evidence: how much worse, whatever the metric's direction."""
    if row.evidence is None:
        return None
    i = row.evidence.interval
    return Change(i.estimate, i.low, i.high, row.evidence.unit, i.level)


def cell_text(check: str, row: MetricRow) -> str:
    change = change_of(row)
    if change is not None:
        return change.text()
    return value_text(row.candidate, check, metric_key(row.label))


def value_text(value, check: str, metric: str) -> str:
    """Rates (app-flow pass rates, error rates) as percentages, other numbers as they are."""
    if isinstance(value, (int, float)) and 0.0 <= value <= 1.0 and ("rate" in metric or check == "app-flows"):
        return f"{value:.0%}"
    return fmt_number(value)


def size_ratio(variant: Variant, baseline: Variant | None) -> float | None:
    if baseline is None or not variant.size_bytes or not baseline.size_bytes:
        return None
    return variant.size_bytes / baseline.size_bytes


def compare(model: str, baseline: Variant | None, variants: Sequence[Variant], records: Iterable[Record]) -> dict:
    """The comparison as data (`--json`): one metric per line, one cell per variant."""
    records = list(records)
    names = [str(v.ref) for v in variants]
    metrics: dict[tuple[str, str], dict] = {}
    gated: dict[str, dict] = {}
    for v in variants:
        checks = latest_checks(records, str(v.ref))
        gated[str(v.ref)] = {rc.check.name: {"verdict": rc.check.verdict, "environment": rc.record.environment,
                                             "pr": rc.record.pr, "commit": rc.record.commit,
                                             "recorded_at": rc.record.recorded_at} for rc in checks}
        for rc in checks:
            for row in rc.check.rows:
                line = metrics.setdefault((rc.check.name, metric_key(row.label)), {
                    "check": rc.check.name, "metric": metric_key(row.label), "baseline": None, "cells": {}})
                if line["baseline"] is None:
                    line["baseline"] = row.baseline
                change = change_of(row)
                line["cells"][str(v.ref)] = {
                    "candidate": row.candidate, "baseline": row.baseline, "verdict": row.verdict,
                    "change": None if change is None else change.to_json(), "text": cell_text(rc.check.name, row),
                    "environment": rc.record.environment, "pr": rc.record.pr, "recorded_at": rc.record.recorded_at}
    size = {"check": "zoo", "metric": "size ratio to the baseline", "baseline": 1.0 if baseline else None,
            "cells": {str(v.ref): {"candidate": r, "text": f"{r:.2f}×"} for v in variants
                      if (r := size_ratio(v, baseline)) is not None}}
    return {"model": model, "baseline": str(baseline.ref) if baseline else None, "variants": names,
            "metrics": [size, *metrics.values()], "gates": gated}


def compare_markdown(table: dict) -> str:
    """The comparison as a Markdown table: metrics down, variants across."""
    names = table["variants"]
    short = [n.split("/", 1)[1] for n in names]
    base = (table["baseline"] or "baseline").split("/", 1)[-1]
    lines = [f"## {table['model']}: every variant against {table['baseline'] or 'no baseline'}", "",
             "Changes are the candidate against the baseline with the interval its gate judged them by "
             "(relative % or percentage points); `–` means no gate recorded it.", "",
             "| Check | Metric | " + f"{base} (baseline) | " + " | ".join(short) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for m in table["metrics"]:
        base_text = "1×" if m["check"] == "zoo" and m["baseline"] else value_text(m["baseline"], m["check"], m["metric"])
        cells = [m["cells"].get(n, {}).get("text", "–") for n in names]
        lines.append(f"| {md_escape(m['check'])} | {md_escape(m['metric'])} | {base_text} | " + " | ".join(cells) + " |")
    lines += ["", "| Variant | Recorded gates |", "|---|---|"]
    for n in names:
        seen = sorted({(g["environment"], g["pr"], g["recorded_at"][:16]) for g in table["gates"][n].values()})
        said = ", ".join(f"{env}" + (f" (PR #{pr})" if pr else "") + f" {when}Z" for env, pr, when in seen)
        lines.append(f"| {n} | {said or 'none yet'} |")
    return "\n".join(lines) + "\n"
