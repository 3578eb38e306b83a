"""One sign convention everywhere: the same throughput change reads the same in the comment, the
model card, `zoo --compare` and the JSON report ("worse by X [low, high]", worse positive)."""

from __future__ import annotations

from bot.gate import publish
from bot.render.card import card_of
from bot.render.zoo_table import cell_text, change_of
from bot.stats.interval import Interval
from bot.verdicts.evidence import describe, limit_text, worse_by
from bot.verdicts.results import CardFacts, CheckResult, Evidence, MetricRow, PromotionResult, Report


def shown(markdown: str) -> str:
    """The text GitHub shows: Markdown's escapes (`\\[`) read as the characters they escape."""
    return markdown.replace("\\", "")

SLOWER = Evidence(Interval(0.2274, 0.10, 0.35, 0.9875, "paired t", 8, 0.1), 0.10, "relative", observations="rounds")
FASTER = Evidence(Interval(-0.50, -0.62, -0.38, 0.9875, "paired t", 8, 0.1), -0.20, "relative", observations="rounds")


def _report(ev: Evidence, verdict: str) -> Report:
    row = MetricRow("output tokens per second", 40.0, 51.8, limit_text(ev.limit, "relative"), verdict,
                    higher_is_better=True, evidence=ev)
    check = CheckResult("performance", verdict, rows=(row,), detail="throughput")
    card = CardFacts(ref="canopy-tiny/v1.1-int8", base_model="canopy-tiny/v1.0-fp32", is_quantized=True,
                     quantization={"algorithm": "GPTQ", "scheme": "W8A16", "bits": 8, "group_size": None,
                                   "format": None, "tool": None}, baseline="canopy-tiny/v1.0-fp32")
    promotion = PromotionResult("staging", "environments/staging/canopy.yaml", "Deployment/canopy", "canopy", "modified",
                                "canopy-tiny/v1.0-fp32", "canopy-tiny/v1.1-int8", (check,), card=card)
    return Report("a" * 40, "b" * 40, (promotion,))


def test_one_convention__a_slower_throughput_reads_the_same_in_comment_card_zoo_and_json():
    words = "worse by 22.74% [+10.00%, +35.00%]"
    report = _report(SLOWER, "fail")
    promotion = report.promotions[0]
    row = promotion.checks[0].rows[0]
    assert worse_by(SLOWER.interval, "relative") == words
    assert words in shown(publish.comment(report))
    assert words in shown(card_of(promotion)["markdown"])
    assert cell_text("performance", row) == words  # the cell `zoo --compare` prints
    data = report.to_json()["promotions"][0]["checks"][0]["rows"][0]["evidence"]
    assert data["interval"]["estimate"] == 0.2274 > 0 and data["limit"] == 0.10  # worse is positive there too
    assert change_of(row).to_json()["estimate"] == 0.2274  # and in `zoo --json`
    assert describe(SLOWER).startswith(words) and "limit worse by ≤ 10%" in describe(SLOWER)


def test_one_convention__an_improvement_says_better_in_words_with_the_worse_by_interval():
    words = "better by 50.00%; worse by [−62.00%, −38.00%]"
    report = _report(FASTER, "pass")
    assert words in shown(publish.comment(report)) and "better by ≥ 20%" in shown(publish.comment(report))
    assert words in shown(card_of(report.promotions[0])["markdown"])
    assert cell_text("performance", report.promotions[0].checks[0].rows[0]) == words


def test_one_convention__no_bare_fraction_and_no_delta_column_in_the_comment():
    comment = publish.comment(_report(SLOWER, "fail"))
    assert "Delta" not in comment and "+0.2274" not in comment and "≥ −10%" not in comment


def test_amount__a_bound_past_a_millionfold_change_reads_as_unbounded():
    from bot.render.charts import _short
    from bot.verdicts.evidence import amount

    assert amount(-4.2e131, "relative") == "−∞" and amount(9.99e3, "relative") == "+999000.00%"
    assert _short(-4.2e131, "relative") == "−∞" and _short(12.0, "relative") == "+1200%"
