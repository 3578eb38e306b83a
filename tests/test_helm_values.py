"""Helm environments read as data: vLLM production-stack's per-environment values files
(`servingEngineSpec.modelSpec[].modelURL`), mapped in the policy with `variant_ref.values`."""

from __future__ import annotations

import json
import shutil

import pytest
from gitops import POLICY, demo_like_repo

from bot.cli import main
from bot.gitops.helm import template_argv

# The shape of vLLM production-stack's values (helm/values.yaml upstream), one file per environment.
VALUES = """\
servingEngineSpec:
  runtimeClassName: ""
  modelSpec:
  - name: "canopy"
    repository: "vllm/vllm-openai"
    tag: "v0.11.0"
    modelURL: "/data/models/canopy-tiny/{variant}/weights"
    replicaCount: 1
    requestCPU: 6
    requestMemory: "16Gi"
    requestGPU: 1
    pvcStorage: "50Gi"
    vllmConfig:
      maxModelLen: 4096
      extraArgs: ["--disable-log-requests"]
routerSpec:
  repository: "lmcache/lmstack-router"
"""
MAPPED = POLICY.replace("environments:\n", "variant_ref:\n  values:\n    values.yaml: servingEngineSpec.modelSpec[*].modelURL\n"
                        "environments:\n")


@pytest.fixture
def stack(tmp_path):
    """canopy deployed with production-stack's chart, one values file per environment."""
    repo = demo_like_repo(tmp_path / "gitops", policy=MAPPED)
    for env in ("test", "staging", "prod"):
        shutil.rmtree(repo.path / "environments" / env)
        repo.write(f"environments/{env}/values.yaml", VALUES.format(variant="v1.0-fp32"))
    repo.commit("production-stack values per environment")
    return repo


def check(repo, tmp_path):
    out = tmp_path / "report.json"
    out.unlink(missing_ok=True)
    code = main(["check", "--repo", str(repo.path), "--base", "HEAD~1", "--head", "HEAD", "--json", str(out),
                 "--cache", str(tmp_path / "cache")])
    return code, json.loads(out.read_text())


def bump(repo, env, variant):
    repo.write(f"environments/{env}/values.yaml", VALUES.format(variant=variant))
    return repo.commit(f"{env}: canopy to {variant}")


def test_helm_values__a_model_bump_is_a_promotion(stack, tmp_path):
    bump(stack, "test", "v1.3-int4-g64")
    code, report = check(stack, tmp_path)
    [promo] = report["promotions"]
    assert (promo["environment"], promo["from_variant"], promo["to_variant"]) == (
        "test", "canopy-tiny/v1.0-fp32", "canopy-tiny/v1.3-int4-g64")
    assert promo["object"] == "values.yaml: servingEngineSpec.modelSpec[name=canopy]" and promo["application"] == "canopy"
    assert code == 0, report


def test_helm_values__promotion_order_ties_environments_by_the_items_name(stack, tmp_path):
    bump(stack, "prod", "v1.3-int4-g64")
    code, report = check(stack, tmp_path)
    order = next(c for c in report["promotions"][0]["checks"] if c["name"] == "promotion-order")
    assert code == 1 and "has not passed staging for application canopy" in order["detail"]


def test_helm_values__another_variant_in_the_same_item_is_an_error(stack, tmp_path):
    stack.write("environments/test/values.yaml", VALUES.format(variant="v1.0-fp32").replace(
        '["--disable-log-requests"]', '["--tokenizer", "/data/models/canopy-tiny/v1.4-int2-g64/weights"]'))
    stack.commit("the tokenizer of int2")
    code, report = check(stack, tmp_path)
    assert code == 2
    assert any("references zoo variant canopy-tiny/v1.4-int2-g64 but servingEngineSpec.modelSpec[0].modelURL names "
               "canopy-tiny/v1.0-fp32" in e["message"] for e in report["errors"]), report["errors"]


