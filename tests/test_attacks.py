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
    assert "**Model card** · canopy-tiny/v1.3-int4-g64" in comment
    assert html_problems(comment) == []  # ...as text: no raw tag, no live mention, no open comment
    # The whole card (the run's summary on GitHub) carries base_model, known issues and the description.
    from bot.gate.publish import full_cards
    from bot.verdicts.results import Report

    cards = full_cards(Report.from_json(report), files_url="https://github.example.com/o/r/blob/abc")
    assert "Model card: canopy-tiny/v1.3-int4-g64" in cards and "onerror" in cards  # present, as text
    assert html_problems(cards) == []


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


# --- replayed through `github pr`: what production runs, read as production reads it (#26) ----------

def pr_attack(monkeypatch, tmp_path, repo, *needles, base="HEAD~1", head="HEAD"):
    """Run the PR ``base``..``head`` through `promotion-bot github pr` against the fake GitHub: it must
    end in fail or error, its final statuses must be failure or error (never success), and the
    report's messages must name the cause (``needles``). Returns the messages."""
    from github_fake import FakeGitHub
    from github_fake.harness import REPO, TOKEN, pr_event, run_action

    base_sha, head_sha = repo.repo.commit(base).hexsha, repo.repo.commit(head).hexsha
    with FakeGitHub() as fake:
        fake.add_repo(REPO)
        fake.add_token(TOKEN, None)
        run = run_action(monkeypatch, tmp_path / "pr", fake, repo.path, "pull_request",
                         pr_event("pull_request.opened.json", base=base_sha, head=head_sha))
        [comment] = fake.comments_on(REPO, 12)
        finals = {}
        for status in fake.statuses_for(head_sha):
            finals[status["context"]] = status["state"]
    assert run.report is not None, run.summary
    text = assert_refused(run.code, run.report, comment["body"], *needles)
    # The umbrella and every environment the PR promotes into are never success; an environment it
    # does not touch is `success` (nothing to promote there), as branch protection needs.
    touched = {p["environment"] for p in run.report["promotions"]}
    judged = {ctx: state for ctx, state in finals.items()
              if ctx == "promotion-bot" or ctx.removeprefix("promotion-bot/") in touched}
    assert "promotion-bot" in judged and "success" not in judged.values(), finals
    return text


def vllm_rollout(env_var_block: str, args: str, variant="canopy-tiny/v1.0-fp32") -> str:
    return f"""\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: canopy
  labels:
    app.kubernetes.io/name: canopy
  annotations:
    promotion-bot/variant: {variant}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: vllm
        image: vllm/vllm-openai:v0.11.0
        args: {args}
{env_var_block}"""


def test_attack__args_built_from_env_vars_name_int2(monkeypatch, tmp_path, gitops):
    # The kubelet expands $(ZOO)/$(PICK) from the container's env: the server loads int2.
    env = ("        env:\n        - {name: ZOO, value: /models/canopy-tiny}\n"
           "        - {name: PICK, value: v1.4-int2-g64}\n")
    gitops.write(PROD, vllm_rollout(env, '["--model", "$(ZOO)/$(PICK)/weights"]'))
    gitops.commit("Same annotation, args from env vars")
    pr_attack(monkeypatch, tmp_path, gitops, "containers[0].args[1]: references zoo variant canopy-tiny/v1.4-int2-g64 "
              "but annotation promotion-bot/variant says canopy-tiny/v1.0-fp32")


def test_attack__env_value_built_from_earlier_vars_names_int2(monkeypatch, tmp_path, gitops):
    env = ("        env:\n        - {name: PICK, value: v1.4-int2-g64}\n"
           "        - {name: MODEL_PATH, value: /models/canopy-tiny/$(PICK)/weights}\n")
    gitops.write(PROD, vllm_rollout(env, '["--model", "$(MODEL_PATH)"]'))
    gitops.commit("The path in an env var built from another")
    pr_attack(monkeypatch, tmp_path, gitops, "references zoo variant canopy-tiny/v1.4-int2-g64")


@pytest.mark.parametrize("path", ["/models/canopy-tiny//v1.4-int2-g64/weights",
                                  "/models/canopy-tiny/./v1.4-int2-g64/weights",
                                  "/models/canopy-tiny/v1.0-fp32/weights/../../v1.4-int2-g64/weights"])
