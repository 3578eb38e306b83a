"""Step 2b: run one job of a plan and write its result file.

Inline checks run in a worker thread with a deadline; the others run as
`python -m bot run-check` child processes, killed at their timeout. Either way a check that
raises, hangs or dies leaves an `error` result (or no result, which the reporter reads as
`error`): never a pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

from bot.checks import registry
from bot.context import CheckContext, print_progress
from bot.errors import InputError, PromotionBotError
from bot.output import write_atomic
from bot.plan import Job, Plan, load_policy
from bot.results import ERROR, CheckResult
from bot.vcs.reader import GitReader


def result_path(out_dir: Path, job: Job) -> Path:
    return Path(out_dir) / f"{job.id}.json"


def run_job(plan: Plan, job: Job, out_dir: Path, cache_dir: Path, *,
            reader: GitReader | None = None, policy=None,
            progress: Callable[[str], None] = print_progress) -> CheckResult:
    """Run ``job`` in this process and write its result; exceptions become an `error` result."""
    started = time.monotonic()
    promo = plan.promotions[job.promotion]
    try:
        reader = reader or GitReader(plan.repo)
        policy = policy or load_policy(reader, plan.base, plan.policy_file)
        env = policy.environment(promo.environment)
        spec = env.gate[job.position]
        definition = registry.get(spec.name)
        workdir = Path(out_dir) / "artifacts" / job.id
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = CheckContext(reader=reader, base=plan.base, head=plan.head, policy=policy, environment=env,
                           promotion=promo, workdir=workdir, cache_dir=Path(cache_dir), progress=progress)
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
        result = _with_time(result, time.monotonic() - started)
    write_atomic(result_path(out_dir, job), json.dumps(result.to_json(), indent=2) + "\n")
    return result


def _with_time(result: CheckResult, seconds: float) -> CheckResult:
    from dataclasses import replace

    return replace(result, wall_time_s=seconds)


def run_inline(plan: Plan, job: Job, out_dir: Path, cache_dir: Path, *, reader, policy, progress) -> None:
    """Run in a daemon thread; past the deadline the job is abandoned and reported as timed out."""
    box: list[CheckResult] = []
    thread = threading.Thread(
        target=lambda: box.append(run_job(plan, job, out_dir, cache_dir, reader=reader, policy=policy, progress=progress)),
        name=f"check-{job.id}", daemon=True,
    )
    thread.start()
    thread.join(job.timeout_s)
    if thread.is_alive():
        write_timeout(out_dir, job)


def write_timeout(out_dir: Path, job: Job) -> None:
    result = CheckResult(job.check, ERROR, detail=f"timed out after {job.timeout_s:g}s", wall_time_s=job.timeout_s)
    write_atomic(result_path(out_dir, job), json.dumps(result.to_json(), indent=2) + "\n")


def run_subprocess(plan_file: Path, job: Job, out_dir: Path, cache_dir: Path, *, progress) -> None:
    """Run one job as `python -m bot run-check`; kill its whole process group at the timeout."""
    cmd = [sys.executable, "-m", "bot", "run-check", "--plan", str(plan_file), "--job", job.id,
           "--out", str(out_dir), "--cache", str(cache_dir)]
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        code = proc.wait(timeout=job.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        progress(f"{job.id} timed out after {job.timeout_s:g}s and was killed")
        write_timeout(out_dir, job)
        return
    if code != 0 and not result_path(out_dir, job).exists():
        progress(f"{job.id} exited with code {code} and wrote no result")


def execute(plan: Plan, plan_file: Path, out_dir: Path, cache_dir: Path, *,
            progress: Callable[[str], None] = print_progress) -> None:
    """Run every job of ``plan``, one after another (model checks already use every core)."""
    if not plan.jobs:
        return
    reader = GitReader(plan.repo)
    policy = load_policy(reader, plan.base, plan.policy_file)
    total = len(plan.jobs)
    for n, job in enumerate(plan.jobs, 1):
        if not job.inline or total <= 20 or n % 100 == 0:
            progress(f"[{n}/{total}] {job.id}")
        if job.inline:
            run_inline(plan, job, out_dir, cache_dir, reader=reader, policy=policy, progress=progress)
        else:
            run_subprocess(plan_file, job, out_dir, cache_dir, progress=progress)
    reader.close()
