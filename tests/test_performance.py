"""`performance`: GuideLLM against GuideLLM's own mock servers, started by the bot in command
mode with a latency per variant (tests/perf_mock_server.py), and the comparison rules."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from gitops import demo_like_repo
from tiny_tokenizer import write_tokenizer

from bot.cli import main
from bot.perf.compare import PerfLimits, decide
from bot.perf.guidellm import Measurement, Profile, command

MOCK = Path(__file__).parent / "perf_mock_server.py"


def policy(limits: str = "{ttft_p95: 50%, itl_p95: 50%, request_latency_p95: 50%, output_tokens_per_second: 50%}",
           data: str = "synthetic") -> str:
    return textwrap.dedent(f"""\
        version: 1
        models:
          canopy-tiny: {{baseline: v1.0-fp32}}
        serve:
          mode: command
          command: ["{sys.executable}", "{MOCK}", "{{variant}}", "{{port}}"]
          model: "{{variant}}"
          timeout: 60s
        environments:
          - name: test
            gate: [{{check: zoo}}]
          - name: staging
            gate:
              - check: performance
                tokenizer: tokenizers/tiny
                profile: concurrent
                rate: 2
                requests: 8
                prompt_tokens: 16
                output_tokens: 16
                limits: {limits}
                data: "{data}"
        """)


def run_perf(tmp_path, candidate: str, **policy_args):
    repo = demo_like_repo(tmp_path / "gitops", policy=policy(**policy_args))
    write_tokenizer(repo.path / "tokenizers" / "tiny")
    for suite in (Path(__file__).parent.parent / "evals" / "canopy").glob("*.yaml"):
        repo.write(f"evals/canopy/{suite.name}", suite.read_text())
    repo.commit("Tokenizer for the benchmark's synthetic prompts")
    repo.set_variant("staging", f"canopy-tiny/{candidate}")
    repo.commit(f"Promote {candidate} to staging")
    out_json, out_md = tmp_path / "report.json", tmp_path / "comment.md"
    code = main(["check", "--repo", str(repo.path), "--base", "HEAD~1", "--head", "HEAD", "--json", str(out_json),
                 "--comment", str(out_md), "--cache", str(tmp_path / "cache"), "--workdir", str(tmp_path / "work")])
    [check] = json.loads(out_json.read_text())["promotions"][0]["checks"]
    return code, check, out_md.read_text()


def test_performance__slower_candidate_fails(tmp_path):
    code, check, comment = run_perf(tmp_path, "v1.4-int2-g64")
    assert check["verdict"] == "fail", check
    assert code == 1
    rows = {r["label"]: r for r in check["rows"]}
    assert rows["TTFT p95 (ms)"]["verdict"] == "fail" and rows["TTFT p95 (ms)"]["delta"] > 0.5
    assert rows["output tokens per second"]["verdict"] == "fail"
    assert "TTFT p95 (ms) +" in check["detail"]
    for artifact in check["artifacts"]:
        assert (tmp_path / "work" / "results" / artifact).stat().st_size > 1000
    assert sorted(a.rsplit("/", 1)[1] for a in check["artifacts"]) == ["baseline.html", "baseline.json",
                                                                        "candidate.html", "candidate.json"]
    assert "candidate.html" in comment


def test_performance__faster_candidate_passes_on_the_suite_prompts(tmp_path):
    code, check, _ = run_perf(tmp_path, "v1.1-int8", data="suites:evals/canopy")
    assert check["verdict"] == "pass", check
    prompts = (tmp_path / "work" / "results" / check["artifacts"][0]).parent / "prompts.jsonl"
    assert json.loads(prompts.read_text().splitlines()[0])["prompt"] == "Find the section about gravity in chapter 7 of the textbook."
    rows = {r["label"]: r for r in check["rows"]}
    assert rows["TTFT p95 (ms)"]["delta"] < 0
    assert rows["error rate (0/8 vs 0/8)"]["verdict"] == "pass"


def test_performance__higher_error_rate_fails(tmp_path):
    code, check, _ = run_perf(tmp_path, "v1.3-int4-g64")
    assert check["verdict"] == "fail", check
    error_row = next(r for r in check["rows"] if r["label"].startswith("error rate"))
    assert error_row["verdict"] == "fail" and error_row["candidate"] > 0 and error_row["baseline"] == 0
    assert "error rate" in check["detail"]


def measurement(**kw) -> Measurement:
    values = dict(ttft_p95_ms=100.0, itl_p95_ms=10.0, request_latency_p95_s=1.0, output_tokens_per_s=50.0,
                  successful=10, errored=0, incomplete=0, json_report=Path("b.json"), html_report=Path("b.html"))
    values.update(kw)
    return Measurement(**values)


@pytest.mark.parametrize("candidate, verdict, words", [
    (measurement(ttft_p95_ms=109.0), "pass", "within its limit"),
    (measurement(ttft_p95_ms=111.0), "fail", "TTFT p95 (ms) +11.0%"),
    (measurement(output_tokens_per_s=44.0), "fail", "output tokens per second -12.0%"),
    (measurement(output_tokens_per_s=80.0, itl_p95_ms=5.0), "pass", "within its limit"),
    (measurement(errored=1, successful=9), "fail", "error rate 10%"),
    (measurement(successful=0, errored=10, ttft_p95_ms=None, itl_p95_ms=None, request_latency_p95_s=None,
                 output_tokens_per_s=None), "fail", "no successful request against the candidate"),
    (measurement(itl_p95_ms=None), "error", "no inter-token latency"),
])
def test_performance_decide__limits_and_errors(candidate, verdict, words):
    result = decide("performance", PerfLimits(), candidate, measurement())
    assert result.verdict == verdict
    assert words in result.detail


def test_performance_decide__baseline_without_successes_is_an_error():
    dead = measurement(successful=0, errored=5, ttft_p95_ms=None, itl_p95_ms=None, request_latency_p95_s=None,
                       output_tokens_per_s=None)
    assert decide("performance", PerfLimits(), measurement(), dead).verdict == "error"


def test_guidellm_command__drops_ignore_eos_and_pins_the_load(tmp_path):
    argv = command("http://127.0.0.1:8000/v1", "canopy", Profile(requests=5, seed=7), tmp_path / "tok", tmp_path, "candidate")
    backend = json.loads(argv[argv.index("--backend") + 1])
    assert backend["extras"] == {"body": {"ignore_eos": None}}
    assert "kind=static,value=7" in argv and "kind=max_requests,count=5" in argv


def test_performance_options__bad_values_name_the_field():
    from bot.errors import InputError
    from bot.policy_load import parse as parse_policy

    with pytest.raises(InputError) as err:
        parse_policy(policy(limits="{ttft: 10%}"))
    assert err.value.field == "environments[1].gate[0].limits.ttft" and "ttft_p95" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(limits="{ttft_p95: 0.1}"))
    assert "percentage" in str(err.value)
