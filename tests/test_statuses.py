"""The commit statuses a judged PR gets, as a table: verdict per environment → state and text."""

from __future__ import annotations

import pytest

from bot.core.errors import ErrorRecord
from bot.gate import statuses
from bot.verdicts.results import CheckResult, PromotionResult, Removal, Report


def promo(env, verdict, variant="canopy-tiny/v1.3-int4-g64"):
    return PromotionResult(env, f"environments/{env}/canopy.yaml", "Deployment/canopy", "canopy", "modified",
                           "canopy-tiny/v1.0-fp32", variant, (CheckResult("zoo", verdict),))


CONTEXTS = ["promotion-bot/test", "promotion-bot/prod"]


@pytest.mark.parametrize("test_verdict, prod_verdict, states", [
    ("pass", "pass", ("success", "success")),
    ("pass", "fail", ("success", "failure")),
    ("pass", "inconclusive", ("success", "failure")),
    ("skipped", "pass", ("error", "success")),
    ("error", "fail", ("error", "failure")),
])
def test_statuses__final_state_per_environment(test_verdict, prod_verdict, states):
    report = Report("b", "h", (promo("test", test_verdict), promo("prod", prod_verdict)))
    final = statuses.final(report, CONTEXTS)
    assert tuple(final[c].state for c in CONTEXTS) == states


def test_statuses__an_error_of_the_pr_makes_every_context_error_with_its_message():
    report = Report("b", "h", (promo("test", "pass"),), errors=(ErrorRecord("promotion.yaml", "zoo", "is broken"),))
    final = statuses.final(report, CONTEXTS)
    assert {s.state for s in final.values()} == {"error"}
    assert final["promotion-bot/prod"].description == "could not judge: is broken"


def test_statuses__a_context_the_report_does_not_cover_is_an_error_not_a_success():
    final = statuses.final(Report("b", "h", (promo("test", "pass"),)), CONTEXTS)
    assert final["promotion-bot/prod"].state == "error"


def test_statuses__descriptions_name_the_verdict_and_variants():
    report = Report("b", "h", (promo("prod", "inconclusive"),), removals=(Removal("test", "m", "o", "v"),))
    final = statuses.final(report, ["promotion-bot/prod", "promotion-bot/test", "promotion-bot"])
    assert final["promotion-bot/prod"].description == "inconclusive (more data needed): canopy-tiny/v1.3-int4-g64"
    assert final["promotion-bot/test"] == statuses.Status("success", "nothing to promote")
    assert final["promotion-bot"].state == "failure"


def test_statuses__contexts_are_one_per_environment_in_order_else_the_bare_one():
    assert statuses.contexts_for(["prod", "test", "prod"]) == ["promotion-bot/prod", "promotion-bot/test"]
    assert statuses.contexts_for([]) == ["promotion-bot"]
    assert statuses.environment_of("promotion-bot/prod") == "prod" and statuses.environment_of("promotion-bot") is None


def test_statuses__pending_and_could_not_publish_never_say_success():
    assert {s.state for s in statuses.pending(CONTEXTS, 2).values()} == {"pending"}
    assert statuses.pending(CONTEXTS, 2)["promotion-bot/test"].description == "judging 2 promotion(s)…"
    assert {s.state for s in statuses.could_not_publish(CONTEXTS, "GitHub 502").values()} == {"error"}


def test_statuses__exit_codes_tell_pass_fail_error_and_inconclusive_apart():
    codes = {v: Report("b", "h", (promo("test", v),)).exit_code for v in ("pass", "fail", "error", "inconclusive")}
    assert codes == {"pass": 0, "fail": 1, "error": 2, "inconclusive": 3}
