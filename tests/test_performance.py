"""`performance`: GuideLLM against GuideLLM's own mock servers, started by the bot in command
mode with a latency per variant (tests/perf_mock_server.py), and the comparison rules."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from gitops import demo_like_repo
from tiny_tokenizer import write_tokenizer

from bot.cli import main
from bot.core.errors import ExternalError
from bot.perf.compare import compare
from bot.perf.guidellm import Profile, Round, command, read_round
from bot.perf.options import PerfLimits
from bot.perf.rounds import pairs_in_order, round_name, unaccounted, unaccounted_in

MOCK = Path(__file__).parent / "perf_mock_server.py"


def policy(limits: str = "{}", data: str = "synthetic", extra: str = "", latency_scale: float = 1.0) -> str:
    """The check at its defaults (requests, rounds and looks untuned), against the mock servers."""
    return textwrap.dedent(f"""\
        version: 1
        models:
          canopy-tiny: {{baseline: v1.0-fp32}}
        serve:
          mode: command
          command: ["{sys.executable}", "{MOCK}", "{{variant}}", "{{port}}", "{latency_scale:g}"]
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
                prompt_tokens: 16
                output_tokens: 16
                limits: {limits}
                data: "{data}"
        """) + textwrap.indent(extra, " " * 8)


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


def guidellm_dir(tmp_path, check) -> Path:
    return (tmp_path / "work" / "results" / check["artifacts"][0]).parent


# Latencies 4× the mock's defaults (~0.7 s a request): a busy machine's scheduling delay is then a
# few percent of each, so the verdicts below settle with margin at load 6 as well.
MARGIN = dict(latency_scale=4)


def test_performance__candidate_1_5x_slower_fails_at_10pct_and_stops_early(tmp_path):
    code, check, comment = run_perf(tmp_path, "v1.4-int2-g64", **MARGIN)
    assert check["verdict"] == "fail", check
    assert code == 1
    [looked] = [f["sequential"] for f in check["findings"] if "sequential" in f]
    pairs = looked["observations"]
    assert looked["unit"] == "round pairs" and looked["looks"] == [2, 4, 8, 16] and pairs < 16  # settled early
    rows = {r["label"]: r for r in check["rows"]}
    # On a busy machine a metric may stay inconclusive, but none passes and at least one fails outright.
    for label in ("TTFT (ms)", "inter-token latency (ms)", "request latency (s)"):
        evidence = rows[label]["evidence"]
        assert rows[label]["verdict"] in ("fail", "inconclusive") and 0.2 < rows[label]["delta"] < 0.8, rows[label]
        # Every request of every round, both sides (a request that timed nothing for a metric is left out).
        assert 0.9 * 2 * 8 * pairs <= evidence["interval"]["n"] <= 2 * 8 * pairs, evidence
        assert evidence["limit"] == 0.10 and evidence["observations"] == "requests"
    failed = [r for r in rows.values() if r["verdict"] == "fail" and r["evidence"]]
    assert failed and all(r["evidence"]["interval"]["low"] > 0.10 for r in failed), rows
    assert check["detail"].startswith(f"stopped at {pairs} of 16 round pairs") and f"{failed[0]['label']} worse by " in check["detail"]
    # The rounds run B C C B B C C B ... across the looks, each with its own GuideLLM reports.
    names = [a.rsplit("/", 1)[1].split(".")[0] for a in check["artifacts"]][::2]
    assert [n.split("-")[1][0].upper() for n in names] == list("BCCB" * (pairs // 2)) and names[1] == "round2-candidate"
    assert names == [f"round{k}-{n.split('-')[1]}" for k, n in enumerate(names, 1)]
    for artifact in check["artifacts"]:
        assert (tmp_path / "work" / "results" / artifact).stat().st_size > 1000
    report = json.loads((guidellm_dir(tmp_path, check) / "round2-candidate.json").read_text())
    assert len(report["benchmarks"][0]["requests"]["successful"]) == 8  # `requests` per round
    # The comment names the artifacts' folder once, with its count (every round's HTML and JSON report).
    assert f"/guidellm/` ({2 * 2 * pairs} files)" in comment


def test_performance__identical_variants_never_fail(tmp_path):
    # A/A rarely settles at 10% on a shared CPU: four pairs say what the rest would (pass or inconclusive).
    code, check, _ = run_perf(tmp_path, "v1.2-int4-g128", **MARGIN, extra="max_rounds: 8\n")
    assert check["verdict"] in ("pass", "inconclusive"), check
    for row in check["rows"]:
        if row["label"] in ("peak memory (MB)", "server CPU per output token (ms)"):  # shown: no limit set
            assert row["verdict"] == "skipped" and row["threshold"].startswith("not judged"), row
            assert row["candidate"] > 0 and row["baseline"] > 0, row  # read from the servers the bot started
            continue
        assert row["verdict"] in ("pass", "inconclusive"), row
        if row["verdict"] == "inconclusive":
            assert row["evidence"]["settle_n"] > row["evidence"]["interval"]["n"], row
            assert f"about {row['evidence']['settle_n']} would settle it" in check["detail"]
    ttft = next(r for r in check["rows"] if r["label"] == "TTFT (ms)")["evidence"]["interval"]
    assert ttft["low"] <= 0.10


def test_performance__faster_candidate_passes_on_the_suite_prompts(tmp_path):
    code, check, _ = run_perf(tmp_path, "v1.1-int8", data="suites:evals/canopy", **MARGIN, extra="max_rounds: 8\n")
    # 2× faster: passes, or on a busy machine an interval too wide to say, never a fail.
    assert check["verdict"] in ("pass", "inconclusive"), check
    assert all(r["verdict"] != "fail" for r in check["rows"]), check["rows"]
    folder = guidellm_dir(tmp_path, check)
    first, second = (json.loads(line)["prompt"] for line in (folder / "prompts.jsonl").read_text().splitlines()[:2])
    assert first == "Find the section about gravity in chapter 7 of the textbook."
    # A pair's two rounds send the same prompts; the next pair the next ones.
    assert [json.loads(x)["prompt"] for x in (folder / "prompts-pair1.jsonl").read_text().splitlines()][:2] == [first, second]
    assert (folder / "prompts-pair2.jsonl").read_text() != (folder / "prompts-pair1.jsonl").read_text()
    rows = {r["label"]: r for r in check["rows"]}
    assert rows["TTFT (ms)"]["delta"] < 0 and rows["inter-token latency (ms)"]["delta"] < 0
    assert next(r for label, r in rows.items() if label.startswith("error rate"))["verdict"] == "pass"


def test_performance__higher_error_rate_fails_at_the_first_look(tmp_path):
    code, check, _ = run_perf(tmp_path, "v1.3-int4-g64")
    assert check["verdict"] == "fail", check
    assert check["detail"].startswith("stopped at 2 of 16 round pairs (look 1 of 4)")  # a count: no interval to wait for
    error_row = next(r for r in check["rows"] if r["label"].startswith("error rate"))
    assert error_row["verdict"] == "fail" and error_row["candidate"] > 0 and error_row["baseline"] == 0
    assert "error rate" in check["detail"]


def test_performance__sequential_order_says_so(tmp_path):
    code, check, comment = run_perf(tmp_path, "v1.4-int2-g64", extra="order: sequential\nmax_rounds: 8\n")
    assert check["verdict"] in ("fail", "inconclusive"), check
    assert any("order: sequential" in note for note in check["notes"])
    names = [a.rsplit("/", 1)[1] for a in check["artifacts"]][::2]
    assert names == [f"round{k}-{'baseline' if k <= 4 else 'candidate'}.html" for k in range(1, 9)]
    assert "order: sequential" in comment


def test_performance__the_time_budget_ends_the_looks_with_what_would_settle_them(tmp_path):
    code, check, _ = run_perf(tmp_path, "v1.2-int4-g128", extra="max_duration: 1s\nmax_rounds: 8\n")
    assert check["verdict"] in ("pass", "inconclusive"), check
    if check["verdict"] == "inconclusive":  # what an A/A run on this machine says after 2 pairs
        assert check["detail"].startswith("stopped at 2 of 4 round pairs (look 1 of 2)")
        assert any("time budget ran out after 4 rounds (`max_duration: 1s`)" in n for n in check["notes"])
        assert any(n.startswith("stopped at 2 of 4 round pairs (look 1 of 2): the check's budget ran out;")
                   for n in check["notes"]), check["notes"]
        # Each unsettled row has its count; the note says up front exactly where 8 rounds cannot reach it.
        unsettled = [r for r in check["rows"] if r["verdict"] == "inconclusive"]
        assert unsettled and all(r["evidence"]["settle_n"] > r["evidence"]["interval"]["n"] for r in unsettled)
        for row in unsettled:
            ev = row["evidence"]
            rounds = ev["settle_n"] if ev["observations"] == "rounds" else -(-ev["settle_n"] // 8)  # 8 requests a round
            note = (f"this runner cannot resolve 10% on {row['label']} within 8 rounds (`max_rounds`); "
                    f"it would need about {rounds}")
            assert (note in check["notes"]) == (rounds > 8), (row, check["notes"])


# --- the comparison on rounds built to a known answer -------------------------------------------

def make_round(name: str, ttft, itl=None, latency=None, *, tokens: int = 64, duration: float = 1.0,
               errored: int = 0) -> Round:
    ttft = tuple(float(v) for v in ttft)
    return Round(name=name, ttft_ms=ttft, itl_ms=tuple(itl if itl is not None else (v / 5 for v in ttft)),
                 latency_s=tuple(latency if latency is not None else (v / 100 for v in ttft)), output_tokens=tokens,
                 duration_s=duration, successful=len(ttft), errored=errored, incomplete=0, json_report=Path("r.json"))


def rounds(scale: float, pairs: int = 4, n: int = 12, seed: int = 0, spread: float = 0.05):
    """``pairs`` baseline and candidate rounds; the candidate's latencies ``scale`` × the baseline's."""
    rng = np.random.default_rng(seed)
    base, cand = [], []
    for i in range(pairs):
        b = 100 * np.exp(rng.normal(0, spread, n))
        c = 100 * scale * np.exp(rng.normal(0, spread, n))
        base.append(make_round(f"b{i}", b, duration=1.0 * (1 + rng.normal(0, 0.01))))
        cand.append(make_round(f"c{i}", c, duration=scale * (1 + rng.normal(0, 0.01))))
    return base, cand


def test_performance_decide__1_5x_slower_fails_every_metric():
    base, cand = rounds(1.5)
    result = compare("performance", PerfLimits(), base, cand)
    assert result.verdict == "fail"
    assert all(r.verdict == "fail" for r in result.rows[:4]), result.rows
    assert result.rows[0].delta == pytest.approx(0.5, abs=0.05)
    assert result.rows[3].delta == pytest.approx(1 - 1 / 1.5, abs=0.02)  # throughput: a third lower


def test_performance_decide__identical_and_steady_passes():
    base, cand = rounds(1.0, spread=0.02)
    result = compare("performance", PerfLimits(), base, cand)
    assert result.verdict == "pass", result.detail
    assert "every metric within its limit" in result.detail


def test_performance_decide__noisy_and_few_is_inconclusive_with_a_count():
    base, cand = rounds(1.0, pairs=2, n=3, spread=0.4, seed=3)
    result = compare("performance", PerfLimits(), base, cand)
    assert result.verdict == "inconclusive", result.detail
    ttft = result.rows[0]
    assert ttft.verdict == "inconclusive" and ttft.evidence.settle_n > 12
    assert f"at 12 requests, about {ttft.evidence.settle_n} would settle it" in result.detail


def test_performance_decide__two_pairs_far_apart_are_inconclusive_with_a_count_not_unbounded():
    """Two pairs of rounds whose shifts differ 4.5-fold (a busy runner): the t interval over the pairs
    has one degree of freedom, so its low end reads as a ratio of 0 in floating point. Its width is
    still finite: at the last look the row is inconclusive with the count that would settle it, not
    "too few … yet" and not an error."""
    base, cand = rounds(1.0, pairs=2, n=4, spread=0.01, seed=2)
    cand = [make_round(r.name, [v * math.exp(f) for v in r.ttft_ms], duration=r.duration_s)
            for r, f in zip(cand, (0.75, -0.75))]
    result = compare("performance", PerfLimits(), base, cand)
    ttft = result.rows[0]
    assert ttft.evidence.interval.low == -1.0 and ttft.verdict == "inconclusive", ttft
    assert result.verdict == "inconclusive", result.detail
    # The smallest count whose t interval over its pairs (4 requests a side each) clears 10%.
    assert 8 < ttft.evidence.settle_n < 100_000
    assert f"at 16 requests, about {ttft.evidence.settle_n} would settle it" in result.detail


def test_performance_decide__an_interval_straddling_the_limit_is_never_a_fail():
    base, cand = rounds(1.12, pairs=2, n=4, spread=0.3, seed=5)
    result = compare("performance", PerfLimits(), base, cand)
    ttft = result.rows[0]
    assert ttft.evidence.interval.low <= 0.10 < ttft.evidence.interval.high
    assert ttft.verdict == "inconclusive" and result.verdict == "inconclusive"


def test_performance_decide__higher_confidence_widens_the_interval():
    base, cand = rounds(1.0, spread=0.2, seed=1)
    narrow = compare("performance", PerfLimits(confidence=0.80), base, cand).rows[0].evidence.interval
    wide = compare("performance", PerfLimits(confidence=0.99), base, cand).rows[0].evidence.interval
    assert wide.low < narrow.low and wide.high > narrow.high and wide.level == pytest.approx(1 - 0.01 / 4)


def test_performance_decide__errors_and_missing_data():
    base, cand = rounds(1.0)
    more_errors = [make_round("c", r.ttft_ms, errored=2) for r in cand]
    result = compare("performance", PerfLimits(), base, more_errors)
    assert result.verdict == "fail" and "error rate" in result.detail
    no_itl = [Round(**{**r.__dict__, "itl_ms": ()}) for r in cand]
    result = compare("performance", PerfLimits(), base, no_itl)
    assert result.verdict == "error" and "no inter-token latency (ms) for the candidate" in result.detail
    # Failing requests leave too few timings for an interval: still a fail, not an error.
    mostly_failing = [Round(r.name, (40.0,), (8.0,), (0.2,), 16, 1.0, 1, 11, 0, r.json_report) for r in cand[:1]]
    result = compare("performance", PerfLimits(), base[:1], mostly_failing)
    assert result.verdict == "fail" and "error rate 92%" in result.detail and "are too few for a" in result.detail
    dead = [Round(r.name, (), (), (), 0, 1.0, 0, 12, 0, r.json_report) for r in cand]
    # A candidate that never answers fails on its error rate, which the detail says first.
    result = compare("performance", PerfLimits(), base, dead)
    assert result.verdict == "fail" and result.detail == ("error rate 100% against the baseline's 0%; "
                                                          "no successful request against the candidate")
    result = compare("performance", PerfLimits(), dead, base)
    assert result.verdict == "error"
    assert result.detail == "no successful request against the baseline: nothing to compare"


def test_performance_decide__too_few_requests_for_the_confidence_is_an_error_at_the_last_look_only():
    base, cand = rounds(1.0, pairs=1, n=3)
    result = compare("performance", PerfLimits(), base, cand)
    assert result.verdict == "error" and "6 requests are too few for a" in result.detail
    assert "raise `requests`" in result.detail
    # An earlier look at O'Brien–Fleming's 99.99%: 8 requests a side bound nothing yet, and a later
    # look may (the check goes on), so the row is unsettled, not broken.
    base, cand = rounds(1.0, pairs=2, n=4)
    early = compare("performance", PerfLimits(confidence=0.9999), base, cand, final=False)
    ttft = next(r for r in early.rows if r.label.startswith("TTFT"))
    assert ttft.verdict == "inconclusive" and ttft.evidence.interval.high == float("inf")
    assert early.verdict != "error" and "too few for a" in early.detail
    assert compare("performance", PerfLimits(confidence=0.9999), base, cand).verdict == "error"


def test_rounds_order__abba_interleaved_across_looks_and_sequential():
    assert pairs_in_order(0, 3) == [(0, "baseline"), (0, "candidate"), (1, "candidate"), (1, "baseline"),
                                    (2, "baseline"), (2, "candidate")]
    # A look that starts at an odd pair goes on with the pattern: C B, then B C.
    assert pairs_in_order(1, 3) == pairs_in_order(0, 3)[2:]
    assert pairs_in_order(0, 2, interleaved=False) == [(0, "baseline"), (1, "baseline"), (0, "candidate"), (1, "candidate")]
    # ABBA: over every four rounds the two sides' mean positions in time are equal.
    positions = {s: [k for k, (_, side) in enumerate(pairs_in_order(0, 4)) if side == s] for s in ("baseline", "candidate")}
    assert sum(positions["baseline"]) == sum(positions["candidate"])
    # A round's name is its place in the running order of all looks.
    assert [round_name(p, s, pairs=4) for p, s in pairs_in_order(0, 4)] == [
        f"round{k}-{s}" for k, (_, s) in enumerate(pairs_in_order(0, 4), 1)]
    assert [round_name(p, s, pairs=2, interleaved=False) for p, s in pairs_in_order(0, 2, interleaved=False)] == [
        "round1-baseline", "round2-baseline", "round3-candidate", "round4-candidate"]
    with pytest.raises(ValueError, match="no pairs"):
        pairs_in_order(2, 2)


def test_guidellm_command__drops_ignore_eos_and_pins_the_load(tmp_path):
    argv = command("http://127.0.0.1:8000/v1", "canopy", Profile(requests=5, seed=7), tmp_path / "tok", tmp_path, "candidate")
    assert argv[0] == "run"
    backend = json.loads(argv[argv.index("--backend") + 1])
    assert backend["extras"] == {"body": {"ignore_eos": None}}
    assert "kind=static,value=7" in argv and "kind=max_requests,count=5" in argv


def test_performance_options__bad_values_name_the_field():
    from bot.checks.load_policy import parse as parse_policy
    from bot.core.errors import InputError

    with pytest.raises(InputError) as err:
        parse_policy(policy(limits="{ttft_p50: 10%}"))
    assert err.value.field == "environments[1].gate[0].limits.ttft_p50" and "ttft" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(limits="{ttft: 0.1}"))
    assert "percentage" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(limits="{ttft: 10%, ttft_p95: 20%}"))
    assert err.value.field.endswith("limits.ttft_p95") and "keep only `ttft`" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(extra="order: parallel\n"))
    assert err.value.field.endswith(".order")
    with pytest.raises(InputError) as err:
        parse_policy(policy(extra="max_rounds: 7\n"))
    assert err.value.field.endswith(".max_rounds") and "max_rounds: 8" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(extra="rounds: 8\n"))
    assert err.value.field.endswith(".rounds") and "max_rounds: 8" in str(err.value)
    with pytest.raises(InputError) as err:
        parse_policy(policy(extra="confidence: 100%\n"))
    assert err.value.field.endswith(".confidence")


def test_performance_options__old_p95_names_still_set_the_limits():
    from bot.checks.load_policy import parse as parse_policy

    parsed = parse_policy(policy(limits="{ttft_p95: 20%, output_tokens_per_second: 5%}", extra="confidence: 90%\n"))
    options = parsed.environments[1].gate[0].options
    assert options.limits.relative == {"ttft": 0.20, "itl": 0.10, "request_latency": 0.10, "output_tokens_per_second": 0.05}
    assert parsed.environments[1].gate[0].rule.confidence == 0.90 and options.max_rounds == 32 and options.interleaved
    assert [options.round_profile(i).seed for i in range(4)] == [42, 43, 44, 45]
    assert options.round_profile(0).requests == 8  # per round
    assert (options.sequential.minimum, options.sequential.growth, options.max_duration_s) == (2, 2.0, 600.0)


def test_performance_decide__the_checks_error_is_shared_over_its_four_metrics():
    from bot.perf.compare import metric_level

    assert [m.key for m in PerfLimits().judged()] == ["ttft", "itl", "request_latency", "output_tokens_per_second"]
    assert metric_level(0.95) == pytest.approx(0.9875) and metric_level(0.90) == pytest.approx(0.975)
    judged_cpu = PerfLimits(relative={**PerfLimits().relative, "cpu_per_token": 0.1})
    assert len(judged_cpu.judged()) == 5 and metric_level(0.95, 5) == pytest.approx(0.99)


@pytest.mark.parametrize("failures, error, code, calls", [
    (1, "Cannot compile GenerativeMetrics: No measurement start or end times available.", 0, 3),
    (2, "Cannot compile GenerativeMetrics: No measurement start or end times available.", 0, 4),
    (3, "Cannot compile GenerativeMetrics: No measurement start or end times available.", 1, 3),
    (1, "connection refused", 1, 1),
])
def test_rounds_driver__a_round_guidellm_measured_nothing_runs_again(monkeypatch, tmp_path, capsys,
                                                                      failures, error, code, calls):
    import types

    from bot.perf import rounds as driver

    seen = []

    def fake_main(args, standalone_mode, prog_name):
        seen.append(args[0])
        if len(seen) <= failures:
            raise ValueError(error)

    # GuideLLM's CLI stands in: the driver's loop is what is tested, not GuideLLM.
    fake = types.ModuleType("guidellm.__main__")
    fake.cli = types.SimpleNamespace(main=fake_main)
    monkeypatch.setitem(sys.modules, "guidellm", types.ModuleType("guidellm"))
    monkeypatch.setitem(sys.modules, "guidellm.__main__", fake)
    rounds = [json.dumps({"name": "round1-baseline", "argv": ["a"]}), json.dumps({"name": "round2-candidate", "argv": ["b"]})]
    assert driver.main(rounds) == code
    assert len(seen) == calls
    out = capsys.readouterr().out
    assert ("running it again" in out) == ("No measurement" in error)
    assert ("round round1-baseline failed" in out) == (code == 1)


def test_rounds__a_round_guidellm_lost_a_request_of_is_told_from_a_whole_one():
    """Trimmed from GuideLLM 0.8.1 reports of one A/A run on a loaded runner: round 1 ended with one
    request still in flight and reported 3 of 4; round 4 ended on its request count."""
    reports = Path(__file__).parent / "guidellm_reports"
    lost, whole = (json.loads((reports / f"{n}.json").read_text()) for n in ("lost-one-request", "complete"))
    assert lost["benchmarks"][0]["metrics"]["request_totals"]["total"] == 3
    assert unaccounted(lost) == 1 and unaccounted_in(reports / "lost-one-request.json") == 1
    assert unaccounted(whole) == 0 and whole["benchmarks"][0]["metrics"]["request_totals"]["total"] == 4
    # A round its time limit ended holds requests too, but reports them as cancelled: accounted for.
    cut = json.loads(json.dumps(lost))
    cut["benchmarks"][0]["scheduler_state"]["end_processing_time"] = 1796643722.9
    assert unaccounted(cut) == 0
    assert unaccounted_in(reports / "no-such-report.json") == 0  # the parent's reader says what is missing
    # The parent reads a report only after the driver's reruns: a round still short is an error.
    with pytest.raises(ExternalError, match=r"round1-baseline ended with 1 request\(s\) it never accounted for"):
        read_round(reports / "lost-one-request.json", "round1-baseline")


@pytest.mark.parametrize("short_reports, calls, starts", [(0, 1, 1), (1, 2, 2), (2, 3, 3), (3, 3, 3)])
def test_rounds_driver__a_round_that_lost_a_request_runs_again(monkeypatch, tmp_path, capsys,
                                                               short_reports, calls, starts):
    """The driver reruns a round whose report still holds a request, up to three attempts in all,
    announcing the round again each time (its CPU is the rerun's only); a third short report is
    left for the parent to refuse."""
    import types

    from bot.perf import rounds as driver

    reports = Path(__file__).parent / "guidellm_reports"
    report = tmp_path / "round1-baseline.json"
    seen = []

    def fake_main(args, standalone_mode, prog_name):
        seen.append(args[0])
        name = "lost-one-request" if len(seen) <= short_reports else "complete"
        report.write_text((reports / f"{name}.json").read_text())

    fake = types.ModuleType("guidellm.__main__")
    fake.cli = types.SimpleNamespace(main=fake_main)
    monkeypatch.setitem(sys.modules, "guidellm", types.ModuleType("guidellm"))
    monkeypatch.setitem(sys.modules, "guidellm.__main__", fake)
    assert driver.main([json.dumps({"name": "round1-baseline", "argv": ["a"], "report": str(report)})]) == 0
    assert len(seen) == calls
    out = capsys.readouterr().out
    assert out.count(f"{driver.STARTING}round1-baseline") == starts
    assert out.count(f"{driver.FINISHED}round1-baseline") == 1
    assert ("lost track of 1 request(s); running it again" in out) == (short_reports > 0)
    assert unaccounted_in(report) == (1 if short_reports == driver.ATTEMPTS else 0)
