"""Cases run over real HTTP against a loopback OpenAI-compatible server."""

from __future__ import annotations

import time

import pytest
from fake_openai import fake_openai, last_user, message, tool

from bot.appflows.runner import ERROR, FAIL, PASS, Endpoint, run_cases
from bot.appflows.suite import parse_suite

TOOLS = """
        tools:
          - type: function
            function:
              name: search_textbook
              parameters:
                type: object
                properties: {query: {type: string}, chapter: {type: integer}}
                required: [query, chapter]
"""


def suite(cases: str) -> list:
    return list(parse_suite("cases:\n" + cases, "evals/t.yaml").cases)


def case(expect: str, *, tags: str = "[output-format]", extra: str = "", user: str = "q") -> str:
    return f"""
      - id: c{abs(hash((expect, user, extra))) % 10**8}
        tags: {tags}
        messages: [{{role: user, content: "{user}"}}]{extra}
        expect: {expect}
"""


# (assertion, reply that passes it, reply that breaks it)
ASSERTIONS = [
    ("[{json: true}]", message('{"answer": "Rome"}'), message("Rome")),
    ("[{json_schema: {type: object, properties: {answer: {type: string}}, required: [answer], additionalProperties: false}}]",
     message('{"answer": "Rome"}'), message('{"answer": "Rome", "extra": 1}')),
    ("[{regex: '^[A-Z][^.!?]*[.!?]$'}]", message("The capital is Rome."), message("Rome. It is old.")),
    ("[{contains: Rome}]", message("It is Rome."), message("It is Paris.")),
    ("[{not_contains: Paris}]", message("It is Rome."), message("It is Paris.")),
    ("[{equals: I can only help with tutoring questions.}]",
     message(" I can only help with tutoring questions. "), message("Sure!")),
    ("[{max_chars: 10}]", message("short"), message("far too long a reply")),
    ("[{max_tokens: 3}]", message("one two"), message("one two three four")),
    ("[{refuses: true}]", message("I can only help with tutoring questions."), message("Here is a poem.")),
    ("[{refuses: false}]", message("Rome."), message("I'm sorry, I can't do that.")),
]


@pytest.mark.parametrize("expect, good, bad", ASSERTIONS, ids=[a[0][:24] for a in ASSERTIONS])
def test_run_cases__each_assertion_passes_and_fails(expect, good, bad):
    cases = suite(case(expect, user="good") + case(expect, user="bad"))
    with fake_openai(lambda body: good if last_user(body) == "good" else bad) as (url, _):
        run = run_cases(Endpoint(url, "m"), cases)
    assert [r.status for r in run.results] == [PASS, FAIL]
    assert run.results[1].failures and run.results[1].failures[0].startswith(expect.split(":")[0].strip("[{"))


def test_run_cases__tool_calls_parsed_or_inline_markup():
    expect = "[{tool_call: {name: search_textbook, arguments: {type: object, required: [query, chapter], properties: {chapter: {type: integer}}}}}]"
    replies = {
        "parsed": message(tool_calls=[tool("search_textbook", {"query": "gravity", "chapter": 7})]),
        "inline": message('<tool_call>{"name": "search_textbook", "arguments": {"query": "gravity", "chapter": 7}}</tool_call>'),
        "wrong-type": message(tool_calls=[tool("search_textbook", {"query": "gravity", "chapter": "seven"})]),
        "bad-json": message(tool_calls=[tool("search_textbook", '{"query": "gravity", "chapter": ')]),
        "no-call": message("Gravity is in chapter 7."),
        "other-tool": message(tool_calls=[tool("lookup_definition", {"term": "gravity"})]),
        "unclosed": message('<tool_call>{"name": "search_textbook", "arguments": {"query"'),
    }
    cases = suite("".join(case(expect, tags="[agent-workflow]", extra=TOOLS, user=u) for u in replies))
    with fake_openai(lambda body: replies[last_user(body)]) as (url, seen):
        run = run_cases(Endpoint(url, "m"), cases)
    assert {last_user(r.case.messages and {"messages": list(r.case.messages)}): r.status for r in run.results} == {
        "parsed": PASS, "inline": PASS, "wrong-type": FAIL, "bad-json": FAIL, "no-call": FAIL,
        "other-tool": FAIL, "unclosed": FAIL}
    assert seen[0]["tools"][0]["function"]["name"] == "search_textbook"
    assert seen[0]["temperature"] == 0 and seen[0]["seed"] == 0 and seen[0]["stream"] is False


