"""Commit statuses for a judged PR, decided purely: one `promotion-bot/<environment>` per
environment the PR touches (a PR touching none gets the bare `promotion-bot`), so branch
protection can require the environments a team cares about.

A status is `success` only for a pass; a failed gate is `failure`, and so is an inconclusive one
(the data cannot settle it: it blocks like a fail, and says so); anything the bot could not judge
(an error, a skipped check, the forge failing while publishing) is `error`, never success.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.verdicts.results import ERROR, FAIL, INCONCLUSIVE, PASS, Report

CONTEXT_PREFIX = "promotion-bot"
STATE_FOR_VERDICT = {PASS: "success", FAIL: "failure", INCONCLUSIVE: "failure"}  # anything else is `error`
WORDS = {PASS: "passed", FAIL: "failed", ERROR: "could not judge", INCONCLUSIVE: "inconclusive (more data needed)"}


@dataclass(frozen=True)
class Status:
    state: str  # pending | success | failure | error
    description: str


def context_for(environment: str | None) -> str:
    return f"{CONTEXT_PREFIX}/{environment}" if environment else CONTEXT_PREFIX


def environment_of(context: str) -> str | None:
    return context.split("/", 1)[1] if "/" in context else None


def contexts_for(environments: list[str]) -> list[str]:
    """One context per environment, in order, each once; the bare context when there is none."""
    return [context_for(e) for e in dict.fromkeys(environments)] or [context_for(None)]


def pending(contexts: list[str], promotions: int) -> dict[str, Status]:
    text = f"judging {promotions} promotion(s)…" if promotions else "judging…"
    return {c: Status("pending", text) for c in contexts}


def describe(verdict: str, environment: str | None, report: Report | None) -> str:
    """One line for the status: the verdict and what was judged (GitHub keeps 140 characters)."""
    if report is None:
        return "promotion-bot could not judge this PR: see the comment"
    promos = [p for p in report.promotions if environment is None or p.environment == environment]
    if report.errors and not promos:
        return f"could not judge: {report.errors[0].message}"
    if not promos:
        return "nothing to promote" if verdict == PASS else f"{verdict}: see the comment"
    variants = ", ".join(dict.fromkeys(p.to_variant or p.manifest for p in promos))
    return f"{WORDS.get(verdict, verdict)}: {variants}"


def final(report: Report, contexts: list[str]) -> dict[str, Status]:
    """The status of each context once ``report`` is published."""
    by_env = report.environments()
    out = {}
    for ctx in contexts:
        env = environment_of(ctx)
        if report.errors:
            verdict = ERROR
        elif env is None:
            verdict = report.verdict
        else:
            verdict = by_env.get(env, ERROR)  # a context the report does not cover was not judged
        out[ctx] = Status(STATE_FOR_VERDICT.get(verdict, "error"), describe(verdict, env, report))
    return out


def could_not_publish(contexts: list[str], reason: str) -> dict[str, Status]:
    """The forge failed while publishing: the statuses must not say success."""
    return {c: Status("error", reason) for c in contexts}
