"""Sequential stage 1: looks at growing document counts on real lm-eval runs of the tiny models, and
the aggregate recomputation it rests on, against lm-eval's own aggregation functions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from lm_eval.api import metrics as lm_metrics
from lm_eval_models import lm_eval_repo, lm_models  # noqa: F401  (session fixture)
from test_lm_eval_gate import promote, run_gate

from bot.core.errors import InputError
from bot.core.fields import Loc
from bot.lmeval import aggregate
from bot.lmeval.harness import TaskFacts
from bot.lmeval.options import parse_task_list
from bot.lmeval.sequential import seq_plan
from bot.stats.interval import Interval
from bot.verdicts.evidence import VerdictRule, judge
from bot.verdicts.looks import parse_sequential, settled
from bot.verdicts.results import MetricRow

# Looks at 4, 8 and 16 documents: small enough for CPU, three looks like a real plan.
SEQ = "  sequential: {min: 4, growth: 2}\n"
PERPLEXITY = "- check: perplexity\n  task: canopy_heldout\n  limit: 16\n" + SEQ
MC = "- check: benchmarks\n  tasks: {canopy_mc: {max_drop: 5, metrics: [acc]}}\n  limit: 16\n" + SEQ


def examples(values, metric="acc", filt="none"):
    return [{"doc_id": i, "doc_hash": f"h{i}", "filter": filt, "values": {metric: v}} for i, v in enumerate(values)]


# --- pure: the recomputation against lm-eval's own functions ---------------------------------------------

def test_aggregate__mean_and_its_stderr_are_lm_evals():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]
    assert aggregate.aggregate("mean", values) == pytest.approx(lm_metrics.mean(values), rel=1e-15)
    assert aggregate.stderr("mean", values) == pytest.approx(lm_metrics.mean_stderr(values), rel=1e-15)
    assert aggregate.aggregate("mean", [1.0, 0.0, 0.0, 0.0]) == 0.25  # textbook: one in four


def test_aggregate__perplexity_kinds_are_lm_evals_on_the_same_pairs():
    rng = np.random.default_rng(0)
    pairs = [[float(-w * rng.uniform(2, 3)), int(w)] for w in rng.integers(20, 60, 30)]
    for name, fn in (("weighted_perplexity", lm_metrics.weighted_perplexity), ("bits_per_byte", lm_metrics.bits_per_byte)):
        assert aggregate.aggregate(name, pairs) == pytest.approx(fn([tuple(p) for p in pairs]), rel=1e-12)
    lls = [p[0] for p in pairs]
    assert aggregate.aggregate("perplexity", lls) == pytest.approx(lm_metrics.perplexity(lls), rel=1e-12)
    # textbook: two documents, Σll = −4 over Σw = 2 words → exp(2)
    assert aggregate.aggregate("weighted_perplexity", [[-1.0, 1], [-3.0, 1]]) == pytest.approx(math.e ** 2)
    assert aggregate.stderr("weighted_perplexity", pairs) is None  # lm-eval gives none either


def test_aggregate__unknown_aggregation_is_refused_and_named():
    with pytest.raises(ValueError, match="'f1' cannot be recomputed"):
        aggregate.aggregate("f1", [[1, 1]])
    reasons = aggregate.unrecomputable({"t": {"f1": "", "acc": "mean"}}, {"t": None})
    assert len(reasons) == 1 and reasons[0].startswith("t f1:")
    assert aggregate.unrecomputable({"t": {"f1": "", "acc": "mean"}}, {"t": ("acc",)}) == []


def test_aggregate__two_batches_merged_equal_the_whole():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    raw = lambda ex: {"samples": {"mc": ex}, "aggregations": {"mc": {"acc": "mean"}},  # noqa: E731
                      "n-samples": {"mc": {"original": 100}}, "seconds": 1.0}
    whole = examples(values)
    merged = aggregate.merge([raw(whole[4:]), raw(whole[:4])])
    assert [ex["doc_id"] for ex in merged["samples"]["mc"]] == list(range(8))
    assert merged["results"]["mc"]["acc,none"] == lm_metrics.mean(values)
    assert merged["n-samples"]["mc"] == {"original": 100, "effective": 8} and merged["seconds"] == 2.0
    head = aggregate.first(merged, 4)
    assert head["results"]["mc"]["acc,none"] == 0.75 and aggregate.evaluated(head) == {"mc": 4}
    with pytest.raises(ValueError, match="document 0 was evaluated twice"):
        aggregate.merge([raw(whole), raw(whole[:1])])


def test_sequential_option__defaults_off_and_errors_name_the_field():
    loc = Loc("promotion.yaml", "environments[0].gate[1]")
    assert parse_sequential({}, loc).minimum == 50 and parse_sequential({}, loc).growth == 2
    assert parse_sequential({"sequential": False}, loc) is None and parse_sequential({"sequential": "off"}, loc) is None
    assert parse_sequential({"sequential": {"min": 20, "growth": 1.5}}, loc).plan(100, 0.95).looks == (20, 30, 45, 68, 100)
    assert parse_sequential({}, loc).plan(40, 0.95).levels == (0.95,)  # limit ≤ min: one look at the fixed level
    with pytest.raises(InputError, match="environments\\[0\\].gate\\[1\\].sequential.growth"):
        parse_sequential({"sequential": {"growth": 1}}, loc)
    with pytest.raises(InputError, match="sequential.spending"):
        parse_sequential({"sequential": {"spending": "linear"}}, loc)


def test_seq_plan__says_why_a_check_stays_fixed_count():
    loc = Loc("promotion.yaml", "gate[0]")
    options = parse_task_list("benchmarks", {"tasks": {"t": 5}, "limit": 400}, loc, local_only=False)
    facts = lambda aggregations, n=1000: lambda: {"t": TaskFacts(n, aggregations)}  # noqa: E731
    plan, why = seq_plan(options, VerdictRule(), facts({"acc": "mean"}))
    assert plan.looks == (50, 100, 200, 400) and why is None
    plan, why = seq_plan(options, VerdictRule(), facts({"acc": "mean", "f1": ""}))
    assert plan is None and "t f1" in why and "cannot be recomputed" in why
    plan, why = seq_plan(options, VerdictRule(decide="estimate"), facts({"acc": "mean"}))
    assert plan is None and "decide: interval" in why
    plan, _ = seq_plan(options, VerdictRule(), facts({"acc": "mean"}, n=120))
    assert plan.looks == (50, 100, 120)  # the task's own size caps the plan


def _row(verdict, with_interval=True):
    evidence = judge(Interval(0.05, 0.04, 0.06, 0.99, "paired t", 50, 0.1), 0.03, "relative", VerdictRule())[1] \
        if with_interval else None
    return MetricRow("t acc", 0.8, 0.85, "drop ≤ 3%", verdict, evidence=evidence)


@pytest.mark.parametrize("rows, verdict, expected", [
    ((_row("fail"),), "fail", "fail"),
    ((_row("fail", with_interval=False),), "fail", "inconclusive"),  # a point estimate cannot stop a look
    ((_row("pass"), _row("fail", with_interval=False)), "fail", "inconclusive"),
    ((_row("fail"), _row("pass", with_interval=False)), "fail", "fail"),  # the interval's fail stands
    ((_row("pass"),), "pass", "pass"),
    ((_row("pass"), _row("pass", with_interval=False)), "pass", "inconclusive"),
    ((_row("inconclusive"),), "inconclusive", "inconclusive"),
    ((_row("error", with_interval=False),), "error", "error"),
])
def test_looks_settled__only_intervals_stop_a_look(rows, verdict, expected):
    assert settled(verdict, rows) == expected


# --- real lm-eval on the tiny models ----------------------------------------------------------------------

def _evaluated_docs(result, role, tmp_path):
    # Artifacts are named relative to the results folder of their run; the newest run wrote this one.
    artifact = next(a for a in result.artifacts if a.endswith(f"lm-eval-{role}.json"))
    raw = json.loads(max(tmp_path.glob(f"results-*/{artifact}"), key=lambda p: p.stat().st_mtime_ns).read_text())
    return {t: sorted({ex["doc_id"] for ex in ex_list}) for t, ex_list in raw["samples"].items()}


@pytest.mark.slow
def test_lm_eval_sequential__clear_fail_stops_at_the_first_look_having_evaluated_only_its_documents(lm_models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", lm_models, PERPLEXITY)
    promote(repo, "v1.4-int2-g64")  # untrained weights: far worse perplexity
    r = run_gate(repo, tmp_path / "cache", tmp_path)["perplexity"]
    assert r.verdict == "fail", r.detail
    assert r.detail.startswith("stopped at 4 of 16 documents per task (look 1 of 3): canopy_heldout word_perplexity")
    assert _evaluated_docs(r, "candidate", tmp_path) == {"canopy_heldout": [0, 1, 2, 3]}
    assert _evaluated_docs(r, "baseline", tmp_path) == {"canopy_heldout": [0, 1, 2, 3]}
    [row] = r.rows
    assert row.evidence.interval.n == 4 and row.evidence.interval.level > 0.999 and row.evidence.interval.low > 0.03
    [seq] = [f["sequential"] for f in r.findings if "sequential" in f]
    assert seq["observations"] == 4 and seq["unit"] == "documents per task" and seq["looks"] == [4, 8, 16] and seq["look"] == 1
    assert sum(1 - x for x in seq["levels"]) == pytest.approx(0.05)  # the error spent over the plan
    assert [f["documents"] for f in r.findings if "role" in f] == [4, 4]


@pytest.mark.slow
def test_lm_eval_sequential__identical_model_passes_at_the_first_look(lm_models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", lm_models, PERPLEXITY + MC)
    promote(repo, "v1.1-int8")  # the baseline's own weights (A/A)
    results = run_gate(repo, tmp_path / "cache", tmp_path)
    for name in ("perplexity", "benchmarks"):
        r = results[name]
        assert r.verdict == "pass", r.detail
        assert r.detail.startswith("stopped at 4 of 16 documents per task (look 1 of 3)")
        assert r.rows[0].evidence.interval.width == 0


@pytest.mark.slow
def test_lm_eval_sequential__borderline_runs_to_the_limit_and_grows_the_baseline_cache(lm_models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", lm_models, MC)
    cache = tmp_path / "cache"
    promote(repo, "v1.1-int8")
    first = run_gate(repo, cache, tmp_path)["benchmarks"]  # stops at 4: the cache holds 4 documents
    [entry] = (cache / "lm-eval").glob("*.json")
    assert first.verdict == "pass" and json.loads(entry.read_text())["documents"] == 4

    promote(repo, "v1.6-int2-g16")  # 2-bit rounding: as many questions lost as won, a wide interval
    r = run_gate(repo, cache, tmp_path)["benchmarks"]
    assert r.verdict == "inconclusive", r.detail
    assert r.detail.startswith("stopped at 16 of 16 documents per task (look 3 of 3)")
    assert _evaluated_docs(r, "candidate", tmp_path) == {"canopy_mc": list(range(16))}
    [base] = [f for f in r.findings if f.get("role") == "baseline"]
    assert base["source"] == "cache+lm-eval" and "grown by lm-eval" in base["title"]
    entry_json = json.loads(entry.read_text())
    assert entry_json["schema"] == 3 and entry_json["documents"] == 16
    assert aggregate.evaluated(entry_json["raw"]) == {"canopy_mc": 16}

    # The full-count interval at the fixed level does not contradict it: it straddles the limit too.
    fixed = lm_eval_repo(tmp_path / "fixed", lm_models, MC.replace(SEQ, "  sequential: off\n"))
    promote(fixed, "v1.6-int2-g16")
    f = run_gate(fixed, tmp_path / "cache-fixed", tmp_path)["benchmarks"]
    interval = f.rows[0].evidence.interval
    assert f.verdict == "inconclusive" and interval.low <= 5 <= interval.high and interval.n == 16

    # A clear case afterwards reads its 4 documents from the grown entry.
    promote(repo, "v1.1-int8")
    again = run_gate(repo, cache, tmp_path)["benchmarks"]
    assert [x["source"] for x in again.findings if "role" in x] == ["cache", "lm-eval"]
    assert _evaluated_docs(again, "baseline", tmp_path) == {"canopy_mc": [0, 1, 2, 3]}


@pytest.mark.slow
def test_lm_eval_sequential__off_evaluates_limit_documents_in_one_run(lm_models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", lm_models, PERPLEXITY.replace(SEQ, "  sequential: off\n"))
    promote(repo, "v1.4-int2-g64")
    r = run_gate(repo, tmp_path / "cache", tmp_path)["perplexity"]
    assert r.verdict == "fail" and not r.detail.startswith("stopped at")
    assert _evaluated_docs(r, "candidate", tmp_path) == {"canopy_heldout": list(range(16))}
    assert r.rows[0].evidence.interval.level == 0.95 and not any("sequential" in f for f in r.findings)


@pytest.mark.slow
def test_lm_eval_sequential__batches_recompute_lm_evals_own_aggregates(lm_models, tmp_path):
    """Documents 1–4 and 5–8 run separately, merged, give what lm-eval reports for 1–8 in one run."""
    from bot.lmeval import harness
    from bot.lmeval.options import parse_perplexity
    from bot.lmeval.tasks import prepare
    from bot.vcs.reader import GitReader

    repo = lm_eval_repo(tmp_path / "repo", lm_models, PERPLEXITY)
    options = parse_perplexity({"task": "canopy_heldout", "limit": 8}, Loc("promotion.yaml", "gate[0]"))
    prepared = prepare(GitReader(repo.path), "HEAD", options, tmp_path / "prepared", policy_file="promotion.yaml")
    target = harness.ModelTarget("candidate", "good", "hf", {"pretrained": str(lm_models["good"]), "device": "cpu"})
    run = lambda documents: harness.run(target, prepared, options, progress=lambda _: None, documents=documents)  # noqa: E731
    whole = run(None)
    parts = [run((0, 4)), run((4, 8))]
    for raw in (whole, *parts):
        assert aggregate.mismatches(raw, {"canopy_heldout": None}) == []
    merged = aggregate.merge(parts)
    for key in ("word_perplexity,none", "byte_perplexity,none", "bits_per_byte,none"):
        assert merged["results"]["canopy_heldout"][key] == pytest.approx(whole["results"]["canopy_heldout"][key], rel=1e-6)
    assert harness.inspect(prepared, options)["canopy_heldout"] == TaskFacts(
        60, {"word_perplexity": "weighted_perplexity", "byte_perplexity": "weighted_perplexity",
             "bits_per_byte": "bits_per_byte"})
