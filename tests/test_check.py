"""`promotion-bot check` end to end on real Git repositories."""

from __future__ import annotations

import json

import pytest
from gitops import manifest as gitops_manifest

from bot.cli import main


def run_check(repo, tmp_path, base="HEAD~1", head="HEAD", *extra):
    out_json = tmp_path / "report.json"
    out_md = tmp_path / "comment.md"
    for f in (out_json, out_md):
        f.unlink(missing_ok=True)
    code = main(["check", "--repo", str(repo.path), "--base", base, "--head", head,
                 "--json", str(out_json), "--comment", str(out_md), "--cache", str(tmp_path / "cache"), *extra])
    return code, json.loads(out_json.read_text()), out_md.read_text()


def test_check__promotion_into_test_passes(gitops, tmp_path):
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Promote v1.3-int4-g64 to test")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 0
    assert report["verdict"] == "pass"
    [promo] = report["promotions"]
    assert promo["environment"] == "test"
    assert promo["manifest"] == "environments/test/canopy.yaml"
    assert promo["from_variant"] == "canopy-tiny/v1.0-fp32"
    assert promo["to_variant"] == "canopy-tiny/v1.3-int4-g64"
    assert [c["name"] for c in promo["checks"]] == ["zoo"]
    assert promo["checks"][0]["verdict"] == "pass"
    assert "<!-- promotion-bot:comment -->" in comment
    assert "**Model card** · canopy-tiny/v1.3-int4-g64: GPTQ" in comment  # in a few words; in full by `card`
    assert "**next: promote canopy-tiny/v1.3-int4-g64 to staging**" in comment


def test_check__prod_skipping_staging_is_refused(gitops, tmp_path):
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3 in test")
    gitops.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Promote v1.3 straight to prod")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 1
    [promo] = report["promotions"]
    order = next(c for c in promo["checks"] if c["name"] == "promotion-order")
    assert order["verdict"] == "fail"
    assert "has not passed staging" in order["detail"]
    assert "FAIL" in comment


def test_check__prod_after_staging_passes(gitops, tmp_path):
    gitops.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3 in staging")
    gitops.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3 to prod")
    code, report, _ = run_check(gitops, tmp_path)
    assert code == 0, report
    order = next(c for c in report["promotions"][0]["checks"] if c["name"] == "promotion-order")
    assert order["verdict"] == "pass"


def test_check__two_environments_in_one_pr(gitops, tmp_path):
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.set_variant("staging", "canopy-tiny/v1.1-int8")
    gitops.commit("Two promotions")
    code, report, _ = run_check(gitops, tmp_path)
    envs = {p["environment"]: p["verdict"] for p in report["promotions"]}
    assert envs == {"test": "pass", "staging": "fail"}  # int8 was never in test
    assert code == 1


def test_check__rename_keeps_variant_is_no_promotion(gitops, tmp_path):
    gitops.move("environments/test/canopy.yaml", "environments/test/canopy-deployment.yaml")
    gitops.commit("Rename the manifest")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 0
    assert report["promotions"] == [] and report["removals"] == []
    assert "nothing to promote" in comment


def test_check__rename_with_new_variant_is_a_promotion(gitops, tmp_path):
    gitops.move("environments/test/canopy.yaml", "environments/test/canopy-deployment.yaml")
    gitops.set_variant("test", "canopy-tiny/v1.1-int8", file="canopy-deployment.yaml")
    gitops.commit("Rename and promote")
    code, report, _ = run_check(gitops, tmp_path)
    [promo] = report["promotions"]
    assert promo["change"] == "renamed"
    assert promo["from_variant"] == "canopy-tiny/v1.0-fp32"
    assert promo["manifest"] == "environments/test/canopy-deployment.yaml"
    assert code == 0


def test_check__deletion_is_reported_as_removal(gitops, tmp_path):
    gitops.remove("environments/test/canopy.yaml")
    gitops.commit("Remove canopy from test")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 0
    assert report["promotions"] == []
    assert report["removals"] == [{"environment": "test", "manifest": "environments/test/canopy.yaml",
                                   "object": "Deployment/canopy", "variant": "canopy-tiny/v1.0-fp32"}]
    assert "Removed from an environment" in comment


