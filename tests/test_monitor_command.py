"""`promotion-bot monitor` end to end: a real Prometheus, real Git repositories with a bare origin."""

from __future__ import annotations

import json
import time

import pytest
from monitorops import PROD, clone_with_origin, commit_time, policy_with, prod_manifest, remote_branches

from bot.cli import main
from bot.core.net import free_port
from bot.demo.local_prometheus import LocalPrometheus
from bot.demo.series import Phase, openmetrics
from bot.forge.local import LocalForge
from bot.monitor.watch import monitor

NOW = time.time()
PROMOTED = NOW - 1800
START = NOW - 3 * 3600


def _history() -> str:
    healthy = [Phase(START, NOW - 5)]
    return openmetrics({
        ("healthy", "healthy"): healthy,
        ("slow", "slow"): [Phase(START, PROMOTED), Phase(PROMOTED, NOW - 5, latency_s=3.0)],
        ("erroring", "erroring"): [Phase(START, PROMOTED), Phase(PROMOTED, NOW - 5, error_ratio=0.2)],
    })


@pytest.fixture(scope="module")
def prometheus():
    with LocalPrometheus(_history()) as prom:
        yield prom.url


def run(repo, url, tmp_path, **kw):
    report = tmp_path / "monitor.json"
    report.unlink(missing_ok=True)
    forge = kw.pop("forge", None) or LocalForge(tmp_path / "forge")
    code = monitor(repo.path, url, env="prod", forge=forge, json_path=report, now=NOW, **kw)
    return code, json.loads(report.read_text()), forge


def prs(tmp_path):
    return sorted((tmp_path / "forge").glob("pr-*.json"))


def test_monitor__healthy_exits_0_and_opens_nothing(prometheus, tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="healthy", app="healthy", promoted_at=PROMOTED)
    code, report, _ = run(repo, prometheus, tmp_path)
    assert code == 0, report
    assert report["verdict"] == "healthy"
    [dep] = report["deployments"]
    assert [(r["rule"], r["state"]) for r in dep["rules"]] == [("p95-latency", "ok"), ("error-rate", "ok")]
    assert dep["rules"][0]["value"] == pytest.approx(0.975)
    assert report["requests"] == 2  # one per rule
    assert prs(tmp_path) == []
    assert remote_branches(bare) == ["main"]


