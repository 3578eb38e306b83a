import math

import numpy as np
import pytest
from lm_eval.api.metrics import bits_per_byte, weighted_perplexity
from scipy import stats

from bot.stats.interval import PASS, decide
from bot.stats.paired import aggregate_change, mean_difference, relative_mean_difference

# Student (1908) / Cushny & Peebles: extra hours of sleep under two drugs, the same ten patients.
# R: t.test(extra ~ group, data = sleep, paired = TRUE) → mean −1.58, 95% CI −2.4598858 to −0.7001142.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def _documents(n, seed=0, worse=0.02):
    """Per-document (candidate ll, baseline ll, word count) like a perplexity task's, candidate ~2% worse."""
    rng = np.random.default_rng(seed)
    words = rng.integers(50, 500, n).astype(float)
    base = -words * rng.uniform(1.5, 3.0, n)
    cand = base * (1 + rng.normal(worse, 0.03, n))
    return cand, base, words


def test_mean_difference__student_sleep_data_textbook_interval():
    # Higher extra sleep is better; drug 1 as the candidate is worse by 1.58 hours.
    iv = mean_difference(SLEEP_1, SLEEP_2, higher_is_better=True)
    assert iv.estimate == pytest.approx(1.58)
    assert (iv.low, iv.high) == pytest.approx((0.7001142, 2.4598858), abs=1e-6)
    assert iv.n == 10 and iv.method == "paired t"
    assert iv.sd == pytest.approx(np.std(np.subtract(SLEEP_2, SLEEP_1), ddof=1))


def test_mean_difference__matches_scipy_ttest_rel_at_any_level():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2, 200).astype(float)
    cand = np.where(rng.random(200) < 0.1, 1 - base, base)
    for level in (0.9, 0.95, 0.999):
        ci = stats.ttest_rel(base, cand).confidence_interval(level)
        iv = mean_difference(cand, base, higher_is_better=True, level=level, scale=100)
        assert (iv.low, iv.high) == pytest.approx((100 * ci.low, 100 * ci.high), rel=1e-9)


def test_mean_difference__lower_is_better_turns_the_sign():
    up = mean_difference(SLEEP_1, SLEEP_2, higher_is_better=True)
    down = mean_difference(SLEEP_1, SLEEP_2, higher_is_better=False)
    assert (down.estimate, down.low, down.high) == pytest.approx((-up.estimate, -up.high, -up.low))


def test_mean_difference__identical_inputs_give_zero_width_at_zero():
    scores = [1, 0, 1, 1, 0, 1]
    iv = mean_difference(scores, scores, higher_is_better=True, scale=100)
    assert (iv.estimate, iv.low, iv.high, iv.sd) == (0.0, 0.0, 0.0, 0.0)
    assert decide(iv, 0.0) == PASS


def test_mean_difference__narrows_as_documents_grow():
    rng = np.random.default_rng(5)
    base = rng.integers(0, 2, 1600).astype(float)
    cand = np.where(rng.random(1600) < 0.1, 1 - base, base)
    widths = [mean_difference(cand[:n], base[:n], higher_is_better=True).width for n in (100, 400, 1600)]
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4, rel=0.3)  # width ∝ 1/√n


@pytest.mark.parametrize("cand, base, message", [
    ([1, 0, 1], [1, 0], "candidate has 3 values and baseline 2"),
    ([1], [1], "at least 2"),
    ([1, float("nan")], [1, 0], r"candidate\[1\] is nan"),
])
def test_mean_difference__rejects_malformed_input_naming_it(cand, base, message):
    with pytest.raises(ValueError, match=message):
        mean_difference(cand, base, higher_is_better=True)


def test_relative_mean_difference__proportional_candidate_is_known_exactly():
    base = np.array([0.2, 0.5, 0.9, 0.4, 0.7])
    iv = relative_mean_difference(0.9 * base, base, higher_is_better=True)
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((0.1, 0.1, 0.1))
    assert relative_mean_difference(base, base, higher_is_better=True).width == 0


def test_relative_mean_difference__agrees_with_a_paired_bootstrap_of_the_ratio():
    rng = np.random.default_rng(11)
    base = rng.integers(0, 2, 300).astype(float)
    cand = np.where(rng.random(300) < 0.15, 1 - base, base)
    iv = relative_mean_difference(cand, base, higher_is_better=True)
    assert iv.estimate == pytest.approx(1 - cand.mean() / base.mean())
    boot = stats.bootstrap((cand, base), lambda c, b, axis=-1: 1 - c.mean(axis) / b.mean(axis), paired=True,
                           vectorized=True, method="percentile", n_resamples=4000, rng=np.random.default_rng(0))
    assert iv.low == pytest.approx(boot.confidence_interval.low, abs=0.01)
    assert iv.high == pytest.approx(boot.confidence_interval.high, abs=0.01)


