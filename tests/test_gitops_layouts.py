"""Real GitOps layouts, in small copies of their upstream shapes (argocd-example-apps, kustomize
overlays, Argo Rollouts, Argo CD Applications with Helm values): a model bump is found as
(environment, from → to), identity holds across environments, and a blind environment is an error."""

from __future__ import annotations

import json
import shutil
import textwrap

import pytest
from gitops import POLICY, GitOpsRepo

from bot.cli import main

needs_kustomize = pytest.mark.skipif(not (shutil.which("kustomize") or shutil.which("kubectl")),
                                     reason="neither kustomize nor kubectl is installed (scripts/test-services.sh)")
VARIANTS = ("v1.0-fp32", "v1.3-int4-g64", "v1.4-int2-g64")


def repo_with(path, policy: str, files: dict[str, str]) -> GitOpsRepo:
    repo = GitOpsRepo(path)
    repo.write("promotion.yaml", policy)
    for v in VARIANTS:
        repo.add_variant(v)
    for rel, text in files.items():
        repo.write(rel, textwrap.dedent(text))
    repo.commit("The GitOps repository")
    return repo


def check(repo, tmp_path, base="HEAD~1", head="HEAD"):
    out = tmp_path / "report.json"
    out.unlink(missing_ok=True)
    code = main(["check", "--repo", str(repo.path), "--base", base, "--head", head, "--json", str(out),
                 "--cache", str(tmp_path / "cache")])
    return code, json.loads(out.read_text())


def messages(report) -> str:
    return "\n".join([f"{e['file']}: {e['field']}: {e['message']}" for e in report["errors"]]
                     + [f"{c['name']}: {c['detail']}" for p in report["promotions"] for c in p["checks"]])


def moves(report) -> list[tuple]:
    return [(p["environment"], p["from_variant"], p["to_variant"]) for p in report["promotions"]]


# --- kustomize overlays: images newTag, namePrefix per environment --------------------------------

