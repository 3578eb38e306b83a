"""The PR comment: what a reviewer decides from, in the order they read it.

    verdict, with the count of doubts (`PASS with 1 warning`)
    the doubts themselves (meaningless measurements, inconclusives a policy let pass, a baseline
      failing its own cases...)
    what changed (environment, manifest linked to its diff on GitHub, from → to)
    per promotion: what comes next, the failing or doubtful rows, the interval chart, then every
      check, measurement, finding and artifact collapsed; the model card in a few words

Every comparison reads as `bot.verdicts.evidence` writes it ("worse by 2.1% [+0.8%, +3.6%]").
The view is computed here and handed to `comment.md.j2` (`view`), so a repo's override of the
template gets the same facts.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Mapping

from bot.render.markdown import COMMENT_MARKER, make_environment
from bot.verdicts import evidence
from bot.verdicts.evidence import headline
from bot.verdicts.results import ERROR, FAIL, INCONCLUSIVE, PASS, CheckResult, PromotionResult, Report

DOUBTFUL = (FAIL, INCONCLUSIVE, ERROR)


def render_comment(report: Report, *, overrides: Mapping[str, str] | None = None, report_url: str | None = None,
                   title: str = "promotion-bot", files_url: str | None = None, pr_url: str | None = None) -> str:
    """The PR comment. ``files_url``: the repository's files at the PR head on GitHub; ``pr_url``:
    the pull request, for links to each manifest's diff; ``report_url``: the workflow run."""
    env = make_environment(overrides)
    data = report.to_json()
    body = env.get_template("comment.md.j2").render(
        report=report, data=data, title=title, report_url=report_url,
        view=view_of(report, report_url=report_url, files_url=files_url, pr_url=pr_url))
    # The sticky comment is found again by this marker: a body without it would be duplicated.
    if COMMENT_MARKER not in body:
        body = COMMENT_MARKER + "\n" + body
    return body


def view_of(report: Report, *, report_url: str | None = None, files_url: str | None = None,
            pr_url: str | None = None) -> dict:
    """Everything the template shows beyond the report's own data, computed once."""
    warnings = [(p.environment, w) for p in report.promotions for w in p.warnings]
    return {
        "headline": headline(report.verdict, len(warnings)),
        "warnings": warnings,
        "promotions": [_promotion(p, report_url=report_url, files_url=files_url, pr_url=pr_url)
                       for p in report.promotions],
    }


def _promotion(p: PromotionResult, *, report_url, files_url, pr_url) -> dict:
    return {
        "manifest_link": manifest_link(p.manifest, pr_url=pr_url, files_url=files_url),
        "warnings": len(p.warnings),
        "next": next_step(p),
        "doubtful": [_row(c, r) for c in p.checks for r in c.rows
                     if r.verdict in DOUBTFUL or (c.allowed and r.verdict == INCONCLUSIVE)],
        "unmeasured": [c for c in p.checks if c.verdict in DOUBTFUL and not any(r.verdict in DOUBTFUL for r in c.rows)],
        "artifacts": artifact_groups(p.checks),
        "evidence_url": f"{report_url}#artifacts" if report_url else None,
        "card": _card(p, report_url),
    }


def _row(check: CheckResult, row) -> dict:
    verdict = "inconclusive, allowed by policy" if check.allowed and row.verdict == INCONCLUSIVE else row.verdict
    return {"check": check.name, "label": row.label, "verdict": verdict, "icon_verdict": row.verdict,
            "worse_by": evidence.worse_by(row.evidence.interval, row.evidence.unit) if row.evidence else row.stderr,
            "limit": evidence.limit_text(row.evidence.limit, row.evidence.unit) if row.evidence else row.threshold,
            "settle": (f"about {row.evidence.settle_n} {row.evidence.observations} in all would settle it"
                       if row.evidence and row.evidence.settle_n else None)}


def next_step(p: PromotionResult) -> str | None:
    """What the engineer does next under the policy, or how a blocking inconclusive can be settled."""
    if p.verdict == PASS:
        if p.next_environment:
            return f"next: promote {p.to_variant} to {p.next_environment}"
        return f"next: merge; {p.environment} is the last environment, and its monitor watches it after the merge"
    if p.verdict == INCONCLUSIVE:
        settle = [r.evidence.settle_n for c in p.checks for r in c.rows
                  if r.verdict == INCONCLUSIVE and r.evidence and r.evidence.settle_n]
        more = f" (about {max(settle)} would settle the widest)" if settle else ""
        return ("to settle it: more documents, cases or requests" + more + "; a quieter runner (less noise, "
                "narrower intervals); or, if a doubt may pass here, `on_inconclusive: pass` on the gate entry")
    return None


def manifest_link(manifest: str, *, pr_url: str | None, files_url: str | None) -> str | None:
    """The manifest's diff in the PR on GitHub (its files view anchors a file by the SHA-256 of its
    path), else the file at the PR head, else nothing (a local run: the path is enough)."""
    if pr_url:
        return f"{pr_url.rstrip('/')}/files#diff-{hashlib.sha256(manifest.encode()).hexdigest()}"
    if files_url:
        return f"{files_url.rstrip('/')}/{manifest}"
    return None


def artifact_groups(checks) -> list[dict]:
    """Artifacts once, by folder (`artifacts/p0-3-performance/guidellm/`: 16 files), never runner paths."""
    groups: dict[str, list[str]] = {}
    for c in checks:
        for a in c.artifacts:
            groups.setdefault(posixpath.dirname(a) or ".", []).append(posixpath.basename(a))
    return [{"folder": folder + "/", "files": names} for folder, names in groups.items()]


def _card(p: PromotionResult, report_url: str | None) -> dict | None:
    from bot.render.card import summary_of  # the card module imports the Markdown helpers

    if p.card is None or not p.to_variant:
        return None
    return {**summary_of(p.card), "full_url": report_url, "full_command": f"promotion-bot card models/{p.to_variant}"}
