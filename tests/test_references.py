"""Strings read as the kubelet and the model server read them (bot/gitops/references.py)."""

from __future__ import annotations

import pytest

from bot.gitops.references import as_served, expand, normalise, served_model_name


def lookup(values):
    return values.get


@pytest.mark.parametrize("text, values, expected, missing", [
    ("$(A)/$(B)", {"A": "/models/m", "B": "v1"}, "/models/m/v1", []),
    ("$$(A)", {"A": "x"}, "$(A)", []),                  # an escaped operator: the literal text
    ("$$$(A)", {"A": "x"}, "$x", []),
    ("$(MISSING)/w", {}, "$(MISSING)/w", ["MISSING"]),  # left as written, as the kubelet leaves it
    ("$(A", {"A": "x"}, "$(A", []),                     # incomplete: kept
    ("a$b", {}, "a$b", []),
    ("$", {}, "$", []),
    ("$(A)", {"A": ""}, "", []),
])
def test_expand__kubernetes_expansion_rules(text, values, expected, missing):
    assert expand(text, lookup(values)) == (expected, missing)


@pytest.mark.parametrize("text, expected", [
    ("/models/m//v1.4-int2-g64/weights", "/models/m/v1.4-int2-g64/weights"),
    ("/models/m/./v1/weights/", "/models/m/v1/weights/"),
    ("/models/m/v1.3/weights/../../v1.4/weights", "/models/m/v1.4/weights"),
    ("s3://bucket/models/m/../m/v1", "s3://bucket/models/m/v1"),
    ("--model=/zoo//m/v1", "--model=/zoo/m/v1"),
    ("vllm serve /zoo/a/../b --port 8000", "vllm serve /zoo/b --port 8000"),
    ("no path here", "no path here"),
])
def test_normalise__paths_as_the_filesystem_resolves_them(text, expected):
    assert normalise(text) == expected


def container(args, env=None, **extra):
    c = {"name": "vllm", "image": "vllm/vllm-openai", "args": args, **extra}
    if env is not None:
        c["env"] = env
    return {"spec": {"template": {"spec": {"containers": [c]}}}}


def test_as_served__env_values_expand_from_earlier_vars_only():
    doc = container(["--model", "$(P)"], [{"name": "P", "value": "/z/$(Q)"}, {"name": "Q", "value": "later"}])
    served, unresolved = as_served(doc)
    # Q is defined after P: the kubelet leaves $(Q) in P's value.
    assert served["spec"]["template"]["spec"]["containers"][0]["args"] == ["--model", "/z/$(Q)"]
    assert [(u.where, u.name) for u in unresolved] == [("spec.template.spec.containers[0].env[0].value", "Q")]


@pytest.mark.parametrize("args, env, flagged", [
    (["--model", "$(M)"], [{"name": "M", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}], True),
    (["--model=$(M)"], [], True),
    (["serve", "$(X)"], [], True),
    (["--host", "$(POD_IP)"], [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}], False),
    (["--download-dir", "/cache/$(X)"], [], True),      # a path built from it
    (["--port", "$(PORT)"], [], False),
])
def test_as_served__unresolved_reference_where_a_model_path_goes(args, env, flagged):
    _, unresolved = as_served(container(args, env))
    assert bool(unresolved) is flagged


def test_as_served__envfrom_makes_an_undefined_name_unknown():
    _, [ref] = as_served(container(["--model", "$(MODEL)"], envFrom=[{"configMapRef": {"name": "serving"}}]))
    assert ref.name == "MODEL" and "envFrom" in ref.why


@pytest.mark.parametrize("args, expected", [
    (["--model", "/m/w", "--served-model-name", "canopy", "alias"], "canopy"),
    (["--served-model-name=canopy,other"], "canopy"),
    (["--model", "/m/w"], "/m/w"),                       # vLLM names it by its --model then
    (["serve", "/m/w", "--port", "8000"], "/m/w"),
    (["--model_name=canopy"], "canopy"),                 # KServe's model servers
    (["--port", "8000"], None),
])
def test_served_model_name__from_the_servers_own_args(args, expected):
    assert served_model_name(container(args)) == expected
