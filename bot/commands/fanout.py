"""`plan`, `run-check` and `report`: the gate spread over a GitHub Actions matrix.

`plan` writes the jobs (one per check, per shard) with the runner labels the policy gives
them; each matrix job runs `run-check`; `report` merges the result files exactly as `check`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from bot.commands.check import print_summary
from bot.core.errors import ErrorRecord, InputError
from bot.core.output import write_atomic
from bot.gate import publish, result_files
from bot.gate.pipeline import default_cache_dir, merge, plan_pr, policy_of
from bot.gate.plan import Plan
from bot.gate.runner import run_jobs
from bot.vcs.reader import GitReader
from bot.verdicts.results import Report


def register(sub) -> None:
    p = sub.add_parser("plan", help="write the promotions and their check jobs (a GitHub Actions matrix)")
    p.add_argument("--repo", default=".", help="path of the GitOps repository (default: .)")
    p.add_argument("--base", required=True, help="the target branch; its tip gives the policy, the baselines and what each environment serves")
    p.add_argument("--head", required=True, help="the PR's head; only its own changes (since its merge base with --base) are planned, as merged into --base's tip")
    p.add_argument("--policy", help="policy file to use instead of promotion.yaml at the base revision")
    p.add_argument("--out", type=Path, default=Path("plan.json"), help="the plan file (default plan.json)")
    p.add_argument("--matrix", type=Path, help="also write the `strategy.matrix` JSON here")
    p.set_defaults(func=run_plan)

    r = sub.add_parser("run-check", help="run jobs of a plan (one matrix entry, or the --job ids given) and write their result files")
    r.add_argument("--plan", type=Path, required=True, help="the plan `plan` (or `github plan`) wrote")
    r.add_argument("--job", required=True, action="append",
                   help="a matrix entry id (`matrix.id`) or a job id; repeat to run several in this order")
    r.add_argument("--out", type=Path, required=True, help="folder for result files")
    r.add_argument("--repo", help="the checkout on this runner (default: the plan's)")
    r.add_argument("--cache", type=Path, help="baseline result and weights cache (default ~/.cache/promotion-bot)")
    r.set_defaults(func=run_check_job)

    m = sub.add_parser("report", help="merge a plan's result files into the verdict, comment and JSON report "
                                      "(`github report` also publishes them on the PR)")
    m.add_argument("--plan", type=Path, required=True, help="the plan the jobs ran")
    m.add_argument("--results", type=Path, required=True, help="folder holding the jobs' result files (searched recursively)")
    m.add_argument("--repo", help="the checkout on this runner (default: the plan's)")
    m.add_argument("--json", type=Path, help="write the JSON report here")
    m.add_argument("--comment", type=Path, help="write the PR comment (Markdown) here")
    m.set_defaults(func=run_report)


def _plan_for_repo(path: Path, repo: str | None) -> Plan:
    plan = Plan.read(path)
    if repo:
        plan = replace(plan, repo=str(Path(repo).resolve()))
    return plan


def run_plan(args) -> int:
    reader = GitReader(args.repo)
    try:
        plan, _ = plan_pr(reader, args.base, args.head, policy_file=args.policy)
    finally:
        reader.close()
    plan.write(args.out)
    if args.matrix:
        write_atomic(args.matrix, json.dumps(plan.matrix()) + "\n")
    print(f"{len(plan.promotions)} promotion(s), {len(plan.jobs)} job(s) in {len(plan.matrix()['include'])} "
          f"matrix entr(ies) -> {args.out}")
    # Bad input travels in the plan: `report` turns it into an `error` verdict and a comment,
    # which a failed plan job would never get to post.
    errors = list(plan.errors) + [e for errs in plan.promotion_errors.values() for e in errs]
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 0


def run_check_job(args) -> int:
    """Exit 0 when every job ran (whatever its verdict): the verdict is the reporter's to give."""
    plan = _plan_for_repo(args.plan, args.repo)
    jobs = tuple(job for entry in args.job for job in plan.entry_jobs(entry))
    result_files.clear(args.out, jobs)
    run_jobs(plan, jobs, args.out, args.cache or default_cache_dir())
    missing = [j.id for j in jobs if not result_files.path_for(args.out, j).exists()]
    print(f"{len(jobs) - len(missing)} result file(s) in {args.out}")
    return 2 if missing else 0


def run_report(args) -> int:
    started = time.monotonic()
    plan = _plan_for_repo(args.plan, args.repo)
    try:
        reader = GitReader(plan.repo)
    except InputError as exc:
        return _could_not_report(args, plan, exc.as_record())
    try:
        judged = merge(reader, plan, policy_of(reader, plan), args.results, started=started)
    except InputError as exc:
        return _could_not_report(args, plan, exc.as_record())
    finally:
        reader.close()
    _publish(args, judged.report, judged.templates)
    return judged.report.exit_code


def _could_not_report(args, plan: Plan, record: ErrorRecord) -> int:
    """Still a JSON report and a comment, saying why: the PR must not wait for a verdict that never comes."""
    report = Report(plan.base, plan.merged, errors=(record,))
    _publish(args, report, {})
    return report.exit_code


def _publish(args, report: Report, templates) -> None:
    comment = publish.comment(report, templates=templates) if args.comment else None
    publish.write_outputs(report, comment, json_path=args.json, comment_path=args.comment)
    print_summary(report)
