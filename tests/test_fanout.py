"""`plan` → `run-check` per job, in separate processes at once → `report`, against `check`.

The test-only checks live in tests/fanout_site/fanout_checks.py; the `run-check` children
register them through tests/fanout_site/sitecustomize.py (PYTHONPATH is set for every test here).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from gitops import demo_like_repo

SITE = Path(__file__).parent / "fanout_site"
sys.path.insert(0, str(SITE))

import fanout_checks  # noqa: E402,F401  (registers test-slow and test-tally in this process)

from bot.cli import main  # noqa: E402
from bot.gate.plan import Job, matrix_entries  # noqa: E402

POLICY = textwrap.dedent("""\
    version: 1
    models:
      canopy-tiny: {baseline: v1.0-fp32}
    runners:
      default: [ubuntu-latest]
    environments:
      - name: test
        gate:
          - check: zoo
          - check: test-tally
            cases: 10
            failing: [3, 6]
            shards: 1
      - name: staging
        gate:
          - check: zoo
          - check: promotion-order
      - name: prod
        fail_fast: false  # a matrix runs every entry at once: compared with `check`, nothing may be skipped
        gate:
          - check: zoo
          - check: promotion-order
          - check: test-slow
            seconds: 0
            timeout: 60s
            runs_on: [self-hosted, gpu]
    """)


@pytest.fixture(autouse=True)
def child_checks(monkeypatch):
    """Children (of `check` and of the tests) import the test-only checks at start-up."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SITE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))


def make_repo(tmp_path, policy: str = POLICY):
    return demo_like_repo(tmp_path / "gitops", policy=policy)


# --- running the three steps -------------------------------------------------------------

def plan(repo, tmp_path, base="HEAD~1", head="HEAD") -> tuple[Path, dict, dict]:
    plan_file, matrix_file = tmp_path / "plan.json", tmp_path / "matrix.json"
    code = main(["plan", "--repo", str(repo.path), "--base", base, "--head", head,
                 "--out", str(plan_file), "--matrix", str(matrix_file)])
    assert code == 0  # bad input travels in the plan to `report`
    return plan_file, json.loads(plan_file.read_text()), json.loads(matrix_file.read_text())


