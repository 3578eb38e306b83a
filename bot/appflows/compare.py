"""Candidate against baseline: per-case records, regressions and improvements, the gate's verdict.

Pure functions from (options, case records) to a frozen `CheckResult`. The records are plain
JSON, so a sharded run carries them in its partial results and `merge` reaches exactly the
verdict one run over every case would (see `bot.checks.app_flows`).

The comparison is paired case by case: a regression passes on the baseline and fails on the
candidate, an improvement the reverse; both are counted and shown, with the exact one-sided
McNemar p-value for "the candidate is worse". `max_pass_rate_drop` (points) is a non-inferiority
rule on the pass rate with a paired interval (cases run with `samples:` count their pass fraction),
judged pass, fail or inconclusive by the gate entry's rule; `max_regressions` counts flips as before.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from bot.appflows.options import GateOptions
from bot.appflows.runner import ERROR, FAIL, PASS, CaseResult, Run
from bot.appflows.suite import TAGS
from bot.core.output import clip
from bot.stats.proportions import mcnemar_exact, pass_rate_drop
from bot.verdicts import evidence
from bot.verdicts.evidence import VerdictRule
from bot.verdicts.results import INCONCLUSIVE, SKIPPED, CheckResult, MetricRow

OUTPUT_LIMIT = 400
RECORD = "app-flow-case"


def records(candidate: Run, baseline: Run) -> list[dict]:
    """One JSON record per case, matched by key; outputs kept only where the candidate did not pass."""
    base = {r.case.key: r for r in baseline.results}
    out = []
    for cand in candidate.results:
        b: CaseResult | None = base.get(cand.case.key)
        rec: dict[str, Any] = {
            "kind": RECORD, "key": cand.case.key, "tags": list(cand.case.tags), "required": cand.case.required(),
            "candidate": cand.status, "baseline": b.status if b else ERROR,
            # Pass fractions over the case's samples (0 or 1 for a case run once), for the paired interval.
            "candidate_fraction": _fraction(cand), "baseline_fraction": _fraction(b) if b else None,
        }
        if cand.status != PASS or rec["baseline"] != PASS:
            rec["candidate_output"] = clip(cand.output, OUTPUT_LIMIT)
            rec["candidate_failures"] = list(cand.failures) or ([cand.error] if cand.error else [])
            rec["baseline_output"] = clip(b.output, OUTPUT_LIMIT) if b else "(not run)"
            if b is not None and b.error:
                rec["baseline_error"] = clip(b.error, 200)
        out.append(rec)
    return out


def _fraction(result: CaseResult) -> float | None:
    if result.status == ERROR or not result.samples:
        return None
    return sum(s.passed for s in result.samples) / len(result.samples)


def _fractions(rec: Mapping[str, Any]) -> tuple[float, float]:
    """A record's pass fractions; records without them (older shards) count their status."""
    def one(side: str) -> float:
        value = rec.get(f"{side}_fraction")
        return float(value) if value is not None else float(rec[side] == PASS)
    return one("candidate"), one("baseline")


def is_improvement(rec: Mapping[str, Any]) -> bool:
    return rec["baseline"] == FAIL and rec["candidate"] == PASS


def case_records(parts: Iterable[CheckResult]) -> list[dict]:
    return [dict(f) for p in parts for f in p.findings if f.get("kind") == RECORD]


def _rate(passed: int, total: int) -> float | None:
    return passed / total if total else None


def tally(recs: list[Mapping[str, Any]], side: str, tag: str | None = None) -> tuple[int, int]:
    chosen = [r for r in recs if tag is None or tag in r["tags"]]
    return sum(r[side] == PASS for r in chosen), len(chosen)


def is_regression(rec: Mapping[str, Any]) -> bool:
    return rec["baseline"] == PASS and rec["candidate"] == FAIL


