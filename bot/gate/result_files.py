"""The result-file protocol between the jobs of a plan and its report: one file per job.

    <results>/<job id>.result.json    {"plan": <plan id>, "job": <job id>, "result": <CheckResult JSON>}

A job's runner writes it (`write`); the report reads every file under the results folder (`found`,
`read`: `actions/download-artifact` may put each artifact in its own sub-folder). A file is refused,
as an `error` result and never a pass, when it is unreadable, written for another plan or job, one
of two for the same job, or changed after the run sealed it: `check` and `github pr` run model checks
in child processes that can reach the results folder, so the parent records each file's digest as
the child that wrote it exits (`Seals`) and the report compares. Checks that share one child
(consecutive model checks of the same promotions, `bot.gate.children.groups`) are one process
and trust each other; a fan-out's report runs no job and has no seals to compare.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from bot.core.output import write_atomic
from bot.verdicts.results import ERROR, CheckResult

SUFFIX = ".result.json"


def path_for(out_dir: Path, job) -> Path:
    return Path(out_dir) / f"{job.id}{SUFFIX}"


def write(out_dir: Path, plan, job, result: CheckResult) -> None:
    body = {"plan": plan.plan_id, "job": job.id, "result": result.to_json()}
    write_atomic(path_for(out_dir, job), json.dumps(body) + "\n")  # one line: json's C encoder (750 jobs: 0.2 s less)


def write_timeout(out_dir: Path, plan, job) -> None:
    write(out_dir, plan, job, CheckResult(job.check, ERROR, detail=f"timed out after {job.timeout_s:g}s",
                                          wall_time_s=job.timeout_s))


def clear(out_dir: Path, jobs: Iterable) -> None:
    """Remove the result files of ``jobs`` before they run: a file left by an earlier run (a
    persistent self-hosted runner, a reused --workdir) would stand in for a job that dies now."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = {job.id for job in jobs}
    for path in out_dir.rglob(f"*{SUFFIX}"):
        if path.name[:-len(SUFFIX)] in ids:
            path.unlink()


def found(out_dir: Path) -> dict[str, list[Path]]:
    """Result files under ``out_dir`` by job id (a job id found twice is refused by `read`)."""
    files: dict[str, list[Path]] = {}
    for path in sorted(Path(out_dir).rglob(f"*{SUFFIX}")):
        files.setdefault(path.name[:-len(SUFFIX)], []).append(path)
    return files


@dataclass
class Seals:
    """The digest of each job's result file, taken by the process that ran the job as it ended."""

    digests: dict[str, str] = field(default_factory=dict)

    def seal(self, out_dir: Path, jobs: Iterable) -> None:
        for job in jobs:
            path = path_for(out_dir, job)
            if path.exists():
                self.digests[job.id] = _digest(path.read_bytes())

    def broken(self, job, data: bytes) -> bool:
        """True when ``job`` was sealed and ``data`` is not what was sealed (or it was never sealed
        although its file exists: something other than its job wrote it)."""
        return self.digests.get(job.id) != _digest(data)


def read(plan, job, files: dict[str, list[Path]], seals: Seals | None = None) -> CheckResult | None:
    """The job's result; None when there is none; an `error` result when the file cannot be trusted."""
    paths = files.get(job.id, [])
    if not paths:
        return None
    if len(paths) > 1:
        return CheckResult(job.check, ERROR, detail=f"{len(paths)} result files for job {job.id}: "
                                                    "download each run's artifacts into a fresh folder")
    path = paths[0]
    try:
        data = path.read_bytes()
        body = json.loads(data)
        result = CheckResult.from_json(body["result"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return CheckResult(job.check, ERROR, detail=f"result file {path.name} is unreadable: {exc}")
    if body.get("plan") != plan.plan_id or body.get("job") != job.id or result.name != job.check:
        return CheckResult(job.check, ERROR, detail=f"result file {path.name} was written for another plan "
                                                    f"({body.get('plan')!r}, not {plan.plan_id!r}): refused")
    if seals is not None and seals.broken(job, data):
        return CheckResult(job.check, ERROR, detail=f"result file {path.name} changed after its job ended "
                                                    "(another check's process wrote it): refused")
    return result


def verdict_of(out_dir: Path, plan, job) -> str:
    """The verdict in ``job``'s result file as its job left it; missing or unreadable counts as an error."""
    result = read(plan, job, {job.id: [path_for(out_dir, job)]} if path_for(out_dir, job).exists() else {})
    return ERROR if result is None else result.verdict


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
