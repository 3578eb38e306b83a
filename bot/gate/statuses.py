"""Commit statuses for a judged PR, decided purely: the umbrella context `promotion-bot` (the
PR as a whole) and one `promotion-bot/<environment>` for every environment of the policy, on
every event, so branch protection can require any of them and no PR waits on one nobody sets.

An environment the PR promotes into gets its verdict. One it does not promote into is
`success`: "nothing to promote into prod: this PR changes none of its files" when
bot/gate/scope.py computed that, "nothing to promote into prod" when the PR changes its files
without changing a variant it serves. A status is `success` only for a pass; a failed gate is
`failure`, and so is an inconclusive one (the data cannot settle it: it blocks like a fail, and
says so); anything the bot could not judge (an error, a skipped check, the forge failing while
publishing) is `error` on every context, never success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

from bot.verdicts.results import ERROR, FAIL, INCONCLUSIVE, PASS, Report

CONTEXT_PREFIX = "promotion-bot"
UMBRELLA = CONTEXT_PREFIX  # one context for the whole PR, for teams that require a single check
STATE_FOR_VERDICT = {PASS: "success", FAIL: "failure", INCONCLUSIVE: "failure"}  # anything else is `error`
WORDS = {PASS: "passed", FAIL: "failed", ERROR: "could not judge", INCONCLUSIVE: "inconclusive (more data needed)"}


@dataclass(frozen=True)
class Status:
    state: str  # pending | success | failure | error
    description: str


def context_for(environment: str | None) -> str:
    return f"{CONTEXT_PREFIX}/{environment}" if environment else UMBRELLA


def environment_of(context: str) -> str | None:
    return context.split("/", 1)[1] if "/" in context else None


def contexts_for(environments: Collection[str]) -> list[str]:
    """The umbrella context, then one per environment, in order, each once."""
    return [UMBRELLA, *(context_for(e) for e in dict.fromkeys(environments))]


def untouched(environment: str) -> Status:
    return Status("success", f"nothing to promote into {environment}: this PR changes none of its files")


def pending(contexts: list[str], promotions: int, *, untouched_environments: Collection[str] = ()) -> dict[str, Status]:
    """Before the gate runs: `pending`, except environments the PR does not touch, whose
    `success` is already decided (a gate that then fails to run still turns them to `error`)."""
    text = f"judging {promotions} promotion(s)…" if promotions else "judging…"
    return {c: (untouched(environment_of(c)) if environment_of(c) in untouched_environments else Status("pending", text))
            for c in contexts}


def describe(verdict: str, environment: str | None, report: Report | None) -> str:
    """One line for the status: the verdict and what was judged (GitHub keeps 140 characters)."""
    if report is None:
        return "promotion-bot could not judge this PR: see the comment"
    promos = [p for p in report.promotions if environment is None or p.environment == environment]
    if report.errors and not promos:
        return f"could not judge: {report.errors[0].message}"
    if not promos:
        if verdict != PASS:
            return f"{verdict}: see the comment"
        return f"nothing to promote into {environment}" if environment else "nothing to promote"
    if environment is None and len({p.environment for p in promos}) > 1:
        by_env: dict[str, list[str]] = {}
        for p in promos:
            by_env.setdefault(p.environment, []).append(p.to_variant or p.manifest)
        what = "; ".join(f"{env} ← {', '.join(dict.fromkeys(v))}" for env, v in by_env.items())
        return f"{WORDS.get(verdict, verdict)}: {what}"
    variants = ", ".join(dict.fromkeys(p.to_variant or p.manifest for p in promos))
    return f"{WORDS.get(verdict, verdict)}: {variants}"


def final(report: Report, contexts: list[str], *, environments: Collection[str] = (),
          untouched_environments: Collection[str] = ()) -> dict[str, Status]:
    """The status of each context once ``report`` is published. ``environments``: those the plan
    read (the policy's); a context outside them was not judged and is `error`."""
    by_env = report.environments()
    out = {}
    for ctx in contexts:
        env = environment_of(ctx)
        if report.errors:
            verdict = ERROR
        elif env is None:
            verdict = report.verdict
        elif env in by_env:
            verdict = by_env[env]
        elif env in untouched_environments:
            out[ctx] = untouched(env)
            continue
        else:
            verdict = PASS if env in environments else ERROR  # a context the plan never read was not judged
        out[ctx] = Status(STATE_FOR_VERDICT.get(verdict, "error"), describe(verdict, env, report))
    return out


def every(contexts: list[str], state: str, description: str) -> dict[str, Status]:
    """The same status on every context: a merge-queue entry whose gate is reused, a verified revert."""
    return {c: Status(state, description) for c in contexts}


def could_not_publish(contexts: list[str], reason: str) -> dict[str, Status]:
    """The forge failed while publishing: the statuses must not say success."""
    return every(contexts, "error", reason)
