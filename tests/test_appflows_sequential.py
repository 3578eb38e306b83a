"""App flows in looks: a large suite runs in growing batches and stops once the pass-rate decision
is settled (bot.appflows.looks), end to end against a loopback OpenAI-compatible server."""

from __future__ import annotations

import pytest
from fake_openai import fake_openai, last_user, message
from gitops import demo_like_repo
from test_appflows_gate import policy, run_check

from bot.appflows.compare import compare
from bot.appflows.looks import plan_for, settled, shuffled
from bot.appflows.options import GateOptions
from bot.verdicts.evidence import VerdictRule
from bot.verdicts.looks import SequentialOption

CASES = 40
SUITE = "suite: many\ncases:\n" + "".join(
    f"  - id: q{i:02d}\n    tags: [output-format]\n    messages: [{{role: user, content: q{i:02d}}}]\n"
    f"    expect: [{{contains: ok}}]\n" for i in range(CASES))
LOOKS = "max_pass_rate_drop: 5\nsequential: {min: 10, growth: 2}"  # looks at 10, 20, 40 cases


def serve(bad: set[str] | None = None, broken_variant: str = "v1.4-int2-g64"):
    """The broken variant answers `nope` to the questions in ``bad`` (all when None), `ok` otherwise."""
    def answer(body):
        q = last_user(body)
        broken = body["model"] == broken_variant and (bad is None or q in bad)
        return message("nope" if broken else "ok")
    return fake_openai(answer)


def gate(tmp_path, url, candidate, extra):
    repo = demo_like_repo(tmp_path / "gitops", policy=policy(url.removesuffix("/v1") + "/{variant}/v1", gate_extra=extra))
    repo.write("evals/canopy/many.yaml", SUITE)
    repo.commit("A large suite")
    repo.set_variant("staging", f"canopy-tiny/{candidate}")
    repo.commit(f"Promote {candidate} to staging")
    return run_check(repo, tmp_path)


def rec(i, candidate="pass", baseline="pass"):
    return {"kind": "app-flow-case", "key": f"s#{i:03d}", "tags": ["output-format"], "required": "",
            "candidate": candidate, "baseline": baseline}


def test_appflows_looks__order_is_seeded_by_the_cases_and_covers_them_all():
    keys = [f"s#{i:03d}" for i in range(30)]
    order = shuffled(keys, key=str)
    assert sorted(order) == keys and order != keys and shuffled(list(reversed(keys)), key=str) == order


def test_appflows_looks__only_a_pass_rate_limit_can_settle_early():
    seq, rule = SequentialOption(minimum=10), VerdictRule()
    assert plan_for(seq, GateOptions(max_regressions=None, max_pass_rate_drop=5), 40, rule).looks == (10, 20, 40)
    assert plan_for(seq, GateOptions(max_regressions=0), 40, rule) is None  # a count settles only by exceeding it
    assert plan_for(seq, GateOptions(max_pass_rate_drop=5), 10, rule) is None  # no more cases than the first look
    assert plan_for(None, GateOptions(max_pass_rate_drop=5), 40, rule) is None


def test_appflows_looks__a_look_settles_only_what_later_cases_cannot_change():
    drop_only = GateOptions(max_regressions=None, max_pass_rate_drop=5)
    same = [rec(i) for i in range(10)]
    assert settled(compare("a", drop_only, same), drop_only, same) == "pass"
    # With max_regressions a pass is never settled early: the next batch may hold a regression.
    counted = GateOptions(max_regressions=0, max_pass_rate_drop=5)
    assert settled(compare("a", counted, same), counted, same) == "inconclusive"
    one_bad = same[:-1] + [rec(9, candidate="fail")]
    assert settled(compare("a", counted, one_bad), counted, one_bad) == "fail"
    allowed = GateOptions(max_regressions=2, max_pass_rate_drop=50)
    assert settled(compare("a", allowed, one_bad), allowed, one_bad) == "inconclusive"


@pytest.mark.parametrize("candidate, verdict", [("v1.1-int8", "pass"), ("v1.4-int2-g64", "fail")])
def test_app_flows_sequential__a_clear_case_stops_at_the_first_look(tmp_path, candidate, verdict):
    with serve() as (url, seen):
        code, check, comment = gate(tmp_path, url, candidate, LOOKS)
    assert check["verdict"] == verdict, check["detail"]
    assert check["detail"].startswith("stopped at 10 of 40 cases (look 1 of 3): ")
    assert len(seen) == 2 * 10  # ten cases, each on both variants
    [seq] = [f["sequential"] for f in check["findings"] if "sequential" in f]
    assert seq["observations"] == 10 and seq["unit"] == "cases" and seq["looks"] == [10, 20, 40]
    row = check["rows"][0]
    assert row["label"] == "pass rate, paired over 10 cases" and row["evidence"]["interval"]["level"] > 0.99
    assert "stopped at 10 of 40 cases" in comment


def test_app_flows_sequential__a_regression_over_max_regressions_stops_the_look_that_finds_it(tmp_path):
    order = shuffled([f"many/q{i:02d}" for i in range(CASES)], key=str)
    bad = order[15]  # in the second look's batch (cases 11–20)
    with serve(bad={bad.split("/")[1]}) as (url, seen):
        _, check, _ = gate(tmp_path, url, "v1.4-int2-g64", LOOKS + "\nmax_regressions: 0")
    assert check["verdict"] == "fail" and check["detail"].startswith("stopped at 20 of 40 cases (look 2 of 3): 1 case(s)")
    assert bad in check["detail"] and len(seen) == 2 * 20


def test_app_flows_sequential__off_runs_every_case(tmp_path):
    with serve() as (url, seen):
        _, check, _ = gate(tmp_path, url, "v1.1-int8", "max_pass_rate_drop: 5\nsequential: off")
    assert check["verdict"] == "pass" and not check["detail"].startswith("stopped")
    assert len(seen) == 2 * CASES and check["rows"][0]["label"] == "pass rate, paired over 40 cases"
