"""The lm-eval gate end to end: real lm-eval on tiny real models in real Git repositories."""

from __future__ import annotations

import json
import time

import pytest
from lm_eval_models import lm_eval_repo, lm_models  # noqa: F401  (session fixture)

from bot.cli import main
from bot.gate.pipeline import plan_pr
from bot.gate.runner import run_job
from bot.vcs.reader import GitReader

pytestmark = pytest.mark.slow

PERPLEXITY = """\
- check: perplexity
  task: canopy_heldout
  limit: 4
"""
MC = """\
- check: benchmarks
  tasks: {canopy_mc: {max_drop: 5, metrics: [acc]}}
  limit: 8
"""
DOMAIN = """\
- check: domain
  tasks: [canopy_qa]
  max_drop: 5
  limit: 2
"""


@pytest.fixture
def models(lm_models):
    return lm_models


def run_gate(repo, cache, tmp_path, base="HEAD~1", head="HEAD"):
    """Plan the PR and run every job in this process (the runner's own code path, minus the fork)."""
    reader = GitReader(repo.path)
    plan, _ = plan_pr(reader, base, head)
    out = tmp_path / f"results-{time.monotonic_ns()}"
    results = [run_job(plan, job, out, cache) for job in plan.jobs]
    reader.close()
    return {r.name: r for r in results}


def promote(repo, variant):
    repo.set_variant("test", f"canopy-tiny/{variant}")
    repo.commit(f"Promote {variant} to test")


