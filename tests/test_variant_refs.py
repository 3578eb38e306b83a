"""Where manifests name their variant, on a repository of another team's names (tests/acme.py):
annotation and fields together, per environment and kind, anchored patterns, `ignore:`, kustomizations."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from acme import BASELINE, BUCKET, MODEL, POLICY, acme_repo, deployment, inference_service, rollout

from bot.checks.load_policy import parse as parse_policy
from bot.cli import main
from bot.commands.zoo import zoo_rows
from bot.core.errors import InputError
from bot.core.fields import Loc
from bot.gitops.manifests import parse_manifest
from bot.policy.variant_refs import parse_variant_ref
from bot.vcs.reader import GitReader

PATH = "environments/test/acme-chat.yaml"
LOC = Loc("promotion.yaml", "variant_ref")


@pytest.fixture
def acme(tmp_path):
    return acme_repo(tmp_path / "acme")


def run_check(repo, tmp_path, base="HEAD~1", head="HEAD"):
    out_json = tmp_path / "report.json"
    out_json.unlink(missing_ok=True)
    code = main(["check", "--repo", str(repo.path), "--base", base, "--head", head, "--json", str(out_json),
                 "--comment", str(tmp_path / "comment.md"), "--cache", str(tmp_path / "cache")])
    return code, json.loads(out_json.read_text())


def errors(report) -> str:
    found = report["errors"] + [e for p in report["promotions"] for e in p.get("errors", [])]
    return "\n".join(f"{e['file']}: {e['field']}: {e['message']}" for e in found)


def rule(**spec):
    return parse_variant_ref(spec, LOC)


def served(text, r):
    return [str(o.ref) for o in parse_manifest(text, PATH, r)]


def test_check__prod_annotation_is_judged_while_test_reads_a_field(acme, tmp_path):
    acme.write("environments/staging/acme-chat.yaml", deployment("v2.4-int8"))
    acme.commit("int8 in staging")
    acme.write("environments/prod/acme-chat.yaml", rollout("v2.4-int8"))
    acme.commit("Promote int8 to prod")
    code, report = run_check(acme, tmp_path)
    [promo] = report["promotions"]
    assert (promo["environment"], promo["from_variant"], promo["to_variant"]) == (
        "prod", f"{MODEL}/{BASELINE}", f"{MODEL}/v2.4-int8")
    assert promo["verdict"] == "pass" and code == 0, errors(report)


def test_zoo__shows_the_baseline_deployed_in_every_environment(acme):
    reader = GitReader(acme.path)
    try:
        rows = {r["variant"]: r["environments"] for r in zoo_rows(reader, reader.resolve("HEAD"))}
    finally:
        reader.close()
    assert rows[f"{MODEL}/{BASELINE}"] == ["prod", "staging", "test"]


def test_check__storage_uri_promotion_is_found_past_the_bucket_name(acme, tmp_path):
    acme.write(PATH, inference_service("v2.4-int4-g32"))
    acme.commit("Promote int4 to test")
    code, report = run_check(acme, tmp_path)
    [promo] = report["promotions"]
    assert promo["to_variant"] == f"{MODEL}/v2.4-int4-g32" and code == 0, errors(report)


def test_check__annotation_and_field_disagreeing_is_an_error_naming_both(acme, tmp_path):
    acme.write(PATH, inference_service("v2.4-int2-g32", annotation=f"{MODEL}/v2.4-int4-g32"))
    acme.commit("The annotation says int4, the storageUri int2")
    code, report = run_check(acme, tmp_path)
    assert code == 2 and report["verdict"] == "error"
    text = errors(report)
    assert (f"annotation promotion-bot/variant names {MODEL}/v2.4-int4-g32 but field spec.predictor.model.storageUri "
            f"('{BUCKET}/{MODEL}/v2.4-int2-g32/weights') names {MODEL}/v2.4-int2-g32") in text


def test_check__annotation_and_field_agreeing_is_one_promotion(acme, tmp_path):
    acme.write(PATH, inference_service("v2.4-int8", annotation=f"{MODEL}/v2.4-int8"))
    acme.commit("Both name int8")
    code, report = run_check(acme, tmp_path)
    assert [p["to_variant"] for p in report["promotions"]] == [f"{MODEL}/v2.4-int8"] and code == 0, errors(report)


def test_check__environment_variant_ref_overrides_the_global_one(acme, tmp_path):
    policy = POLICY.replace("  - name: prod\n", "  - name: prod\n    variant_ref:\n      annotation: acme.io/variant\n")
    acme.write("promotion.yaml", policy)
    acme.write("environments/prod/acme-chat.yaml", rollout(BASELINE).replace("promotion-bot/variant", "acme.io/variant"))
    acme.commit("prod names its variant with acme.io/variant")
    acme.write("environments/staging/acme-chat.yaml", deployment("v2.4-int8"))
    acme.commit("int8 in staging")
    acme.write("environments/prod/acme-chat.yaml", rollout("v2.4-int8").replace("promotion-bot/variant", "acme.io/variant"))
    acme.commit("int8 to prod")
    code, report = run_check(acme, tmp_path)
    [promo] = report["promotions"]
    assert promo["environment"] == "prod" and promo["to_variant"] == f"{MODEL}/v2.4-int8" and code == 0, errors(report)
    # In staging the global annotation still names it; acme.io/variant means nothing there.
    policy_obj = parse_policy(policy, "promotion.yaml")
    assert policy_obj.variant_ref.for_path("environments/prod/x.yaml").annotation == "acme.io/variant"
    assert policy_obj.variant_ref.for_path("environments/staging/x.yaml").annotation == "promotion-bot/variant"
    assert policy_obj.environment("prod").variant_ref.fields == policy_obj.environment("test").variant_ref.fields


def test_parse_manifest__patterns_are_matched_at_path_segments():
    uri = f"{BUCKET}/{MODEL}/v2.4-int4-g32/weights"
    text = inference_service("", uri=uri)
    for pattern in ("models/(?P<model>[^/]+)/(?P<variant>[^/]+)", "models/(?P<model>[^/]+)/(?P<variant>[^/]+)/",
                    "models/(?P<ref>[^/]+/[^/]+)", "s3://acme-models/models/(?P<model>[^/]+)/(?P<variant>[^/]+)/weights"):
        assert served(text, rule(field="spec.predictor.model.storageUri", pattern=pattern)) == [f"{MODEL}/v2.4-int4-g32"], pattern
    # Unanchored, `models/(...)/(...)` would start inside `acme-models/` and read model `models`.
    assert re.search("models/(?P<model>[^/]+)/(?P<variant>[^/]+)", uri)["model"] == "models"


def test_parse_manifest__default_pattern_finds_the_variant_by_its_naming_scheme():
    for uri in (f"{BUCKET}/{MODEL}/v2.4-int8/weights", f"pvc://zoo/{MODEL}/v2.4-int8", f"gs://b/{MODEL}/v2.4-int8/"):
        assert served(inference_service("", uri=uri), rule(field="spec.predictor.model.storageUri")) == [f"{MODEL}/v2.4-int8"]


def test_parse_manifest__no_match_shows_the_full_value_and_a_pattern_for_it():
    uri = f"{BUCKET}/{MODEL}/v2.4-int4-g32/weights"
    with pytest.raises(InputError) as exc:
        served(inference_service("", uri=uri), rule(field="spec.predictor.model.storageUri",
                                                   pattern="zoo/(?P<model>[^/]+)/(?P<variant>[^/]+)"))
    assert exc.value.field == "document[0].spec.predictor.model.storageUri"
    assert f"'{uri}' does not match variant_ref.pattern 'zoo/(?P<model>[^/]+)/(?P<variant>[^/]+)'" in exc.value.message
    suggested = "s3://acme-models/models/(?P<model>[^/]+)/(?P<variant>[^/]+)/weights"
    assert f"e.g. '{suggested}'" in exc.value.fix
    assert served(inference_service("", uri=uri), rule(field="spec.predictor.model.storageUri", pattern=suggested))


def test_parse_manifest__a_match_that_is_no_variant_names_the_value():
    uri = f"{BUCKET}/{MODEL}/v2.4-int4-g32/weights"
    with pytest.raises(InputError) as exc:
        served(inference_service("", uri=uri), rule(field="spec.predictor.model.storageUri",
                                                   pattern="(?P<model>[^/]+)/(?P<variant>[^/]+)"))
    assert f"'{uri}': variant_ref.pattern" in exc.value.message and "finds 's3:/' in it" not in exc.value.message
    assert "which is not `<model>/<variant>`" in exc.value.message


def test_parse_manifest__a_kind_limits_the_field():
    r = rule(field="spec.template.spec.containers[0].args[1]", kind="Rollout",
             pattern="/mnt/zoo/(?P<model>[^/]+)/(?P<variant>[^/]+)/weights")
    text = rollout("v2.4-int8", annotate=False)
    assert served(text, r) == [f"{MODEL}/v2.4-int8"]
    # A Deployment is not read by the Rollout's field: its reference must then be named by the annotation.
    text = deployment("v2.4-int8", annotate=False)
    with pytest.raises(InputError, match="does not name its variant \\(annotation promotion-bot/variant\\)"):
        served(text, r)


@pytest.mark.parametrize("spec,field,needle", [
    ({"field": "a", "fields": []}, "variant_ref", "has both `fields:` and `field:`"),
    ({"pattern": "(?P<ref>.+)"}, "variant_ref.pattern", "applies to a field, but `variant_ref` names none"),
    ({"field": "a", "pattern": "(?P<model>[^/]+)"}, "variant_ref.pattern", "or `ref` holding `<model>/<variant>`"),
    ({"field": "a", "pattern": "(?P<ref>"}, "variant_ref.pattern", "is not a valid regular expression"),
    ({"fields": [{"field": "a", "kinds": "Rollout"}]}, "variant_ref.fields[0].kinds", "did you mean `kind`?"),
    ({"field": "a", "kind": [3]}, "variant_ref.kind[0]", "must be a Kubernetes kind"),
])
def test_parse_variant_ref__mistakes_name_the_field(spec, field, needle):
    with pytest.raises(InputError) as exc:
        rule(**spec)
    assert exc.value.field == field and needle in str(exc.value)


def test_check__ignored_files_are_not_read(acme, tmp_path):
    acme.write("environments/test/notes.yaml", "owner: acme-ml\nreview: weekly\n")
    acme.write(PATH, inference_service("v2.4-int8"))
    acme.commit("A notes file beside the manifest, and int8 to test")
    code, report = run_check(acme, tmp_path)
    assert code == 2
    assert ("environments/test/notes.yaml: document[0]: is not a Kubernetes object: missing apiVersion, kind, metadata "
            "(fix: add apiVersion, kind and metadata.name; or, if Argo CD does not apply this file, list it under the "
            "environment's `ignore:` in the policy (`ignore: [<file>]`, relative to its folder))") in errors(report)
    acme.repo.git.checkout("-q", "-b", "excludes", "HEAD~1")
    acme.write("promotion.yaml", POLICY.replace("  - name: test\n", "  - name: test\n    ignore: [notes.yaml]\n"))
    acme.commit("Argo CD excludes notes.yaml")
    # Changing an ignored file in an environment that serves a model: the bot cannot see it, and says so.
    code, report = run_check(acme, tmp_path, base="excludes", head="main")
    assert code == 2 and "which test's `ignore:` keeps the bot from reading" in errors(report)
    acme.write("environments/test/notes.yaml", "owner: acme-ml\nreview: weekly\n")
    acme.commit("The notes, on their own")
    acme.repo.git.checkout("-q", "-b", "promote-int8")
    acme.write(PATH, inference_service("v2.4-int8"))
    acme.commit("int8 to test")
    code, report = run_check(acme, tmp_path, base="excludes", head="promote-int8")
    assert [p["to_variant"] for p in report["promotions"]] == [f"{MODEL}/v2.4-int8"] and code == 0, errors(report)


def test_check__nested_kustomization_is_refused_with_a_fix_that_fits(acme, tmp_path):
    acme.write("environments/test/overlay/kustomization.yaml", "resources: [../acme-chat.yaml]\n")
    acme.commit("A kustomization in a sub-folder")
    code, report = run_check(acme, tmp_path)
    assert code == 2
    text = errors(report)
    assert "environments/test/overlay/kustomization.yaml: : is a kustomization in a sub-folder of environments/test/" in text
    assert "move the kustomization to environments/test/" in text and "`ignore:` of environment test" in text
    assert "metadata.name" not in text


def test_check__kustomization_object_among_manifests_says_what_it_is(acme, tmp_path):
    acme.write("environments/test/kustomize.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                                                    "resources: [acme-chat.yaml]\n")
    acme.commit("A kustomization under another name")
    code, report = run_check(acme, tmp_path)
    assert code == 2 and "is a kustomization, not a Kubernetes object" in errors(report)
    assert "metadata.name" not in errors(report)


def test_check__kustomization_can_be_ignored(acme, tmp_path):
    acme.write("promotion.yaml", POLICY.replace("  - name: test\n", "  - name: test\n    ignore: [kustomization.yaml]\n"))
    acme.write("environments/test/kustomization.yaml", "resources: [does-not-exist.yaml]\n")
    acme.commit("An unused kustomization, which this application's Argo CD source excludes")
    acme.write(PATH, inference_service("v2.4-int8"))
    acme.commit("int8 to test")
    code, report = run_check(acme, tmp_path)
    assert [p["to_variant"] for p in report["promotions"]] == [f"{MODEL}/v2.4-int8"] and code == 0, errors(report)


@pytest.mark.skipif(not (shutil.which("kustomize") or shutil.which("kubectl")), reason="needs kustomize or kubectl")
def test_check__root_kustomization_is_rendered_with_the_field_rule(acme, tmp_path):
    acme.write("environments/test/kustomization.yaml", "resources: [acme-chat.yaml]\n")
    acme.commit("test renders with kustomize")
    acme.write("environments/test/kustomization.yaml", "resources: [acme-chat.yaml]\npatches:\n- target: {kind: InferenceService}\n"
               "  patch: |\n    - op: replace\n      path: /spec/predictor/model/storageUri\n"
               f"      value: {BUCKET}/{MODEL}/v2.4-int4-g32/weights\n")
    acme.commit("A patch points test at int4")
    code, report = run_check(acme, tmp_path)
    [promo] = report["promotions"]
    assert (promo["manifest"], promo["to_variant"]) == ("environments/test/kustomization.yaml", f"{MODEL}/v2.4-int4-g32")
    assert code == 0, errors(report)


def test_check__root_kustomization_without_kustomize_is_refused_saying_so(acme, tmp_path, monkeypatch):
    acme.write("environments/test/kustomization.yaml", "resources: [acme-chat.yaml]\n")
    acme.write(PATH, inference_service("v2.4-int8"))
    acme.commit("test renders with kustomize, and int8 to test")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(bin_dir))  # git only: no kustomize, no kubectl
    code, report = run_check(acme, tmp_path)
    text = errors(report)
    assert code == 2 and "environments/test/kustomization.yaml: : Argo CD renders this folder with kustomize, but " \
                         "neither `kustomize` nor `kubectl` is installed" in text
    assert "install kustomize (or kubectl) on the runner" in text and "list kustomization.yaml under the environment's " \
                                                                      "`ignore:`" in text
    assert "metadata.name" not in text


def test_parse_manifest__the_policy_rules_pick_the_environment_holding_the_file():
    # What the monitor reads (it parses prod's manifests with the policy's rules).
    policy = parse_policy(POLICY.replace("  - name: prod\n", "  - name: prod\n    variant_ref:\n      fields:\n"
                                         "        - {kind: Rollout, field: 'spec.template.spec.containers[0].args[1]'}\n"),
                          "promotion.yaml")
    text = rollout("v2.4-int8", annotate=False)
    assert served_at(text, "environments/prod/acme-chat.yaml", policy) == [f"{MODEL}/v2.4-int8"]
    with pytest.raises(InputError, match="does not name its variant"):
        served_at(text, "environments/staging/acme-chat.yaml", policy)


def served_at(text, path, policy):
    return [str(o.ref) for o in parse_manifest(text, path, policy.variant_ref)]