def test_check__pr_without_manifest_change(gitops, tmp_path):
    gitops.write("README.md", "docs only\n")
    gitops.write("environments/test/canopy.yaml",
                 (gitops.path / "environments/test/canopy.yaml").read_text().replace("replicas: 1", "replicas: 3"))
    gitops.commit("Docs and replicas")
    code, report, _ = run_check(gitops, tmp_path)
    assert code == 0 and report["verdict"] == "pass" and report["promotions"] == []


def test_check__new_manifest_in_environment_is_a_promotion(gitops, tmp_path):
    gitops.set_variant("test", "canopy-tiny/v1.2-int4-g128", file="canopy-b.yaml", name="canopy-b")
    gitops.commit("Add a second deployment")
    code, report, _ = run_check(gitops, tmp_path)
    [promo] = report["promotions"]
    assert promo["change"] == "added" and promo["from_variant"] is None
    assert code == 0


def test_check__zoo_check_fails_on_missing_recipe(gitops, tmp_path):
    gitops.add_variant("v1.5-int4-g32", with_recipe=False)
    gitops.set_variant("test", "canopy-tiny/v1.5-int4-g32")
    gitops.commit("Promote a variant whose recipe is missing")
    code, report, _ = run_check(gitops, tmp_path)
    zoo = report["promotions"][0]["checks"][0]
    assert zoo["verdict"] == "fail"
    assert "recipe models/canopy-tiny/v1.5-int4-g32/recipe.yaml does not exist" in zoo["detail"]
    assert code == 1


def test_check__zoo_check_fails_on_bits_mismatch(gitops, tmp_path):
    gitops.add_variant("v1.6-int4-g64", bits=8)
    gitops.set_variant("test", "canopy-tiny/v1.6-int4-g64")
    gitops.commit("Mislabelled variant")
    code, report, _ = run_check(gitops, tmp_path)
    assert "folder says int4 but quantization.bits is 8" in report["promotions"][0]["checks"][0]["detail"]
    assert code == 1


# --- bad input: exit 2, a message naming file, field and fix, and still a comment ---

def _assert_error(code, report, comment, file, text):
    assert code == 2
    assert report["verdict"] == "error"
    errors = report["errors"]
    assert any(e["file"] == file and text in e["message"] for e in errors), errors
    assert "ERROR" in comment


def test_check__malformed_manifest_yaml(gitops, tmp_path):
    gitops.write("environments/test/canopy.yaml", "apiVersion: v1\nkind: [unclosed\n")
    gitops.commit("Broken YAML")
    code, report, comment = run_check(gitops, tmp_path)
    _assert_error(code, report, comment, "environments/test/canopy.yaml", "malformed YAML")
    assert report["errors"][0]["field"].startswith("line ")


def test_check__manifest_names_missing_variant(gitops, tmp_path):
    gitops.set_variant("test", "canopy-tiny/v9.9-int4-g64")
    gitops.commit("Typo in the variant")
    code, report, comment = run_check(gitops, tmp_path)
    _assert_error(code, report, comment, "environments/test/canopy.yaml", "does not exist")
    assert "existing variants of canopy-tiny" in report["errors"][0]["message"]


def test_check__variant_breaking_naming_scheme(gitops, tmp_path):
    gitops.set_variant("test", "canopy-tiny/latest-int4")
    gitops.commit("Bad variant name")
    code, report, comment = run_check(gitops, tmp_path)
    _assert_error(code, report, comment, "environments/test/canopy.yaml", "is not a variant reference")


