"""Pictures of intervals against their limits, in text a PR comment shows as it is (a fenced
block: GitHub, its e-mail and the demo's HTML preview all render it the same).

Each row is drawn on its own scale, in units of its limit, so a perplexity limit of 3% and an
accuracy limit of 5 points line up: `┆` is no change, `┃` the limit, `●` the estimate and
`├──┤` the interval (`┼`, `╂` where it crosses no change or the limit). Right is worse.

    canopy_heldout word_perplex…  ┆├──●─┤    ┃        +1.2% [−0.4%, +2.8%]    pass

A line is at most `MAX_WIDTH` characters, so a comment shows every row whole with its verdict.
An estimate beyond the axis is drawn as an arrow at its end (`»`, `«`); the numbers say how far.
"""

from __future__ import annotations

from typing import Iterable

from bot.verdicts import evidence as words
from bot.verdicts.results import Evidence

WIDTH = 24  # characters of the axis
LABEL = 28  # characters of a row's label, cut with an ellipsis
NUMBERS = 25  # characters of `+57.7% [−46.1%, +384.5%]`
MAX_WIDTH = LABEL + 2 + WIDTH + 2 + NUMBERS + 1 + len("inconclusive")  # 94 with the longest verdict
SPAN = (-1.0, 2.0)  # at least: from the limit mirrored below zero to twice the limit
CLIP = 4.0  # beyond four limits the picture only says "far": the numbers beside it say how far


def _scale(values: Iterable[float]) -> tuple[float, float]:
    lo = max(-CLIP, min(SPAN[0], *values))
    hi = min(CLIP, max(SPAN[1], *values))
    return lo, hi


def axis_line(ev: Evidence, width: int = WIDTH) -> str:
    """One interval on an axis where 0 is no change and 1 is the limit."""
    unit = abs(ev.limit) or max(abs(ev.interval.low), abs(ev.interval.high), 1e-12)
    est, low, high = (v / unit for v in (ev.interval.estimate, ev.interval.low, ev.interval.high))
    limit = ev.limit / unit
    lo, hi = _scale((est, low, high, limit, 0.0))

    def col(x: float) -> int:
        x = min(max(x, lo), hi)
        return round((x - lo) / (hi - lo) * (width - 1))

    cells = [" "] * width
    a, b = col(low), col(high)
    for i in range(a, b + 1):
        cells[i] = "─"
    if a != b:
        cells[a], cells[b] = "├", "┤"
    # The marks stay visible where the interval crosses them: that crossing is what a reviewer reads.
    z, m = col(0.0), col(limit)
    for column, outside, crossed in ((z, "┆", "┼"), (m, "┃", "╂")):
        if a < column < b:
            cells[column] = crossed
        elif not (a <= column <= b) or a == b:
            cells[column] = outside
    if low < lo:
        cells[0] = "◀"
    if high > hi:
        cells[-1] = "▶"
    # An estimate off the axis is an arrow at its end, never a dot that vanishes under the interval's.
    cells[col(est)] = "»" if est > hi else "«" if est < lo else "●"
    return "".join(cells)


def interval_chart(rows: Iterable[tuple[str, Evidence, str]]) -> str:
    """A fenced block with one line per (label, evidence, verdict); empty without rows."""
    rows = list(rows)
    if not rows:
        return ""
    label_w = min(LABEL, max(len(label) for label, _, _ in rows))
    lines = []
    for label, ev, verdict in rows:
        i = ev.interval
        numbers = f"{_short(i.estimate, ev.unit)} [{_short(i.low, ev.unit)}, {_short(i.high, ev.unit)}]"
        label = label.replace("`", "'")  # nothing from a label may close the fence
        label = label if len(label) <= label_w else label[:label_w - 1] + "…"
        lines.append(f"{label:<{label_w}}  {axis_line(ev)}  {numbers:<{NUMBERS}} {verdict}")
    legend = f"{'':<{label_w}}  ┆ no change  ┃ limit  ● estimate  ├─┤ interval  right = worse"
    return "```text\n" + "\n".join(lines + [legend]) + "\n```"


def _short(value: float, unit: str) -> str:
    """One decimal, none from 1000 on: the chart's numbers are for reading at a glance (the tables have two)."""
    if unit == "relative" and abs(value) < words.UNBOUNDED_RATIO:
        pct = value * 100
        return (f"{pct:+.0f}%" if abs(pct) >= 1000 else f"{pct:+.1f}%").replace("-", "−")
    return words.amount(value, unit)
