"""`performance` with `expect:`: a required win judged like a limit (the interval must lie wholly
beyond it), and the servers' peak memory; on rounds built to a known answer and on GuideLLM's
mock servers (tests/perf_mock_server.py)."""

from __future__ import annotations

import pytest
from test_performance import policy, rounds, run_perf

from bot.checks.load_policy import parse as parse_policy
from bot.core.errors import InputError
from bot.perf.compare import PeakMemory, compare
from bot.perf.options import MB, PerfLimits

THROUGHPUT_WIN = PerfLimits(expect={"output_tokens_per_second": 0.20})


def rows_by_label(result):
    return {r.label: r for r in result.rows}


def test_performance_expect__as_fast_as_the_baseline_is_no_speed_up():
    base, cand = rounds(1.0, spread=0.02)
    result = compare("performance", THROUGHPUT_WIN, base, cand)
    row = rows_by_label(result)["output tokens per second"]
    assert result.verdict == "fail" and row.verdict == "fail"
    # Worse-by scale: the expected +20% is a limit of −20%, and the whole interval sits right of it.
    assert row.evidence.limit == pytest.approx(-0.20) and row.evidence.interval.low > -0.20
    assert row.threshold == "better by ≥ 20%"
    assert result.detail.startswith("no speed-up: throughput ") and "expected better by ≥ 20%" in result.detail
    # The other metrics keep their default limits: identical latencies pass them.
    assert all(r.verdict == "pass" for r in result.rows[:3]), result.rows


def test_performance_expect__served_faster_passes():
    base, cand = rounds(0.5, spread=0.02)  # half the latency, twice the tokens per second
    result = compare("performance", PerfLimits(expect={"output_tokens_per_second": 0.20, "ttft": -0.15}), base, cand)
    assert result.verdict == "pass", result.detail
    rows = rows_by_label(result)
    assert rows["output tokens per second"].delta == pytest.approx(-1.0, abs=0.05)  # 2× = "100% better"
    assert rows["TTFT (ms)"].threshold == "better by ≥ 15%" and rows["TTFT (ms)"].verdict == "pass"
    assert "beyond its expected win" in result.detail and "throughput better by " in result.detail


def test_performance_expect__a_win_near_the_promise_is_inconclusive_with_a_count():
    base, cand = rounds(1 / 1.2, pairs=2, n=4, spread=0.3, seed=5)  # about the promised 20%, noisy
    result = compare("performance", PerfLimits(expect={"ttft": -0.20}), base, cand)
    ttft = rows_by_label(result)["TTFT (ms)"]
    assert ttft.evidence.interval.low <= -0.20 < ttft.evidence.interval.high
    assert ttft.verdict == "inconclusive" and ttft.evidence.settle_n > ttft.evidence.interval.n
    assert "expected better by ≥ 20%: at 16 requests, about" in result.detail


def test_performance_memory__a_promised_reduction_is_judged_on_the_peaks():
    base, cand = rounds(1.0, spread=0.02)
    smaller = PeakMemory(candidate=300 * MB, baseline=400 * MB)
    limits = PerfLimits(expect={"peak_memory": -0.30})
    result = compare("performance", limits, base, cand, memory=smaller)
    row = rows_by_label(result)["peak memory (MB)"]
    assert (row.candidate, row.baseline, row.delta) == (300, 400, pytest.approx(-0.25))
    assert row.verdict == "fail" and row.evidence is None and row.stderr == "one peak reading per side"
    assert result.verdict == "fail" and "no memory reduction: peak memory better by 25.00% (300 MB against 400 MB), " \
        "expected better by ≥ 30%" in result.detail
    result = compare("performance", PerfLimits(expect={"peak_memory": -0.20}), base, cand, memory=smaller)
    assert result.verdict == "pass" and "peak memory better by 25.00% (better by ≥ 20%)" in result.detail


