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


def test_statuses__a_context_the_plan_never_read_is_an_error_not_a_success():
    final = statuses.final(Report("b", "h", (promo("test", "pass"),)), CONTEXTS, environments=("test",))
    assert final["promotion-bot/prod"].state == "error"


def test_statuses__every_environment_of_the_policy_gets_a_success_it_was_computed_to_deserve():
    contexts = statuses.contexts_for(["test", "staging", "prod"])
    report = Report("b", "h", (promo("test", "pass"),))
    final = statuses.final(report, contexts, environments=("test", "staging", "prod"), untouched_environments=("prod",))
    assert final["promotion-bot/prod"] == statuses.Status(
        "success", "nothing to promote into prod: this PR changes none of its files")
    # staging's files changed (not untouched) without a promotion: nothing to gate, said without the claim
    assert final["promotion-bot/staging"] == statuses.Status("success", "nothing to promote into staging")
    assert final["promotion-bot"] == statuses.Status("success", "passed: canopy-tiny/v1.3-int4-g64")


def test_statuses__an_error_turns_even_untouched_environments_to_error():
    report = Report("b", "h", errors=(ErrorRecord("promotion.yaml", "", "is broken"),))
    final = statuses.final(report, statuses.contexts_for(["test", "prod"]), environments=("test", "prod"),
                           untouched_environments=("test", "prod"))
    assert {s.state for s in final.values()} == {"error"}


def test_statuses__descriptions_name_the_verdict_and_variants():
    report = Report("b", "h", (promo("prod", "inconclusive"),), removals=(Removal("test", "m", "o", "v"),))
    final = statuses.final(report, ["promotion-bot/prod", "promotion-bot/test", "promotion-bot"],
                           environments=("test", "prod"))
    assert final["promotion-bot/prod"].description == "inconclusive (more data needed): canopy-tiny/v1.3-int4-g64"
    assert final["promotion-bot/test"] == statuses.Status("success", "nothing to promote into test")
    assert final["promotion-bot"].state == "failure"


def test_statuses__umbrella_description_names_each_environment_of_a_multi_environment_pr():
    report = Report("b", "h", (promo("test", "pass"), promo("staging", "pass", "canopy-tiny/v1.1-int8")))
    final = statuses.final(report, ["promotion-bot"])
    assert final["promotion-bot"].description == "passed: test ← canopy-tiny/v1.3-int4-g64; staging ← canopy-tiny/v1.1-int8"


def test_statuses__contexts_are_the_umbrella_then_one_per_environment_in_order():
    assert statuses.contexts_for(["prod", "test", "prod"]) == ["promotion-bot", "promotion-bot/prod", "promotion-bot/test"]
    assert statuses.contexts_for([]) == ["promotion-bot"]
    assert statuses.environment_of("promotion-bot/prod") == "prod" and statuses.environment_of("promotion-bot") is None


def test_statuses__pending_and_could_not_publish_never_say_success():
    assert {s.state for s in statuses.pending(CONTEXTS, 2).values()} == {"pending"}
    assert statuses.pending(CONTEXTS, 2)["promotion-bot/test"].description == "judging 2 promotion(s)…"
    decided = statuses.pending(CONTEXTS, 1, untouched_environments=("prod",))
    assert (decided["promotion-bot/test"].state, decided["promotion-bot/prod"].state) == ("pending", "success")
    assert {s.state for s in statuses.could_not_publish(CONTEXTS, "GitHub 502").values()} == {"error"}


def test_statuses__exit_codes_tell_pass_fail_error_and_inconclusive_apart():
    codes = {v: Report("b", "h", (promo("test", v),)).exit_code for v in ("pass", "fail", "error", "inconclusive")}
    assert codes == {"pass": 0, "fail": 1, "error": 2, "inconclusive": 3}
