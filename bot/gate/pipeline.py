"""The gate, assembled in one place: plan, execute, assemble, comment.

`check`, `github pr`, `github report` and `report` all come through here:

    plan_pr   the policy parsed once, the PR's promotions and their jobs      (`plan`, `github plan`)
    judge     every job of a plan in this process, then the report             (`check`, `github pr`)
    merge     the result files of a fan-out's jobs into the same report        (`report`, `github report`)
    recorded  the report's results in the repo's notes

Nothing here renders: callers own the reader and publish the result once (`bot.gate.publish`:
the comment, the JSON report; statuses).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping

from bot.checks import load_policy
from bot.core.errors import InputError
from bot.core.output import print_progress
from bot.gate.assemble import assemble
from bot.gate.plan import Plan, build_plan
from bot.gate.recorder import record_or_note
from bot.gate.runner import Shared, execute
from bot.gate.scope import environment_names
from bot.policy.model import POLICY_FILE, Policy
from bot.vcs.reader import GitReader
from bot.verdicts.results import Report


@dataclass(frozen=True)
class Judged:
    plan: Plan
    report: Report
    # The repo's template overrides (`templates:` of the policy, at the base revision): read while the
    # checkout is open, rendered only when the run is published.
    templates: Mapping[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


def default_cache_dir() -> Path:
    return Path(os.environ.get("PROMOTION_BOT_CACHE") or Path.home() / ".cache" / "promotion-bot")


def plan_pr(reader: GitReader, base: str, head: str, *, policy_file: str | None = None,
            policy_path: str = POLICY_FILE, indexes: dict | None = None) -> tuple[Plan, Policy | None]:
    """The plan and the policy it was made with (None when the policy does not parse: the plan
    then carries the error, and the gate reports it). ``indexes``: filled with the manifests read,
    for `judge` in this process to reuse."""
    try:
        policy: Policy | InputError = load_policy.load(reader, reader.resolve(base), policy_file=policy_file,
                                                       policy_path=policy_path)
    except InputError as exc:
        policy = exc
    # Judged as it would merge: the diff from the target's tip to the PR merged into it, so a branch
    # forked before the target changed is judged against what is there now, not what was.
    try:
        judged = reader.as_merged(base, head)
    except InputError as exc:
        names = environment_names(reader.read_text(reader.resolve(base), policy_path))  # each context gets its error
        return Plan(str(Path(reader.path).resolve()), reader.resolve(base), reader.resolve(head), policy_file,
                    errors=(exc.as_record(),), policy_path=policy_path, pr_head=reader.resolve(head),
                    environments=names, touched=names), None
    plan = build_plan(reader, base, judged, policy, policy_file=policy_file, policy_path=policy_path, indexes=indexes)
    return replace(plan, pr_head=reader.resolve(head)), (None if isinstance(policy, InputError) else policy)


def policy_of(reader: GitReader, plan: Plan) -> Policy | None:
    """The policy a plan read from a file was made with; None when it carries the policy's error."""
    if plan.errors and not plan.promotions:
        return None
    return load_policy.load(reader, plan.base, policy_file=plan.policy_file, policy_path=plan.policy_path)


def judge(reader: GitReader, plan: Plan, policy: Policy | None, *, workdir: Path | None = None,
          cache_dir: Path | None = None, progress: Callable[[str], None] = print_progress,
          indexes: dict | None = None) -> Judged:
    """Run every job of ``plan`` here (model checks in child processes) and assemble the verdict.
    ``indexes``: what `plan_pr` read in this process, by revision."""
    started = time.monotonic()
    progress(f"{len(plan.promotions)} promotion(s), {len(plan.jobs)} check job(s)")
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="promotion-bot-", dir=temp_root()))
    results = work / "results"
    plan_file = work / "plan.json"
    plan.write(plan_file)
    cache = Path(cache_dir or default_cache_dir())
    seals = None
    if plan.jobs and policy is not None:
        seals = execute(plan, plan_file, results, cache, shared=Shared.open(plan, reader, policy, indexes),
                        progress=progress)
    report = assemble(plan, results, reader=reader, policy=policy, wall_time_s=time.monotonic() - started,
                      cache_dir=cache, seals=seals)
    return Judged(plan, report, template_overrides(reader, plan, policy))


def merge(reader: GitReader, plan: Plan, policy: Policy | None, results: Path, *,
          started: float | None = None) -> Judged:
    """The verdict of a fan-out from its jobs' result files, exactly as `judge` would give it."""
    started = time.monotonic() if started is None else started
    report = assemble(plan, Path(results), reader=reader, policy=policy)
    # The jobs ran side by side: the run took the slowest of them, plus this merge.
    slowest = max((c.wall_time_s or 0 for p in report.promotions for c in p.checks), default=0)
    report = replace(report, wall_time_s=slowest + time.monotonic() - started)
    return Judged(plan, report, template_overrides(reader, plan, policy))


def check(repo: str | Path, base: str, head: str, *, policy_file: str | None = None,
          workdir: Path | None = None, cache_dir: Path | None = None,
          progress: Callable[[str], None] = print_progress, record: bool = True, pr: int | None = None) -> Judged:
    """`promotion-bot check`: the whole gate of a local repository in this process; its results
    recorded in the repository's notes unless ``record`` is off."""
    reader = GitReader(repo)
    try:
        indexes: dict = {}
        plan, policy = plan_pr(reader, base, head, policy_file=policy_file, indexes=indexes)
        judged = judge(reader, plan, policy, workdir=workdir, cache_dir=cache_dir, progress=progress, indexes=indexes)
        return recorded(reader, judged, policy, pr=pr) if record else judged
    finally:
        reader.close()


def recorded(reader: GitReader, judged: Judged, policy: Policy | None, *, pr: int | None = None,
             push: bool = False, skip: str | None = None) -> Judged:
    """The judged run after its results went into the repo's notes (bot/gate/recorder.py); when they
    could not (or ``skip`` says why not), the report carries a note saying so."""
    warning = skip or record_or_note(reader.path, judged.plan, policy, judged.report, pr=pr, push=push)
    if warning is None:
        return judged
    return replace(judged, report=replace(judged.report, notes=(*judged.report.notes, warning)))


def template_overrides(reader: GitReader, plan: Plan, policy: Policy | None) -> dict[str, str]:
    """Templates the GitOps repo overrides, as the (trusted) base revision has them."""
    return read_templates(reader, plan.base, policy.templates if policy is not None else None)


def read_templates(reader: GitReader, rev: str, folder: str | None) -> dict[str, str]:
    """The `.j2` files of ``folder`` at ``rev``, by file name (the name of the built-in each replaces)."""
    if not folder:
        return {}
    return {path.rsplit("/", 1)[-1]: reader.read_text(rev, path) or ""
            for path in reader.list_files(rev, folder) if path.endswith(".j2")}


def temp_root() -> str:
    """Outside the checkout, whose files the PR controls: the runner's temp folder on Actions."""
    return os.environ.get("RUNNER_TEMP") or tempfile.gettempdir()
