"""Model checks in child processes: `python -m bot run-check` per group of jobs, supervised.

A child gets an allow-listed environment and has its output neutralised (`bot.core.childenv`); its
whole process group is killed at the group's summed timeout, and once it exits (a check that gave
up may have left a model server behind). A job the child left without a result file gets a
timeout result, or none (read as an error by the report).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bot.core.childenv import child_env, relay
from bot.gate import result_files
from bot.gate.plan import Job, Plan


def run(plan: Plan, plan_file: Path, jobs: list[Job], out_dir: Path, cache_dir: Path, *, progress) -> None:
    """Run ``jobs`` in one `python -m bot run-check` child, in order, each against its own deadline
    there; kill its whole process group at their summed timeout."""
    cmd = [sys.executable, "-m", "bot", "run-check", "--plan", str(plan_file), "--out", str(out_dir),
           "--cache", str(cache_dir), "--repo", plan.repo]
    for job in jobs:
        cmd += ["--job", job.id]
    timeout_s = sum(job.timeout_s for job in jobs)
    # Checks may run PR-controlled weights and configs: they get no credential, and what they
    # print cannot issue workflow commands in the Actions log.
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=child_env())
    output = relay(proc.stderr)
    try:
        code: int | None = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        # The group goes however the wait ended: the child's own exit (a check that gave up at its
        # deadline may leave a model server behind in its session), its timeout, or the bot being
        # stopped (a runner's SIGTERM arrives here as SystemExit, `bot.cli`), which must not leave
        # the child running on its own.
        kill_group(proc)
    output.join(timeout=5)
    if code is None:
        for job in jobs:
            if not result_files.path_for(out_dir, job).exists():
                progress(f"{job.id} timed out after {job.timeout_s:g}s and was killed")
                result_files.write_timeout(out_dir, plan, job)
        return
    if code not in (0, 1, 2) or not all(result_files.path_for(out_dir, job).exists() for job in jobs):
        progress(f"{', '.join(j.id for j in jobs)}: exited with code {code}; the report reads a missing result as error")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group (it leads one: `start_new_session`) and reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is already gone
    proc.wait()


def groups(jobs: tuple[Job, ...]) -> list[list[Job]]:
    """Consecutive model checks of the same promotions share one child process: its imports (torch,
    lm-eval: seconds each) are paid once, and the same PR content runs in it either way."""
    groups: list[list[Job]] = []
    for job in jobs:
        if groups and not job.inline and not groups[-1][0].inline and groups[-1][0].promotions == job.promotions:
            groups[-1].append(job)
        else:
            groups.append([job])
    return groups
