"""Attacks on the gate, replayed as PRs against a demo-like GitOps repo: each must end in `fail` or
`error` with a message that names what is wrong, never `pass` and never a traceback."""

from __future__ import annotations

import json

import pytest
from lm_eval_models import lm_models  # noqa: F401  (session fixture: tiny real models for the weights attacks)

from bot.cli import main


def run_check(repo, tmp_path, base="HEAD~1", head="HEAD"):
    out_json, out_md = tmp_path / "report.json", tmp_path / "comment.md"
    for f in (out_json, out_md):
        f.unlink(missing_ok=True)
    code = main(["check", "--repo", str(repo.path), "--base", base, "--head", head, "--json", str(out_json),
                 "--comment", str(out_md), "--cache", str(tmp_path / "cache")])
    return code, json.loads(out_json.read_text()), out_md.read_text()


def messages(report) -> str:
    """Every error and check detail of a report, one per line."""
    lines = [f"{e['file']}: {e['field']}: {e['message']}" for e in report["errors"]]
    for p in report["promotions"]:
        lines += [f"{e['file']}: {e['field']}: {e['message']}" for e in p.get("errors", [])]
        lines += [f"{c['name']} {c['verdict']}: {c['detail']}" for c in p["checks"]]
    return "\n".join(lines)


def assert_refused(code, report, comment, *needles):
    """Not a pass; an error (exit 2) or a failure (exit 1) whose text contains every needle."""
    assert code in (1, 2), (code, messages(report))
    assert report["verdict"] in ("fail", "error"), messages(report)
    text = messages(report)
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    assert "Traceback" not in comment and "Traceback" not in text
    return text


# --- wrong types: exit 2 with file, field and fix ------------------------------------------------

def test_attack__wrong_type_in_variant_yaml_is_an_input_error(gitops, tmp_path):
    path = gitops.path / "models/canopy-tiny/v1.3-int4-g64/variant.yaml"
    path.write_text(path.read_text().replace("known_issues: []", "known_issues: [{slow: true}]"))
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Promote, with a mapping where a string belongs")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "models/canopy-tiny/v1.3-int4-g64/variant.yaml: known_issues[0]: "
                                          "must be a string, got a mapping (fix: ")


def test_attack__wrong_type_in_manifest_is_an_input_error(gitops, tmp_path):
    gitops.write("environments/test/canopy.yaml", (gitops.path / "environments/test/canopy.yaml").read_text()
                 .replace("  labels:\n    app.kubernetes.io/name: canopy", "  labels: [canopy]", 1)
                 .replace("canopy-tiny/v1.0-fp32", "canopy-tiny/v1.4-int2-g64"))
    gitops.commit("Promote int2, labels as a list")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "environments/test/canopy.yaml: document[0].metadata.labels: must be a mapping")


# --- denial of service: YAML alias bombs -----------------------------------------------------------

BOMB = "\n".join(["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
                 + [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)])


def test_attack__alias_bomb_in_canary_steps_is_refused(gitops, tmp_path):
    import time

    bomb = "\n".join("        " + line for line in BOMB.splitlines())
    gitops.write("environments/prod/canopy.yaml", f"""\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: canopy
  annotations:
    promotion-bot/variant: canopy-tiny/v1.0-fp32
spec:
  strategy:
    canary:
      steps:
      - setWeight: 10
      - pause:
{bomb}
""")
    gitops.commit("Canary steps that never end")
    started = time.monotonic()
    code, report, comment = run_check(gitops, tmp_path)
    assert time.monotonic() - started < 20
    assert code == 2
    assert_refused(code, report, comment, "environments/prod/canopy.yaml: line ", "through YAML aliases")


def test_attack__alias_bomb_in_known_issues_is_refused(gitops, tmp_path):
    path = gitops.path / "models/canopy-tiny/v1.3-int4-g64/variant.yaml"
    path.write_text(path.read_text().replace("known_issues: []\n", "") + BOMB + "\nknown_issues: *l8\n")
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Known issues: all of them")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "models/canopy-tiny/v1.3-int4-g64/variant.yaml", "through YAML aliases")


