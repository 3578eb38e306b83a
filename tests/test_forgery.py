"""PRs that try to make a failing variant pass by changing what it is compared with: the
baseline's files, a variant's files behind its name, or a branch forked before the target moved.
Each ends in fail or error with a clear message, never a pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitops import POLICY, demo_like_repo
from test_check import run_check

from bot.checks.context import CheckContext
from bot.checks.load_policy import from_rev
from bot.gate.pipeline import plan_pr
from bot.vcs.reader import GitReader

MUTABLE = POLICY.replace("zoo:\n", "zoo:\n  immutable: false\n")
INT2_CONFIG = '{"model_type": "llama", "int2": true}\n'


def verdicts(report):
    return {(p["environment"], c["name"]): c["verdict"] for p in report["promotions"] for c in p["checks"]}


def test_forgery__editing_a_deployed_variants_files_is_refused(gitops, tmp_path):
    # No manifest changes: the bot used to say "nothing to promote" while prod's weights changed.
    gitops.write("models/canopy-tiny/v1.0-fp32/weights/config.json", INT2_CONFIG)
    gitops.commit("Swap the weights prod serves")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2 and report["verdict"] == "error"
    [error] = report["errors"]
    assert error["file"] == "models/canopy-tiny/v1.0-fp32/weights/config.json"
    assert "test, staging, prod serve(s)" in error["message"] and "immutable" in error["message"]
    assert "new variant folder" in error["message"] and "immutable" in comment


def test_forgery__editing_a_variant_nobody_serves_is_not_refused(gitops, tmp_path):
    gitops.write("models/canopy-tiny/v1.3-int4-g64/weights/config.json", INT2_CONFIG)
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Re-quantize v1.3 and promote it to test")
    code, report, _ = run_check(gitops, tmp_path)
    assert code == 0 and report["errors"] == [] and verdicts(report) == {("test", "zoo"): "pass"}


def test_forgery__other_weights_in_a_staged_variant_fail_promotion_order(tmp_path):
    repo = demo_like_repo(tmp_path / "repo", policy=MUTABLE)
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 passed test and staging")
    repo.write("models/canopy-tiny/v1.3-int4-g64/weights/config.json", INT2_CONFIG)
    repo.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    repo.commit("Promote 'v1.3' (int2 files) to prod")
    code, report, comment = run_check(repo, tmp_path)
    assert code == 1 and report["verdict"] == "fail"
    [prod] = [p for p in report["promotions"] if p["environment"] == "prod" and p["change"] != "content"]
    [order] = [c for c in prod["checks"] if c["name"] == "promotion-order"]
    assert order["verdict"] == "fail" and "files change in this PR" in order["detail"]
    assert "what passed staging is not what is promoted" in comment
    # The environments already serving it are re-gated on the new files, not waved through.
    regated = sorted(p["environment"] for p in report["promotions"] if p["change"] == "content")
    assert regated == ["staging", "test"]


def test_forgery__baseline_weights_come_from_the_base_revision(tmp_path):
    repo = demo_like_repo(tmp_path / "repo", policy=MUTABLE)
    base = repo.repo.head.commit.hexsha
    honest = (repo.path / "models/canopy-tiny/v1.0-fp32/weights/config.json").read_text()
    repo.write("models/canopy-tiny/v1.0-fp32/weights/config.json", INT2_CONFIG)  # the baseline made as bad
    repo.set_variant("test", "canopy-tiny/v1.4-int2-g64")
    head = repo.commit("Promote int2, with int2's files over the baseline")
    reader = GitReader(repo.path)
    try:
        plan, policy = plan_pr(reader, base, head)
        [promo] = [p for p in plan.promotions if p.change != "content"]
        ctx = CheckContext(reader=reader, base=plan.base, head=plan.merged, policy=policy,
                           environment=policy.environment("test"), promotion=promo,
                           workdir=tmp_path / "work", cache_dir=tmp_path / "cache")
        baseline = ctx.weights_dir(ctx.baseline)
        assert (baseline / "config.json").read_text() == honest
        # Keyed by what was exported: the base revision's tree, never one the PR can shadow.
        assert baseline.name == reader.tree_sha(base, "models/canopy-tiny/v1.0-fp32/weights")
    finally:
        reader.close()


def test_forgery__a_branch_forked_before_the_target_moved_is_judged_against_its_tip(tmp_path):
    repo = demo_like_repo(tmp_path / "repo")
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    fork_point = repo.commit("v1.3 in staging")
    repo.repo.git.checkout("-b", "promote-v1.3")
    repo.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    repo.commit("Promote v1.3 to prod")
    repo.repo.git.checkout("main")
    repo.set_variant("staging", "canopy-tiny/v1.0-fp32")  # v1.3 pulled out of staging after the fork
    repo.commit("Roll staging back to v1.0")
    assert run_check(repo, tmp_path, fork_point, "promote-v1.3")[0] == 0  # the stale view said yes
    code, report, _ = run_check(repo, tmp_path, "main", "promote-v1.3")
    assert code == 1 and verdicts(report)[("prod", "promotion-order")] == "fail"
    assert report["base"] == repo.repo.commit("main").hexsha


def test_forgery__a_branch_that_does_not_merge_is_an_error_naming_the_conflict(tmp_path):
    repo = demo_like_repo(tmp_path / "repo")
    repo.repo.git.checkout("-b", "promote")
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.commit("Promote v1.3 to test")
    repo.repo.git.checkout("main")
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote v1.1 to test")
    code, report, comment = run_check(repo, tmp_path, "main", "promote")
    assert code == 2 and report["verdict"] == "error"
    [error] = report["errors"]
    assert "does not merge cleanly" in error["message"] and "environments/test/canopy.yaml" in error["message"]
    assert "rebase" in comment


def test_forgery__the_merge_commit_is_the_same_on_every_runner(tmp_path):
    repo = demo_like_repo(tmp_path / "repo")
    repo.repo.git.checkout("-b", "promote")
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.commit("Promote v1.3 to test")
    repo.repo.git.checkout("main")
    repo.write("README.md", "moved on\n")
    repo.commit("main moves on")
    other = Path(tmp_path / "runner")
    import git

    git.Repo.clone_from(repo.path, other).close()
    merged = []
    for path in (repo.path, other):
        reader = GitReader(path)
        merged.append(reader.as_merged(reader.resolve("main") if path == repo.path else reader.resolve("origin/main"),
                                       reader.resolve("promote" if path == repo.path else "origin/promote")))
        reader.close()
    assert merged[0] == merged[1]
    reader = GitReader(repo.path)
    try:
        assert reader.read_text(merged[0], "README.md") == "moved on\n"
        assert "v1.3-int4-g64" in reader.read_text(merged[0], "environments/test/canopy.yaml")
        assert from_rev(reader, merged[0]).file == "promotion.yaml"
    finally:
        reader.close()


def test_forgery__zoo_immutable_must_be_a_boolean():
    from bot.checks.load_policy import parse
    from bot.core.errors import InputError

    assert parse(POLICY).zoo_immutable is True
    with pytest.raises(InputError, match=r"zoo\.immutable: must be true or false"):
        parse(POLICY.replace("zoo:\n", "zoo:\n  immutable: sometimes\n"))
