"""`promotion-bot probe`: the application-flow suites against prod's endpoint (a loopback
OpenAI-compatible server answering per variant), history across runs, one revert PR."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from fake_openai import fake_openai, last_user, message
from monitorops import PROD, ROLLBACK, clone_with_origin, commit_time, policy_with, remote_branches

from bot.cli import main
from bot.core.net import free_port
from bot.demo.local_prometheus import LocalPushgateway
from bot.forge.local import LocalForge
from bot.monitor.watch import monitor

SUITE = textwrap.dedent("""\
    suite: flows
    defaults:
      system: 'You are Canopy. Reply only with a JSON object with the keys "answer" and "topic".'
    cases:
      - id: json-italy
        tags: [output-format]
        messages: [{role: user, content: italy}]
        expect: [{json: true}, {contains: Rome}]
      - id: json-spain
        tags: [output-format, system-prompt]
        messages: [{role: user, content: spain}]
        expect: [{json_schema: {type: object, required: [answer, topic]}}]
      - id: sentence
        tags: [system-prompt]
        system: You are Canopy. Answer in exactly one sentence.
        messages: [{role: user, content: sentence}]
        expect: [{regex: '^[^.!?]+[.!?]$'}]
      - id: refuse-poem
        tags: [edge-case]
        messages: [{role: user, content: poem}]
        expect: [{refuses: true}]
    """)

GOOD = {
    "italy": message('{"answer": "Rome", "topic": "geography"}'),
    "spain": message('{"answer": "Madrid", "topic": "geography"}'),
    "sentence": message("Gravity pulls objects together."),
    "poem": message("I can only help with tutoring questions."),
}
# The int2 variant ignores its system prompt; its output must reach the PR escaped.
BROKEN = dict(GOOD, spain=message("**Madrid** <img src=x onerror=alert(1)> @admin | ```"),
              sentence=message("Gravity pulls. Objects fall. Always!"))

PROBES = """\
    probes:
      suites: evals/canopy
      tags: [system-prompt, output-format]
      serve: {{mode: url, url: "{url}", model: "{{variant}}", timeout: 3s}}
      history: {history}{extra}
      rules:
        - {{name: system-prompt-probes, tag: system-prompt, below: 90%, consecutive: 2}}
        - {{name: output-format-vs-gate, tag: output-format, under_gate: 2}}