BASE = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: canopy
    spec:
      replicas: 1
      template:
        spec:
          containers:
          - name: vllm
            image: ghcr.io/acme/canopy-tiny:v1.0-fp32
    """
IMAGE_REF = POLICY.replace("environments:\n", "variant_ref:\n  fields:\n  - field: spec.template.spec.containers[0].image\n"
                           "    kind: Deployment\n    pattern: '(?P<model>[^/:]+):(?P<variant>[^/:]+)'\nenvironments:\n")


def overlay(env: str, tag: str) -> str:
    return (f"resources: [../../base]\nnamePrefix: {env}-\n"
            f"images:\n- name: ghcr.io/acme/canopy-tiny\n  newTag: {tag}\n")


def overlays(tag="v1.0-fp32") -> dict[str, str]:
    return {"base/deployment.yaml": BASE, "base/kustomization.yaml": "resources: [deployment.yaml]\n",
            **{f"environments/{env}/kustomization.yaml": overlay(env, tag) for env in ("test", "staging", "prod")}}


@needs_kustomize
def test_layout__overlay_image_tag_without_variant_ref_is_blind(tmp_path):
    repo = repo_with(tmp_path / "r", POLICY, overlays())
    repo.write("environments/test/kustomization.yaml", overlay("test", "v1.3-int4-g64"))
    repo.commit("test: newTag v1.3")
    code, report = check(repo, tmp_path)
    assert code == 2 and report["promotions"] == []
    assert "no object there names a zoo variant, before or after, so the bot cannot see which model it serves" \
        in messages(report) and "`variant_ref` fields" in messages(report)


@needs_kustomize
def test_layout__overlay_image_tag_with_variant_ref_is_a_promotion_and_name_prefixes_are_one_app(tmp_path):
    repo = repo_with(tmp_path / "r", IMAGE_REF, overlays())
    repo.write("environments/test/kustomization.yaml", overlay("test", "v1.3-int4-g64"))
    repo.write("environments/staging/kustomization.yaml", overlay("staging", "v1.3-int4-g64"))
    repo.commit("v1.3 into test and staging (test passed it earlier)")
    repo.write("environments/prod/kustomization.yaml", overlay("prod", "v1.3-int4-g64"))
    repo.commit("prod: newTag v1.3")
    code, report = check(repo, tmp_path)
    assert moves(report) == [("prod", "canopy-tiny/v1.0-fp32", "canopy-tiny/v1.3-int4-g64")]
    [promo] = report["promotions"]
    assert promo["object"] == "Deployment/prod-canopy" and promo["application"] == "canopy"  # `prod-` taken off
    assert code == 0, messages(report)


# --- kustomize commonAnnotations: only the workload is a promotion ---------------------------------

@needs_kustomize
def test_layout__common_annotations_make_one_promotion_naming_its_object(tmp_path):
    files = {"base/all.yaml": """\
        apiVersion: v1
        kind: Namespace
        metadata: {name: canopy}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: canopy}
        spec: {ports: [{port: 80}]}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: canopy, labels: {app.kubernetes.io/name: canopy}}
        spec: {replicas: 1}
        """, "base/kustomization.yaml": "resources: [all.yaml]\n"}
    for env in ("test", "staging", "prod"):
        files[f"environments/{env}/kustomization.yaml"] = ("resources: [../../base]\ncommonAnnotations:\n"
                                                          "  promotion-bot/variant: canopy-tiny/v1.0-fp32\n")
    repo = repo_with(tmp_path / "r", POLICY, files)
    repo.write("environments/test/kustomization.yaml", files["environments/test/kustomization.yaml"]
               .replace("v1.0-fp32", "v1.3-int4-g64"))
    repo.commit("test: v1.3 through commonAnnotations")
    code, report = check(repo, tmp_path)
    assert moves(report) == [("test", "canopy-tiny/v1.0-fp32", "canopy-tiny/v1.3-int4-g64")]
    assert report["promotions"][0]["object"] == "Deployment/canopy"
    assert any("carry the variant but serve no model" in n and "Namespace/canopy" in n and "Service/canopy" in n
               for n in report["notes"]), report["notes"]
    assert code == 0, messages(report)


# --- kustomize configMapGenerator: the model path in a generated ConfigMap --------------------------

@needs_kustomize
def test_layout__config_map_generator_is_read_through_env_from(tmp_path):
    deployment = """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: canopy
          annotations: {promotion-bot/variant: canopy-tiny/v1.0-fp32}
        spec:
          template:
            spec:
              containers:
              - name: vllm
                image: vllm/vllm-openai:v0.11.0
                args: ["--model", "$(MODEL)"]
                envFrom: [{configMapRef: {name: canopy-model}}]
        """

    def kustomization(variant):
        return (f"resources: [deployment.yaml]\nconfigMapGenerator:\n- name: canopy-model\n  literals:\n"
                f"  - MODEL=/models/canopy-tiny/{variant}/weights\n")

    files = {}
    for env in ("test", "staging", "prod"):
        files[f"environments/{env}/deployment.yaml"] = deployment
        files[f"environments/{env}/kustomization.yaml"] = kustomization("v1.0-fp32")
    repo = repo_with(tmp_path / "r", POLICY, files)
    repo.write("environments/test/kustomization.yaml", kustomization("v1.4-int2-g64"))
    repo.commit("test: the generated ConfigMap points at int2, the annotation still says fp32")
    code, report = check(repo, tmp_path)
    assert code == 2
    assert "references zoo variant canopy-tiny/v1.4-int2-g64 but annotation promotion-bot/variant says " \
           "canopy-tiny/v1.0-fp32" in messages(report)


# --- Argo Rollouts with workloadRef -------------------------------------------------------------------

def test_layout__rollout_with_workload_ref_lends_its_canary(tmp_path):
    deployment = """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: canopy
          labels: {app.kubernetes.io/name: canopy}
          annotations: {promotion-bot/variant: canopy-tiny/v1.0-fp32}
        spec: {replicas: 0}
        """
    rollout = """\
        apiVersion: argoproj.io/v1alpha1
        kind: Rollout
        metadata: {name: canopy}
        spec:
          workloadRef: {apiVersion: apps/v1, kind: Deployment, name: canopy}
          strategy:
            canary:
              steps: [{setWeight: 20}, {pause: {duration: 10m}}]
        """
    policy = POLICY.replace("  - name: test\n", "  - name: test\n    require_canary: true\n")
    repo = repo_with(tmp_path / "r", policy, {**{f"environments/{e}/deployment.yaml": deployment for e in ("test", "staging", "prod")},
                                              "environments/test/rollout.yaml": rollout})
    repo.write("environments/test/deployment.yaml", textwrap.dedent(deployment).replace("v1.0-fp32", "v1.3-int4-g64"))
    repo.commit("test: v1.3 through the Rollout's workload")
    code, report = check(repo, tmp_path)
    [promo] = report["promotions"]
    assert promo["object"] == "Deployment/canopy" and "Canary steps: 20% → pause 10m" in promo["notes"]
    assert code == 0, messages(report)
    # Without the Rollout, require_canary refuses the promotion instead of warning.
    repo.remove("environments/test/rollout.yaml")
    repo.commit("drop the Rollout")
    code, report = check(repo, tmp_path, base="HEAD~2")
    assert code == 2 and "whose policy says `require_canary: true`, but it is not an Argo Rollouts Rollout" in messages(report)


# --- Argo CD Applications named per environment, Helm values inline ------------------------------------

def application(env: str, variant: str) -> str:
    return f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata:
          name: canopy-{env}
          namespace: argocd
          annotations: {{promotion-bot/variant: canopy-tiny/{variant}}}
        spec:
          project: default
          destination: {{server: https://kubernetes.default.svc, namespace: canopy-{env}}}
          source:
            repoURL: https://github.com/vllm-project/production-stack
            targetRevision: 0.1.5
            path: helm
            helm:
              valuesObject:
                servingEngineSpec:
                  modelSpec:
                  - name: canopy
                    modelURL: /models/canopy-tiny/{variant}/weights
        """