def test_attack__path_that_resolves_to_int2(monkeypatch, tmp_path, gitops, path):
    gitops.write(PROD, vllm_rollout("", json.dumps(["--model", path])))
    gitops.commit("A path the filesystem resolves to int2")
    pr_attack(monkeypatch, tmp_path, gitops, "args[1]: references zoo variant canopy-tiny/v1.4-int2-g64 but "
              "annotation promotion-bot/variant says canopy-tiny/v1.0-fp32")


def test_attack__model_path_from_value_from_is_refused(monkeypatch, tmp_path, gitops):
    env = ("        env:\n        - name: MODEL\n          valueFrom:\n            configMapKeyRef: {name: serving, key: model}\n")
    gitops.write(PROD, vllm_rollout(env, '["--model", "$(MODEL)"]'))
    gitops.commit("The model path from a ConfigMap")
    pr_attack(monkeypatch, tmp_path, gitops, "containers[0].args[1]: $(MODEL) is set from valueFrom (known only in the "
              "cluster), where a model path goes")


def test_attack__reference_in_an_annotation_is_read(monkeypatch, tmp_path, gitops):
    gitops.write(PROD, prod_text(gitops).replace("    promotion-bot/variant: canopy-tiny/v1.0-fp32\n",
                 "    promotion-bot/variant: canopy-tiny/v1.0-fp32\n    serving.kserve.io/storage: /zoo/canopy-tiny/v1.4-int2-g64\n"))
    gitops.commit("int2 named in another annotation")
    pr_attack(monkeypatch, tmp_path, gitops, "metadata.annotations[serving.kserve.io/storage]: references zoo variant "
              "canopy-tiny/v1.4-int2-g64")


@pytest.mark.parametrize("rule, target", [("kustomization.yaml export-subst", "environments/prod/.gitattributes"),
                                          ("*.safetensors export-ignore", ".gitattributes"),
                                          ("weights/** filter=lfs", "models/canopy-tiny/.gitattributes")])
def test_attack__gitattributes_reaching_environments_or_models_is_refused(monkeypatch, tmp_path, gitops, rule, target):
    gitops.write(target, rule + "\n")
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Attributes that change what an export writes")
    pr_attack(monkeypatch, tmp_path, gitops, f"{target}: : this PR added a .gitattributes whose rules reach",
              "what Argo CD and the model servers read could differ from the blobs the bot judges")


def test_attack__relabelled_object_does_not_ride_another_apps_evidence(monkeypatch, tmp_path, gitops):
    # billing serves int2 in staging; canopy's prod object is relabelled `billing` while promoted to int2.
    gitops.set_variant("staging", "canopy-tiny/v1.4-int2-g64", file="billing.yaml", name="billing")
    gitops.commit("billing runs int2 in staging (another PR)")
    text = prod_text(gitops).replace("app.kubernetes.io/name: canopy", "app.kubernetes.io/name: billing")
    gitops.write(PROD, text.replace("canopy-tiny/v1.0-fp32", "canopy-tiny/v1.4-int2-g64"))
    gitops.commit("Promote canopy's prod to int2 as 'billing'")
    pr_attack(monkeypatch, tmp_path, gitops, "Deployment/canopy: changes its application from 'canopy' to 'billing' in "
              "the same PR that changes its variant")


def test_attack__ignore_glob_without_a_slash_does_not_hide_a_sub_folder(monkeypatch, tmp_path, gitops):
    from gitops import POLICY

    gitops.write("promotion.yaml", POLICY.replace("  - name: prod\n", "  - name: prod\n    ignore: [shadow.yaml]\n"))
    gitops.commit("prod ignores its shadow.yaml")
    gitops.write("environments/prod/extra/shadow.yaml", prod_text(gitops).replace("name: canopy", "name: shadow")
                 .replace("canopy-tiny/v1.0-fp32", "canopy-tiny/v1.4-int2-g64"))
    gitops.commit("int2 in a sub-folder's shadow.yaml, which Argo CD applies")
    pr_attack(monkeypatch, tmp_path, gitops, "promotion-order fail: canopy-tiny/v1.4-int2-g64 has not passed staging")


