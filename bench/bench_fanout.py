"""The fan-out's own cost for 50 jobs: what `plan`, `run-check` and `report` add to the slowest job.

On GitHub Actions the jobs run on separate runners at once, so the critical path is
plan + the slowest run-check + report. The cost the fan-out adds is that path minus the check's
own work: the `plan` process, the slowest `run-check` process minus its check's wall time
(start-up, reading the plan and the repo, writing the result file), and the `report` process
merging 50 result files. Each job runs here in its own process (by job id, as 50 matrix
entries of a non-inline check would), one after another.

Target: under 2 s. Judged on CPU time (user + sys of the processes), which a busy shared machine
does not inflate; wall time is printed next to it, with the load average.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import compiled_like_an_install

JOBS = 50
TARGET_S = 2.0

POLICY = """\
version: 1
models:
  m: {baseline: v1.0-fp16}
zoo: {require: [recipe]}
runners: {default: [ubuntu-latest]}
environments:
  - name: test
    gate: [{check: zoo}]
"""

VARIANT = "model: m\nbase_model: org/m\nquantization: {algorithm: GPTQ, scheme: W4A16, bits: 4, group_size: 128}\nrecipe: recipe.yaml\n"
MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  annotations: {{promotion-bot/variant: m/{variant}}}
spec: {{replicas: 1}}
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def build_repo(root: Path) -> Path:
    repo = root / "gitops"
    (repo / "environments" / "test").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "user.name", "bench")
    (repo / "promotion.yaml").write_text(POLICY)
    for v in ("v1.0-fp16", "v1.2-int4-g128"):
        d = repo / "models" / "m" / v
        d.mkdir(parents=True)
        (d / "variant.yaml").write_text(VARIANT)
        (d / "recipe.yaml").write_text("quant_stage: {}\n")
    for variant, message in (("v1.0-fp16", "base"), ("v1.2-int4-g128", "promote 50")):
        for i in range(JOBS):
            (repo / "environments" / "test" / f"app-{i}.yaml").write_text(MANIFEST.format(i=i, variant=variant))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", message)
    return repo


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(*args: str) -> tuple[float, float]:
    """Wall and CPU seconds of one `promotion-bot` process."""
    started, cpu = time.monotonic(), cpu_of_children()
    proc = subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"promotion-bot {args[0]} exited {proc.returncode}: {proc.stderr}")
    return wall, cpu_of_children() - cpu


def main() -> int:
    compiled_like_an_install()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = build_repo(root)
        plan_file, results = root / "plan.json", root / "results"
        plan_s = timed("plan", "--repo", str(repo), "--base", "HEAD~1", "--head", "HEAD",
                       "--out", str(plan_file), "--matrix", str(root / "matrix.json"))
        jobs = [j["id"] for j in json.loads(plan_file.read_text())["jobs"]]
        assert len(jobs) == JOBS, len(jobs)
        overheads = []  # (wall, cpu) beyond the check's own wall time
        for n, job in enumerate(jobs, 1):
            wall, cpu = timed("run-check", "--plan", str(plan_file), "--job", job, "--out", str(results / job),
                              "--cache", str(root / "cache"))
            check_s = json.loads((results / job / f"{job}.result.json").read_text())["result"]["wall_time_s"]
            overheads.append((wall - check_s, cpu - check_s))
            if n % 10 == 0:
                print(f"  {n}/{JOBS} run-check processes", file=sys.stderr, flush=True)
        report_s = timed("report", "--plan", str(plan_file), "--results", str(results),
                         "--json", str(root / "report.json"), "--comment", str(root / "comment.md"))
        verdict = json.loads((root / "report.json").read_text())["verdict"]
        slowest = max(overheads, key=lambda o: o[1])
        median = sorted(overheads, key=lambda o: o[1])[len(overheads) // 2]
        print(f"{JOBS} jobs, verdict {verdict}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print("                     CPU s   wall s")
        print(f"plan                 {plan_s[1]:5.2f}   {plan_s[0]:5.2f}")
        print(f"run-check, slowest   {slowest[1]:5.2f}   {slowest[0]:5.2f}   (beyond its check; median CPU {median[1]:.2f})")
        print(f"report, {JOBS} files    {report_s[1]:5.2f}   {report_s[0]:5.2f}")
        cpu = plan_s[1] + slowest[1] + report_s[1]
        wall = plan_s[0] + slowest[0] + report_s[0]
        print(f"critical path        {cpu:5.2f}   {wall:5.2f}   (target < {TARGET_S} s CPU)")
        ok = verdict == "pass" and cpu < TARGET_S
        print("PASS" if ok else "MISSED TARGET")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
