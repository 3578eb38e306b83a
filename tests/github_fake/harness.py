"""Run `promotion-bot github pr` the way Actions does: an event file, the Actions variables,
a real Git checkout, and GITHUB_API_URL pointing at the fake server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bot.cli import main

EVENTS = Path(__file__).resolve().parent.parent / "events"
REPO = "acme-ml/gitops"
TOKEN = "ghs_fake_installation_token_0123456789"


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def pr_event(name: str, *, base: str, head: str, number: int | None = None) -> dict:
    payload = load_event(name)
    pr = payload["pull_request"]
    pr["base"]["sha"], pr["head"]["sha"] = base, head
    if number is not None:
        payload["number"] = pr["number"] = number
    return payload


@dataclass
class ActionRun:
    code: int
    outputs: dict
    summary: str
    report: dict | None


def read_outputs(path: Path) -> dict:
    """GITHUB_OUTPUT in both of its forms: `name=value` lines and `name<<DELIMITER` blocks."""
    out, lines = {}, path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        if "<<" in lines[i] and "=" not in lines[i].split("<<", 1)[0]:
            name, delim = lines[i].split("<<", 1)
            j = lines.index(delim, i + 1)
            out[name], i = "\n".join(lines[i + 1:j]), j + 1
        else:
            name, value = lines[i].split("=", 1)
            out[name], i = value, i + 1
    return out


def run_action(monkeypatch, tmp_path: Path, fake, workspace: Path, event_name: str, payload: dict,
               *args: str, token: str = TOKEN) -> ActionRun:
    tmp_path.mkdir(parents=True, exist_ok=True)
    event = tmp_path / "event.json"
    event.write_text(json.dumps(payload))
    output, summary, report = tmp_path / "output.txt", tmp_path / "summary.md", tmp_path / "report.json"
    for f in (output, summary, report):
        f.unlink(missing_ok=True)
    env = {
        "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": REPO,
        "GITHUB_TOKEN": token, "GITHUB_API_URL": fake.url, "GITHUB_SERVER_URL": "https://github.example.com",
        "GITHUB_RUN_ID": "4242", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output),
        "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(tmp_path),
        "PROMOTION_BOT_CACHE": str(tmp_path / "cache"),
        # No sleeping in tests: PyGithub's pacing and the retry backoff are turned down, not off.
        "PROMOTION_BOT_GITHUB_THROTTLE": "0", "PROMOTION_BOT_GITHUB_BACKOFF": "0.01",
        "PROMOTION_BOT_GITHUB_RETRIES": "3", "PROMOTION_BOT_GITHUB_SECONDARY_WAIT": "0.01",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code = main(["github", "pr", "--json", str(report), *args])
    return ActionRun(code, read_outputs(output), summary.read_text() if summary.exists() else "",
                     json.loads(report.read_text()) if report.exists() else None)
