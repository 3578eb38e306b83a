"""The sanity warnings: on known numbers, what warns and what does not."""

from __future__ import annotations

from bot.lmeval.sanity import absurd_baseline, better_than_baseline
from bot.stats.interval import Interval
from bot.verdicts.results import PASS, Evidence, MetricRow


def row(low: float, high: float, limit: float, unit: str = "relative") -> MetricRow:
    iv = Interval(estimate=(low + high) / 2, low=low, high=high, level=0.95, n=200, method="paired bootstrap")
    return MetricRow("canopy_heldout word_perplexity", 1.0, 1.0, "rise ≤ 3%", PASS,
                     evidence=Evidence(iv, limit, unit))


def test_sanity__bits_per_byte_worse_than_guessing_warns():
    [warning] = absurd_baseline({"t": {"bits_per_byte,none": 9.1, "word_perplexity,none": 10.0}}, vocab_size=50_000)
    assert warning.startswith("t: the baseline's bits per byte is 9.10, worse than guessing bytes at random (8)")


def test_sanity__word_perplexity_at_vocabulary_size_warns():
    [warning] = absurd_baseline({"t": {"bits_per_byte,none": 4.0, "word_perplexity,none": 1026.0}}, vocab_size=1026)
    assert "word perplexity is 1,026, at least its vocabulary size (1,026)" in warning


def test_sanity__a_model_that_knows_the_text_does_not_warn():
    assert absurd_baseline({"t": {"bits_per_byte,none": 0.18, "word_perplexity,none": 1.9}}, vocab_size=1026) == []
    assert absurd_baseline({"t": {"word_perplexity,none": 5000.0}}, vocab_size=None) == []  # unknown vocabulary
    assert absurd_baseline({"mc": {"acc,none": 0.95}}, vocab_size=1026) == []  # no perplexity


def test_sanity__much_better_than_the_baseline_warns_only_when_the_whole_interval_is():
    [warning] = better_than_baseline([row(-0.20, -0.05, 0.03)])
    assert warning.startswith("canopy_heldout word_perplexity: the quantized candidate is better than its baseline "
                              "by 5% or more (the whole interval, beyond the 3% limit)")
    assert better_than_baseline([row(-0.20, -0.02, 0.03)]) == []  # the interval reaches within the limit
    assert better_than_baseline([row(-0.001, 0.001, 0.03)]) == []  # A/A
    assert "by 12 pt or more" in better_than_baseline([row(-30, -12, 10, unit="points")])[0]