def test_check__path_leaving_the_repo(gitops, tmp_path):
    gitops.add_variant("v1.7-int8")
    text = (gitops.path / "models/canopy-tiny/v1.7-int8/variant.yaml").read_text()
    gitops.write("models/canopy-tiny/v1.7-int8/variant.yaml", text.replace("path: weights", "path: ../../../../etc"))
    gitops.set_variant("test", "canopy-tiny/v1.7-int8")
    gitops.commit("Escape")
    code, report, comment = run_check(gitops, tmp_path)
    _assert_error(code, report, comment, "models/canopy-tiny/v1.7-int8/variant.yaml", "leaves the repository")
    assert report["errors"][0]["field"] == "weights.path"


def test_check__missing_policy(gitops, tmp_path):
    gitops.remove("promotion.yaml")
    base = gitops.commit("Drop the policy")
    gitops.set_variant("test", "canopy-tiny/v1.1-int8")
    gitops.commit("Promote")
    code, report, comment = run_check(gitops, tmp_path, base)
    _assert_error(code, report, comment, "promotion.yaml", "not found")


@pytest.mark.parametrize("policy_edit, field, text", [
    (lambda p: p.replace("check: promotion-order", "check: promotion-ordr"), "environments[1].gate[1].check",
     "unknown check 'promotion-ordr'"),
    (lambda p: p.replace("      - check: zoo\n  - name: staging", "      - check: zoo\n        timeout: soon\n  - name: staging"),
     "environments[0].gate[0].timeout", "must be a duration"),
    (lambda p: p.replace("environments:", "environment:"), "environment", "is not a known setting"),
    (lambda p: p + "  - name: test\n", "environments[3].name", "listed twice"),
    (lambda p: p.replace("version: 1", "version: [1"), "line 2, column 7", "malformed YAML"),
])
def test_check__invalid_policy(gitops, tmp_path, policy_edit, field, text):
    gitops.write("promotion.yaml", policy_edit((gitops.path / "promotion.yaml").read_text()))
    base = gitops.commit("Edit the policy")
    gitops.set_variant("test", "canopy-tiny/v1.1-int8")
    gitops.commit("Promote")
    code, report, comment = run_check(gitops, tmp_path, base)
    _assert_error(code, report, comment, "promotion.yaml", text)
    assert report["errors"][0]["field"] == field


def test_check__unknown_check_suggests_the_name(gitops, tmp_path):
    gitops.write("promotion.yaml", (gitops.path / "promotion.yaml").read_text().replace("check: zoo", "check: zo"))
    base = gitops.commit("Typo")
    gitops.set_variant("test", "canopy-tiny/v1.1-int8")
    gitops.commit("Promote")
    _, report, _ = run_check(gitops, tmp_path, base)
    assert "did you mean `zoo`?" in report["errors"][0]["message"]


def test_check__environment_folder_not_in_policy(gitops, tmp_path):
    gitops.set_variant("qa", "canopy-tiny/v1.1-int8")
    gitops.commit("A new environment folder")
    code, report, comment = run_check(gitops, tmp_path)
    _assert_error(code, report, comment, "environments/qa/canopy.yaml", "not an environment of promotion.yaml")


def test_check__non_kubernetes_document(gitops, tmp_path):
    gitops.write("environments/test/canopy.yaml", "just: a mapping\n")
    gitops.commit("Not a k8s object")
    code, report, comment = run_check(gitops, tmp_path)
    _assert_error(code, report, comment, "environments/test/canopy.yaml", "is not a Kubernetes object")


