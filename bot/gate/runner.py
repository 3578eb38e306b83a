"""Step 2b: run jobs of a plan and write one result file per job.

Inline checks run in a worker thread with a deadline; the others run as
`python -m bot run-check` child processes, killed at their timeout. Either way a check that
raises, hangs or dies leaves an `error` result (or no result, which the reporter reads as
`error`): never a pass.

Results go to one file per job (`bot.gate.result_files`); a file changed after its job ended is
refused by the report, for `execute` seals each as its job ends.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from bot.checks import load_policy, registry
from bot.checks.context import CheckContext
from bot.core.errors import InputError, PromotionBotError
from bot.core.output import print_progress
from bot.gate import children, result_files
from bot.gate.plan import Job, Plan
from bot.gate.result_files import Seals
from bot.policy.model import Policy
from bot.vcs.reader import GitReader
from bot.verdicts.results import ERROR, FAIL, INCONCLUSIVE, PASS, SKIPPED, CheckResult


@dataclass
class Shared:
    """What the jobs of one process share: one Git reader, the policy, parsed zoos and manifests.

    Without it every job re-read and re-parsed the previous environment's manifests, which made
    `check` quadratic in the number of promotions.
    """

    reader: GitReader
    policy: Policy
    zoos: dict = field(default_factory=dict)
    indexes: dict = field(default_factory=dict)

    @classmethod
    def open(cls, plan: Plan, reader: GitReader | None = None, policy: Policy | None = None,
             indexes: dict | None = None) -> "Shared":
        """Caller closes ``reader``; one opened here lives as long as the process. ``policy``: the
        one the caller already parsed; else it is read as the plan names it (a `run-check` child).
        ``indexes``: the manifests the caller read with that policy, by revision."""
        reader = reader or GitReader(plan.repo)
        plan.merged_commit(reader)  # a matrix runner has the PR, not the merge commit: make it here
        if policy is None:
            policy, indexes = load_policy.load(reader, plan.base, policy_file=plan.policy_file,
                                               policy_path=plan.policy_path), None
        return cls(reader, policy, indexes=indexes if indexes is not None else {})


def run_job(plan: Plan, job: Job, out_dir: Path, cache_dir: Path, *, shared: Shared | None = None,
            progress: Callable[[str], None] = print_progress) -> CheckResult:
    """Run ``job`` in this process; exceptions become an `error` result. Writes nothing."""
    started = time.monotonic()
    promo = plan.promotions[job.promotion]
    spec = None
    try:
        shared = shared or Shared.open(plan)
        env = shared.policy.environment(promo.environment)
        spec = env.gate[job.position]
        definition = registry.get(spec.name)
        workdir = Path(out_dir) / "artifacts" / job.id
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = CheckContext(reader=shared.reader, base=plan.base, head=plan.merged, policy=shared.policy,
                           environment=env, promotion=promo, workdir=workdir, cache_dir=Path(cache_dir),
                           progress=progress, rule=spec.rule, _zoos=shared.zoos, _indexes=shared.indexes)
        if job.shards > 1:
            result = definition.run_shard(ctx, spec.options, job.shard, job.shards)
        else:
            result = definition.run(ctx, spec.options)
    except InputError as exc:
        result = CheckResult(job.check, ERROR, detail=str(exc))
    except PromotionBotError as exc:
        result = CheckResult(job.check, ERROR, detail=f"could not run: {exc}")
    except Exception as exc:  # a crashing check is reported, never a pass
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        result = CheckResult(job.check, ERROR, detail=f"crashed: {tb}")
        progress(f"{job.id} crashed:\n{traceback.format_exc()}")
    if result.wall_time_s is None:
        result = replace(result, wall_time_s=time.monotonic() - started)
    if result.verdict == INCONCLUSIVE and spec is not None and spec.rule.on_inconclusive == "pass":
        result = replace(result, verdict=PASS, allowed=True)  # the comment and the CLI say so at the top
    return result


def run_in_thread(plan: Plan, jobs: list[Job], out_dir: Path, cache_dir: Path, *, shared: Shared, progress) -> None:
    """Run ``jobs`` one after another in one worker thread, each against its own deadline.

    One thread for the whole run, not one per job: starting 750 threads cost seconds on a busy
    machine. The caller only wakes up at deadlines. A job past its deadline is abandoned and
    reported as timed out; the rest go on in a fresh worker. A result is written once, by
    whichever comes first, so an abandoned check finishing late cannot turn a timeout into a pass.
    """
    while jobs:
        lock = threading.Lock()
        finished = threading.Event()
        state = {"index": 0, "started": time.monotonic(), "abandoned": False}

        def work(batch=jobs, lock=lock, state=state, finished=finished) -> None:
            for n, job in enumerate(batch):
                with lock:
                    if state["abandoned"]:
                        return
                    state["index"], state["started"] = n, time.monotonic()
                result = run_job(plan, job, out_dir, cache_dir, shared=shared, progress=progress)
                with lock:
                    if state["abandoned"]:
                        return
                    result_files.write(out_dir, plan, job, result)
                if (n + 1) % 100 == 0:
                    progress(f"{n + 1}/{len(batch)} checks run")
            finished.set()

        threading.Thread(target=work, name=f"checks-{jobs[0].id}", daemon=True).start()
        while True:
            with lock:
                job = jobs[state["index"]]
                remaining = state["started"] + job.timeout_s - time.monotonic()
                if remaining <= 0 and not finished.is_set():
                    state["abandoned"] = True
                    progress(f"{job.id} timed out after {job.timeout_s:g}s")
                    result_files.write_timeout(out_dir, plan, job)
                    jobs = jobs[state["index"] + 1:]
                    break
            if finished.wait(max(remaining, 0.01)):
                return


def run_jobs(plan: Plan, jobs: tuple[Job, ...], out_dir: Path, cache_dir: Path, *, plan_file: Path | None = None,
             shared: Shared | None = None, seals: Seals | None = None,
             progress: Callable[[str], None] = print_progress) -> None:
    """Run ``jobs`` one after another (model checks already use every core).

    Inline jobs run here; the others in a child process when ``plan_file`` is given (`check`),
    else here too (`run-check` is already the child, on its own runner). A model check whose
    promotions have all failed already is skipped when its environment says `fail_fast`: the gate's
    verdict is settled, and its evals would only spend the runner's time.
    """
    if not jobs:
        return
    shared = shared or Shared.open(plan)
    total, done, pending = len(jobs), 0, []
    failed: dict[int, tuple[int, str]] = {}  # promotion → (gate position, "check: verdict") of its first failure

    def note_outcomes(finished: list[Job]) -> None:
        if seals is not None:
            seals.seal(out_dir, finished)
        for job in finished:
            verdict = result_files.verdict_of(out_dir, plan, job)
            if verdict in (FAIL, ERROR):
                for i in job.promotions:
                    failed.setdefault(i, (job.position, f"{job.check}: {verdict}"))

    def flush() -> None:
        nonlocal done, pending
        if pending:
            run_in_thread(plan, pending, out_dir, cache_dir, shared=shared, progress=progress)
            note_outcomes(pending)
            done += len(pending)
            pending = []
            progress(f"[{done}/{total}] jobs done")

    def skipped(job: Job) -> bool:
        nonlocal done
        # The other shards of the check that failed still run: the check's result is all of them.
        if not (job.fail_fast and all(i in failed and failed[i][0] != job.position for i in job.promotions)):
            return False
        why = failed[job.promotion][1]
        result_files.write(out_dir, plan, job, CheckResult(
            job.check, SKIPPED, detail=f"not run: the gate had already failed ({why}); "
                                       "`fail_fast: false` on the environment runs every check"))
        if seals is not None:
            seals.seal(out_dir, [job])
        done += 1
        progress(f"[{done}/{total}] {job.id} skipped: the gate had already failed ({why})")
        return True

    for group in children.groups(jobs):
        if group[0].inline:
            pending.extend(group)
            continue
        flush()
        if plan_file is None:  # this is the child: one job at a time, so each sees the last one's verdict
            for job in group:
                if not skipped(job):
                    pending.append(job)
                    flush()
            continue
        if skipped(group[0]):
            for job in group[1:]:
                skipped(job)
            continue
        ids = ", ".join(f"{j.id} ({j.check})" for j in group)
        progress(f"[{done + 1}/{total}] {ids}, in a child process")
        for job in group:  # whatever an earlier child left under these names is not theirs
            result_files.path_for(out_dir, job).unlink(missing_ok=True)
        children.run(plan, plan_file, group, out_dir, cache_dir, progress=progress)
        note_outcomes(group)
        done += len(group)
    flush()


def execute(plan: Plan, plan_file: Path, out_dir: Path, cache_dir: Path, *, shared: Shared | None = None,
            progress: Callable[[str], None] = print_progress) -> Seals:
    """Run every job of ``plan`` (`check`, `github pr`); the seals of their result files."""
    seals = Seals()
    result_files.clear(out_dir, plan.jobs)
    run_jobs(plan, plan.jobs, out_dir, cache_dir, plan_file=plan_file, shared=shared, seals=seals, progress=progress)
    return seals
