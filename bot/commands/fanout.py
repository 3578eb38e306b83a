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
from bot.errors import ErrorRecord, InputError
from bot.output import write_atomic
from bot.pipeline import comment_for, default_cache_dir, write_outputs
from bot.plan import Plan, build_plan
from bot.render import fit_comment, render_comment
from bot.report import assemble
from bot.results import Report
from bot.runner import result_path, run_jobs
from bot.vcs.reader import GitReader


def register(sub) -> None:
    p = sub.add_parser("plan", help="write the promotions and their check jobs (a GitHub Actions matrix)")
    p.add_argument("--repo", default=".")
    p.add_argument("--base", required=True)
    p.add_argument("--head", required=True)
    p.add_argument("--policy")
    p.add_argument("--out", type=Path, default=Path("plan.json"), help="the plan file (default plan.json)")
    p.add_argument("--matrix", type=Path, help="also write the `strategy.matrix` JSON here")
    p.set_defaults(func=run_plan)

    r = sub.add_parser("run-check", help="run one job of a plan and write its result file")
    r.add_argument("--plan", type=Path, required=True)
    r.add_argument("--job", required=True, help="a matrix entry id (`matrix.id`) or a job id")
    r.add_argument("--out", type=Path, required=True, help="folder for result files")
    r.add_argument("--repo", help="the checkout on this runner (default: the plan's)")
    r.add_argument("--cache", type=Path)
    r.set_defaults(func=run_check_job)

    m = sub.add_parser("report", help="merge a plan's result files into the verdict, comment and JSON report "
                                      "(`github report` also publishes them on the PR)")
    m.add_argument("--plan", type=Path, required=True)
    m.add_argument("--results", type=Path, required=True)
    m.add_argument("--repo", help="the checkout on this runner (default: the plan's)")
    m.add_argument("--json", type=Path)
    m.add_argument("--comment", type=Path)
    m.set_defaults(func=run_report)


def _plan_for_repo(path: Path, repo: str | None) -> Plan:
    plan = Plan.read(path)
    if repo:
        plan = replace(plan, repo=str(Path(repo).resolve()))
    return plan


def run_plan(args) -> int:
    reader = GitReader(args.repo)
    try:
        plan = build_plan(reader, args.base, args.head, policy_file=args.policy)
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
        print(f"error: {e.file}: {e.field}: {e.message}" if e.field else f"error: {e.file}: {e.message}", file=sys.stderr)
    return 0


def run_check_job(args) -> int:
    """Exit 0 when every job ran (whatever its verdict): the verdict is the reporter's to give."""
    plan = _plan_for_repo(args.plan, args.repo)
    jobs = plan.entry_jobs(args.job)
    run_jobs(plan, jobs, args.out, args.cache or default_cache_dir())
    missing = [j.id for j in jobs if not result_path(args.out, j).exists()]
    print(f"{len(jobs) - len(missing)} result file(s) in {args.out}")
    return 2 if missing else 0


def merge_results(plan: Plan, results: Path, reader, *, report_url: str | None = None,
                  started: float | None = None) -> tuple[Report, str]:
    """The report and the comment of a fan-out: `report` and `github report` both call this."""
    started = time.monotonic() if started is None else started
    report = assemble(plan, results, reader=reader)
    # The jobs ran side by side: the run took the slowest of them, plus this merge.
    slowest = max((c.wall_time_s or 0 for p in report.promotions for c in p.checks), default=0)
    report = replace(report, wall_time_s=slowest + time.monotonic() - started)
    return report, comment_for(report, plan, reader, report_url=report_url)


def run_report(args) -> int:
    started = time.monotonic()
    plan = _plan_for_repo(args.plan, args.repo)
    try:
        reader = GitReader(plan.repo)
    except InputError as exc:
        return _could_not_report(args, plan, exc.as_record())
    try:
        report, comment = merge_results(plan, args.results, reader, started=started)
    except InputError as exc:
        return _could_not_report(args, plan, exc.as_record())
    finally:
        reader.close()
    write_outputs(report, comment, json_path=args.json, comment_path=args.comment)
    print_summary(report)
    return report.exit_code


def _could_not_report(args, plan: Plan, record: ErrorRecord) -> int:
    """Still a JSON report and a comment, saying why: the PR must not wait for a verdict that never comes."""
    report = Report(plan.base, plan.head, errors=(record,))
    comment = fit_comment(render_comment(report), None)
    write_outputs(report, comment, json_path=args.json, comment_path=args.comment)
    print_summary(report)
    return report.exit_code
