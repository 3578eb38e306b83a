"""The interval picture in comments: where 0, the limit, the estimate and the interval land."""

from __future__ import annotations

from bot.render.charts import WIDTH, axis_line, interval_chart
from bot.stats.interval import Interval
from bot.verdicts.results import Evidence


def ev(est, low, high, limit=0.03, unit="relative"):
    return Evidence(Interval(est, low, high, 0.95, "paired t", 100, 0.1), limit, unit)


def test_charts__zero_limit_and_interval_are_placed_on_the_limits_scale():
    line = axis_line(ev(0.015, 0.0, 0.03))  # axis from −1 to 2 limits
    assert len(line) == WIDTH
    zero, limit = line.index("├"), line.index("┤")  # the interval runs exactly from 0 to the limit
    assert zero == round(1 / 3 * (WIDTH - 1)) and limit == round(2 / 3 * (WIDTH - 1))
    assert line.index("●") == round(1.5 / 3 * (WIDTH - 1))


def test_charts__a_zero_width_interval_is_one_dot_on_no_change():
    line = axis_line(ev(0.0, 0.0, 0.0))
    assert line.count("●") == 1 and "├" not in line and "┆" not in line  # the dot covers the zero mark
    assert line.index("●") == round(1 / 3 * (WIDTH - 1)) and "┃" in line


def test_charts__far_beyond_the_limit_is_clipped_with_an_arrow():
    line = axis_line(ev(2.0, 1.5, 2.5))  # estimate, interval and all: far right of the axis
    assert line.endswith("»") and "┃" in line and "●" not in line  # the estimate is the arrow, never lost
    wide = axis_line(ev(0.05, -0.02, 2.5))  # estimate on the axis, the interval running off it
    assert wide.endswith("▶") and "●" in wide


def test_charts__every_line_fits_the_comment_with_its_verdict():
    from bot.render.charts import MAX_WIDTH

    text = interval_chart([("a very long task name with a metric name after it", ev(30.0, -40.0, 380.0), "inconclusive")])
    assert all(len(line) <= MAX_WIDTH <= 95 for line in text.splitlines())
    assert text.splitlines()[1].endswith("inconclusive") and "…" in text and "+3000% [−4000%, +38000%]" in text


def test_charts__block_has_a_line_per_row_numbers_and_a_legend_and_no_fence_breaking_label():
    text = interval_chart([("ppl ```x", ev(0.012, -0.004, 0.028), "pass"),
                           ("mc acc", ev(2.5, -1.0, 6.0, limit=5.0, unit="points"), "inconclusive")])
    lines = text.splitlines()
    assert lines[0] == "```text" and lines[-1] == "```" and text.count("```") == 2
    assert "+1.2% [−0.4%, +2.8%]" in lines[1] and lines[1].rstrip().endswith("pass")
    assert "+2.5 pt [−1.0 pt, +6.0 pt]" in lines[2] and "right = worse" in lines[3]
    assert interval_chart([]) == ""
