"""`expect_improvement`: prod after the promotion against the previous variant before it, on a real
Prometheus with backfilled series. A promised win that did not appear warns once per promotion
(an issue), and reverts only when the policy says `action: rollback`."""

from __future__ import annotations

import json
import time

import pytest
from monitorops import clone_with_origin, policy_with, remote_branches

from bot.cli import main
from bot.demo.local_prometheus import LocalPrometheus
from bot.demo.series import Phase, openmetrics
from bot.forge.local import LocalForge
from bot.monitor.watch import monitor

NOW = time.time()
PROMOTED = NOW - 1800
START = NOW - 3 * 3600
TOKENS_BEFORE = 60.0  # per request, 2 requests/s: 120 tokens/s before the promotion


def _history() -> str:
    def after(tokens: float) -> list[Phase]:
        return [Phase(START, PROMOTED, tokens_per_request=TOKENS_BEFORE),
                Phase(PROMOTED, NOW - 5, tokens_per_request=tokens)]
    # "flat": the int2 variant serves 1.7% more tokens/s than fp32 did; "faster": 33% more.
    return openmetrics({("flat", "flat"): after(61.0), ("faster", "faster"): after(80.0)})


@pytest.fixture(scope="module")
def prometheus():
    with LocalPrometheus(_history()) as prom:
        yield prom.url


def promise_policy(action: str = "") -> str:
    return policy_with(f"""\
    rollback:
      rules:
        - name: promised-throughput
          query: sum(rate(vllm:generation_tokens_total{{model_name="{{model_name}}"}}[{{window}}]))
          expect_improvement: +20%
          window: 10m
{f"          action: {action}" if action else ""}
""")


def run(repo, url, tmp_path, now=NOW):
    report = tmp_path / "monitor.json"
    code = monitor(repo.path, url, env="prod", forge=LocalForge(tmp_path / "forge"), json_path=report, now=now)
    return code, json.loads(report.read_text())


def issues(tmp_path):
    return sorted((tmp_path / "forge").glob("issue-*.md"))


def test_monitor_promise__no_speed_up_warns_once_per_promotion_without_a_revert(prometheus, tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="flat", app="flat", promoted_at=PROMOTED,
                                   policy=promise_policy())
    code, report = run(repo, prometheus, tmp_path)
    assert code == 0 and report["verdict"] == "healthy", report
    [dep] = report["deployments"]
    [rule] = dep["rules"]
    assert dep["state"] == "unmet" and rule["state"] == "unmet"
    assert rule["previous"] == pytest.approx(120.0) and rule["threshold"] == pytest.approx(144.0)
    assert rule["value"] == pytest.approx(122.0, rel=0.01)
    assert rule["detail"].startswith("promise not kept: 122 is below the promised 144 (+20% on 120")
    assert dep["action"]["kind"] == "issue"
    [issue] = issues(tmp_path)
    text = issue.read_text()
    assert "labels: promise-not-kept" in text and "Nothing is rolled back" in text
    assert "v1.4-int2-g64" in text and "v1.0-fp32" in text and "promised-throughput" in text
    # Nothing reverted: no PR, no branch.
    assert not list((tmp_path / "forge").glob("pr-*.json")) and remote_branches(bare) == ["main"]
    # The next pass finds its warning and says nothing new.
    code, report = run(repo, prometheus, tmp_path)
    assert code == 0 and report["deployments"][0]["action"]["kind"] == "existing-issue"
    assert len(issues(tmp_path)) == 1


def test_monitor_promise__a_kept_promise_is_ok(prometheus, tmp_path):
    repo, _ = clone_with_origin(tmp_path, served_model="faster", app="faster", promoted_at=PROMOTED,
                                policy=promise_policy())
    code, report = run(repo, prometheus, tmp_path)
    [dep] = report["deployments"]
    assert code == 0 and dep["state"] == "ok" and dep["action"] is None, dep
    assert dep["rules"][0]["value"] == pytest.approx(160.0, rel=0.01)
    assert issues(tmp_path) == []


def test_monitor_promise__action_rollback_opens_the_revert_pr(prometheus, tmp_path):
    repo, bare = clone_with_origin(tmp_path, served_model="flat", app="flat", promoted_at=PROMOTED,
                                   policy=promise_policy("rollback"))
    code, report = run(repo, prometheus, tmp_path)
    assert code == 1 and report["deployments"][0]["state"] == "tripped"
    [pr] = (tmp_path / "forge").glob("pr-*.json")
    assert json.loads(pr.read_text())["title"] == "Revert flat in prod to v1.0-fp32"
    assert issues(tmp_path) == []


def test_monitor_promise__not_judged_before_a_whole_window_after_the_promotion(prometheus, tmp_path):
    repo, _ = clone_with_origin(tmp_path, served_model="flat", app="flat", promoted_at=PROMOTED,
                                policy=promise_policy())
    code, report = run(repo, prometheus, tmp_path, now=PROMOTED + 300)
    [rule] = report["deployments"][0]["rules"]
    assert code == 0 and rule["state"] == "no-data" and rule["detail"].startswith("too early: the promotion is 5 min old")
    assert issues(tmp_path) == []


def test_monitor_cli__a_url_without_scheme_gets_a_hint(tmp_path, capsys):
    repo, _ = clone_with_origin(tmp_path, served_model="faster", app="faster", promoted_at=PROMOTED,
                                policy=promise_policy())
    assert main(["monitor", "--repo", str(repo.path), "--prometheus-url", "prometheus:9090", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--prometheus-url" in err and "did you mean http://prometheus:9090" in err
