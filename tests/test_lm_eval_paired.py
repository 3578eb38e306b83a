"""The stage-1 comparison with per-document values: paired intervals and three outcomes, on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from bot.lmeval.gate import compare
from bot.lmeval.options import Limit, TaskSpec
from bot.lmeval.scores import parse_samples, parse_scores
from bot.stats.paired import aggregate_change
from bot.verdicts.evidence import VerdictRule


def raw(task, metric, per_doc, higher_is_better, *, aggregate=None):
    """An lm-eval result as harness.run stores it, with per-document values."""
    value = aggregate if aggregate is not None else float(np.mean(per_doc))
    return {"results": {task: {f"{metric},none": value}}, "higher_is_better": {task: {metric: higher_is_better}},
            "samples": {task: [{"doc_id": i, "doc_hash": f"h{i}", "filter": "none", "values": {metric: v}}
                               for i, v in enumerate(per_doc)]}}


def run(spec, cand, base, rule=VerdictRule()):
    return compare((spec,), parse_scores(cand), parse_scores(base), candidate_docs=parse_samples(cand),
                   baseline_docs=parse_samples(base), rule=rule)


ACC = TaskSpec("mc", ("acc",), Limit(5.0, relative=False))


def test_lm_eval_paired__identical_models_give_a_zero_width_interval_and_pass():
    docs = [1, 0, 1, 1, 0] * 8
    out = run(ACC, raw("mc", "acc", docs, True), raw("mc", "acc", docs, True))
    [row] = out.rows
    assert out.verdict == "pass" and row.evidence.interval.width == 0 and row.evidence.interval.estimate == 0
    assert row.evidence.unit == "points" and row.evidence.limit == 5.0


def test_lm_eval_paired__a_clear_drop_fails_with_the_whole_interval_beyond_the_limit():
    base = [1] * 100
    cand = [0] * 30 + [1] * 70  # 30 points worse
    out = run(ACC, raw("mc", "acc", cand, True), raw("mc", "acc", base, True))
    [row] = out.rows
    assert out.verdict == "fail" and row.evidence.interval.low > 5.0
    assert "worse by 30.0 pt [+20.2 pt, +38.7 pt]" in out.problems[0] and "limit worse by ≤ 5 pt" in out.problems[0]


def test_lm_eval_paired__estimate_inside_the_limit_interval_not_is_inconclusive_with_a_count():
    base = np.random.default_rng(3).integers(0, 2, 40).tolist()
    cand = base[:]  # 3 regressions and 2 improvements in 40 documents
    flips = [i for i, b in enumerate(base) if b][:3]
    gains = [i for i, b in enumerate(base) if not b][:2]
    for i in flips:
        cand[i] = 0
    for i in gains:
        cand[i] = 1
    out = run(ACC, raw("mc", "acc", cand, True), raw("mc", "acc", base, True))
    [row] = out.rows
    assert row.evidence.interval.estimate == pytest.approx(2.5)  # one net document of 40, inside 5 pt
    assert row.evidence.interval.high > 5.0 and out.verdict == "inconclusive"
    assert row.evidence.settle_n > 40 and "inconclusive" in out.problems[0] and "documents in all" in out.problems[0]
    # `decide: estimate` keeps the point-estimate rule for teams that want it.
    assert run(ACC, raw("mc", "acc", cand, True), raw("mc", "acc", base, True),
               VerdictRule(decide="estimate")).verdict == "pass"


def test_lm_eval_paired__perplexity_interval_is_the_paired_bootstrap_of_the_aggregate():
    rng = np.random.default_rng(0)
    words = rng.integers(20, 60, 50)
    base_ll = -words * rng.uniform(2.0, 3.0, 50)
    cand_ll = base_ll * 1.01  # about 1% more loss per word on every document
    spec = TaskSpec("ppl", ("word_perplexity",), Limit(0.03, relative=True))

    def side(ll):
        return raw("ppl", "word_perplexity", [[float(a), int(w)] for a, w in zip(ll, words)], False,
                   aggregate=float(np.exp(-ll.sum() / words.sum())))

    out = run(spec, side(cand_ll), side(base_ll))
    [row] = out.rows
    expected = aggregate_change(cand_ll, base_ll, words, kind="word_perplexity")
    assert row.evidence.interval == expected and out.verdict == "pass"
    assert row.evidence.interval.estimate == pytest.approx(row.delta / row.baseline)


def test_lm_eval_paired__different_documents_fall_back_to_the_estimate_and_say_so():
    cand = raw("mc", "acc", [1, 1, 0, 1], True)
    cand["samples"]["mc"][0]["doc_hash"] = "other"
    out = run(ACC, cand, raw("mc", "acc", [1, 1, 0, 1], True))
    assert out.rows[0].evidence is None and "not evaluated on the same documents" in out.changes[0]
