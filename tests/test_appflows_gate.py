"""`app-flows` end to end: `promotion-bot check` on a real Git repo, both variants served in
url mode by a loopback OpenAI-compatible server that answers per variant."""

from __future__ import annotations

import json
import textwrap

import pytest
from fake_openai import fake_openai, last_user, message, tool
from gitops import demo_like_repo

from bot.cli import main

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
      - id: refuse-poem
        tags: [edge-case]
        messages: [{role: user, content: poem}]
        expect: [{refuses: true}]
      - id: tool-gravity
        tags: [agent-workflow]
        tools:
          - type: function
            function:
              name: lookup_definition
              parameters: {type: object, properties: {term: {type: string}}, required: [term]}
        messages: [{role: user, content: gravity}]
        expect: [{tool_call: {name: lookup_definition, arguments: {type: object, required: [term]}}}]
      - id: sentence
        tags: [system-prompt]
        system: You are Canopy. Answer in exactly one sentence.
        messages: [{role: user, content: sentence}]
        expect: [{regex: '^[^.!?]+[.!?]$'}]
    """)

GOOD = {
    "italy": message('{"answer": "Rome", "topic": "geography"}'),
    "spain": message('{"answer": "Madrid", "topic": "geography"}'),
    "poem": message("I can only help with tutoring questions."),
    "gravity": message(tool_calls=[tool("lookup_definition", {"term": "gravity"})]),
    "sentence": message("Gravity pulls objects together."),
}
# The broken candidate: Markdown and HTML in its output must not reach the comment as markup.
BROKEN = dict(GOOD, italy=message("**Rome** <img src=x onerror=alert(1)> @admin | ``` "),
              gravity=message('<tool_call>{"name": "lookup_definition", "arguments": "gravity"}</tool_call>'))


def policy(url: str, gate_extra: str = "", shards: int = 1) -> str:
    """A policy whose staging gate is app-flows alone; ``gate_extra`` lines are its extra options."""
    text = textwrap.dedent(f"""\
        version: 1
        models:
          canopy-tiny: {{baseline: v1.0-fp32}}
        serve:
          mode: url
          url: "{url}"
          timeout: 10s
        environments:
          - name: test
            gate: [{{check: zoo}}]
          - name: staging
            gate:
              - check: app-flows
                suites: evals/canopy
        """)
    if shards > 1:
        text += f"        shards: {shards}\n"
    return text + "".join(f"        {line.strip()}\n" for line in gate_extra.splitlines() if line.strip())


def repo_with(tmp_path, url: str, candidate: str, **kw):
    repo = demo_like_repo(tmp_path / "gitops", policy=policy(url, **kw))
    repo.write("evals/canopy/flows.yaml", SUITE)
    repo.commit("Add the app-flow suite")
    repo.set_variant("staging", f"canopy-tiny/{candidate}")
    repo.commit(f"Promote {candidate} to staging")
    return repo


def run_check(repo, tmp_path):
    out_json, out_md = tmp_path / "report.json", tmp_path / "comment.md"
    code = main(["check", "--repo", str(repo.path), "--base", "HEAD~1", "--head", "HEAD", "--json", str(out_json),
                 "--comment", str(out_md), "--cache", str(tmp_path / "cache"), "--workdir", str(tmp_path / "work")])
    report = json.loads(out_json.read_text())
    [check] = report["promotions"][0]["checks"]
    return code, check, out_md.read_text()


def answer_by_variant(table):
    def answer(body):
        replies = table.get(body["model"], GOOD)
        out = replies[last_user(body)]
        return out() if callable(out) else out
    return answer


@pytest.fixture
def server():
    with fake_openai(answer_by_variant({"v1.4-int2-g64": BROKEN})) as (url, seen):
        yield url.removesuffix("/v1") + "/{variant}/v1", seen


def test_app_flows__equal_candidate_passes(server, tmp_path):
    url, seen = server
    code, check, comment = run_check(repo_with(tmp_path, url, "v1.1-int8"), tmp_path)
    assert check["verdict"] == "pass", check
    assert code == 0
    assert check["candidate"] == "5/5 passed" and check["baseline"] == "5/5 passed"
    assert [r["label"].split(" ")[0] for r in check["rows"]] == ["system-prompt", "agent-workflow", "edge-case", "output-format"]
    assert {b["model"] for b in seen} == {"v1.1-int8", "v1.0-fp32"}
    assert check["artifacts"] and (tmp_path / "work" / "results" / check["artifacts"][0]).is_file()


def test_app_flows__regressions_fail_and_are_listed_escaped(server, tmp_path):
    url, _ = server
    code, check, comment = run_check(repo_with(tmp_path, url, "v1.4-int2-g64"), tmp_path)
    assert code == 1 and check["verdict"] == "fail"
    assert "2 case(s) pass on the baseline and fail on the candidate" in check["detail"]
    titles = [f["title"] for f in check["findings"]]
    assert titles[0].startswith("flows/json-italy: json: not valid JSON")
    assert titles[1].startswith("flows/tool-gravity: tool_call: lookup_definition: arguments are not a JSON object")
    assert check["findings"][0]["tag"] == "output-format"
    assert check["findings"][0]["baseline_output"] == '{"answer": "Rome", "topic": "geography"}'
    rows = {r["label"].split(" ")[0]: r for r in check["rows"]}
    assert rows["output-format"]["verdict"] == "fail" and rows["edge-case"]["verdict"] == "pass"
    assert rows["output-format"]["candidate"] == 0.5 and rows["output-format"]["baseline"] == 1.0
    # The answer's first line sits in a code span longer than any backtick run in it.
    span = "```` **Rome** <img src=x onerror=alert(1)> @admin \\| ``` ````"
    assert f"candidate said: {span}" in comment
    assert "<img" not in comment.replace(span, "")
    assert "required: valid JSON; contains 'Rome'" in comment


def test_app_flows__four_shards_equal_one_run(server, tmp_path):
    url, _ = server
    _, whole, _ = run_check(repo_with(tmp_path / "one", url, "v1.4-int2-g64"), tmp_path / "one")
    _, sharded, _ = run_check(repo_with(tmp_path / "four", url, "v1.4-int2-g64", shards=4), tmp_path / "four")
    for key in ("verdict", "candidate", "baseline", "threshold", "detail", "rows", "findings", "notes"):
        assert sharded[key] == whole[key], key
    assert len(sharded["artifacts"]) == 4


def test_app_flows__server_errors_make_the_check_an_error(tmp_path):
    broken = dict(GOOD, spain=(500, "CUDA out of memory"))
    with fake_openai(answer_by_variant({"v1.1-int8": broken})) as (url, _):
        url = url.removesuffix("/v1") + "/{variant}/v1"
        code, check, _ = run_check(repo_with(tmp_path / "a", url, "v1.1-int8"), tmp_path / "a")
        assert code == 2 and check["verdict"] == "error"
        assert "1 candidate and 0 baseline case(s) could not be judged" in check["detail"]
        assert "HTTP 500" in check["detail"]
        code, check, _ = run_check(repo_with(tmp_path / "b", url, "v1.1-int8", gate_extra="\n        max_errors: 1"), tmp_path / "b")
        assert check["verdict"] == "pass"


def test_app_flows__server_errors_fail_counts_a_crashing_reply_as_a_regression(tmp_path):
    broken = dict(GOOD, gravity=(500, "json parser could not parse region as JSON"))
    with fake_openai(answer_by_variant({"v1.4-int2-g64": broken})) as (url, _):
        url = url.removesuffix("/v1") + "/{variant}/v1"
        code, check, comment = run_check(repo_with(tmp_path, url, "v1.4-int2-g64", gate_extra="server_errors: fail"), tmp_path)
    assert code == 1 and check["verdict"] == "fail", check
    [finding] = check["findings"]
    assert finding["title"].startswith("flows/tool-gravity: server error: HTTP 500")


def test_app_flows__min_pass_rate_and_baseline_failures(tmp_path):
    # The baseline breaks one case itself: it cannot regress, the comment says so, and the
    # candidate's own pass rate still has to reach the minimum.
    weak = dict(GOOD, sentence=message("Two. Sentences."))
    with fake_openai(answer_by_variant({"v1.0-fp32": weak, "v1.1-int8": weak})) as (url, _):
        url = url.removesuffix("/v1") + "/{variant}/v1"
        code, check, comment = run_check(repo_with(tmp_path, url, "v1.1-int8", gate_extra="\n        min_pass_rate: 90%"), tmp_path)
    assert check["verdict"] == "fail"
    assert "candidate passes 4/5 (80%), under the minimum 90%" in check["detail"]
    # A doubt at the top: the baseline's own failure, and below why it failed and what it said.
    assert "the baseline fails 1 case(s)" in check["warnings"][0]
    assert comment.index("the baseline fails 1 case(s)") < comment.index("What changed")
    [why] = [f for f in check["findings"] if f.get("side") == "baseline"]
    assert why["title"].startswith("flows/sentence fails on the baseline: ") and "baseline said:" in comment


def test_app_flows__bad_policy_options_name_the_field(tmp_path):
    from bot.checks.load_policy import parse as parse_policy
    from bot.core.errors import InputError

    with pytest.raises(InputError) as err:
        parse_policy(policy("http://x/{variant}/v1", gate_extra="\n        max_regresions: 1"))
    assert err.value.field == "environments[1].gate[0].max_regresions" and "max_regressions" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy("http://x/{variant}/v1", gate_extra="\n        min_pass_rate: 0.9"))
    assert "percentage" in str(err.value)