"""


def answer(body):
    table = BROKEN if body["model"] == "v1.4-int2-g64" else GOOD
    return table[last_user(body)]


@pytest.fixture(scope="module")
def server():
    with fake_openai(answer) as (url, seen):
        yield url.removesuffix("/v1") + "/{variant}/v1", seen


def prod_repo(tmp_path, url, *, variant="v1.4-int2-g64", gate_results=None, pushgateway=None, test_gate=""):
    extra = f"\n      pushgateway: {pushgateway}" if pushgateway else ""
    policy = policy_with(ROLLBACK + PROBES.format(url=url, history=tmp_path / "history.json", extra=extra))
    if test_gate:  # more checks in test's gate, and every variant served at ``url`` for them
        policy = policy.replace("version: 1\n", f"version: 1\nserve: {{mode: url, url: \"{url}\", model: \"{{variant}}\"}}\n")
        policy = policy.replace("  - name: test\n    gate:\n      - check: zoo\n",
                                "  - name: test\n    gate:\n      - check: zoo\n" + test_gate)
    repo, bare = clone_with_origin(tmp_path, served_model="canopy", promoted_at=time.time() - 3600,
                                   policy=policy, to_variant=variant)
    with commit_time(time.time() - 60):
        repo.write("evals/canopy/flows.yaml", SUITE)
        if gate_results is not None:
            path = f"models/canopy-tiny/{variant}/variant.yaml"
            repo.write(path, (repo.path / path).read_text() + gate_results)
        repo.commit("Add the app-flow suite")
    repo.repo.git.push("origin", "main")
    return repo, bare


def probe(repo, tmp_path, *extra):
    out = tmp_path / "probe.json"
    code = main(["probe", "--repo", str(repo.path), "--forge-dir", str(tmp_path / "forge"), "--json", str(out), *extra])
    return code, json.loads(out.read_text())


def prs(tmp_path):
    return sorted((tmp_path / "forge").glob("pr-*.json"))


def test_probe__baseline_stays_healthy_across_runs(server, tmp_path):
    repo, bare = prod_repo(tmp_path, server[0], variant="v1.1-int8")
    for _ in range(3):
        code, report = probe(repo, tmp_path)
        assert code == 0, report
    [dep] = report["deployments"]
    assert dep["probe"]["pass_rates"]["system-prompt"] == {"passed": 2, "total": 2, "rate": 1.0}
    assert dep["probe"]["pass_rates"]["edge-case"]["total"] == 0  # not among the probed tags
    history = json.loads((tmp_path / "history.json").read_text())
    [runs] = history["deployments"].values()
    assert len(runs) == 3 and prs(tmp_path) == [] and remote_branches(bare) == ["main"]


def test_probe__int2_trips_after_two_runs_and_proposes_the_revert_once(server, tmp_path):
    repo, bare = prod_repo(tmp_path, server[0])
    code, report = probe(repo, tmp_path)
    assert code == 0  # one bad probe is not yet two in a row
    rule = report["deployments"][0]["rules"][0]
    assert rule["state"] == "ok" and rule["value"] == 0.0 and "1 of the last 1" in rule["detail"]

    code, report = probe(repo, tmp_path)
    assert code == 1
    [dep] = report["deployments"]
    states = {r["rule"]: r["state"] for r in dep["rules"]}
    assert states == {"system-prompt-probes": "tripped", "output-format-vs-gate": "warn"}  # no gate rate recorded
    [pr_file] = prs(tmp_path)
    pr = json.loads(pr_file.read_text())
    assert pr["title"] == "Revert canopy in prod to v1.0-fp32" and pr["labels"] == ["rollback"]
    body = pr["body"]
    assert "system-prompt-probes" in body and "Failing probe cases" in body
    assert "flows/sentence" in body
    # Model output only inside code spans (inert: no HTML, no mentions), its `|` cannot split the row.
    assert "| ```` **Madrid** <img src=x onerror=alert(1)> @admin \\| ``` ```` |" in body
    assert body.count("<img") == 1
    assert len(remote_branches(bare)) == 2

    code, report = probe(repo, tmp_path)
    assert code == 1 and report["deployments"][0]["action"]["kind"] == "existing-pr"
    assert len(prs(tmp_path)) == 1


def test_probe__under_the_pass_rate_its_gate_recorded_trips(tmp_path):
    # The gate judged int2 while it still answered well; prod now serves it broken.
    broken = {"now": False}

    def answer(body):
        return (BROKEN if broken["now"] and body["model"] == "v1.4-int2-g64" else GOOD)[last_user(body)]

    with fake_openai(answer) as (url, _):
        served = url.removesuffix("/v1") + "/{variant}/v1"
        repo, bare = prod_repo(tmp_path, served, test_gate="      - {check: app-flows, suites: evals/canopy}\n")
        repo.repo.git.checkout("-q", "-b", "promote-int2")
        repo.set_variant("test", "canopy-tiny/v1.4-int2-g64")
        repo.commit("Promote int2 to test")
        repo.repo.git.checkout("-q", "main")
        gate = main(["check", "--repo", str(repo.path), "--base", "main", "--head", "promote-int2", "--pr", "12",
                     "--json", str(tmp_path / "gate.json"), "--cache", str(tmp_path / "cache")])
        assert gate == 0, (tmp_path / "gate.json").read_text()
        repo.repo.git.push("-q", "origin", "refs/notes/promotion-bot")
        repo.repo.git.update_ref("-d", "refs/notes/promotion-bot")  # the monitor's checkout has no notes: it fetches them

        broken["now"] = True
        code, report = probe(repo, tmp_path)
    assert code == 1
    rule = next(r for r in report["deployments"][0]["rules"] if r["rule"] == "output-format-vs-gate")
    assert rule["state"] == "tripped"
    assert rule["value"] == 0.5 and rule["previous"] == 1.0 and rule["threshold"] == pytest.approx(0.98)
    assert remote_branches(bare) != ["main"]  # the revert branch


def test_probe__a_variant_no_gate_recorded_warns(server, tmp_path):
    # A hand-written `results:` in variant.yaml is not a gate's record.
    repo, _ = prod_repo(tmp_path, server[0], gate_results="results:\n  app-flows: {output-format: 100%}\n")
    code, report = probe(repo, tmp_path)
    rule = next(r for r in report["deployments"][0]["rules"] if r["rule"] == "output-format-vs-gate")
    assert code == 0 and rule["state"] == "warn" and "no gate recorded" in rule["detail"]


def test_probe__endpoint_that_does_not_answer_is_an_error_not_a_trip(tmp_path):
    repo, bare = prod_repo(tmp_path, f"http://127.0.0.1:{free_port()}/{{variant}}/v1")
    code, report = probe(repo, tmp_path)
    assert code == 2
    assert report["verdict"] == "error" and "model server" in report["errors"][0]
    assert not (tmp_path / "history.json").exists()  # nothing recorded, nothing counted
    assert prs(tmp_path) == [] and remote_branches(bare) == ["main"]


def test_probe__server_errors_are_errors_not_failures(tmp_path):
    with fake_openai(lambda body: (503, "overloaded")) as (url, _):
        repo, _ = prod_repo(tmp_path, url.removesuffix("/v1") + "/{variant}/v1")
        code, report = probe(repo, tmp_path)
    assert code == 2 and "HTTP 503" in report["errors"][0]
    assert not (tmp_path / "history.json").exists()


def test_probe__sample_rotates_through_the_suite(server, tmp_path):
    repo, _ = prod_repo(tmp_path, server[0], variant="v1.1-int8")
    text = (repo.path / "promotion.yaml").read_text().replace("      suites: evals/canopy\n", "      suites: evals/canopy\n      sample: 2\n")
    repo.write("promotion.yaml", text)
    repo.commit("Probe two cases per run")
    repo.repo.git.push("origin", "main")
    seen = []
    for _ in range(2):
        code, report = probe(repo, tmp_path)
        assert code == 0
        rates = report["deployments"][0]["probe"]["pass_rates"]
        seen.append(sum(v["total"] for v in rates.values()))
    history = json.loads((tmp_path / "history.json").read_text())
    [runs] = history["deployments"].values()
    assert len(runs) == 2
    # 3 cases carry the probed tags; two runs of 2 cover all of them.
    assert seen[0] >= 2 and seen[1] >= 1


def test_probe__corrupt_history_is_an_input_error(server, tmp_path):
    repo, _ = prod_repo(tmp_path, server[0])
    (tmp_path / "history.json").write_text("{not json")
    code, report = probe(repo, tmp_path)
    assert code == 2 and "is not a probe history" in report["errors"][0] and "delete" in report["errors"][0]


@pytest.mark.parametrize("rules, field, words", [
    ("- {name: x, tag: system-prompt}", "rules[0]", "exactly one of `below` and `under_gate`"),
    ("- {name: x, tag: vibes, below: 90%}", "rules[0].tag", "not a known tag"),
    ("- {name: x, tag: edge-case, below: 90%}", "rules[0].tag", "not among the probed tags"),
    ("- {name: x, tag: system-prompt, below: 0.9}", "rules[0].below", "percentage"),
    ("- {name: x, tag: system-prompt, below: 90%, consecutive: 0}", "rules[0].consecutive", "at least 1"),
    ("[]", "rules", "probes without rules can never roll back"),
])
def test_probe__malformed_probe_rules_name_the_field(server, tmp_path, rules, field, words):
    repo, _ = prod_repo(tmp_path, server[0])
    text = (repo.path / "promotion.yaml").read_text()
    head, _, _ = text.rpartition("      rules:\n")
    repo.write("promotion.yaml", head + "      rules:\n" + textwrap.indent(rules, "        ") + "\n"
               if not rules.startswith("[") else head + "      rules: []\n")
    repo.commit("Edit probe rules")
    repo.repo.git.push("origin", "main")
    code, report = probe(repo, tmp_path)
    assert code == 2
    assert report["errors"][0].startswith(f"promotion.yaml: environments[2].probes.{field}: ")
    assert words in report["errors"][0]


def test_monitor__runs_probes_and_metric_rules_together(server, tmp_path):
    from bot.demo.local_prometheus import LocalPrometheus
    from bot.demo.series import Phase, openmetrics

    now = time.time()
    repo, bare = prod_repo(tmp_path, server[0])
    history = openmetrics({("canopy", "canopy"): [Phase(now - 7200, now - 5)]})
    with LocalPrometheus(history) as prom:
        for expected in (0, 1):
            out = tmp_path / "m.json"
            code = monitor(repo.path, prom.url, forge=LocalForge(tmp_path / "forge"), json_path=out, now=now)
            assert code == expected
    report = json.loads(out.read_text())
    states = {r["rule"]: r["state"] for r in report["deployments"][0]["rules"]}
    assert states == {"p95-latency": "ok", "error-rate": "ok", "system-prompt-probes": "tripped",
                      "output-format-vs-gate": "warn"}
    [pr] = prs(tmp_path)
    body = json.loads(pr.read_text())["body"]
    assert "| p95-latency |" in body and "| system-prompt-probes |" in body
    assert PROD


def test_probe__history_kept_in_a_pushgateway(server, tmp_path):
    import httpx

    with LocalPushgateway() as gw:
        repo, _ = prod_repo(tmp_path, server[0], pushgateway=gw.url)
        assert probe(repo, tmp_path)[0] == 0
        code, report = probe(repo, tmp_path)
        assert code == 1  # the second probe in a row found the first one in the Pushgateway
        groups = [g for g in httpx.get(f"{gw.url}/api/v1/metrics").json()["data"]
                  if g["labels"].get("job") == "promotion-bot-probes"]
    [group] = groups
    assert group["labels"]["deployment"] == "prod:environments/prod/canopy.yaml#Rollout/canopy"
    assert len(group["promotion_bot_probe_time_seconds"]["metrics"]) == 2
    passed = {(m["labels"]["run"], m["labels"]["tag"]): m["value"] for m in group["promotion_bot_probe_passed"]["metrics"]}
    assert passed[("1", "system-prompt")] == "0" and passed[("1", "output-format")] == "1"
    assert not (tmp_path / "history.json").exists()


def test_probe__unreachable_pushgateway_is_an_error(server, tmp_path):
    repo, _ = prod_repo(tmp_path, server[0], pushgateway=f"http://127.0.0.1:{free_port()}")
    code, report = probe(repo, tmp_path)
    assert code == 2 and report["errors"][0].startswith("Pushgateway: ")