def test_layout__applications_named_per_environment_are_one_app(tmp_path):
    repo = repo_with(tmp_path / "r", POLICY, {f"environments/{e}/app.yaml": application(e, "v1.0-fp32")
                                              for e in ("test", "staging", "prod")})
    repo.write("environments/test/app.yaml", textwrap.dedent(application("test", "v1.3-int4-g64")))
    repo.write("environments/staging/app.yaml", textwrap.dedent(application("staging", "v1.3-int4-g64")))
    repo.commit("v1.3 in test and staging")
    repo.write("environments/prod/app.yaml", textwrap.dedent(application("prod", "v1.3-int4-g64")))
    repo.commit("prod: v1.3")
    code, report = check(repo, tmp_path)
    [promo] = report["promotions"]
    assert (promo["object"], promo["application"]) == ("argocd/Application/canopy-prod", "canopy")
    assert code == 0, messages(report)


def test_layout__valuesobject_naming_another_variant_than_the_annotation_is_an_error(tmp_path):
    repo = repo_with(tmp_path / "r", POLICY, {f"environments/{e}/app.yaml": application(e, "v1.0-fp32")
                                              for e in ("test", "staging", "prod")})
    repo.write("environments/prod/app.yaml", textwrap.dedent(application("prod", "v1.0-fp32"))
               .replace("/models/canopy-tiny/v1.0-fp32/weights", "/models/canopy-tiny/v1.4-int2-g64/weights"))
    repo.commit("prod's values: int2")
    code, report = check(repo, tmp_path)
    assert code == 2 and "spec.source.helm.valuesObject.servingEngineSpec.modelSpec[0].modelURL: references zoo variant " \
                         "canopy-tiny/v1.4-int2-g64" in messages(report)


def test_validate__lists_every_broken_manifest_of_an_environment(tmp_path, capsys):
    from gitops import demo_like_repo

    repo = demo_like_repo(tmp_path / "r")
    repo.write("environments/prod/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: [x]}\n")
    repo.write("environments/prod/b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: b, annotations: {x: 1}}\n")
    repo.commit("two broken manifests in prod")
    assert main(["validate", "--repo", str(repo.path)]) == 2
    err = capsys.readouterr().err
    assert "environments/prod/a.yaml: document[0].metadata.labels: must be a mapping" in err
    assert "environments/prod/b.yaml: document[0].metadata.annotations.x: must map a string to a string" in err


def test_check__every_promotion_row_names_its_object(tmp_path, capsys):
    from gitops import demo_like_repo

    repo = demo_like_repo(tmp_path / "r")
    repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    repo.commit("v1.3 to test")
    check(repo, tmp_path)
    assert "PASS  test: Deployment/canopy (environments/test/canopy.yaml) canopy-tiny/v1.0-fp32 -> canopy-tiny/v1.3-int4-g64" \
        in capsys.readouterr().out


def test_check__a_pr_changing_only_a_service_beside_the_served_file_is_not_blind(tmp_path):
    from gitops import demo_like_repo

    repo = demo_like_repo(tmp_path / "r")
    repo.write("environments/prod/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: extra}\nspec: {ports: [{port: 80}]}\n")
    repo.commit("A service beside prod's Deployment")
    code, report = check(repo, tmp_path)
    assert code == 0 and report["errors"] == [], messages(report)


@needs_kustomize
def test_layout__a_base_change_of_a_blind_kustomize_environment_is_an_error(tmp_path):
    repo = repo_with(tmp_path / "r", POLICY, overlays())
    repo.write("base/deployment.yaml", textwrap.dedent(BASE).replace("replicas: 1", "replicas: 3"))
    repo.commit("the base scales out (the overlays' files do not change)")
    code, report = check(repo, tmp_path)
    assert code == 2 and "no object there names a zoo variant" in messages(report)


@needs_kustomize
def test_layout__an_error_in_a_rendered_object_names_its_source_file(tmp_path):
    repo = repo_with(tmp_path / "r", IMAGE_REF, overlays())
    repo.write("base/deployment.yaml", textwrap.dedent(BASE).replace("  name: canopy\n", "  name: canopy\n  labels: [x]\n"))
    repo.commit("a list where labels go, in the base")
    code, report = check(repo, tmp_path)
    assert code == 2
    assert "base/deployment.yaml (rendered by environments/test/kustomization.yaml): document[0].metadata.labels: " \
           "must be a mapping" in messages(report)