def test_lm_eval_gate__baseline_against_itself_passes_with_zero_delta(models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", models, PERPLEXITY + MC)
    promote(repo, "v1.1-int8")  # same weights as the baseline
    results = run_gate(repo, tmp_path / "cache", tmp_path)
    for name in ("perplexity", "benchmarks"):
        r = results[name]
        assert r.verdict == "pass", r.detail
        assert r.rows and all(row.delta == 0 for row in r.rows)
    [ppl] = results["perplexity"].rows
    assert ppl.label == "canopy_heldout word_perplexity"
    assert ppl.higher_is_better is False and ppl.threshold == "worse by ≤ 3%"
    [acc] = results["benchmarks"].rows
    assert acc.higher_is_better is True and acc.stderr.startswith("±")


def test_lm_eval_gate__int8_passes_and_int2_fails_perplexity(models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", models, PERPLEXITY)
    cache = tmp_path / "cache"
    promote(repo, "v1.5-int8-rtn")
    int8 = run_gate(repo, cache, tmp_path)["perplexity"]
    assert int8.verdict == "pass", int8.detail
    assert abs(int8.rows[0].delta) / int8.rows[0].baseline < 0.03
    promote(repo, "v1.6-int2-g16")
    int2 = run_gate(repo, cache, tmp_path)["perplexity"]
    assert int2.verdict == "fail"
    assert int2.rows[0].delta / int2.rows[0].baseline > 0.03
    assert int2.detail.startswith("canopy_heldout word_perplexity: worse by ") and "limit worse by ≤ 3%" in int2.detail
    assert [f["source"] for f in int2.findings] == ["cache", "lm-eval"]


def test_lm_eval_gate__direction_comes_from_lm_eval(models, tmp_path):
    """Perplexity (lower is better) and accuracy (higher is better) judged both ways round."""
    mc = MC.replace("limit: 8", "limit: 40")  # enough questions that a clear gain settles as a pass
    repo = lm_eval_repo(tmp_path / "repo", models, PERPLEXITY + mc)
    promote(repo, "v1.4-int2-g64")  # random weights against the trained baseline
    worse = run_gate(repo, tmp_path / "cache", tmp_path)
    assert worse["perplexity"].verdict == "fail"
    assert worse["perplexity"].rows[0].candidate > worse["perplexity"].rows[0].baseline
    assert "(95% CI), limit worse by ≤ 3%" in worse["perplexity"].detail
    # On 8 questions a much worse model may still be inconclusive; what matters here is the direction.
    assert worse["benchmarks"].verdict in ("fail", "inconclusive") and worse["benchmarks"].rows[0].evidence.interval.estimate > 0
    assert worse["benchmarks"].rows[0].candidate < worse["benchmarks"].rows[0].baseline

    flipped = lm_eval_repo(tmp_path / "flipped", models, PERPLEXITY + mc, baseline="v1.4-int2-g64")
    promote(flipped, "v1.3-int4-g64")  # trained weights against the random baseline
    better = run_gate(flipped, tmp_path / "cache", tmp_path)
    # Measured the right way round (lower perplexity), but a random baseline's perplexity says it knows
    # nothing of the text: a meaningless comparison is an error, never a pass.
    assert better["perplexity"].rows[0].delta < 0
    assert better["perplexity"].verdict == "error" and "the measurement is meaningless" in better["perplexity"].detail
    assert better["benchmarks"].verdict == "pass" and better["benchmarks"].rows[0].delta > 0


def test_lm_eval_gate__cache_evaluates_only_the_candidate_on_rerun(models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", models, PERPLEXITY)
    promote(repo, "v1.1-int8")
    cache = tmp_path / "cache"

    def sources():
        r = run_gate(repo, cache, tmp_path)["perplexity"]
        assert r.verdict == "pass", r.detail
        return [(f["role"], f["source"]) for f in r.findings]

    assert sources() == [("baseline", "lm-eval"), ("candidate", "lm-eval")]
    assert sources() == [("baseline", "cache"), ("candidate", "lm-eval")]
    # A second candidate against the same baseline: still one evaluation.
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.commit("Another candidate")
    r = run_gate(repo, cache, tmp_path)["perplexity"]
    assert [f["source"] for f in r.findings] == ["cache", "lm-eval"]
    assert r.findings[0]["title"] == "baseline canopy-tiny/v1.0-fp32: cached lm-eval results"


def test_lm_eval_gate__corrupt_cache_entry_is_recomputed(models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", models, PERPLEXITY)
    promote(repo, "v1.1-int8")
    cache = tmp_path / "cache"
    run_gate(repo, cache, tmp_path)
    [entry] = (cache / "lm-eval").glob("*.json")
    entry.write_text(entry.read_text()[:50])
    r = run_gate(repo, cache, tmp_path)["perplexity"]
    assert r.verdict == "pass"
    assert [f["source"] for f in r.findings] == ["lm-eval", "lm-eval"]
    assert json.loads(entry.read_text())["schema"] == 3


def test_lm_eval_gate__domain_task_reports_exact_match_with_stderr(models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", models, DOMAIN)
    promote(repo, "v1.1-int8")
    r = run_gate(repo, tmp_path / "cache", tmp_path)["domain"]
    assert r.verdict == "pass", r.detail
    [row] = r.rows
    assert row.label == "canopy_qa exact_match" and row.higher_is_better is True
    assert row.stderr is not None and row.delta == 0


def test_lm_eval_gate__cli_comment_shows_rows_and_wall_time(models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", models, PERPLEXITY)
    promote(repo, "v1.1-int8")
    out_json, out_md = tmp_path / "report.json", tmp_path / "comment.md"
    code = main(["check", "--repo", str(repo.path), "--base", "HEAD~1", "--head", "HEAD", "--json", str(out_json),
                 "--comment", str(out_md), "--cache", str(tmp_path / "cache")])
    report = json.loads(out_json.read_text())
    check = report["promotions"][0]["checks"][0]
    assert code == 0, check
    assert check["name"] == "perplexity" and check["wall_time_s"] > 0
    comment = out_md.read_text()
    assert "| canopy\\_heldout word\\_perplexity |" in comment and "perplexity: 1 measurement<" in comment
    assert "candidate canopy-tiny/v1.1-int8: evaluated by lm-eval" in comment


def test_lm_eval_gate__timeout_is_an_error(models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", models, PERPLEXITY.replace("limit: 4", "limit: 4\n  timeout: 1s"))
    promote(repo, "v1.1-int8")
    out_json = tmp_path / "report.json"
    code = main(["check", "--repo", str(repo.path), "--base", "HEAD~1", "--head", "HEAD", "--json", str(out_json),
                 "--cache", str(tmp_path / "cache")])
    check = json.loads(out_json.read_text())["promotions"][0]["checks"][0]
    assert code == 2
    assert check["verdict"] == "error" and "timed out after 1s" in check["detail"]


def test_lm_eval_gate__baseline_files_the_pr_overwrites_are_not_what_it_is_measured_against(models, tmp_path):
    from lm_eval_models import put_weights

    repo = lm_eval_repo(tmp_path / "repo", models, PERPLEXITY)
    repo.write("promotion.yaml", (repo.path / "promotion.yaml").read_text().replace("zoo:\n", "zoo:\n  immutable: false\n"))
    repo.commit("Variants may change in place (re-gated)")
    honest_tree = GitReader(repo.path).tree_sha("HEAD", "models/canopy-tiny/v1.0-fp32/weights")
    put_weights(repo, "v1.0-fp32", models["int2"])  # the baseline made as bad as the candidate
    promote(repo, "v1.6-int2-g16")
    reader = GitReader(repo.path)
    plan, _ = plan_pr(reader, "HEAD~1", "HEAD")
    cache = tmp_path / "cache"
    results = [run_job(plan, job, tmp_path / "out", cache) for job in plan.jobs if job.check == "perplexity"]
    reader.close()
    [result] = results  # test's object is promoted; staging and prod, which serve the changed folder, are re-gated
    assert result.verdict == "fail" and ": worse by " in result.detail
    assert {p.environment for p in plan.promotions if p.change == "content"} == {"staging", "prod"}, plan.errors
    entries = [json.loads(p.read_text()) for p in (cache / "lm-eval").glob("*.json")]
    assert entries and {e["describe"]["weights"] for e in entries} == {f"git-tree:{honest_tree}"}