def test_performance_memory__shown_unjudged_without_a_limit_and_an_error_when_unreadable():
    base, cand = rounds(1.0, spread=0.02)
    result = compare("performance", PerfLimits(), base, cand, memory=PeakMemory(500 * MB, 400 * MB))
    row = rows_by_label(result)["peak memory (MB)"]
    assert row.verdict == "skipped" and row.delta == pytest.approx(0.25) and result.verdict == "pass"
    assert compare("performance", PerfLimits(memory_limit=0.10), base, cand,
                  memory=PeakMemory(500 * MB, 400 * MB)).verdict == "fail"
    # Fail closed: a memory expectation that cannot be read is an error, not a pass.
    unread = PeakMemory(None, None, "the servers run elsewhere (`serve: {mode: url}`)")
    result = compare("performance", PerfLimits(expect={"peak_memory": -0.30}), base, cand, memory=unread)
    assert result.verdict == "error" and "the servers run elsewhere" in result.detail
    assert compare("performance", PerfLimits(), base, cand, memory=unread).verdict == "pass"


def test_performance_options__expect_needs_the_direction_of_a_win():
    parsed = parse_policy(policy(extra="expect: {output_tokens_per_second: +20%, ttft_p95: -15%, peak_memory: -30%}\n"))
    limits = parsed.environments[1].gate[0].options.limits
    assert limits.expect == {"output_tokens_per_second": 0.20, "ttft": -0.15, "peak_memory": -0.30}
    with pytest.raises(InputError) as err:
        parse_policy(policy(extra="expect: {ttft: 15%}\n"))
    assert err.value.field.endswith(".expect.ttft") and "lower value" in str(err.value) and "ttft: -15%" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(extra="expect: {output_tokens_per_second: -20%}\n"))
    assert "higher value" in str(err.value) and "output_tokens_per_second: +20%" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(limits="{ttft: 10%}", extra="expect: {ttft: -15%}\n"))
    assert err.value.field.endswith(".limits.ttft") and "keep one" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(extra="expect: {throughput: +20%}\n"))
    assert err.value.field.endswith(".expect.throughput") and "output_tokens_per_second" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(limits="{output_tokens_per_second: -20%}"))
    assert "expect: {output_tokens_per_second: +20%}" in str(err.value)


# --- on GuideLLM's mock servers, served by the bot in command mode ---------------------------------

# Throughput exists per round only, so its interval rests on the pairs of rounds, in looks until it
# settles: 4× slower mock requests (~0.7 s each), where a busy machine's scheduling delay is a few percent.
STEADY = dict(latency_scale=4)

def test_performance__as_fast_as_the_baseline_fails_an_expected_throughput_win(tmp_path):
    code, check, comment = run_perf(tmp_path, "v1.2-int4-g128", **STEADY, extra="expect: {output_tokens_per_second: +20%}\n")
    assert check["verdict"] == "fail" and code == 1, check
    rows = {r["label"]: r for r in check["rows"]}
    tps = rows["output tokens per second"]
    assert tps["verdict"] == "fail" and tps["evidence"]["limit"] == pytest.approx(-0.20)
    assert "no speed-up: throughput" in check["detail"] and "expected better by ≥ 20%" in check["detail"]
    assert "no speed-up: throughput" in comment
    # The mock servers' own peak resident memory, read from their process trees: shown, not judged.
    memory = rows["peak memory (MB)"]
    assert memory["verdict"] == "skipped" and 10 < memory["candidate"] < 2000 and 10 < memory["baseline"] < 2000


def test_performance__served_faster_passes_an_expected_throughput_win(tmp_path):
    code, check, _ = run_perf(tmp_path, "v1.1-int8", **STEADY, extra="expect: {output_tokens_per_second: +20%}\n")
    assert check["verdict"] == "pass" and code == 0, check
    tps = next(r for r in check["rows"] if r["label"] == "output tokens per second")
    assert tps["verdict"] == "pass" and tps["evidence"]["interval"]["high"] < -0.20