# --- the bot sees what Argo CD applies -------------------------------------------------------------

PROD = "environments/prod/canopy.yaml"


def prod_text(gitops) -> str:
    return (gitops.path / PROD).read_text()


def with_args(text: str, args: str) -> str:
    return text.replace("spec:\n  replicas: 1\n", "spec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n"
                        f"      - name: vllm\n        image: vllm/vllm-openai:v0.11.0\n        args: {args}\n", 1)


def test_attack__annotation_kept_while_args_serve_int2(gitops, tmp_path):
    gitops.write(PROD, with_args(prod_text(gitops), '["--model", "/zoo/models/canopy-tiny/v1.4-int2-g64/weights"]'))
    gitops.commit("Same annotation, other weights")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, f"{PROD}: document[0].spec.template.spec.containers[0].args[1]: references "
                   "zoo variant canopy-tiny/v1.4-int2-g64 but annotation promotion-bot/variant says canopy-tiny/v1.0-fp32")


def test_attack__annotation_removed_from_a_served_object(gitops, tmp_path):
    gitops.write(PROD, prod_text(gitops).replace("    promotion-bot/variant: canopy-tiny/v1.0-fp32\n", "    note: x\n"))
    gitops.commit("Drop the annotation")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2 and report["removals"] == []
    assert_refused(code, report, comment, f"{PROD}: Deployment/canopy: no longer names its variant "
                   "(it served canopy-tiny/v1.0-fp32), but Argo CD still applies it")


def test_attack__extra_object_serving_without_the_annotation(gitops, tmp_path):
    gitops.write("environments/prod/shadow.yaml", with_args(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shadow\nspec:\n  replicas: 1\n",
        '["--model", "/zoo/models/canopy-tiny/v1.4-int2-g64/weights"]'))
    gitops.commit("A second server, unannotated")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "environments/prod/shadow.yaml: document[0].spec.template.spec.containers[0]"
                   ".args[1]: references zoo variant canopy-tiny/v1.4-int2-g64 but Deployment/shadow does not name its variant")


def test_attack__same_name_in_another_namespace_is_its_own_object(gitops, tmp_path):
    other = prod_text(gitops).replace("  name: canopy\n", "  name: canopy\n  namespace: shadow\n")
    gitops.write("environments/prod/canopy-shadow.yaml", other.replace("canopy-tiny/v1.0-fp32", "canopy-tiny/v1.4-int2-g64"))
    gitops.commit("int2 under the same name, another namespace")
    code, report, comment = run_check(gitops, tmp_path)
    [promo] = report["promotions"]
    assert promo["object"] == "shadow/Deployment/canopy" and promo["to_variant"] == "canopy-tiny/v1.4-int2-g64"
    assert_refused(code, report, comment, "promotion-order fail: canopy-tiny/v1.4-int2-g64 has not passed staging")


def test_attack__duplicate_object_in_an_environment(gitops, tmp_path):
    gitops.write("environments/prod/copy.yaml", prod_text(gitops).replace("canopy-tiny/v1.0-fp32", "canopy-tiny/v1.4-int2-g64"))
    gitops.commit("The same object twice")
    code, report, comment = run_check(gitops, tmp_path)
    assert_refused(code, report, comment, "Argo CD refuses to sync an application with a duplicate object")


