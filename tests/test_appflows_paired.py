"""App-flow cases compared in pairs: regressions and improvements both counted, McNemar, and the
pass-rate drop as an interval against `max_pass_rate_drop` (bot.appflows.compare.compare)."""

from __future__ import annotations

import pytest

from bot.appflows.compare import compare
from bot.appflows.options import GateOptions


def rec(i, candidate, baseline, *, fractions=None):
    r = {"kind": "app-flow-case", "key": f"s.yaml#{i:03d}", "tags": ["output-format"], "required": "JSON",
         "candidate": candidate, "baseline": baseline}
    if fractions:
        r["candidate_fraction"], r["baseline_fraction"] = fractions
    return r


def cases(n, regress=0, improve=0):
    out = [rec(i, "fail", "pass") for i in range(regress)]
    out += [rec(regress + i, "pass", "fail") for i in range(improve)]
    out += [rec(regress + improve + i, "pass", "pass") for i in range(n - regress - improve)]
    return out


PAIRED = GateOptions(max_regressions=None, max_pass_rate_drop=2.0)


def test_appflows_paired__identical_runs_pass_with_a_zero_width_interval():
    result = compare("app-flows", PAIRED, cases(40))
    row = result.rows[0]
    assert result.verdict == "pass" and row.evidence.interval.width == 0 and row.evidence.interval.estimate == 0
    assert "0 regressed, 0 improved (McNemar one-sided p = 1" in result.detail


def test_appflows_paired__flips_both_ways_are_not_a_regression_count_but_an_interval():
    result = compare("app-flows", PAIRED, cases(50, regress=3, improve=3))
    assert result.verdict == "inconclusive" and result.rows[0].evidence.interval.estimate == 0
    assert result.rows[0].evidence.settle_n > 50 and "cases in all would settle it" in result.detail
    # The old rule on the same cases: any regression fails.
    assert compare("app-flows", GateOptions(), cases(50, regress=3, improve=3)).verdict == "fail"


def test_appflows_paired__many_regressions_fail_with_the_interval_beyond_the_limit_and_mcnemar():
    result = compare("app-flows", PAIRED, cases(40, regress=10))
    assert result.verdict == "fail" and result.rows[0].evidence.interval.low > 2.0
    assert "10 regressed, 0 improved (McNemar one-sided p = 0.000977" in result.detail  # 0.5 ** 10


def test_appflows_paired__mcnemar_p_on_known_counts():
    result = compare("app-flows", GateOptions(max_regressions=10), cases(30, regress=5))
    assert "p = 0.0312" in result.detail  # 1/32: all five discordant cases went the candidate's bad way


def test_appflows_paired__cases_with_samples_count_their_pass_fractions():
    recs = [rec(i, "pass", "pass", fractions=(0.6, 1.0)) for i in range(20)]
    result = compare("app-flows", PAIRED, recs)
    row = result.rows[0]
    assert row.evidence.interval.estimate == pytest.approx(40.0) and result.verdict == "fail"


def test_appflows_paired__improvements_are_shown_per_tag():
    result = compare("app-flows", PAIRED, cases(20, regress=1, improve=2))
    [json_row] = [r for r in result.rows if r.label.startswith("output-format")]
    assert json_row.threshold == "1 regressed, 2 improved"
