"""Option parsing and the pure comparison of the lm-eval gate (no model)."""

from __future__ import annotations

import math

import pytest

from bot.checks.load_policy import parse as parse_policy
from bot.core.errors import InputError
from bot.core.fields import Loc
from bot.lmeval.gate import compare
from bot.lmeval.options import Limit, TaskSpec, parse_perplexity, parse_task_list
from bot.lmeval.scores import parse_scores
from bot.lmeval.tasks import screen_yaml

LOC = Loc("promotion.yaml", "environments[0].gate[1]")


def raw_result(task: str, metric: str, value, higher_is_better: bool | None, stderr=0.01) -> dict:
    hib = {} if higher_is_better is None else {metric: higher_is_better}
    return {"results": {task: {"alias": task, f"{metric},none": value, f"{metric}_stderr,none": stderr}},
            "higher_is_better": {task: hib}, "n-samples": {task: {"original": 10, "effective": 10}}}


def test_lm_eval_options__perplexity_defaults_to_three_percent():
    opts = parse_perplexity({"task": "canopy_heldout"}, LOC)
    [spec] = opts.tasks
    assert spec == TaskSpec("canopy_heldout", ("word_perplexity",), Limit(0.03, relative=True))
    assert opts.backend is None and opts.tasks_dir == "evals/tasks"  # None: follows `serve:`


@pytest.mark.parametrize("raw, field, text", [
    ({"task": "t", "max_increase": 3}, "environments[0].gate[1].max_increase", "must be a percentage like 3%"),
    ({"task": "t", "max_incrase": "3%"}, "environments[0].gate[1].max_incrase", "did you mean `max_increase`?"),
    ({"metric": "word_perplexity"}, "environments[0].gate[1].task", "is required"),
    ({"task": "t", "limit": 0}, "environments[0].gate[1].limit", "must be at least 1"),
    ({"task": "t", "backend": "vllm"}, "environments[0].gate[1].backend", "'vllm' is not supported"),
    ({"task": "t", "base_url": "http://x/v1"}, "environments[0].gate[1].base_url", "only applies to `backend: local-completions`"),
    ({"task": "t", "tasks_dir": "../elsewhere"}, "environments[0].gate[1].tasks_dir", "leaves the repository"),
    ({"task": "t", "batch_size": "big"}, "environments[0].gate[1].batch_size", "must be a whole number"),
])
def test_lm_eval_options__perplexity_bad_input_names_field(raw, field, text):
    with pytest.raises(InputError) as err:
        parse_perplexity(raw, LOC)
    assert err.value.file == "promotion.yaml" and err.value.field == field
    assert text in str(err.value)


def test_lm_eval_options__task_list_forms():
    opts = parse_task_list("benchmarks", {"tasks": {"canopy_mc": {"max_drop": 5, "metrics": ["acc"]}, "arc_easy": 2,
                                                    "hellaswag": {"max_drop": "10%"}}}, LOC, local_only=False)
    assert opts.tasks == (TaskSpec("canopy_mc", ("acc",), Limit(5.0, False)), TaskSpec("arc_easy", None, Limit(2.0, False)),
                          TaskSpec("hellaswag", None, Limit(0.1, True)))
    opts = parse_task_list("domain", {"tasks": ["canopy_qa"], "max_drop": 3}, LOC, local_only=True)
    assert opts.tasks == (TaskSpec("canopy_qa", None, Limit(3.0, False)),) and opts.local_only


@pytest.mark.parametrize("raw, field, text", [
    ({"tasks": ["canopy_mc"]}, "tasks[0].max_drop", "is required"),
    ({"tasks": ["a", "a"], "max_drop": 1}, "tasks[1]", "listed twice"),
    ({"tasks": ["../x"], "max_drop": 1}, "tasks[0]", "is not an lm-eval task name"),
    ({"tasks": {"a": {"max_dorp": 1}}}, "tasks.a.max_dorp", "did you mean `max_drop`?"),
    ({"tasks": {"a": True}}, "tasks.a", "must be points like 2"),
    ({}, "tasks", "is required"),
])
def test_lm_eval_options__task_list_bad_input_names_field(raw, field, text):
    with pytest.raises(InputError) as err:
        parse_task_list("benchmarks", raw, LOC, local_only=False)
    assert err.value.field == f"environments[0].gate[1].{field}"
    assert text in str(err.value)


def test_lm_eval_options__policy_parses_the_checks():
    policy = parse_policy("""\
version: 1
environments:
  - name: test
    gate:
      - check: perplexity
        task: canopy_heldout
        max_increase: 3%
        timeout: 10m
      - check: domain
        tasks: [canopy_qa]
        max_drop: 5
""")
    ppl, domain = policy.environments[0].gate
    assert ppl.timeout_s == 600 and ppl.options.tasks[0].limit.amount == 0.03
    assert domain.options.local_only


