"""Candidate against baseline: per-case records, regressions, the gate's verdict.

Pure functions from (options, case records) to a frozen `CheckResult`. The records are plain
JSON, so a sharded run carries them in its partial results and `merge` reaches exactly the
verdict one run over every case would (see `bot.checks.app_flows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from bot.appflows.runner import ERROR, FAIL, PASS, CaseResult, Run
from bot.appflows.suite import TAGS
from bot.results import SKIPPED, CheckResult, MetricRow

OUTPUT_LIMIT = 400
RECORD = "app-flow-case"


@dataclass(frozen=True)
class GateOptions:
    max_regressions: int = 0
    min_pass_rate: float | None = None  # 0.9 for "90%": the candidate's share of passing cases
    max_errors: int = 0  # cases that could not be judged (HTTP errors, timeouts), per side


def clip(text: str, limit: int = OUTPUT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def records(candidate: Run, baseline: Run) -> list[dict]:
    """One JSON record per case, matched by key; outputs kept only where the candidate did not pass."""
    base = {r.case.key: r for r in baseline.results}
    out = []
    for cand in candidate.results:
        b: CaseResult | None = base.get(cand.case.key)
        rec: dict[str, Any] = {
            "kind": RECORD, "key": cand.case.key, "tags": list(cand.case.tags), "required": cand.case.required(),
            "candidate": cand.status, "baseline": b.status if b else ERROR,
        }
        if cand.status != PASS or rec["baseline"] != PASS:
            rec["candidate_output"] = clip(cand.output)
            rec["candidate_failures"] = list(cand.failures) or ([cand.error] if cand.error else [])
            rec["baseline_output"] = clip(b.output) if b else "(not run)"
            if b is not None and b.error:
                rec["baseline_error"] = clip(b.error, 200)
        out.append(rec)
    return out


def case_records(parts: Iterable[CheckResult]) -> list[dict]:
    return [dict(f) for p in parts for f in p.findings if f.get("kind") == RECORD]


def _rate(passed: int, total: int) -> float | None:
    return passed / total if total else None


def tally(recs: list[Mapping[str, Any]], side: str, tag: str | None = None) -> tuple[int, int]:
    chosen = [r for r in recs if tag is None or tag in r["tags"]]
    return sum(r[side] == PASS for r in chosen), len(chosen)


def is_regression(rec: Mapping[str, Any]) -> bool:
    return rec["baseline"] == PASS and rec["candidate"] == FAIL


def decide(name: str, options: GateOptions, recs: list[Mapping[str, Any]], *, keep_records: bool = False,
           artifacts: tuple[str, ...] = ()) -> CheckResult:
    """The gate over every case record. ``keep_records``: a shard's partial result, for `merge`."""
    recs = sorted(recs, key=lambda r: r["key"])
    regressions = [r for r in recs if is_regression(r)]
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
        tag_errors = sum(1 for r in recs if tag in r["tags"] and ERROR in (r["candidate"], r["baseline"]))
        verdict = SKIPPED if n == 0 else ERROR if tag_errors else FAIL if tag_regressions else PASS
        c, b = _rate(cp, n), _rate(bp, n)
        rows.append(MetricRow(
            label=f"{tag} ({cp}/{n} vs {bp}/{n})", candidate=c, baseline=b,
            delta=None if c is None or b is None else c - b,
            threshold=f"{tag_regressions} regressed" + (f", {tag_errors} errors" if tag_errors else ""),
            verdict=verdict, higher_is_better=True,
        ))

    threshold = f"≤ {options.max_regressions} regressions"
    if options.min_pass_rate is not None:
        threshold += f", pass rate ≥ {options.min_pass_rate:.0%}"
    errors = len(cand_errors) + len(base_errors)
    if total == 0:
        verdict, detail = ERROR, "no cases ran"
    elif len(cand_errors) > options.max_errors or len(base_errors) > options.max_errors:
        verdict = ERROR
        detail = (f"{len(cand_errors)} candidate and {len(base_errors)} baseline case(s) could not be judged "
                  f"(allowed: {options.max_errors} per side): " + _ids(cand_errors + base_errors, errors=True))
    elif len(regressions) > options.max_regressions:
        verdict = FAIL
        detail = f"{len(regressions)} case(s) pass on the baseline and fail on the candidate: " + _ids(regressions)
    elif options.min_pass_rate is not None and (c_rate or 0.0) < options.min_pass_rate:
        verdict = FAIL
        detail = f"candidate passes {c_pass}/{total} ({c_rate:.0%}), under the minimum {options.min_pass_rate:.0%}"
    else:
        verdict = PASS
        detail = f"{len(regressions)} regression(s); candidate passes {c_pass}/{total}, baseline {b_pass}/{total}"

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
