"""`promotion-bot github pr|plan|report|monitor`: the bot inside GitHub Actions (see action.yml).

`pr` judges a pull request (or a merge queue's `merge_group` commit) on one runner. `plan` and `report` are the two ends of the same gate
spread over a matrix (docs/fanout.md): `plan` sets the pending statuses and writes the plan,
`report` publishes the matrix jobs' results as `pr` would.

Reads the Actions environment (GITHUB_EVENT_PATH, GITHUB_EVENT_NAME, GITHUB_REPOSITORY,
GITHUB_TOKEN, GITHUB_API_URL for GitHub Enterprise, ...). The token is removed from this
process's environment as soon as it is read, so no check and no child process can see it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bot.commands.monitor import add_at
from bot.core.errors import InputError, PromotionBotError


def register(sub) -> None:
    p = sub.add_parser("github", help="run as a GitHub Action (pull requests, monitoring)", description=__doc__)
    gsub = p.add_subparsers(dest="github_command", required=True, metavar="MODE")

    pr = gsub.add_parser("pr", help="judge the pull request of this workflow event: comment and statuses")
    _pr_arguments(pr)
    pr.add_argument("--workdir", type=Path, help="keep the plan, results and artifacts here")
    pr.add_argument("--cache", dest="cache_dir", type=Path, help="baseline result and weights cache (default ~/.cache/promotion-bot)")
    pr.set_defaults(func=run_pr, step="pr")

    plan = gsub.add_parser("plan", help="fan-out, first job: pending statuses, then the plan and its matrix")
    _pr_arguments(plan)
    plan.add_argument("--out", dest="plan_file", type=Path, default=Path("plan.json"), help="the plan file (default plan.json)")
    plan.add_argument("--matrix", dest="matrix_file", type=Path, help="also write the `strategy.matrix` JSON here "
                                                  "(it is always the step output `matrix`)")
    plan.set_defaults(func=run_pr, step="plan")

    report = gsub.add_parser("report", help="fan-out, last job: merge the result files, comment and set the statuses")
    _pr_arguments(report, policy=False)
    report.add_argument("--plan", dest="plan_file", type=Path, required=True, help="the plan `github plan` wrote")
    report.add_argument("--results", type=Path, required=True, help="folder holding the matrix jobs' result files")
    report.set_defaults(func=run_pr, step="report")

    mon = gsub.add_parser("monitor", help="the monitoring pass (schedule / repository_dispatch events)")
    mon.add_argument("--prometheus-url", default=os.environ.get("PROMETHEUS_URL"),
                     help="Prometheus base URL (default: $PROMETHEUS_URL)")
    mon.add_argument("--env", default="prod", help="environment to watch (default: prod)")
    mon.add_argument("--json", type=Path, help="write the monitoring report here")
    mon.add_argument("--dry-run", action="store_true", help="decide, but open no PR or issue")
    add_at(mon)
    mon.set_defaults(func=run_monitor)


def _pr_arguments(parser, *, policy: bool = True) -> None:
    if policy:
        parser.add_argument("--policy", help="policy path in the repository, read at the PR's base revision "
                                             "(default promotion.yaml)")
    parser.add_argument("--pr", help="on workflow_dispatch: the pull request to rerun (default: the workflow input `pr`)")
    parser.add_argument("--json", type=Path, help="write the JSON report here "
                                                  "(default: $RUNNER_TEMP/promotion-bot-report.json)")


def _settings_and_payload():
    from bot.github.settings import SECRET_VARIABLES, Settings

    settings = Settings.from_env()
    for key in SECRET_VARIABLES:  # children (checks, model servers, git) inherit os.environ
        os.environ.pop(key, None)
    try:
        payload = json.loads(settings.event_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(str(settings.event_path), "GITHUB_EVENT_PATH", f"cannot read the event payload: {exc}",
                         "run inside GitHub Actions, or point GITHUB_EVENT_PATH at a webhook payload file") from None
    return settings, payload


def _forge(settings):
    from bot.github.api import GitHubForge, Tuning

    return GitHubForge(settings.repository, settings.token, api_url=settings.api_url,
                       bot_login=settings.bot_login, tuning=Tuning.from_env())


def run_pr(args) -> int:
    from bot.github import actions
    from bot.github.dispatch import run_activity
    from bot.github.event import CHECK, MERGE_GROUP, RERUN, find_activity
    from bot.github.pr import STEP_OPTIONS, skipped_outputs

    settings, payload = _settings_and_payload()
    activity = find_activity(settings.event_name, payload, pr_input=args.pr)
    if activity.kind not in (CHECK, RERUN, MERGE_GROUP):
        actions.log(f"nothing to do: {activity.reason}")
        actions.set_outputs(settings.output, skipped_outputs(args.step))
        return 0
    # Each step's own arguments are named as run_pull_request's keywords: passed on as they are.
    options = {k: v for k, v in vars(args).items() if k in STEP_OPTIONS}
    options.update(step=args.step, json_path=args.json)
    if getattr(args, "policy", None):
        options["policy_path"] = args.policy
    try:
        with _forge(settings) as forge:
            return run_activity(settings, forge, activity, **options)
    except PromotionBotError:
        raise
    except Exception as exc:  # a bug: still "could not judge", never the gate's "failed" (1)
        actions.annotate("error", f"promotion-bot crashed: {type(exc).__name__}: {exc}")
        raise PromotionBotError(f"crashed: {type(exc).__name__}: {exc}") from exc


def run_monitor(args) -> int:
    from bot.github import actions
    from bot.github.event import MONITOR, find_activity

    settings, payload = _settings_and_payload()
    activity = find_activity(settings.event_name, payload)
    if activity.kind != MONITOR:
        actions.log(f"nothing to monitor: {activity.reason}")
        return 0
    if not args.prometheus_url:
        raise InputError("action.yml", "prometheus-url", "is not set",
                         "pass `prometheus-url:` to the action or set PROMETHEUS_URL")
    from bot.monitor.prometheus import checked_url
    from bot.monitor.watch import monitor

    url = checked_url(args.prometheus_url, file="action.yml", field="prometheus-url")
    with _forge(settings) as forge:
        return monitor(settings.workspace, url, env=args.env, forge=forge,
                       json_path=args.json, dry_run=args.dry_run, now=args.at, status_url=settings.run_url)