def test_attack__unpinned_remote_kustomize_resource_is_refused(monkeypatch, tmp_path, gitops):
    gitops.write("environments/prod/kustomization.yaml",
                 "resources:\n- canopy.yaml\n- https://github.com/acme/serving//prod?ref=main\n")
    gitops.commit("prod renders a remote base on a branch")
    pr_attack(monkeypatch, tmp_path, gitops, "environments/prod/kustomization.yaml: resources[1]: "
              "'https://github.com/acme/serving//prod?ref=main' is a remote resource not pinned to a full commit id")


def test_attack__remote_kustomize_file_over_http_is_refused(monkeypatch, tmp_path, gitops):
    gitops.write("environments/prod/kustomization.yaml",
                 "resources:\n- canopy.yaml\n- https://raw.example.com/acme/serving/main/prod.yaml\n")
    gitops.commit("prod renders a file from a web server")
    pr_attack(monkeypatch, tmp_path, gitops, "is a file fetched over HTTP when the environment renders")


def test_attack__huge_manifest_without_aliases_is_refused_quickly(monkeypatch, tmp_path, gitops):
    import time

    gitops.write("environments/prod/big.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  x: ["
                 + ",".join(["0"] * 1_200_000) + "]\n")
    gitops.commit("2.4 MB of zeros")
    started = time.monotonic()
    pr_attack(monkeypatch, tmp_path, gitops, "environments/prod/big.yaml: line ", "holds more than 1,000,000 values")
    assert time.monotonic() - started < 60


def test_attack__pause_that_is_not_a_duration_is_an_error_not_a_traceback(monkeypatch, tmp_path, gitops):
    gitops.write(PROD, "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: canopy\n  annotations:\n"
                 "    promotion-bot/variant: canopy-tiny/v1.0-fp32\nspec:\n  strategy:\n    canary:\n      steps:\n"
                 "      - setWeight: 10\n      - pause: soon\n")
    gitops.commit("A canary that pauses 'soon'")
    pr_attack(monkeypatch, tmp_path, gitops, "document[0].spec.strategy.canary.steps[1].pause: must be a mapping, got 'soon'")


# --- weights: one set, what the declaration says (the real canopy-tiny zoo's files) -------------------

ZOO = __import__("pathlib").Path(__file__).resolve().parent.parent / "models" / "canopy-tiny"


def real_weights(repo, variant: str, source: str) -> None:
    import shutil

    target = repo.path / "models/canopy-tiny" / variant / "weights"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ZOO / source / "weights", target, copy_function=shutil.copy)


@pytest.fixture
def zoo_gitops(gitops):
    if not (ZOO / "v1.4-int2-g64" / "weights" / "model.safetensors").is_file():
        pytest.skip("the canopy-tiny zoo is not built here: python -m bot.demo.build_zoo")
    for variant in ("v1.0-fp32", "v1.1-int8", "v1.2-int4-g128", "v1.3-int4-g64", "v1.4-int2-g64"):
        real_weights(gitops, variant, variant)
    gitops.commit("The real weights")
    return gitops


def test_attack__real_weights_as_declared_pass_the_zoo_check(monkeypatch, tmp_path, zoo_gitops):
    zoo_gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    zoo_gitops.commit("Promote v1.3 to test")
    code, report, _ = run_check(zoo_gitops, tmp_path)
    assert code == 0, messages(report)


def test_attack__int2_weights_in_an_int4_folder_are_refused(monkeypatch, tmp_path, zoo_gitops):
    real_weights(zoo_gitops, "v1.3-int4-g64", "v1.4-int2-g64")
    zoo_gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    zoo_gitops.commit("'v1.3-int4-g64', with int2 weights")
    pr_attack(monkeypatch, tmp_path, zoo_gitops, "models/canopy-tiny/v1.3-int4-g64/variant.yaml: quantization: "
              "variant.yaml declares 4-bit weights (GPTQ W4A16 4 bits group 64), config.json's quantization_config says "
              "compressed-tensors pack-quantized, int2 weights")


