"""`promotion-bot check`: judge a promotion PR as it would merge: the promotions --head makes,
merged into --base (the target branch as it is now), by --base's policy.

Exit codes: 0 pass, 1 a gate failed, 2 could not judge (bad input, a crash, a timeout),
3 inconclusive (the data cannot settle a verdict; `on_inconclusive: fail`, the default, blocks).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.gate import publish
from bot.gate.pipeline import check


def register(sub) -> None:
    p = sub.add_parser("check", help="judge a PR's promotions as it would merge into the target", description=__doc__)
    p.add_argument("--repo", default=".", help="path of the GitOps repository (default: .)")
    p.add_argument("--base", required=True, help="the target branch; its tip gives the policy, the baselines and what each environment serves")
    p.add_argument("--head", required=True, help="the PR's head; only its own changes (since its merge base with --base) are judged, as merged into --base's tip")
    p.add_argument("--policy", help="policy file to use instead of promotion.yaml at the base revision")
    p.add_argument("--json", type=Path, help="write the JSON report here")
    p.add_argument("--comment", type=Path, help="write the PR comment (Markdown) here")
    p.add_argument("--workdir", type=Path, help="keep the plan, results and artifacts here")
    p.add_argument("--cache", type=Path, help="baseline result and weights cache (default ~/.cache/promotion-bot)")
    p.add_argument("--pr", type=int, help="the pull request's number, kept with the recorded results")
    p.add_argument("--no-record", dest="record", action="store_false",
                   help="do not record the results in the repository's notes (refs/notes/promotion-bot)")
    p.set_defaults(func=run)


def run(args) -> int:
    judged = check(args.repo, args.base, args.head, policy_file=args.policy, workdir=args.workdir,
                    cache_dir=args.cache, record=args.record, pr=args.pr)
    comment = publish.comment(judged.report, templates=judged.templates) if args.comment else None
    publish.write_outputs(judged.report, comment, json_path=args.json, comment_path=args.comment)
    print_summary(judged.report)
    return judged.report.exit_code


def print_summary(report) -> None:
    for p in report.promotions:
        arrow = f"{p.from_variant} -> {p.to_variant}" if p.from_variant else p.to_variant
        print(f"{p.verdict.upper():5} {p.environment}: {p.manifest} {arrow}")
        for c in p.checks:
            print(f"      {c.verdict:7} {c.name}: {c.detail}")
        for e in p.errors:
            print(f"      error   {e}", file=sys.stderr)
    for e in report.errors:
        print(f"error: {e}", file=sys.stderr)
    if not report.promotions and not report.errors:
        print("nothing to promote")
    print(f"verdict: {report.verdict}")