def test_helm_values__unmapped_values_file_is_blind_and_says_how_to_map_it(tmp_path):
    repo = demo_like_repo(tmp_path / "gitops")
    repo.write("environments/test/values-test.yaml", VALUES.format(variant="v1.0-fp32"))
    repo.remove("environments/test/canopy.yaml")
    repo.commit("test moves to production-stack")
    code, report = check(repo, tmp_path)
    assert code == 2
    text = "\n".join(f"{e['file']}: {e['message']}" for e in report["errors"])
    assert "not a Kubernetes object" in text and "variant_ref: {values: {values-test.yaml: <field>}}" in text
    assert "list it under" not in text  # never steer a file that holds the model into `ignore:`


def test_helm_values__a_chart_in_the_environment_without_a_mapping_says_how(tmp_path):
    repo = demo_like_repo(tmp_path / "gitops")
    repo.write("environments/prod/Chart.yaml", "apiVersion: v2\nname: canopy\nversion: 0.1.0\n")
    repo.commit("prod is a chart")
    code, report = check(repo, tmp_path)
    assert code == 2
    [error] = report["errors"]
    assert error["file"] == "environments/prod/Chart.yaml" and "variant_ref: {values: {values.yaml:" in error["message"]


def test_helm_values__a_chart_with_mapped_values_reads_them_and_is_blind_to_its_templates(tmp_path):
    repo = demo_like_repo(tmp_path / "gitops", policy=MAPPED)
    shutil.rmtree(repo.path / "environments/test")
    repo.write("environments/test/Chart.yaml", "apiVersion: v2\nname: canopy\nversion: 0.1.0\n")
    repo.write("environments/test/templates/deployment.yaml", "{{- range .Values.servingEngineSpec.modelSpec }}\n{{- end }}\n")
    repo.write("environments/test/values.yaml", VALUES.format(variant="v1.0-fp32"))
    repo.commit("test is production-stack's chart")
    bump(repo, "test", "v1.3-int4-g64")
    code, report = check(repo, tmp_path)
    assert code == 0 and [p["to_variant"] for p in report["promotions"]] == ["canopy-tiny/v1.3-int4-g64"]
    repo.write("environments/test/templates/deployment.yaml", "# serves something else now\n")
    repo.commit("change the chart's template")
    code, report = check(repo, tmp_path)
    assert code == 2 and "part of test's Helm chart, which the bot does not render" in report["errors"][0]["message"]


def test_template_argv__argo_cd_precedence():
    argv, files = template_argv("canopy", "charts/vllm-stack", {
        "valueFiles": ["values.yaml", "values-prod.yaml"], "values": "a: 1\n", "valuesObject": {"a": 2},
        "parameters": [{"name": "servingEngineSpec.modelSpec[0].modelURL", "value": "/m", "forceString": True},
                       {"name": "replicas", "value": "2"}]}, "/tmp/v")
    # Later wins in Helm: valueFiles, then valuesObject (over values), then parameters.
    assert argv == ["template", "canopy", "charts/vllm-stack", "--values", "values.yaml", "--values", "values-prod.yaml",
                    "--values", "/tmp/v/inline-values.yaml", "--set-string", "servingEngineSpec.modelSpec[0].modelURL=/m",
                    "--set", "replicas=2"]
    assert json.loads(files["inline-values.yaml"]) == {"a": 2}


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not installed here (Debian ships no helm package; "
                    "the values-file reader needs none): `helm template` rendering is not exercised")
def test_template_argv__helm_renders_with_it(tmp_path):  # pragma: no cover - needs helm
    import subprocess

    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("model: a\n")
    (chart / "templates/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {model: {{ .Values.model }}}\n")
    (tmp_path / "values-prod.yaml").write_text("model: b\n")
    argv, files = template_argv("c", str(chart), {"valueFiles": [str(tmp_path / "values-prod.yaml")],
                                                  "valuesObject": {"model": "c"}, "parameters": [{"name": "model", "value": "d"}]},
                                str(tmp_path))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = subprocess.run(["helm", *argv], capture_output=True, text=True, check=True).stdout
    assert "model: d" in out