def start_job(plan_file: Path, job_id: str, results: Path, cache: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run-check", "--plan", str(plan_file), "--job", job_id,
         "--out", str(results), "--cache", str(cache)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def run_parallel(plan_file: Path, job_ids, results: Path, cache: Path) -> list[int]:
    """Every job in its own process, all started before any is waited for; each must exit 0 (its
    result file written, whatever the verdict: the report gives the verdict)."""
    procs = [start_job(plan_file, j, results, cache) for j in job_ids]
    codes = []
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
        codes.append(proc.returncode)
    return codes


def report(plan_file: Path, results: Path, tmp_path) -> tuple[int, dict, str]:
    out_json, out_md = tmp_path / "fanout-report.json", tmp_path / "fanout-comment.md"
    code = main(["report", "--plan", str(plan_file), "--results", str(results),
                 "--json", str(out_json), "--comment", str(out_md)])
    return code, json.loads(out_json.read_text()), out_md.read_text()


def check(repo, tmp_path, base="HEAD~1", head="HEAD") -> tuple[int, dict, str]:
    out_json, out_md = tmp_path / "check-report.json", tmp_path / "check-comment.md"
    code = main(["check", "--repo", str(repo.path), "--base", base, "--head", head, "--json", str(out_json),
                 "--comment", str(out_md), "--cache", str(tmp_path / "cache"), "--workdir", str(tmp_path / "work")])
    return code, json.loads(out_json.read_text()), out_md.read_text()


def fan_out(repo, tmp_path, base="HEAD~1", head="HEAD") -> tuple[int, dict, str, dict]:
    plan_file, plan_json, _ = plan(repo, tmp_path, base, head)
    results = tmp_path / "results"
    run_parallel(plan_file, [j["id"] for j in plan_json["jobs"]], results, tmp_path / "cache")
    code, rep, comment = report(plan_file, results, tmp_path)
    return code, rep, comment, plan_json


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "wall_time_s"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def without_time_footer(comment: str) -> str:
    """The comment without wall times (the footer's and each check's: they vary with the machine's load)."""
    return re.sub(r"\| [\d.]+s \|", "| |", re.sub(r" · [\d.]+s(?= · |</sub>)", "", comment))


def promotion(report_json: dict, env: str) -> dict:
    return next(p for p in report_json["promotions"] if p["environment"] == env)


# --- plan --------------------------------------------------------------------------------

def test_plan__matrix_gives_each_check_its_runner_labels(tmp_path):
    repo = make_repo(tmp_path)
    repo.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 in staging")
    repo.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 to prod")
    _, plan_json, matrix = plan(repo, tmp_path)
    assert [j["id"] for j in plan_json["jobs"]] == ["p0-0-zoo", "p0-1-promotion-order", "p0-2-test-slow"]
    assert matrix == {"include": [
        {"id": "inline", "check": "zoo, promotion-order", "runs_on": ["ubuntu-latest"], "jobs": 2,
         "environment": "", "variant": ""},
        {"id": "p0-2-test-slow", "check": "test-slow", "runs_on": ["self-hosted", "gpu"], "jobs": 1,
         "environment": "prod", "variant": "canopy-tiny/v1.3-int4-g64"},
    ]}


def test_plan__matrix_stays_under_the_github_limit():
    jobs = tuple(Job(id=f"p{i}-0-lm-eval", promotion=i, check="lm-eval", position=0,
                     runs_on=("self-hosted", "gpu") if i % 3 else ("ubuntu-latest",), inline=False, timeout_s=60)
                 for i in range(600))
    jobs += (Job(id="p0-1-zoo", promotion=0, check="zoo", position=1, runs_on=("ubuntu-latest",), inline=True, timeout_s=60),)
    entries = matrix_entries(jobs)
    assert len(entries) <= 256
    assert sorted(j for e in entries for j in e.jobs) == sorted(j.id for j in jobs)
    for e in entries:  # a packed entry never mixes runner labels
        assert len({next(j.runs_on for j in jobs if j.id == jid) for jid in e.jobs}) == 1


def test_plan__bad_input_travels_to_the_report(tmp_path, capsys):
    repo = make_repo(tmp_path)
    repo.remove("promotion.yaml")
    base = repo.commit("Drop the policy")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote")
    plan_file, plan_json, matrix = plan(repo, tmp_path, base=base)
    assert plan_json["jobs"] == [] and matrix == {"include": []}
    assert "promotion.yaml: not found at revision" in capsys.readouterr().err
    code, rep, comment = report(plan_file, tmp_path / "results", tmp_path)
    assert code == 2 and rep["verdict"] == "error"
    assert rep["errors"][0]["file"] == "promotion.yaml" and "ERROR" in comment


def test_report__without_the_repository_still_writes_an_error_report(tmp_path):
    repo = make_repo(tmp_path)
    _promote_test(repo)
    repo.commit("Promote")
    plan_file, _, _ = plan(repo, tmp_path)
    (tmp_path / "empty").mkdir()
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    code = main(["report", "--plan", str(plan_file), "--results", str(tmp_path / "results"),
                 "--repo", str(tmp_path / "empty"), "--json", str(out_json), "--comment", str(out_md)])
    assert code == 2
    rep = json.loads(out_json.read_text())
    assert rep["verdict"] == "error" and "is not a Git repository" in rep["errors"][0]["message"]
    assert "ERROR" in out_md.read_text()


def test_run_check__unknown_job_is_an_input_error(tmp_path, capsys):
    repo = make_repo(tmp_path)
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.commit("Promote")
    plan_file, _, _ = plan(repo, tmp_path)
    code = main(["run-check", "--plan", str(plan_file), "--job", "p9-0-zoo", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "has no job 'p9-0-zoo'" in err and "inline" in err


# --- same report as check ----------------------------------------------------------------

def _promote_test(repo):
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")


def _skip_staging(repo):
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 in test")
    repo.set_variant("prod", "canopy-tiny/v1.3-int4-g64")


def _prod_after_staging(repo):
    repo.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 in staging")
    repo.set_variant("prod", "canopy-tiny/v1.3-int4-g64")


def _two_environments(repo):
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.set_variant("staging", "canopy-tiny/v1.1-int8")


def _missing_variant(repo):
    repo.set_variant("test", "canopy-tiny/v1.2-int4-g128", file="b.yaml", name="b")
    repo.set_variant("staging", "canopy-tiny/v9.9-int4-g64")


def _broken_manifest(repo):
    repo.write("environments/test/canopy.yaml", "apiVersion: v1\nkind: [unclosed\n")


@pytest.mark.parametrize("scenario, verdict", [
    (_promote_test, "fail"),  # test-tally fails cases 3 and 6
    (_skip_staging, "fail"),
    (_prod_after_staging, "pass"),
    (_two_environments, "fail"),
    (_missing_variant, "error"),
    (_broken_manifest, "error"),
])
def test_fanout__same_report_as_check(tmp_path, scenario, verdict):
    repo = make_repo(tmp_path)
    scenario(repo)
    repo.commit("The PR")
    check_code, check_json, check_md = check(repo, tmp_path)
    code, fan_json, fan_md, _ = fan_out(repo, tmp_path)
    assert fan_json["verdict"] == verdict
    assert without_timings(fan_json) == without_timings(check_json)
    assert code == check_code
    assert without_time_footer(fan_md) == without_time_footer(check_md)


def test_fanout__matrix_entries_with_artifact_folders_give_the_same_report(tmp_path):
    """As the workflow runs it: one process per matrix entry, each entry's results downloaded
    into its own folder (`actions/download-artifact` without merge-multiple)."""
    repo = make_repo(tmp_path)
    _prod_after_staging(repo)
    repo.commit("The PR")
    _, check_json, _ = check(repo, tmp_path)
    plan_file, _, matrix = plan(repo, tmp_path)
    procs = [start_job(plan_file, e["id"], tmp_path / "results" / f"results-{e['id']}", tmp_path / "cache")
             for e in matrix["include"]]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    code, fan_json, _ = report(plan_file, tmp_path / "results", tmp_path)
    assert code == 0 and without_timings(fan_json) == without_timings(check_json)


# --- fail closed -------------------------------------------------------------------------

def slow_repo(tmp_path, seconds: int):
    repo = make_repo(tmp_path, POLICY.replace("seconds: 0", f"seconds: {seconds}"))
    repo.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 in staging")
    repo.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 to prod")
    return repo


def test_fanout__killed_job_makes_its_promotion_error(tmp_path):
    repo = slow_repo(tmp_path, 120)
    plan_file, _, _ = plan(repo, tmp_path)
    results = tmp_path / "results"
    run_parallel(plan_file, ["inline"], results, tmp_path / "cache")
    proc = start_job(plan_file, "p0-2-test-slow", results, tmp_path / "cache")
    started = results / "artifacts" / "p0-2-test-slow" / "started"
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner dies mid-check, as a preempted VM would
    proc.communicate()
    code, rep, comment = report(plan_file, results, tmp_path)
    assert code == 2 and rep["verdict"] == "error"
    slow = promotion(rep, "prod")["checks"][2]
    assert slow["verdict"] == "error"
    assert "no result from job p0-2-test-slow" in slow["detail"]
    assert [c["verdict"] for c in promotion(rep, "prod")["checks"][:2]] == ["pass", "pass"]
    assert "ERROR" in comment


def test_fanout__missing_result_file_is_error(tmp_path):
    repo = slow_repo(tmp_path, 0)
    plan_file, _, _ = plan(repo, tmp_path)
    results = tmp_path / "results"
    run_parallel(plan_file, ["p0-0-zoo", "p0-2-test-slow"], results, tmp_path / "cache")  # promotion-order never ran
    code, rep, _ = report(plan_file, results, tmp_path)
    assert code == 2
    order = promotion(rep, "prod")["checks"][1]
    assert order["name"] == "promotion-order" and order["verdict"] == "error"
    assert "never ran" in order["detail"]


def test_fanout__result_file_of_another_plan_is_refused(tmp_path):
    repo = make_repo(tmp_path)
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    first = repo.commit("Promote v1.3")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote v1.1 instead")
    old_plan, _, _ = plan(repo, tmp_path / "old", base="HEAD~2", head=first)
    new_plan, _, _ = plan(repo, tmp_path / "new", base="HEAD~1", head="HEAD")
    results = tmp_path / "results"
    run_parallel(old_plan, ["inline"], results, tmp_path / "cache")  # same job ids, other plan
    code, rep, _ = report(new_plan, results, tmp_path)
    assert code == 2
    for c in promotion(rep, "test")["checks"]:
        assert c["verdict"] == "error" and "written for another plan" in c["detail"]


def test_fanout__duplicate_result_files_are_refused(tmp_path):
    repo = make_repo(tmp_path)
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.commit("Promote")
    plan_file, _, _ = plan(repo, tmp_path)
    run_parallel(plan_file, ["inline"], tmp_path / "results" / "run-1", tmp_path / "cache")
    run_parallel(plan_file, ["inline"], tmp_path / "results" / "run-2", tmp_path / "cache")
    code, rep, _ = report(plan_file, tmp_path / "results", tmp_path)
    assert code == 2
    assert "2 result files for job p0-0-zoo" in promotion(rep, "test")["checks"][0]["detail"]


def test_check__a_result_rewritten_by_a_later_check_is_refused(tmp_path):
    # The forger's child process runs after test-slow's (promotion-order between them: two children)
    # and turns its fail into a pass: the report compares each file with the digest taken as its job
    # ended, and refuses the change.
    prod = POLICY[POLICY.index("  - name: prod"):]
    forging = POLICY.replace(prod, "  - name: prod\n    fail_fast: false\n    gate:\n"
                                   "      - {check: test-slow, verdict: fail}\n      - check: promotion-order\n"
                                   "      - check: test-forger\n")
    repo = make_repo(tmp_path, forging)
    repo.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 in staging")
    repo.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 to prod")
    code, rep, _ = check(repo, tmp_path)
    checks = {c["name"]: c for c in promotion(rep, "prod")["checks"]}
    assert checks["test-forger"]["verdict"] == "pass"  # it did run, after test-slow
    assert checks["test-slow"]["verdict"] == "error" and "changed after its job ended" in checks["test-slow"]["detail"]
    assert code == 2 and rep["verdict"] == "error"


def test_check__job_past_its_timeout_is_error(tmp_path):
    repo = make_repo(tmp_path, POLICY.replace("seconds: 0", "seconds: 60").replace("timeout: 60s", "timeout: 1s"))
    repo.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 in staging")
    repo.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 to prod")
    started = time.monotonic()
    code, rep, _ = check(repo, tmp_path)
    assert time.monotonic() - started < 30
    assert code == 2
    assert promotion(rep, "prod")["checks"][2]["detail"] == "timed out after 1s"


@pytest.mark.parametrize("seconds, timeout, detail", [
    (0, "60s", "slept 0s"),  # the check returns but forgot its server
    (60, "10s", "timed out after 10s"),  # long enough for the child to start its server on a loaded runner
])
def test_check__child_leaves_no_process_behind(tmp_path, seconds, timeout, detail):
    repo = make_repo(tmp_path, POLICY.replace("seconds: 0", f"seconds: {seconds}\n        server: true")
                     .replace("timeout: 60s", f"timeout: {timeout}"))
    _prod_after_staging(repo)
    repo.commit("v1.3 to prod")
    _, rep, _ = check(repo, tmp_path)
    assert promotion(rep, "prod")["checks"][2]["detail"] == detail
    pid = int((tmp_path / "work" / "results" / "artifacts" / "p0-2-test-slow" / "server").read_text())
    deadline = time.monotonic() + 10
    while alive(pid):
        assert time.monotonic() < deadline, f"server {pid} outlived its check"
        time.sleep(0.1)


def test_check__stopped_by_sigterm_takes_its_child_and_server_with_it(tmp_path):
    """A runner cancelling the job sends SIGTERM to the bot alone; its check's child runs in a
    session of its own (so that a timeout can kill the group), which must not outlive the bot."""
    repo = make_repo(tmp_path, POLICY.replace("seconds: 0", "seconds: 300\n        server: true")
                     .replace("timeout: 60s", "timeout: 600s"))
    _prod_after_staging(repo)
    repo.commit("v1.3 to prod")
    bot = subprocess.Popen([sys.executable, "-m", "bot", "check", "--repo", str(repo.path), "--base", "HEAD~1",
                            "--head", "HEAD", "--cache", str(tmp_path / "cache"), "--workdir", str(tmp_path / "work")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    artifacts = tmp_path / "work" / "results" / "artifacts" / "p0-2-test-slow"
    deadline = time.monotonic() + 120
    while not (artifacts / "server").exists():  # the child runs the check, its server started
        assert bot.poll() is None and time.monotonic() < deadline, bot.stderr.read().decode()
        time.sleep(0.1)
    child, server = (int((artifacts / name).read_text()) for name in ("started", "server"))
    try:
        assert alive(child) and alive(server)
        bot.terminate()
        assert bot.wait(timeout=60) == 143
        assert not alive(child), f"run-check child {child} outlived the bot"  # killed and reaped before the bot exits
        deadline = time.monotonic() + 10  # the server's SIGKILL was sent; its delivery is the kernel's
        while alive(server):
            assert time.monotonic() < deadline, f"server {server} outlived the bot"
            time.sleep(0.1)
    finally:  # a failing run leaves nothing behind for the rest of the suite
        bot.kill()
        bot.communicate()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_check__result_of_an_earlier_run_does_not_stand_in(tmp_path, monkeypatch):
    repo = slow_repo(tmp_path, 0)
    assert check(repo, tmp_path)[0] == 0
    from bot.gate import children

    monkeypatch.setattr(children, "run", lambda *a, **k: None)  # the child dies without a word
    code, rep, _ = check(repo, tmp_path)  # same plan, same --workdir
    assert code == 2
    assert "no result from job p0-2-test-slow" in promotion(rep, "prod")["checks"][2]["detail"]


def test_check__inline_check_past_its_deadline_stays_an_error(tmp_path):
    """The abandoned check finishes later; its pass must not replace the timeout, and the
    checks after it still run."""
    policy = POLICY.replace("  - name: test\n    gate:\n",
                            "  - name: test\n    gate:\n      - {check: test-slow-inline, seconds: 3, timeout: 1s}\n")
    assert "test-slow-inline" in policy
    repo = make_repo(tmp_path, policy)
    _promote_test(repo)
    repo.commit("Promote")
    code, rep, _ = check(repo, tmp_path)
    checks = promotion(rep, "test")["checks"]
    assert code == 2 and checks[0]["detail"] == "timed out after 1s"
    assert [c["name"] for c in checks[1:]] == ["zoo", "test-tally"] and checks[1]["verdict"] == "pass"
    result_file = tmp_path / "work" / "results" / "p0-0-test-slow-inline.result.json"
    started = (tmp_path / "work" / "results" / "artifacts" / "p0-0-test-slow-inline" / "started")
    assert started.exists()
    time.sleep(3)  # the abandoned check is done by now
    assert json.loads(result_file.read_text())["result"]["verdict"] == "error"


@pytest.mark.parametrize("fail_fast, ran", [(None, False), ("true", False), ("false", True)])
def test_check__fail_fast_skips_the_model_checks_after_a_fail(tmp_path, fail_fast, ran):
    """The first model check fails: the second is skipped (fail_fast, the default) or runs; the
    inline zoo check runs either way, and the gate fails either way."""
    setting = "" if fail_fast is None else f"    fail_fast: {fail_fast}\n"
    policy = POLICY.replace("  - name: test\n    gate:\n", "  - name: test\n" + setting + "    gate:\n"
                            "      - {check: test-slow, seconds: 0, verdict: fail}\n"
                            "      - {check: test-slow, seconds: 0}\n")
    repo = make_repo(tmp_path, policy)
    _promote_test(repo)
    repo.commit("Promote")
    code, rep, comment = check(repo, tmp_path)
    checks = promotion(rep, "test")["checks"]
    assert code == 1 and promotion(rep, "test")["verdict"] == "fail"
    assert [c["verdict"] for c in checks] == ["fail", "pass" if ran else "skipped", "pass", "fail"]
    started = tmp_path / "work" / "results" / "artifacts" / "p0-1-test-slow" / "started"
    assert started.exists() == ran
    if not ran:
        assert checks[1]["detail"] == ("not run: the gate had already failed (test-slow: fail); "
                                       "`fail_fast: false` on the environment runs every check")
        assert "not run: the gate had already failed" in comment


def test_check__model_checks_of_a_promotion_share_one_child_process(tmp_path):
    """Two model checks of one promotion: one child (imports paid once), not this process."""
    policy = POLICY.replace("  - name: test\n    gate:\n", "  - name: test\n    gate:\n"
                            "      - {check: test-slow, seconds: 0}\n      - {check: test-slow, seconds: 0}\n")
    repo = make_repo(tmp_path, policy)
    _promote_test(repo)
    repo.commit("Promote")
    code, rep, _ = check(repo, tmp_path)
    assert [c["verdict"] for c in promotion(rep, "test")["checks"]] == ["pass", "pass", "pass", "fail"]
    artifacts = tmp_path / "work" / "results" / "artifacts"
    pids = {int((artifacts / job / "started").read_text()) for job in ("p0-0-test-slow", "p0-1-test-slow")}
    assert len(pids) == 1 and os.getpid() not in pids


def test_policy__fail_fast_must_be_a_boolean(tmp_path, capsys):
    policy = POLICY.replace("  - name: test\n    gate:\n", "  - name: test\n    fail_fast: sometimes\n    gate:\n")
    repo = make_repo(tmp_path, policy)
    _promote_test(repo)
    repo.commit("Promote")
    code, rep, _ = check(repo, tmp_path)
    assert code == 2
    assert "environments[0].fail_fast" in json.dumps(rep) and "must be true or false, got 'sometimes'" in json.dumps(rep)


# --- shards ------------------------------------------------------------------------------

def test_fanout__four_shards_give_one_run_with_the_same_numbers(tmp_path):
    whole_repo = make_repo(tmp_path / "one")
    _promote_test(whole_repo)
    whole_repo.commit("Promote")
    _, whole, _ = check(whole_repo, tmp_path / "one")

    repo = make_repo(tmp_path / "four", POLICY.replace("shards: 1", "shards: 4"))
    _promote_test(repo)
    repo.commit("Promote")
    code, sharded, _, plan_json = fan_out(repo, tmp_path / "four")
    assert [j["id"] for j in plan_json["jobs"] if j["check"] == "test-tally"] == [
        f"p0-1-test-tally-s{k}of4" for k in range(1, 5)]
    assert code == 1
    assert without_timings(sharded["promotions"]) == without_timings(whole["promotions"])
    [tally] = [c for c in promotion(sharded, "test")["checks"] if c["name"] == "test-tally"]
    assert tally["candidate"] == "8/10 passed" and tally["detail"] == "10 case(s) in one run"
    assert [f["title"] for f in tally["findings"]] == ["case 3 failed", "case 6 failed"]


def test_fanout__a_failed_shard_makes_the_check_error(tmp_path):
    repo = make_repo(tmp_path, POLICY.replace("shards: 1", "shards: 4"))
    _promote_test(repo)
    repo.commit("Promote")
    plan_file, plan_json, _ = plan(repo, tmp_path)
    results = tmp_path / "results"
    run_parallel(plan_file, [j["id"] for j in plan_json["jobs"] if not j["id"].endswith("s3of4")], results,
                 tmp_path / "cache")
    code, rep, _ = report(plan_file, results, tmp_path)
    tally = promotion(rep, "test")["checks"][1]
    assert code == 2 and tally["verdict"] == "error"
    assert "p0-1-test-tally-s3of4" in tally["detail"]


# --- app-flows, four shards against a loopback OpenAI-compatible server --------------------

SUITE = textwrap.dedent("""\
    suite: flows
    cases:
      - {id: capital-italy, tags: [system-prompt], messages: [{role: user, content: italy}], expect: [{contains: Rome}]}
      - {id: capital-spain, tags: [system-prompt], messages: [{role: user, content: spain}], expect: [{contains: Madrid}]}
      - {id: json-france, tags: [output-format], messages: [{role: user, content: france}], expect: [{json: true}]}
      - {id: json-japan, tags: [output-format], messages: [{role: user, content: japan}], expect: [{json: true}]}
      - {id: refuse-poem, tags: [edge-case], messages: [{role: user, content: poem}], expect: [{refuses: true}]}
      - {id: capital-peru, tags: [system-prompt], messages: [{role: user, content: peru}], expect: [{contains: Lima}]}
    """)

ANSWERS = {"italy": "Rome.", "spain": "Madrid.", "france": '{"capital": "Paris"}', "japan": '{"capital": "Tokyo"}',
           "poem": "I can only help with tutoring questions.", "peru": "Lima."}
# The candidate breaks the JSON of one case and a fact of another.
CANDIDATE_ANSWERS = dict(ANSWERS, japan="Tokyo, of course", peru="Cusco.")


def app_flow_repo(tmp_path, url: str, shards: int):
    from fake_openai import message  # noqa: F401  (same folder as this test)

    policy = textwrap.dedent(f"""\
        version: 1
        models:
          canopy-tiny: {{baseline: v1.0-fp32}}
        serve: {{mode: url, url: "{url}", timeout: 10s}}
        environments:
          - name: test
            gate:
              - check: app-flows
                suites: evals/canopy
                shards: {shards}
        """)
    repo = demo_like_repo(tmp_path / "gitops", policy=policy)
    repo.write("evals/canopy/flows.yaml", SUITE)
    repo.commit("Add the suite")
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.commit("Promote v1.3 to test")
    return repo


def test_fanout__app_flows_in_four_shards_equal_one_run(tmp_path):
    from fake_openai import fake_openai, last_user, message

    def answer(body):
        table = CANDIDATE_ANSWERS if body["model"] == "v1.3-int4-g64" else ANSWERS
        return message(table[last_user(body)])

    with fake_openai(answer) as (url, seen):
        url = url.removesuffix("/v1") + "/{variant}/v1"
        _, whole, _ = check(app_flow_repo(tmp_path / "one", url, 1), tmp_path / "one")
        asked = len(seen)
        code, sharded, comment, plan_json = fan_out(app_flow_repo(tmp_path / "four", url, 4), tmp_path / "four")
        assert len(seen) - asked == asked == 12  # each case once per variant, shards or not
    assert [j["shard"] for j in plan_json["jobs"]] == [0, 1, 2, 3]
    assert [e["id"] for e in plan_json["matrix"]["include"]] == [f"p0-0-app-flows-s{k}of4" for k in range(1, 5)]
    [one] = whole["promotions"][0]["checks"]
    [merged] = sharded["promotions"][0]["checks"]
    assert code == 1 and merged["verdict"] == one["verdict"] == "fail"
    for key in ("candidate", "baseline", "threshold", "detail", "rows", "findings", "notes"):
        assert merged[key] == one[key], key
    assert len(merged["artifacts"]) == 4
    assert "flows/json-japan" in comment and "flows/capital-peru" in comment
