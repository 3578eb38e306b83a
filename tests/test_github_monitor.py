"""`promotion-bot github monitor`: the scheduled pass inside Actions, opening its revert PR
through GitHubForge on the fake GitHub (a real Prometheus, a real clone with a bare origin)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from github_fake import FakeGitHub  # noqa: E402
from github_fake.harness import EVENTS, REPO, TOKEN  # noqa: E402
from monitorops import clone_with_origin, remote_branches  # noqa: E402

from bot.cli import main  # noqa: E402
from bot.demo.local_prometheus import LocalPrometheus  # noqa: E402
from bot.demo.series import Phase, openmetrics  # noqa: E402

NOW = time.time()
PROMOTED = NOW - 1800


@pytest.fixture(scope="module")
def prometheus():
    history = openmetrics({("slow", "slow"): [Phase(NOW - 3 * 3600, PROMOTED),
                                              Phase(PROMOTED, NOW - 5, latency_s=3.0)]})
    with LocalPrometheus(history) as prom:
        yield prom.url


@pytest.fixture
def fake():
    with FakeGitHub() as server:
        server.add_repo(REPO)
        server.add_token(TOKEN, None)
        yield server
    assert server.validation_errors == []


def run_monitor(monkeypatch, tmp_path, fake, workspace, event_name, sample, *args):
    for k, v in {"GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(EVENTS / sample),
                 "GITHUB_REPOSITORY": REPO, "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": fake.url,
                 "GITHUB_WORKSPACE": str(workspace), "PROMOTION_BOT_GITHUB_THROTTLE": "0"}.items():
        monkeypatch.setenv(k, v)
    report = tmp_path / "monitor.json"
    # Evaluated as of NOW, where the series end: however long the suite ran before this test.
    code = main(["github", "monitor", "--json", str(report), "--at", str(NOW), *args])
    return code, json.loads(report.read_text()) if report.exists() else None


@pytest.mark.parametrize(("event_name", "sample"), [("schedule", "schedule.json"),
                                                     ("repository_dispatch", "repository_dispatch.json")])
def test_github_monitor__tripped_rule_opens_the_revert_pr_on_github(monkeypatch, tmp_path, fake, prometheus,
                                                                     event_name, sample):
    repo, bare = clone_with_origin(tmp_path, served_model="slow", app="slow", promoted_at=PROMOTED)
    code, report = run_monitor(monkeypatch, tmp_path, fake, repo.path, event_name, sample,
                               "--prometheus-url", prometheus)
    assert code == 1, report
    [(key, pr)] = fake.pulls.items()
    assert key[0] == REPO and pr["title"] == "Revert slow in prod to v1.0-fp32"
    assert fake.labels[key] == ["rollback"]
    assert pr["head_ref"] in remote_branches(bare)
    assert report["deployments"][0]["action"]["kind"] == "revert-pr"


def test_github_monitor__pull_request_event_is_not_a_monitoring_pass(monkeypatch, tmp_path, fake):
    code, report = run_monitor(monkeypatch, tmp_path, fake, tmp_path, "pull_request", "pull_request.opened.json",
                               "--prometheus-url", "http://127.0.0.1:9")
    assert code == 0 and report is None
    assert fake.requests == []


def test_github_monitor__missing_prometheus_url_names_the_input(monkeypatch, tmp_path, fake, capsys):
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    code, _ = run_monitor(monkeypatch, tmp_path, fake, tmp_path, "schedule", "schedule.json")
    assert code == 2
    assert "prometheus-url" in capsys.readouterr().err