def test_check__policy_is_read_from_base_not_head(gitops, tmp_path):
    """A PR that loosens the rules it is judged by does not get the looser rules."""
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3 in test")
    gitops.write("promotion.yaml", (gitops.path / "promotion.yaml").read_text().replace("      - check: promotion-order\n", ""))
    gitops.set_variant("prod", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Drop promotion-order and go to prod")
    code, report, _ = run_check(gitops, tmp_path)
    assert code == 1
    assert any(c["name"] == "promotion-order" and c["verdict"] == "fail" for c in report["promotions"][0]["checks"])


def test_check__bad_revision_is_input_error(gitops, tmp_path, capsys):
    code = main(["check", "--repo", str(gitops.path), "--base", "nope", "--head", "HEAD"])
    assert code == 2
    assert "does not name a commit" in capsys.readouterr().err


def test_check__json_report_contract_is_pinned(gitops, tmp_path):
    """The JSON report is read by workflows and by `report`: its keys change only with schema_version."""
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Promote v1.3-int4-g64 to test")
    _, report, _ = run_check(gitops, tmp_path)
    assert report["schema_version"] == 3
    assert set(report) == {"schema_version", "verdict", "base", "head", "promotions", "removals", "errors", "notes",
                           "warnings", "wall_time_s"}
    [promo] = report["promotions"]
    assert set(promo) == {"environment", "manifest", "object", "application", "change", "from_variant", "to_variant",
                          "verdict", "checks", "notes", "errors", "card", "next_environment"}
    assert set(promo["checks"][0]) == {"name", "verdict", "candidate", "baseline", "threshold", "detail", "rows",
                                       "notes", "findings", "artifacts", "wall_time_s", "warnings", "allowed"}
    assert set(promo["card"]) == {"ref", "base_model", "is_quantized", "tags", "description", "quantization",
                                  "calibration", "recipe", "recipe_text", "size_bytes", "known_issues", "baseline",
                                  "baseline_size_bytes", "weights_scheme"}
    assert len(report["base"]) == len(report["head"]) == 40


def test_check__pr_breaking_the_policy_is_an_error_naming_the_field(gitops, tmp_path):
    # It is judged by the base's policy, but a broken policy must not merge unseen.
    policy = (gitops.path / "promotion.yaml").read_text()
    gitops.write("promotion.yaml", policy.replace("require: [recipe, calibration, weights]",
                                                  "require: [recipe, calibration, weights]\n  immutable: three percent"))
    gitops.commit("Loosen the policy")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2 and report["verdict"] == "error"
    [error] = report["errors"]
    assert error["file"] == "promotion.yaml" and error["field"] == "zoo.immutable"
    assert "would break every later PR and the monitor" in error["message"] and "zoo.immutable" in comment


def test_check__pr_breaking_a_rollback_rule_is_an_error_too(gitops, tmp_path):
    policy = (gitops.path / "promotion.yaml").read_text()
    gitops.write("promotion.yaml", policy + "    rollback:\n      rules:\n        - {name: p95, query: up, above: 1, on_no_data: maybe}\n")
    gitops.commit("A rollback rule with a typo")
    code, report, _ = run_check(gitops, tmp_path)
    assert code == 2 and report["errors"][0]["field"] == "environments[2].rollback.rules[0].on_no_data"


def test_check__pr_with_a_valid_new_policy_gets_a_note(gitops, tmp_path):
    policy = (gitops.path / "promotion.yaml").read_text()
    gitops.write("promotion.yaml", policy.replace("require: [recipe, calibration, weights]", "require: [recipe, weights]"))
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Relax zoo.require and promote")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 0 and report["notes"] == [
        "This PR changes promotion.yaml; the new policy parses, and applies from the next PR on "
        "(this one is judged by the base branch's)."]
    assert "[!NOTE]" in comment and "applies from the next PR on" in comment


def test_check__pr_deleting_the_policy_is_an_error(gitops, tmp_path):
    gitops.remove("promotion.yaml")
    gitops.commit("Remove the policy")
    code, report, _ = run_check(gitops, tmp_path)
    assert code == 2 and "deletes promotion.yaml" in report["errors"][0]["message"]


def stale_branch(gitops, on_main: dict[str, str], on_branch: dict[str, str]) -> None:
    """Branch `stale` forks from main; then main moves on (``on_main``) and the branch promotes (``on_branch``)."""
    gitops.repo.git.branch("stale")
    for where, commit_to in ((on_main, "main"), (on_branch, "stale")):
        gitops.repo.git.checkout("-q", commit_to)
        for env, variant in where.items():
            gitops.set_variant(env, variant)
        gitops.commit(f"{commit_to}: " + ", ".join(f"{v} in {e}" for e, v in where.items()))
    gitops.repo.git.checkout("-q", "main")


