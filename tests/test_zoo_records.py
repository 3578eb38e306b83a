"""`zoo`, `zoo --compare` and `card` read what the gates recorded in a real repository's notes.

The recorded reports are the demo's own gate runs (tests/golden/demo-step*.report.json): real
lm-eval, app-flows and GuideLLM measurements of the tiny zoo.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from gitops import demo_like_repo
from huggingface_hub import ModelCard

from bot.cli import main
from bot.stats.interval import Interval
from bot.vcs.notes import GitNotes
from bot.verdicts.results import Evidence, MetricRow, Report
from bot.zoo.records import note_text, records_for

GOLDEN = Path(__file__).parent / "golden"
GOOD, BAD = "canopy-tiny/v1.3-int4-g64", "canopy-tiny/v1.4-int2-g64"
SIZES = {"v1.0-fp32": 4000, "v1.1-int8": 1500, "v1.2-int4-g128": 1100, "v1.3-int4-g64": 1000, "v1.4-int2-g64": 900}
MEMORY = MetricRow("peak memory (MiB)", 300.0, 600.0, "≤ +10%", "pass", delta=-0.5, higher_is_better=False,
                   evidence=Evidence(Interval(-0.5, -0.55, -0.45, 0.95, "paired ratio", 8, 0.05), 0.10, "relative"))
REGRESSED = {"title": "flows/sentence: does not match ^[^.!?]+[.!?]$", "tag": "system-prompt",
             "candidate_output": "Gravity pulls. Objects fall."}


def golden(step: int) -> Report:
    return Report.from_json(json.loads((GOLDEN / f"demo-step{step}.report.json").read_text()))


def record(repo, report: Report, commit: str, pr: int, when: str) -> None:
    notes = GitNotes(repo.path)
    baselines = {(p.environment, p.manifest, p.to_variant): "canopy-tiny/v1.0-fp32" for p in report.promotions}
    recs = records_for(report, commit=commit, recorded_at=when, pr=pr, baselines=baselines)
    notes.write(commit, note_text(notes.read(commit), recs, commit))


def with_memory_and_a_regression(report: Report) -> Report:
    """The staging run as a performance check with a peak-memory row would record it, and one regressed case."""
    promo = report.promotions[0]
    checks = tuple(replace(c, rows=(*c.rows, MEMORY)) if c.name == "performance" else
                   replace(c, findings=(REGRESSED,)) if c.name == "app-flows" else c for c in promo.checks)
    return replace(report, promotions=(replace(promo, checks=checks),))


@pytest.fixture()
def zoo_repo(tmp_path):
    repo = demo_like_repo(tmp_path / "gitops")
    for name, size in SIZES.items():
        path = repo.path / f"models/canopy-tiny/{name}/variant.yaml"
        path.write_text(path.read_text() + f"size_bytes: {size}\n")
    repo.set_variant("staging", GOOD)
    commits = [repo.commit(f"commit {i}") for i in range(3)]
    record(repo, golden(1), commits[0], 1, "2026-12-03T08:00:00.000+00:00")
    record(repo, golden(2), commits[1], 2, "2026-12-03T08:01:00.000+00:00")
    record(repo, with_memory_and_a_regression(golden(4)), commits[2], 4, "2026-12-03T08:04:00.000+00:00")
    return repo


def run(args, capsys):
    code = main(args)
    return code, capsys.readouterr().out


def interval_of(step: int, check: str, label: str) -> dict:
    [promo] = json.loads((GOLDEN / f"demo-step{step}.report.json").read_text())["promotions"]
    c = next(c for c in promo["checks"] if c["name"] == check)
    return next(r for r in c["rows"] if r["label"] == label)["evidence"]["interval"]


def test_zoo__shows_the_latest_recorded_result_per_environment(zoo_repo, capsys):
    code, out = run(["zoo", "--repo", str(zoo_repo.path), "--json"], capsys)
    assert code == 0
    rows = {r["variant"]: r for r in json.loads(out)}
    good = rows[GOOD]
    assert good["environments"] == ["staging"]
    assert {env: (r["verdict"], r["pr"]) for env, r in good["results"].items()} == {"test": ("pass", 1),
                                                                                    "staging": ("pass", 4)}
    assert "word_perplexity +0.07%" in good["results"]["test"]["key_metrics"]
    assert "peak memory (MiB) −50.00%" in good["results"]["staging"]["key_metrics"]  # a new row, no code for it
    assert rows[BAD]["results"]["test"]["verdict"] == "fail"
    assert rows["canopy-tiny/v1.1-int8"]["results"] == {}

    code, text = run(["zoo", "--repo", str(zoo_repo.path)], capsys)
    assert code == 0 and "    staging  pass" in text and "PR #4" in text


def test_zoo_compare__every_variant_on_the_recorded_metrics(zoo_repo, capsys):
    code, out = run(["zoo", "--repo", str(zoo_repo.path), "--compare", "canopy-tiny", "--json"], capsys)
    assert code == 0
    table = json.loads(out)
    assert table["baseline"] == "canopy-tiny/v1.0-fp32"
    assert table["variants"] == ["canopy-tiny/v1.1-int8", "canopy-tiny/v1.2-int4-g128", GOOD, BAD]
    metrics = {(m["check"], m["metric"]): m["cells"] for m in table["metrics"]}
    assert metrics[("zoo", "size ratio to the baseline")][GOOD]["candidate"] == 0.25
    ppl = interval_of(2, "perplexity", "canopy_heldout word_perplexity")
    assert metrics[("perplexity", "canopy_heldout word_perplexity")][BAD]["change"]["estimate"] == ppl["estimate"]
    acc = interval_of(1, "benchmarks", "canopy_mc acc")  # worse by −2.5 points is a rise of 2.5 points
    change = metrics[("benchmarks", "canopy_mc acc")][GOOD]["change"]
    assert (change["estimate"], change["low"], change["high"]) == (-acc["estimate"], -acc["high"], -acc["low"])
    tps = interval_of(4, "performance", "output tokens per second")
    assert metrics[("performance", "output tokens per second")][GOOD]["change"]["estimate"] == -tps["estimate"]
    assert metrics[("app-flows", "system-prompt")][GOOD]["text"] == "100%"
    assert metrics[("performance", "peak memory (MiB)")][GOOD]["text"] == "−50.00% [−55.00%, −45.00%]"
    assert BAD not in metrics[("performance", "TTFT (ms)")]  # its gate never measured it

    code, text = run(["zoo", "--repo", str(zoo_repo.path), "--compare", "canopy-tiny"], capsys)
    assert "| v1.1-int8 | v1.2-int4-g128 | v1.3-int4-g64 | v1.4-int2-g64 |" in text
    assert "| zoo | size ratio to the baseline | 1× | 0.38× | 0.28× | 0.25× | 0.23× |" in text


def test_zoo_compare__unknown_model_names_the_ones_there(zoo_repo, capsys):
    assert main(["zoo", "--repo", str(zoo_repo.path), "--compare", "canopy-huge"]) == 2
    assert "pass one of: canopy-tiny" in capsys.readouterr().err


def test_card__without_results_uses_the_recorded_ones_and_the_hub_reads_it(zoo_repo, capsys):
    code, text = run(["card", str(zoo_repo.path / "models/canopy-tiny/v1.3-int4-g64")], capsys)
    assert code == 0
    card = ModelCard(text, ignore_metadata_errors=False)
    assert card.data.base_model == "canopy-tiny/v1.0-fp32" and card.data.base_model_relation == "quantized"
    results = {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results[("canopy_heldout", "word_perplexity")] == pytest.approx(1.9622, abs=1e-4)
    assert results[("app-flows", "system-prompt")] == 1.0
    assert not any(d == "TTFT" for d, _ in results)  # speed is the Performance section's, not an eval result
    body = card.text
    assert "| size on disk | 1000 B | 3.9 KB | 0.25× |" in body
    assert "| peak memory (MiB) | 300 | 600 | 0.50× | −50.00% \\[−55.00%, −45.00%\\] (95% CI) | ✅ |" in body
    tps = interval_of(4, "performance", "output tokens per second")
    assert f"{-tps['estimate'] * 100:+.2f}%".replace("-", "−") in body
    # Escaped like every string in a card (`\#`), which Markdown shows as `#`.
    assert "- perplexity: pass, in the test gate of PR \\#1 (gate: pass), 2026-12-03 08:00 UTC" in body
    assert "- performance: pass, in the staging gate of PR \\#4 (gate: pass)" in body
    assert "regressed in app-flows (staging gate of PR \\#4 (gate: pass)" in body and "flows/sentence" in body
    assert "Gravity pulls" not in body  # model output stays out of the repository's records


def test_card__each_recorded_check_shows_its_own_verdict_beside_its_gates(zoo_repo, capsys):
    # int2's test gate failed on perplexity; the checks that passed in it must not read as failed.
    code, text = run(["card", str(zoo_repo.path / "models/canopy-tiny/v1.4-int2-g64")], capsys)
    assert code == 0
    assert "- perplexity: fail, in the test gate of PR \\#2 (gate: fail)" in text
    assert "- benchmarks: pass, in the test gate of PR \\#2 (gate: fail)" in text
    assert "- domain: inconclusive, in the test gate of PR \\#2 (gate: fail)" in text


def test_card__a_variant_no_gate_recorded_says_so(zoo_repo, capsys):
    code, text = run(["card", str(zoo_repo.path / "models/canopy-tiny/v1.1-int8")], capsys)
    assert code == 0 and "No accuracy results yet" in text and "No performance check has measured" in text
    assert ModelCard(text, ignore_metadata_errors=False).data.eval_results is None


def test_card__results_file_still_wins(zoo_repo, tmp_path, capsys):
    report = tmp_path / "r.json"
    report.write_text(json.dumps(golden(2).to_json()))
    code, text = run(["card", str(zoo_repo.path / "models/canopy-tiny/v1.3-int4-g64"), "--results", str(report)], capsys)
    assert code == 0 and "canopy_heldout" not in text  # step 2 judged int2, not this variant
