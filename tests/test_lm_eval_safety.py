"""Task definitions are code: they come from the base revision, `!function` only where trusted,
and a task whose data is not local fails at once with a message saying how to vendor it."""

from __future__ import annotations

import time

import pytest
from lm_eval_models import lm_eval_repo, lm_models  # noqa: F401  (session fixture)

from bot.gate.pipeline import plan_pr
from bot.gate.runner import run_job
from bot.vcs.reader import GitReader

pytestmark = pytest.mark.slow

DOMAIN = """\
- check: domain
  tasks: [canopy_qa]
  max_drop: 5
  limit: 2
"""
EVIL_UTILS = """\
from pathlib import Path
Path({marker!r}).write_text("task code from the PR ran")


def docs(dataset):
    return dataset
"""


def run_gate(repo, tmp_path, base="HEAD~1", head="HEAD"):
    reader = GitReader(repo.path)
    plan, _ = plan_pr(reader, base, head)
    reader.close()
    return [run_job(plan, job, tmp_path / f"out-{time.monotonic_ns()}", tmp_path / "cache") for job in plan.jobs]


def with_function(yaml_text: str) -> str:
    return yaml_text.replace("test_split: test\n", "test_split: test\nprocess_docs: !function utils.docs\n")


def test_lm_eval_safety__function_added_in_pr_head_is_not_executed(lm_models, tmp_path):
    marker = tmp_path / "marker"
    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN)
    qa = (repo.path / "evals/tasks/canopy_qa.yaml").read_text()
    repo.write("evals/tasks/canopy_qa.yaml", with_function(qa))
    repo.write("evals/tasks/utils.py", EVIL_UTILS.format(marker=str(marker)))
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote, and teach the QA task a trick")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "pass", result.detail  # the base revision's task ran
    assert not marker.exists()


def test_lm_eval_safety__function_in_base_task_is_refused_unless_trusted(lm_models, tmp_path):
    marker = tmp_path / "marker"
    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN)
    qa = (repo.path / "evals/tasks/canopy_qa.yaml").read_text()
    repo.write("evals/tasks/canopy_qa.yaml", with_function(qa))
    repo.write("evals/tasks/utils.py", EVIL_UTILS.format(marker=str(marker)))
    repo.commit("A task with Python in it, merged")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert result.detail.startswith("evals/tasks/canopy_qa.yaml: !function: task 'canopy_qa' imports Python")
    assert "trust_functions: [evals/tasks/canopy_qa.yaml]" in result.detail
    assert not marker.exists()


def test_lm_eval_safety__trusted_function_runs(lm_models, tmp_path):
    marker = tmp_path / "marker"
    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN + "  trust_functions: [evals/tasks/canopy_qa.yaml]\n")
    qa = (repo.path / "evals/tasks/canopy_qa.yaml").read_text()
    repo.write("evals/tasks/canopy_qa.yaml", with_function(qa))
    repo.write("evals/tasks/utils.py", EVIL_UTILS.format(marker=str(marker)))
    repo.commit("A reviewed task with Python in it")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "pass", result.detail
    assert marker.exists()


def test_lm_eval_safety__task_only_in_pr_head_is_not_loaded(lm_models, tmp_path):
    marker = tmp_path / "marker"
    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN.replace("[canopy_qa]", "[canopy_new]"))
    qa = (repo.path / "evals/tasks/canopy_qa.yaml").read_text()
    repo.write("evals/tasks/canopy_new.yaml", with_function(qa).replace("task: canopy_qa", "task: canopy_new"))
    repo.write("evals/tasks/utils.py", EVIL_UTILS.format(marker=str(marker)))
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote with a new task")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert "task 'canopy_new' is not defined under evals/tasks/ at the base revision" in result.detail
    assert not marker.exists()


def test_lm_eval_safety__include_leaving_tasks_dir_is_refused(lm_models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN)
    repo.write("evals/tasks/canopy_qa.yaml", "include: ../../../etc/evil.yaml\ntask: canopy_qa\n")
    repo.commit("Include from elsewhere")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "error" and "leaves the repository" in result.detail


def test_lm_eval_safety__missing_local_data_fails_fast_naming_the_task(lm_models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN)
    repo.remove("evals/data/canopy_qa.jsonl")
    repo.commit("Lose the data")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert "task canopy_qa: evals/data/canopy_qa.jsonl does not exist at the base revision" in result.detail
    assert "vendor the data" in result.detail
    assert result.wall_time_s < 10  # refused before any model loads


def test_lm_eval_safety__hub_task_offline_is_a_clear_error(lm_models, tmp_path):
    gate = "- check: benchmarks\n  tasks: [arc_easy]\n  max_drop: 2\n  limit: 2\n"
    repo = lm_eval_repo(tmp_path / "repo", lm_models, gate)
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert "task arc_easy: its data is not available offline" in result.detail
    assert "vendor the data" in result.detail


def test_lm_eval_safety__domain_refuses_hub_datasets(lm_models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN)
    repo.write("evals/tasks/canopy_qa.yaml", "task: canopy_qa\ndataset_path: someone/qa\noutput_type: generate_until\n"
               "doc_to_text: q\ndoc_to_target: a\n")
    repo.commit("A Hub dataset")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert "reads 'someone/qa' from the Hub" in result.detail



def test_lm_eval_safety__pickled_weights_are_refused(lm_models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN)
    weights = repo.path / "models/canopy-tiny/v1.1-int8/weights"
    (weights / "model.safetensors").unlink()
    repo.write("models/canopy-tiny/v1.1-int8/weights/pytorch_model.bin", b"not really a pickle")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote a variant with pickled weights")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert "models/canopy-tiny/v1.1-int8/variant.yaml: weights.path: the weights folder holds pickle files" in result.detail


def test_lm_eval_safety__pickle_beside_safetensors_is_refused_before_the_baseline_runs(lm_models, tmp_path):
    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN)
    repo.write("models/canopy-tiny/v1.1-int8/weights/pytorch_model.bin", b"\x80\x04K\x01.")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote a variant with a pickle beside its safetensors")
    started = time.monotonic()
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert "the weights folder holds pickle files (pytorch_model.bin)" in result.detail
    assert not any(f.get("role") == "baseline" for f in result.findings)  # refused before anything was evaluated
    assert time.monotonic() - started < 60


def test_lm_eval_safety__auto_map_in_config_is_refused(lm_models, tmp_path):
    import json

    repo = lm_eval_repo(tmp_path / "repo", lm_models, DOMAIN)
    config = repo.path / "models/canopy-tiny/v1.1-int8/weights/config.json"
    data = json.loads(config.read_text())
    data["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    config.write_text(json.dumps(data))
    repo.write("models/canopy-tiny/v1.1-int8/weights/modeling_evil.py", "raise SystemExit('code from the PR ran')\n")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote a variant that brings its own modeling code")
    [result] = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert "the weights folder holds" in result.detail and ("auto_map" in result.detail or "code files" in result.detail)