def compare(name: str, options: GateOptions, recs: list[Mapping[str, Any]], *, keep_records: bool = False,
           artifacts: tuple[str, ...] = (), rule: VerdictRule = VerdictRule()) -> CheckResult:
    """The gate over every case record. ``keep_records``: a shard's partial result, for `merge`."""
    recs = sorted(recs, key=lambda r: r["key"])
    regressions = [r for r in recs if is_regression(r)]
    improvements = [r for r in recs if is_improvement(r)]
    cand_errors = [r for r in recs if r["candidate"] == ERROR]
    base_errors = [r for r in recs if r["baseline"] == ERROR]
    base_fails = [r for r in recs if r["baseline"] == FAIL]
    c_pass, total = tally(recs, "candidate")
    b_pass, _ = tally(recs, "baseline")
    c_rate = _rate(c_pass, total)

    rows = []
    for tag in TAGS:
        cp, n = tally(recs, "candidate", tag)
        bp, _ = tally(recs, "baseline", tag)
        tag_regressions = sum(1 for r in regressions if tag in r["tags"])
        tag_improvements = sum(1 for r in improvements if tag in r["tags"])
        tag_errors = sum(1 for r in recs if tag in r["tags"] and ERROR in (r["candidate"], r["baseline"]))
        counted = options.max_regressions is not None
        verdict = SKIPPED if n == 0 else ERROR if tag_errors else FAIL if tag_regressions and counted else PASS
        c, b = _rate(cp, n), _rate(bp, n)
        rows.append(MetricRow(
            label=f"{tag} ({cp}/{n} vs {bp}/{n})", candidate=c, baseline=b,
            delta=None if c is None or b is None else c - b,
            threshold=f"{tag_regressions} regressed, {tag_improvements} improved"
                      + (f", {tag_errors} errors" if tag_errors else ""),
            verdict=verdict, higher_is_better=True,
        ))

    judged = [r for r in recs if ERROR not in (r["candidate"], r["baseline"])]
    drop_row, drop_verdict = _pass_rate_row(judged, options, rule)
    if drop_row is not None:
        rows.insert(0, drop_row)
    p_worse = mcnemar_exact(len(regressions), len(improvements))
    paired = (f"{len(regressions)} regressed, {len(improvements)} improved (McNemar one-sided p = {p_worse:.3g} "
              f"for 'the candidate is worse')")

    limits = []
    if options.max_regressions is not None:
        limits.append(f"≤ {options.max_regressions} regressions")
    if options.max_pass_rate_drop is not None:
        limits.append(f"pass rate drop ≤ {options.max_pass_rate_drop:g} pt")
    if options.min_pass_rate is not None:
        limits.append(f"pass rate ≥ {options.min_pass_rate:.0%}")
    threshold = ", ".join(limits)
    if total == 0:
        verdict, detail = ERROR, "no cases ran"
    elif len(cand_errors) > options.max_errors or len(base_errors) > options.max_errors:
        verdict = ERROR
        detail = (f"{len(cand_errors)} candidate and {len(base_errors)} baseline case(s) could not be judged "
                  f"(allowed: {options.max_errors} per side): " + _ids(cand_errors + base_errors, errors=True))
    elif options.max_regressions is not None and len(regressions) > options.max_regressions:
        verdict = FAIL
        detail = (f"{len(regressions)} case(s) pass on the baseline and fail on the candidate: " + _ids(regressions)
                  + f"; {paired}")
    elif options.min_pass_rate is not None and (c_rate or 0.0) < options.min_pass_rate:
        verdict = FAIL
        detail = f"candidate passes {c_pass}/{total} ({c_rate:.0%}), under the minimum {options.min_pass_rate:.0%}"
    elif drop_verdict in (FAIL, INCONCLUSIVE):
        verdict = drop_verdict
        detail = (f"pass rate {'inconclusive' if drop_verdict == INCONCLUSIVE else 'dropped'}: "
                  f"{evidence.describe(drop_row.evidence)}; {paired}")
    else:
        verdict = PASS
        detail = f"{paired}; candidate passes {c_pass}/{total}, baseline {b_pass}/{total}"
        if drop_row is not None:
            detail += f"; pass rate {evidence.describe(drop_row.evidence)}"

    notes = []
    if base_fails:
        notes.append(f"the baseline fails {len(base_fails)} case(s), which therefore cannot regress: "
                     + _ids(base_fails) + ". Fix the cases or the baseline.")
    findings: list[Mapping[str, Any]] = [
        {"title": f"{r['key']}: " + "; ".join(r.get("candidate_failures") or ["failed"]),
         "tag": ", ".join(r["tags"]), "required": r["required"],
         "candidate_output": r.get("candidate_output", ""), "baseline_output": r.get("baseline_output", "")}
        for r in regressions
    ]
    if keep_records:
        findings = recs
    return CheckResult(
        name=name, verdict=verdict, candidate=f"{c_pass}/{total} passed", baseline=f"{b_pass}/{total} passed",
        threshold=threshold, detail=detail, rows=tuple(rows), notes=tuple(notes), findings=tuple(findings),
        artifacts=artifacts,
    )


def _pass_rate_row(judged: list[Mapping[str, Any]], options: GateOptions,
                   rule: VerdictRule) -> tuple[MetricRow | None, str | None]:
    """The paired pass-rate drop against `max_pass_rate_drop`, as a row with its evidence."""
    if options.max_pass_rate_drop is None or len(judged) < 2:
        return None, None
    pairs = [_fractions(r) for r in judged]
    cand, base = [c for c, _ in pairs], [b for _, b in pairs]
    interval = pass_rate_drop(cand, base, level=rule.confidence)
    verdict, proof = evidence.judge(interval, options.max_pass_rate_drop, "points", rule, observations="cases")
    c_rate, b_rate = sum(cand) / len(cand), sum(base) / len(base)
    return MetricRow(label=f"pass rate, paired over {len(judged)} cases", candidate=c_rate, baseline=b_rate,
                     delta=c_rate - b_rate, threshold=f"drop ≤ {options.max_pass_rate_drop:g} pt", verdict=verdict,
                     higher_is_better=True, evidence=proof), verdict


def _ids(recs: list[Mapping[str, Any]], limit: int = 8, errors: bool = False) -> str:
    shown = []
    for r in recs[:limit]:
        text = r["key"]
        if errors:
            why = (r.get("candidate_failures") or [""])[0] if r["candidate"] == ERROR else "baseline: " + r.get("baseline_error", "")
            text += f" ({why[:80]})"
        shown.append(text)
    more = f" and {len(recs) - limit} more" if len(recs) > limit else ""
    return ", ".join(shown) + more
