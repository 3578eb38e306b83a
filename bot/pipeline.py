"""`check` in one process: plan, run every job, report. The same three steps the fan-out
commands run on separate runners, so there is one code path.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bot.context import print_progress
from bot.output import write_atomic
from bot.plan import Plan, build_plan, load_policy
from bot.render import fit_comment, render_comment, repo_template_overrides
from bot.report import assemble
from bot.results import Report
from bot.runner import Shared, execute
from bot.vcs.reader import GitReader


@dataclass(frozen=True)
class CheckOutcome:
    plan: Plan
    report: Report
    comment_markdown: str

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


def default_cache_dir() -> Path:
    import os

    return Path(os.environ.get("PROMOTION_BOT_CACHE") or Path.home() / ".cache" / "promotion-bot")


def check(repo: str | Path, base: str, head: str, *, policy_file: str | None = None,
          workdir: Path | None = None, cache_dir: Path | None = None, report_url: str | None = None,
          progress: Callable[[str], None] = print_progress) -> CheckOutcome:
    started = time.monotonic()
    reader = GitReader(repo)
    try:
        plan = build_plan(reader, base, head, policy_file=policy_file)
        progress(f"{len(plan.promotions)} promotion(s), {len(plan.jobs)} check job(s)")
        work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="promotion-bot-"))
        results = work / "results"
        # A result left by an earlier run of the same plan would stand in for a job that dies now.
        shutil.rmtree(results, ignore_errors=True)
        results.mkdir(parents=True, exist_ok=True)
        plan_file = work / "plan.json"
        plan.write(plan_file)
        shared = Shared.open(plan, reader) if plan.jobs else None
        execute(plan, plan_file, results, Path(cache_dir or default_cache_dir()), shared=shared, progress=progress)
        policy = shared.policy if shared else None
        report = assemble(plan, results, reader=reader, wall_time_s=time.monotonic() - started,
                          cache_dir=cache_dir, policy=policy)
        comment = comment_for(report, plan, reader, report_url=report_url, policy=policy)
        return CheckOutcome(plan, report, comment)
    finally:
        reader.close()


def comment_for(report: Report, plan: Plan, reader, *, report_url: str | None = None, policy=None) -> str:
    overrides = {}
    try:
        policy = policy or load_policy(reader, plan.base, plan.policy_file)
        overrides = repo_template_overrides(reader, plan.base, policy.templates)
    except Exception:
        pass  # a broken policy is already in the report's errors; render with the built-in templates
    return fit_comment(render_comment(report, overrides=overrides, report_url=report_url), report_url)


def write_outputs(report: Report, comment: str, *, json_path: Path | None, comment_path: Path | None) -> None:
    if json_path:
        write_atomic(Path(json_path), json.dumps(report.to_json(), indent=2) + "\n")
    if comment_path:
        write_atomic(Path(comment_path), comment)