def test_attack__declared_fp8_over_int8_weights_is_refused(monkeypatch, tmp_path, zoo_gitops):
    import shutil

    shutil.copytree(zoo_gitops.path / "models/canopy-tiny/v1.1-int8", zoo_gitops.path / "models/canopy-tiny/v1.5-fp8")
    path = zoo_gitops.path / "models/canopy-tiny/v1.5-fp8/variant.yaml"
    path.write_text(path.read_text().replace("variant: v1.1-int8", "variant: v1.5-fp8")
                    .replace("scheme: W8A16", "scheme: FP8_DYNAMIC").replace("group_size: 128", "group_size: null"))
    zoo_gitops.set_variant("test", "canopy-tiny/v1.5-fp8")
    zoo_gitops.commit("An 'FP8' variant whose weights are int8")
    pr_attack(monkeypatch, tmp_path, zoo_gitops, "variant.yaml declares float weights", "config.json's quantization_config "
              "says compressed-tensors pack-quantized, int8 weights")


def test_attack__two_weight_sets_in_one_folder_are_refused(monkeypatch, tmp_path, zoo_gitops):
    # transformers loads model.safetensors (int4); vLLM follows the index to the int2 shard.
    weights = zoo_gitops.path / "models/canopy-tiny/v1.3-int4-g64/weights"
    import shutil
    import struct

    shutil.copy(ZOO / "v1.4-int2-g64/weights/model.safetensors", weights / "model-00001-of-00001.safetensors")
    raw = (ZOO / "v1.4-int2-g64/weights/model.safetensors").read_bytes()
    names = [k for k in json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]]) if k != "__metadata__"]
    (weights / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {n: "model-00001-of-00001.safetensors" for n in names}}))
    zoo_gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    zoo_gitops.commit("v1.3 with an index that names int2")
    pr_attack(monkeypatch, tmp_path, zoo_gitops, "models/canopy-tiny/v1.3-int4-g64/variant.yaml: weights.path: the "
              "weights folder holds model.safetensors, which model.safetensors.index.json does not name")


def test_attack__zero_filled_weights_beyond_the_declared_size_are_not_exported(tmp_path, zoo_gitops):
    from bot.checks.context import CheckContext
    from bot.core.errors import InputError
    from bot.gate.pipeline import plan_pr
    from bot.vcs.reader import GitReader

    base = zoo_gitops.repo.head.commit.hexsha
    zoo_gitops.write("models/canopy-tiny/v1.3-int4-g64/weights/extra.dat", bytes(60 * 2**20))  # 60 KB once packed
    path = zoo_gitops.path / "models/canopy-tiny/v1.3-int4-g64/variant.yaml"
    path.write_text(path.read_text() + "size_bytes: 1042725\n")  # what the real weights take
    zoo_gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    head = zoo_gitops.commit("60 MB of zeros beside the weights, the declared size unchanged")
    reader = GitReader(zoo_gitops.path)
    try:
        plan, policy = plan_pr(reader, base, head)
        [promo] = plan.promotions
        ctx = CheckContext(reader=reader, base=plan.base, head=plan.merged, policy=policy,
                           environment=policy.environment("test"), promotion=promo,
                           workdir=tmp_path / "work", cache_dir=tmp_path / "cache")
        with pytest.raises(InputError) as exc:
            ctx.weights_dir(ctx.candidate)
    finally:
        reader.close()
    assert exc.value.file == "models/canopy-tiny/v1.3-int4-g64/variant.yaml" and exc.value.field == "weights.path"
    assert "more than the 1,042,725 its variant.yaml declares" in exc.value.message
    assert not any((tmp_path / "cache").rglob("extra.dat"))  # refused before anything was written


def test_attack__served_model_annotation_does_not_blind_the_monitor(gitops):
    from bot.checks.load_policy import from_rev
    from bot.gitops.manifests import deployments
    from bot.vcs.reader import GitReader

    text = vllm_rollout("", '["--model", "/models/canopy-tiny/v1.0-fp32/weights", "--served-model-name", "canopy"]')
    gitops.write(PROD, text.replace("    promotion-bot/variant:", "    promotion-bot/served-model: nobody\n"
                                                                 "    promotion-bot/variant:"))
    gitops.commit("The monitor's query names a model nobody serves")
    reader = GitReader(gitops.path)
    try:
        [dep] = deployments(reader, "HEAD", from_rev(reader, "HEAD"), "prod")
    finally:
        reader.close()
    assert dep.served_model == "canopy"  # what vLLM exports its metrics under, not what the annotation claims