def test_attack__json_manifest_is_read(gitops, tmp_path):
    import yaml

    docs = list(yaml.safe_load_all(prod_text(gitops).replace("canopy-tiny/v1.0-fp32", "canopy-tiny/v1.4-int2-g64")))
    docs[0]["metadata"]["name"] = docs[1]["metadata"]["name"] = "canopy-json"
    gitops.write("environments/prod/canopy.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    gitops.commit("int2 in prod, as JSON")
    code, report, comment = run_check(gitops, tmp_path)
    [promo] = report["promotions"]
    assert promo["manifest"] == "environments/prod/canopy.json"
    assert_refused(code, report, comment, "promotion-order fail: canopy-tiny/v1.4-int2-g64 has not passed staging")


def kustomized_prod(gitops):
    gitops.write("environments/prod/kustomization.yaml", "resources: [canopy.yaml]\npatches:\n- target: {kind: Deployment, "
                 "name: canopy}\n  patch: |\n    - op: replace\n      path: /metadata/annotations/promotion-bot~1variant\n"
                 "      value: canopy-tiny/v1.4-int2-g64\n")
    gitops.commit("A kustomization that patches int2 in")


def test_attack__kustomization_is_rendered(gitops, tmp_path):
    import shutil

    if not (shutil.which("kustomize") or shutil.which("kubectl")):
        pytest.skip("neither kustomize nor kubectl is installed (scripts/test-services.sh installs them)")
    kustomized_prod(gitops)
    code, report, comment = run_check(gitops, tmp_path)
    [promo] = report["promotions"]
    assert promo["manifest"] == "environments/prod/kustomization.yaml" and promo["to_variant"] == "canopy-tiny/v1.4-int2-g64"
    assert_refused(code, report, comment, "promotion-order fail: canopy-tiny/v1.4-int2-g64 has not passed staging")


def test_attack__kustomization_without_kustomize_is_refused(gitops, tmp_path, monkeypatch):
    kustomized_prod(gitops)
    git_dir = tmp_path / "bin"
    git_dir.mkdir()
    import shutil
    (git_dir / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(git_dir))  # git only: no kustomize, no kubectl
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "environments/prod/kustomization.yaml: : Argo CD renders this folder with "
                   "kustomize, but neither `kustomize` nor `kubectl` is installed")


def test_attack__helm_chart_in_an_environment_is_refused(gitops, tmp_path):
    gitops.write("environments/prod/Chart.yaml", "apiVersion: v2\nname: canopy\nversion: 0.1.0\n")
    gitops.commit("Make prod a chart")
    code, report, comment = run_check(gitops, tmp_path)
    assert_refused(code, report, comment, "environments/prod/Chart.yaml: : makes Argo CD render environments/prod as a Helm chart")


def test_attack__environment_folder_replaced_by_a_symlink(gitops, tmp_path):
    import os
    import shutil

    gitops.set_variant("staging", "canopy-tiny/v1.4-int2-g64")  # where the link will point
    gitops.commit("int2 into staging (another PR)")
    shutil.rmtree(gitops.path / "environments/prod")
    os.symlink("staging", gitops.path / "environments/prod")
    gitops.commit("prod is staging now")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2 and report["removals"] == []
    assert_refused(code, report, comment, "environments/prod: : is a symlink under environments/")


def test_attack__submodule_inside_an_environment(gitops, tmp_path):
    sha = gitops.repo.head.commit.hexsha
    gitops.repo.git.update_index("--add", "--cacheinfo", f"160000,{sha},environments/prod/vendored")
    gitops.repo.git.commit("-m", "Vendor manifests as a submodule")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "environments/prod/vendored: : is a submodule under environments/prod/")


# --- the comment: every PR string escaped ----------------------------------------------------------