def test_relative_mean_difference__zero_baseline_mean_raises():
    with pytest.raises(ValueError, match="positive baseline mean"):
        relative_mean_difference([1, 0], [0, 0], higher_is_better=True)


@pytest.mark.parametrize("kind, aggregate", [("word_perplexity", weighted_perplexity),
                                             ("byte_perplexity", weighted_perplexity),
                                             ("bits_per_byte", bits_per_byte)])
def test_aggregate_change__estimate_is_lm_eval_aggregate_ratio(kind, aggregate):
    cand, base, words = _documents(60)
    iv = aggregate_change(cand, base, words, kind=kind)
    expected = aggregate(list(zip(cand, words))) / aggregate(list(zip(base, words))) - 1
    assert iv.estimate == pytest.approx(expected, rel=1e-12)
    assert iv.low < iv.estimate < iv.high and iv.low > 0  # a 2% worse candidate, clearly worse
    assert iv.method == "paired bootstrap BCa" and iv.n == 60


def test_aggregate_change__identical_inputs_give_zero_zero():
    _, base, words = _documents(50)
    for kind in ("word_perplexity", "bits_per_byte"):
        iv = aggregate_change(base, base, words, kind=kind)
        assert (iv.estimate, iv.low, iv.high, iv.sd) == (0.0, 0.0, 0.0, 0.0)


def test_aggregate_change__same_seed_same_interval_other_seed_close():
    cand, base, words = _documents(100)
    a = aggregate_change(cand, base, words, kind="word_perplexity", seed=7)
    assert aggregate_change(cand, base, words, kind="word_perplexity", seed=7) == a
    b = aggregate_change(cand, base, words, kind="word_perplexity", seed=8)
    assert b != a
    assert (b.low, b.high) == pytest.approx((a.low, a.high), abs=0.1 * a.width)


def test_aggregate_change__bootstrap_agrees_with_delta_method_sd():
    cand, base, words = _documents(400)
    iv = aggregate_change(cand, base, words, kind="word_perplexity")
    normal_width = 2 * 1.959964 * iv.sd / math.sqrt(iv.n)
    assert iv.width == pytest.approx(normal_width, rel=0.15)


def test_aggregate_change__pairing_is_much_narrower_than_unpaired():
    cand, base, words = _documents(200)
    paired = aggregate_change(cand, base, words, kind="word_perplexity")
    # Shuffling breaks the pairing of documents: the same aggregates, a far wider interval.
    unpaired = aggregate_change(np.random.default_rng(0).permutation(cand), base, words, kind="word_perplexity")
    assert paired.width * 3 < unpaired.width


def test_aggregate_change__narrows_as_documents_grow():
    cand, base, words = _documents(800, worse=0.0)
    widths = [aggregate_change(cand[:n], base[:n], words[:n], kind="bits_per_byte").width for n in (50, 200, 800)]
    assert widths[0] > widths[1] > widths[2]


def test_aggregate_change__level_beyond_bootstrap_resolution_uses_log_scale_normal():
    cand, base, words = _documents(100)
    usual = aggregate_change(cand, base, words, kind="word_perplexity")
    strict = aggregate_change(cand, base, words, kind="word_perplexity", level=1 - 1e-6)
    assert strict.method == "delta method on the log scale"
    assert strict.low < usual.low and strict.high > usual.high
    assert strict.low > -1  # a ratio minus one, never below −100%


def test_aggregate_change__proportional_bits_per_byte_is_known_exactly():
    _, base, words = _documents(30)
    iv = aggregate_change(1.05 * base, base, words, kind="bits_per_byte")
    assert (iv.low, iv.estimate, iv.high) == pytest.approx((0.05, 0.05, 0.05))


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "perplexity"}, "kind 'perplexity' is not one of"),
    ({"kind": "word_perplexity", "weights": [5, 0, 5]}, r"weights\[1\] is not positive"),
    ({"kind": "word_perplexity", "weights": [5, 5]}, "weights has 2 values"),
    ({"kind": "word_perplexity", "level": 95}, "strictly between 0 and 1"),
])
def test_aggregate_change__rejects_malformed_input_naming_it(kwargs, message):
    args = {"weights": [5, 6, 7], **kwargs}
    with pytest.raises(ValueError, match=message):
        aggregate_change([-10, -12, -9], [-11, -12, -8], **args)