def test_monitor__latency_trip_opens_one_revert_pr(prometheus, tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    main_before = bare.heads.main.commit.hexsha
    promotion = repo.repo.head.commit.hexsha
    code, report, forge = run(repo, prometheus, tmp_path)
    assert code == 1
    [dep] = report["deployments"]
    latency = dep["rules"][0]
    assert latency["state"] == "tripped" and latency["value"] > 2.5 and latency["threshold"] == 2.5
    assert dep["promotion_commit"] == promotion and dep["previous_variant"] == "v1.0-fp32"
    branch = f"promotion-bot/revert-{promotion[:12]}"
    assert dep["action"]["kind"] == "revert-pr" and dep["action"]["branch"] == branch

    [pr_file] = prs(tmp_path)
    pr = json.loads(pr_file.read_text())
    assert pr["title"] == "Revert slow in prod to v1.0-fp32"
    assert pr["labels"] == ["rollback"] and pr["base_branch"] == "main" and pr["head_branch"] == branch
    assert "| p95-latency | above 2.5 |" in pr["body"] and "**tripped**" in pr["body"]
    assert promotion[:12] in pr["body"]

    # The branch is on the remote, holds one revert commit, and main moved nowhere.
    assert remote_branches(bare) == ["main", branch]
    assert bare.heads.main.commit.hexsha == main_before
    assert repo.repo.head.commit.hexsha == promotion and repo.repo.active_branch.name == "main"
    revert = bare.commit(branch)
    assert revert.parents[0].hexsha == promotion
    assert "canopy-tiny/v1.0-fp32" in (revert.tree / PROD).data_stream.read().decode()


def test_monitor__second_run_opens_no_second_pr(prometheus, tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    assert run(repo, prometheus, tmp_path)[0] == 1
    code, report, _ = run(repo, prometheus, tmp_path)
    assert code == 1
    action = report["deployments"][0]["action"]
    assert action["kind"] == "existing-pr" and not action["commented"]
    assert len(prs(tmp_path)) == 1
    assert list((tmp_path / "forge").glob("pr-*-comments.md")) == []
    assert len(remote_branches(bare)) == 2


def test_monitor__new_evidence_on_an_open_pr_is_one_comment(prometheus, tmp_path):
    rollback = """\
    rollback:
      rules:
        - {name: p95-latency, query: 'histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="{model_name}"}[{window}])))', above: 2.5, window: 10m}
"""
    repo, _ = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    assert run(repo, prometheus, tmp_path)[0] == 1
    # A second rule trips too on the next pass: the open PR gets one comment, no new PR.
    with commit_time(NOW - 60):
        repo.write("promotion.yaml", policy_with(rollback.replace("defaults: true", "") + """\
        - {name: p99-latency, query: 'histogram_quantile(0.99, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="{model_name}"}[{window}])))', above: 2.5, window: 10m}
"""))
        repo.commit("Add a p99 rule")
    repo.repo.git.push("origin", "main")
    code, report, _ = run(repo, prometheus, tmp_path)
    assert code == 1
    assert report["deployments"][0]["action"]["commented"]
    assert len(prs(tmp_path)) == 1
    [comments] = (tmp_path / "forge").glob("pr-*-comments.md")
    assert "p99-latency" in comments.read_text()


def test_monitor__error_rate_trips(prometheus, tmp_path):
    repo, _ = clone_with_origin(tmp_path, served_model="erroring", app="erroring", promoted_at=PROMOTED)
    code, report, _ = run(repo, prometheus, tmp_path)
    assert code == 1
    states = {r["rule"]: r["state"] for r in report["deployments"][0]["rules"]}
    assert states == {"p95-latency": "ok", "error-rate": "tripped"}
    assert report["deployments"][0]["rules"][1]["value"] == pytest.approx(0.2, rel=0.01)
    [pr] = prs(tmp_path)
    assert "error-rate" in json.loads(pr.read_text())["body"]


def test_monitor__revert_conflict_opens_a_pr_setting_the_variant_back(prometheus, tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    promotion = repo.repo.head.commit.hexsha
    with commit_time(NOW - 600):  # a later change next to the variant line: the revert cannot apply
        repo.write(PROD, prod_manifest("canopy-tiny/v1.4-int2-g64", "slow", app="slow", owner="inference-team"))
        repo.commit("Hand prod over to the inference team")
    repo.repo.git.push("origin", "main")
    main_before = bare.heads.main.commit.hexsha
    code, report, _ = run(repo, prometheus, tmp_path)
    assert code == 1
    action = report["deployments"][0]["action"]
    assert action["kind"] == "set-variant-pr"
    assert "does not apply cleanly" in action["detail"]
    [pr_file] = prs(tmp_path)
    pr = json.loads(pr_file.read_text())
    assert pr["title"] == "Revert slow in prod to v1.0-fp32"
    assert pr["head_branch"] == f"promotion-bot/revert-{promotion[:12]}"
    tip = bare.commit(pr["head_branch"])
    text = (tip.tree / PROD).data_stream.read().decode()
    assert "canopy-tiny/v1.0-fp32" in text and "team: inference-team" in text
    assert tip.parents[0].hexsha == main_before == bare.heads.main.commit.hexsha


def test_monitor__prometheus_down_exits_2_and_reverts_nothing(tmp_path, capsys):
    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    code, report, _ = run(repo, f"http://127.0.0.1:{free_port()}", tmp_path)
    assert code == 2
    assert report["verdict"] == "error"
    assert "Prometheus" in report["errors"][0] and "unreachable" in report["errors"][0]
    # Every deployment says it was not judged, never "ok".
    [dep] = report["deployments"]
    assert dep["state"] == "error" and "unreachable" in dep["error"]
    assert prs(tmp_path) == [] and remote_branches(bare) == ["main"]
    assert "error: Prometheus" in capsys.readouterr().err


def test_monitor__query_error_exits_2(prometheus, tmp_path):
    rollback = """\
    rollback:
      rules:
        - {name: broken, query: 'sum(rate(http_requests_total[{window}])) by', above: 1, window: 5m}
"""
    repo, _ = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED, policy=policy_with(rollback))
    code, report, _ = run(repo, prometheus, tmp_path)
    assert code == 2
    assert "HTTP 400" in report["errors"][0]
    assert prs(tmp_path) == []


@pytest.mark.parametrize("on_no_data, code, state", [("ignore", 0, "no-data"), ("warn", 0, "warn"), ("rollback", 1, "tripped")])
def test_monitor__no_data_follows_on_no_data(prometheus, tmp_path, on_no_data, code, state):
    rollback = f"""\
    rollback:
      rules:
        - {{name: p95-latency, query: 'histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{{model_name="{{model_name}}"}}[{{window}}])))', above: 2.5, window: 10m, on_no_data: {on_no_data}}}
"""
    repo, _ = clone_with_origin(tmp_path, served_model="silent", app="silent", promoted_at=PROMOTED, policy=policy_with(rollback))
    got, report, _ = run(repo, prometheus, tmp_path)
    assert got == code
    [rule] = report["deployments"][0]["rules"]
    assert rule["state"] == state and rule["value"] is None
    assert len(prs(tmp_path)) == (1 if state == "tripped" else 0)


RELATIVE = """\
    rollback:
      rules:
        - name: p95-latency-vs-before
          query: histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="{model_name}"}[{window}])))
          above_previous: 25%
          window: 10m
"""


@pytest.mark.parametrize("model, code", [("healthy", 0), ("slow", 1)])
def test_monitor__relative_to_the_previous_variant(prometheus, tmp_path, model, code):
    repo, _ = clone_with_origin(tmp_path, served_model=model, app=model, promoted_at=PROMOTED, policy=policy_with(RELATIVE))
    got, report, _ = run(repo, prometheus, tmp_path)
    assert got == code
    [rule] = report["deployments"][0]["rules"]
    assert rule["previous"] == pytest.approx(0.975)  # the window before the promotion was healthy
    assert rule["threshold"] == pytest.approx(0.975 * 1.25)
    assert report["requests"] == 2  # now, and at the promotion


def test_monitor__merge_commit_promotion_is_reverted_with_m1(prometheus, tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED - 7200,
                                   to_variant="v1.1-int8")
    g = repo.repo
    with commit_time(PROMOTED - 60):
        g.git.checkout("-b", "promote-int2")
        repo.write(PROD, prod_manifest("canopy-tiny/v1.4-int2-g64", "slow", app="slow"))
        repo.commit("Promote v1.4-int2-g64 to prod")
        g.git.checkout("main")
        repo.write("README.md", "canopy GitOps\n")
        repo.commit("Docs")
    with commit_time(PROMOTED):
        g.git.merge("--no-ff", "-m", "Merge pull request #7 from promote-int2", "promote-int2")
    merge = g.head.commit.hexsha
    g.git.push("origin", "main")
    code, report, _ = run(repo, prometheus, tmp_path)
    assert code == 1
    dep = report["deployments"][0]
    assert dep["promotion_commit"] == merge and dep["previous_variant"] == "v1.1-int8"
    [pr] = prs(tmp_path)
    body = json.loads(pr.read_text())
    assert body["title"] == "Revert slow in prod to v1.1-int8"
    assert "a merge commit, against its first parent" in body["body"]
    tip = bare.commit(body["head_branch"])
    assert tip.parents[0].hexsha == merge
    assert "canopy-tiny/v1.1-int8" in (tip.tree / PROD).data_stream.read().decode()
    assert (tip.tree / "README.md")  # the rest of main stays


def test_monitor__dry_run_prints_the_pr_and_pushes_nothing(prometheus, tmp_path, capsys):
    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    code = main(["monitor", "--repo", str(repo.path), "--prometheus-url", prometheus, "--dry-run",
                 "--json", str(tmp_path / "m.json"), "--at", str(NOW)])  # the series end at NOW
    out = capsys.readouterr().out
    assert code == 1
    assert "p95-latency" in out and "TRIPPED" in out
    assert "## ⏪ Revert slow in prod to v1.0-fp32" in out
    assert remote_branches(bare) == ["main"]
    assert [b.name for b in repo.repo.heads] == ["main"]


def test_monitor__cli_without_forge_or_dry_run_is_an_input_error(tmp_path, capsys):
    code = main(["monitor", "--repo", str(tmp_path), "--prometheus-url", "http://127.0.0.1:1"])
    assert code == 2
    assert "--forge-dir" in capsys.readouterr().err


def test_monitor__for_duration_needs_the_whole_window(prometheus, tmp_path):
    rollback = """\
    rollback:
      rules:
        - {name: p95-15m, query: 'histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="{model_name}"}[{window}])))', above: 2.5, window: 2m, for: 15m}
        - {name: p95-45m, query: 'histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="{model_name}"}[{window}])))', above: 2.5, window: 2m, for: 45m}
"""
    repo, _ = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED, policy=policy_with(rollback))
    code, report, _ = run(repo, prometheus, tmp_path, dry_run=True)
    states = {r["rule"]: r["state"] for r in report["deployments"][0]["rules"]}
    assert states == {"p95-15m": "tripped", "p95-45m": "ok"}  # slow for 30 minutes only
    assert code == 1 and report["requests"] == 2


def test_monitor__promotion_out_of_sight_sets_the_model_baseline_back(prometheus, tmp_path):
    import git

    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    shallow = git.Repo.clone_from(f"file://{bare.working_dir if bare.working_tree_dir else bare.git_dir}",
                                  tmp_path / "shallow", depth=1)
    with shallow.config_writer() as cw:
        cw.set_value("user", "name", "CI").set_value("user", "email", "ci@example.com")
    code, report, _ = run(type("R", (), {"path": tmp_path / "shallow"}), prometheus, tmp_path)
    assert code == 1
    dep = report["deployments"][0]
    assert dep["promotion_commit"] is None
    assert dep["action"]["kind"] == "set-variant-pr"
    assert dep["action"]["branch"] == "promotion-bot/rollback-prod-slow-v1.0-fp32"
    [pr] = prs(tmp_path)
    body = json.loads(pr.read_text())["body"]
    assert "no promotion commit for v1.4-int2-g64 was found" in body
    assert "canopy-tiny/v1.0-fp32" in (bare.commit(dep["action"]["branch"]).tree / PROD).data_stream.read().decode()


def test_monitor__first_deployment_cannot_be_reverted_so_an_issue_is_opened(prometheus, tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    with commit_time(PROMOTED + 60):  # a new app, added to prod straight away
        repo.write("environments/prod/slow-2.yaml", prod_manifest("canopy-tiny/v1.0-fp32", "slow", app="slow-2"))
        repo.commit("Serve slow-2")
    repo.repo.git.push("origin", "main")
    code, report, _ = run(repo, prometheus, tmp_path)
    assert code == 1
    kinds = {d["application"]: d["action"]["kind"] for d in report["deployments"]}
    assert kinds == {"slow": "revert-pr", "slow-2": "issue"}
    [issue] = (tmp_path / "forge").glob("issue-*.md")
    assert "no previous variant" in issue.read_text()


def test_monitor__hostile_served_model_name_is_quoted_not_injected(prometheus, tmp_path):
    name = 'x\\"} or vector(99) # <b>@team</b>'
    repo, _ = clone_with_origin(tmp_path, served_model=f"'{name}'", app="slow", promoted_at=PROMOTED)
    code, report, _ = run(repo, prometheus, tmp_path)
    [dep] = report["deployments"]
    assert dep["rules"][0]["state"] == "warn"  # no such model: no data, not 99 from an injected query
    assert code == 0


def test_monitor__one_request_per_rule_for_all_deployments(prometheus, tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    with commit_time(PROMOTED - 3600):
        for name in ("healthy", "erroring"):
            repo.write(f"environments/prod/{name}.yaml", prod_manifest("canopy-tiny/v1.1-int8", name, app=name))
        repo.commit("Two more apps in prod")
    repo.repo.git.push("origin", "main")
    code, report, _ = run(repo, prometheus, tmp_path, dry_run=True)
    assert code == 1
    assert report["requests"] == 2
    tripped = {d["application"]: sorted(r["rule"] for r in d["rules"] if r["state"] == "tripped") for d in report["deployments"]}
    assert tripped == {"slow": ["p95-latency"], "healthy": [], "erroring": ["error-rate"]}


def test_monitor__json_report_contract(prometheus, tmp_path):
    repo, _ = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    _, report, _ = run(repo, prometheus, tmp_path)
    assert set(report) == {"schema_version", "environment", "prometheus", "evaluated_at", "verdict", "requests",
                           "deployments", "errors"}
    assert report["schema_version"] == 1 and report["evaluated_at"].endswith("Z")
    [dep] = report["deployments"]
    assert set(dep) == {"manifest", "object", "application", "model", "variant", "served_model", "promotion_commit",
                        "previous_variant", "state", "error", "rules", "probe", "action"}
    assert set(dep["rules"][0]) == {"rule", "condition", "value", "previous", "threshold", "state", "detail"}
    assert set(dep["action"]) == {"kind", "branch", "title", "url", "detail", "commented", "verified", "landed"}
    assert dep["state"] == "tripped" and dep["probe"] is None and dep["error"] is None


def test_monitor__dry_run_with_an_open_pr_writes_nothing(prometheus, tmp_path):
    repo, _ = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    assert run(repo, prometheus, tmp_path)[0] == 1
    [pr_file] = prs(tmp_path)  # a body without the tripped-rules marker: a real pass would comment
    pr = json.loads(pr_file.read_text())
    pr_file.write_text(json.dumps({**pr, "body": "edited by a human"}))
    code, report, _ = run(repo, prometheus, tmp_path, dry_run=True)
    assert code == 1 and report["deployments"][0]["action"]["kind"] == "existing-pr"
    assert len(prs(tmp_path)) == 1 and list((tmp_path / "forge").glob("pr-*-comments.md")) == []


def test_monitor_cli__at_takes_unix_seconds_or_iso_8601():
    from bot.commands.monitor import evaluation_time

    assert evaluation_time("1765076400") == 1765076400.0
    assert evaluation_time("2025-12-07T03:00:00Z") == evaluation_time("2025-12-07T03:00:00") == 1765076400.0
    assert evaluation_time("2025-12-07T04:00:00+01:00") == 1765076400.0
    with pytest.raises(Exception, match="is not a time"):
        evaluation_time("yesterday")