def test_attack__hostile_variant_and_manifest_fields_render_inert(gitops, tmp_path):
    from html_safety import html_problems

    hostile = "<img src=x onerror=alert(1)><a href=https://evil.example>x</a> @octocat ## ✅ PASS <!--"
    path = gitops.path / "models/canopy-tiny/v1.3-int4-g64/variant.yaml"
    text = path.read_text().replace("base_model: canopy-tiny/v1.0-fp32", "base_model: 'canopy/v1<img src=x>@octocat<!--'")
    text = text.replace("known_issues: []", f"known_issues: [{json.dumps(hostile)}]\ndescription: {json.dumps(hostile)}")
    text = text.replace("dataset: canopy-calibration", f"dataset: {json.dumps(hostile)}")
    path.write_text(text)
    # A new object: an existing one keeps the application it had at the base.
    gitops.write("environments/test/hostile.yaml", (gitops.path / "environments/test/canopy.yaml").read_text()
                 .replace("canopy-tiny/v1.0-fp32", "canopy-tiny/v1.3-int4-g64").replace("name: canopy", "name: hostile")
                 .replace("    promotion-bot/variant:", f"    promotion-bot/app: {json.dumps(hostile)}\n    promotion-bot/variant:"))
    gitops.commit("Promote, with HTML everywhere")
    code, report, comment = run_check(gitops, tmp_path)
    assert report["promotions"][0]["application"] == hostile  # the value reached the comment...
    assert "Model card: canopy-tiny/v1.3-int4-g64" in comment
    assert html_problems(comment) == []  # ...as text: no raw tag, no live mention, no open comment


# --- names: no trailing-newline twins ----------------------------------------------------------------

def test_attack__model_name_with_a_newline_is_not_a_variant(gitops, tmp_path):
    import shutil

    shutil.copytree(gitops.path / "models/canopy-tiny/v1.4-int2-g64", gitops.path / "models/canopy-tiny\n/v1.3-int4-g64")
    gitops.write(PROD, prod_text(gitops).replace("promotion-bot/variant: canopy-tiny/v1.0-fp32",
                                                 'promotion-bot/variant: "canopy-tiny\\n/v1.3-int4-g64"'))
    gitops.commit("A twin of v1.3 that is int2")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "'canopy-tiny\\n/v1.3-int4-g64' is not a variant reference")


# --- weights: data only, nothing outside the folder (a real lm-eval gate on tiny models) ------------

PERPLEXITY_GATE = """\
- check: perplexity
  task: canopy_heldout
  metric: word_perplexity
  max_increase: 3%
  limit: 2
"""


def weights_attack(lm_models, tmp_path, tamper, message):
    from lm_eval_models import lm_eval_repo

    repo = lm_eval_repo(tmp_path / "repo", lm_models, PERPLEXITY_GATE)
    tamper(repo, repo.path / "models/canopy-tiny/v1.6-int2-g16/weights")
    repo.set_variant("test", "canopy-tiny/v1.6-int2-g16")
    repo.commit("Promote int2, with tampered weights")
    code, report, comment = run_check(repo, tmp_path)
    assert code == 2, messages(report)
    text = assert_refused(code, report, comment, message)
    assert "lm-eval in" not in text  # refused before any model was evaluated
    cache = tmp_path / "cache" / "lm-eval"
    assert not cache.exists() or not any(cache.rglob("*.json")), "a result was cached from PR-controlled files"


@pytest.mark.slow
def test_attack__pickle_beside_safetensors_is_refused(lm_models, tmp_path):
    weights_attack(lm_models, tmp_path, lambda repo, w: (w / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01."),
                   "models/canopy-tiny/v1.6-int2-g16/variant.yaml: weights.path: the weights folder holds pickle "
                   "files (pytorch_model.bin)")


@pytest.mark.slow
def test_attack__auto_map_and_code_in_weights_are_refused(lm_models, tmp_path):
    def tamper(repo, weights):
        config = json.loads((weights / "config.json").read_text())
        config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.Evil"}
        (weights / "config.json").write_text(json.dumps(config))

    weights_attack(lm_models, tmp_path, tamper, "the weights folder holds a config with `auto_map` (config.json)")


@pytest.mark.slow
def test_attack__symlinked_weights_are_refused(lm_models, tmp_path):
    import os

    def tamper(repo, weights):
        (weights / "model.safetensors").unlink()
        os.symlink("../../v1.0-fp32/weights/model.safetensors", weights / "model.safetensors")

    weights_attack(lm_models, tmp_path, tamper, "models/canopy-tiny/v1.6-int2-g16/weights/model.safetensors: is a "
                   "symlink to '../../v1.0-fp32/weights/model.safetensors'")