def test_check__stale_branch_reports_only_its_own_promotions(gitops, tmp_path):
    stale_branch(gitops, {"test": "canopy-tiny/v1.3-int4-g64", "staging": "canopy-tiny/v1.3-int4-g64"},
                 {"prod": "canopy-tiny/v1.1-int8"})
    code, report, _ = run_check(gitops, tmp_path, "main", "stale")
    # Diffing the two trees would also "revert" test and staging to v1.0-fp32 (and pass them).
    assert [(p["environment"], p["from_variant"], p["to_variant"]) for p in report["promotions"]] == [
        ("prod", "canopy-tiny/v1.0-fp32", "canopy-tiny/v1.1-int8")]
    assert report["removals"] == []
    order = next(c for c in report["promotions"][0]["checks"] if c["name"] == "promotion-order")
    assert order["verdict"] == "fail" and code == 1  # judged against main as it is: int8 is not in staging


def test_check__stale_branch_is_judged_against_the_target_as_it_is_now(gitops, tmp_path):
    stale_branch(gitops, {"staging": "canopy-tiny/v1.3-int4-g64"}, {"prod": "canopy-tiny/v1.3-int4-g64"})
    code, report, _ = run_check(gitops, tmp_path, "main", "stale")
    [promo] = report["promotions"]
    assert (promo["environment"], promo["to_variant"]) == ("prod", "canopy-tiny/v1.3-int4-g64")
    assert code == 0, report  # staging serves it on main now, though not where the branch forked


def test_check__renders_the_comment_and_each_card_once_after_recording(gitops, tmp_path, monkeypatch):
    # Results are data until the run is published: one comment, one card per promotion, and
    # nothing rendered before the results were recorded in the notes.
    from bot.gate import pipeline, publish
    from bot.render import card

    events = []
    for module, name in ((publish, "render_comment"), (card, "summary_of"), (pipeline, "record_or_note")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: events.append(_n) or _f(*a, **k))
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3 into test and staging")
    code, report, comment = run_check(gitops, tmp_path)
    assert len(report["promotions"]) == 2
    assert events == ["record_or_note", "render_comment", "summary_of", "summary_of"]
    assert comment.count("**Model card** · canopy-tiny/v1.3-int4-g64") == 2


def test_check__without_comment_renders_nothing(gitops, tmp_path, monkeypatch):
    from bot.gate import publish

    monkeypatch.setattr(publish, "render_comment", lambda *a, **k: pytest.fail("rendered a comment nobody asked for"))
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3 into test")
    assert main(["check", "--repo", str(gitops.path), "--base", "HEAD~1", "--head", "HEAD",
                 "--json", str(tmp_path / "r.json"), "--cache", str(tmp_path / "cache")]) == 0


def test_check__unchanged_file_whose_whole_read_fails_still_gives_its_keys(gitops, tmp_path):
    # staging's promotion-order reads test whole at the base, so planning reads it whole first; an
    # unchanged test file that fails that read must still be read for its keys, or the duplicate
    # object the PR adds beside it would go unseen (Argo CD refuses to sync a duplicate).
    twin = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: twin}\nspec:\n  template:\n    spec:\n"
            "      containers: [{name: s, args: [--model, /models/canopy-tiny/v1.1-int8/weights]}]\n")
    gitops.write("environments/test/twin.yaml", twin)  # serves a variant without naming it: an error read whole
    gitops.commit("A test object that names no variant")
    gitops.write("environments/test/canopy.yaml", gitops_manifest("canopy-tiny/v1.0-fp32")
                 + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: twin}\nspec: {replicas: 1}\n")
    gitops.set_variant("staging", "canopy-tiny/v1.1-int8")
    gitops.commit("A second twin in test, v1.1-int8 to staging")
    code, report, _ = run_check(gitops, tmp_path)
    assert code == 2
    assert any(e["file"] == "environments/test/twin.yaml" and "is defined twice in test (also in "
               "environments/test/canopy.yaml)" in e["message"] for e in report["errors"]), report["errors"]