@pytest.mark.parametrize("higher_is_better, candidate, verdict", [
    (False, 10.5, "fail"),   # perplexity: +5% is worse
    (False, 9.5, "pass"),    # perplexity going down is better
    (True, 10.5, "pass"),    # the same numbers, read as a score where higher is better
    (True, 9.5, "fail"),
])
def test_lm_eval_gate__direction_comes_from_higher_is_better(higher_is_better, candidate, verdict):
    spec = (TaskSpec("t", ("m",), Limit(0.03, relative=True)),)
    outcome = compare(spec, parse_scores(raw_result("t", "m", candidate, higher_is_better)),
                      parse_scores(raw_result("t", "m", 10.0, higher_is_better)))
    assert outcome.verdict == verdict
    assert outcome.rows[0].higher_is_better is higher_is_better
    assert outcome.rows[0].delta == pytest.approx(candidate - 10.0)


def test_lm_eval_gate__points_for_fractions():
    spec = (TaskSpec("mc", None, Limit(5.0, relative=False)),)
    base = parse_scores(raw_result("mc", "acc", 0.60, True))
    assert compare(spec, parse_scores(raw_result("mc", "acc", 0.56, True)), base).verdict == "pass"
    out = compare(spec, parse_scores(raw_result("mc", "acc", 0.54, True)), base)
    assert out.verdict == "fail" and out.problems == ("mc acc: +6.0 pt worse, limit +5.0 pt (no interval: no per-document values)",)
    assert out.rows[0].stderr == "±0.01 / ±0.01"


@pytest.mark.parametrize("candidate, hib, text", [
    ("nan", False, "not a finite number"),
    (float("inf"), False, "not a finite number"),
    (1.0, None, "gives no higher_is_better"),
])
def test_lm_eval_gate__unusable_numbers_are_errors(candidate, hib, text):
    spec = (TaskSpec("t", ("m",), Limit(0.03, relative=True)),)
    outcome = compare(spec, parse_scores(raw_result("t", "m", candidate, hib)), parse_scores(raw_result("t", "m", 1.0, hib)))
    assert outcome.verdict == "error"
    assert text in outcome.problems[0]
    assert outcome.rows[0].candidate is None or math.isfinite(outcome.rows[0].candidate)


def test_lm_eval_gate__missing_metric_is_an_error():
    spec = (TaskSpec("t", ("acc",), Limit(1, relative=False)),)
    outcome = compare(spec, parse_scores(raw_result("t", "f1", 0.5, True)), parse_scores(raw_result("t", "f1", 0.5, True)))
    assert outcome.verdict == "error" and "t reports no 'acc' (it reports: f1)" in outcome.problems


def test_lm_eval_tasks__screen_records_functions_without_running_them():
    data, functions = screen_yaml("task: t\nprocess_docs: !function utils.docs\nclass: !function os.system\n", "x.yaml")
    assert functions == ("utils.docs", "os.system") and data["task"] == "t"
    with pytest.raises(InputError, match="could not determine a constructor"):
        screen_yaml("task: !!python/object/apply:os.system ['true']\n", "x.yaml")


def test_lm_eval_gate__filter_named_only_when_a_metric_has_several():
    raw = {"results": {"qa": {"exact_match,strict": 0.5, "exact_match,flexible": 0.6, "f1,strict": 0.7}},
           "higher_is_better": {"qa": {"exact_match": True, "f1": True}}}
    outcome = compare((TaskSpec("qa", None, Limit(1, relative=False)),), parse_scores(raw), parse_scores(raw))
    assert [r.label for r in outcome.rows] == ["qa exact_match [strict]", "qa exact_match [flexible]", "qa f1"]
    assert outcome.verdict == "pass"


def test_lm_eval_gate__every_compared_row_says_how_far_it_moved():
    """A passing check still shows the delta (the demo's step 1 prints it)."""
    spec = (TaskSpec("ppl", ("word_perplexity",), Limit(0.03, relative=True)),)
    out = compare(spec, parse_scores(raw_result("ppl", "word_perplexity", 2.02, False)),
                  parse_scores(raw_result("ppl", "word_perplexity", 2.0, False)))
    assert out.verdict == "pass"
    assert out.changes == ("ppl word_perplexity 2.02 vs baseline 2: +1.00% worse, limit +3.00% "
                           "(no interval: no per-document values)",)
    better = compare(spec, parse_scores(raw_result("ppl", "word_perplexity", 1.9, False)),
                     parse_scores(raw_result("ppl", "word_perplexity", 2.0, False)))
    assert better.changes[0].endswith("−5.00% worse, limit +3.00% (no interval: no per-document values)")