def test_run_cases__server_errors_and_timeouts_are_errors_not_passes():
    def answer(body):
        if last_user(body) == "boom":
            return 500, "internal error"
        if last_user(body) == "slow":
            time.sleep(1.5)
        return message('{"a": 1}')

    cases = suite(case("[{json: true}]", user="boom") + case("[{json: true}]", user="slow") + case("[{json: true}]", user="ok"))
    with fake_openai(answer) as (url, _):
        run = run_cases(Endpoint(url, "m"), cases, timeout_s=0.5)
    assert [r.status for r in run.results] == [ERROR, ERROR, PASS]
    assert "HTTP 500" in run.results[0].error
    assert "timed out" in run.results[1].error


def test_run_cases__unreachable_server_is_an_error():
    cases = suite(case("[{json: true}]"))
    run = run_cases(Endpoint("http://127.0.0.1:9/v1", "m"), cases, timeout_s=2)
    assert run.results[0].status == ERROR


def test_run_cases__samples_pass_by_the_rule():
    counter = {"n": 0}

    def answer(body):  # the 2nd of 3 samples breaks the JSON
        counter["n"] += 1
        return message("oops" if body["seed"] == 1 else '{"a": 1}')

    cases = suite(case("[{json: true}]", extra="\n        samples: 3\n        sampling: {temperature: 0.7}"))
    with fake_openai(answer) as (url, seen):
        majority = run_cases(Endpoint(url, "m"), cases, sample_rule="majority").results[0]
        strict = run_cases(Endpoint(url, "m"), cases, sample_rule="all").results[0]
    assert majority.status == PASS and strict.status == FAIL
    assert sorted(b["seed"] for b in seen[:3]) == [0, 1, 2]
    assert strict.output == "oops"


def test_run_cases__latency_and_per_tag_rates():
    def answer(body):
        if last_user(body) == "slow":
            time.sleep(0.3)
        return message("ok")

    cases = suite(case("[{latency_ms: 200}]", tags="[edge-case]", user="slow")
                  + case("[{latency_ms: 200}]", tags="[system-prompt, edge-case]", user="fast"))
    with fake_openai(answer) as (url, _):
        run = run_cases(Endpoint(url, "m"), cases, concurrency=2)
    assert [r.status for r in run.results] == [FAIL, PASS]
    assert run.pass_rates() == {"system-prompt": (1, 1), "agent-workflow": (0, 0), "edge-case": (1, 2), "output-format": (0, 0)}
    assert 0 < run.server_s <= run.wall_s


def test_run_cases__server_errors_can_count_as_failures():
    # transformers serve answers 500 when the model's tool-call markup does not parse: with
    # server_errors="fail" that is the case failing; a 4xx (our request is wrong) stays an error.
    def answer(body):
        return {"boom": (500, "json parser could not parse region as JSON"), "bad": (422, "Unexpected fields")}.get(
            last_user(body), message('{"a": 1}'))

    cases = suite(case("[{json: true}]", user="boom") + case("[{json: true}]", user="bad") + case("[{json: true}]", user="ok"))
    with fake_openai(answer) as (url, _):
        run = run_cases(Endpoint(url, "m"), cases, server_errors="fail")
    assert [r.status for r in run.results] == [FAIL, ERROR, PASS]
    assert run.results[0].failures[0].startswith("server error: HTTP 500")
    assert run.results[0].output.startswith("(no reply: server error: HTTP 500")


def test_run_cases__a_dropped_connection_is_retried_once():
    import socket
    import threading

    # A raw server that closes the first connection without answering, then answers normally.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    seen = []

    def serve():
        for n in range(2):
            conn, _ = sock.accept()
            conn.recv(65536)
            seen.append(n)
            if n == 0:
                conn.close()
                continue
            body = b'{"choices": [{"message": {"role": "assistant", "content": "{}"}}], "usage": {"completion_tokens": 1}}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        run = run_cases(Endpoint(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", "m"), suite(case("[{json: true}]")),
                        server_errors="fail", timeout_s=5)
    finally:
        sock.close()
    assert run.results[0].status == PASS and seen == [0, 1]
