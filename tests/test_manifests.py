"""Environment manifests: what each object serves, with strict types (Kubernetes' own)."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from bot.core.errors import InputError
from bot.core.fields import Loc
from bot.gitops.manifests import parse_manifest
from bot.policy.variant_refs import VariantRefRule, parse_variant_ref

PATH = "environments/prod/canopy.yaml"
ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
    "metadata": {"name": "canopy", "namespace": "canopy",
                 "labels": {"app.kubernetes.io/name": "canopy"},
                 "annotations": {"promotion-bot/variant": "canopy-tiny/v1.3-int4-g64", "promotion-bot/app": "canopy",
                                 "promotion-bot/served-model": "canopy"}},
    "spec": {"replicas": 2, "strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "10m"}}]}},
             "template": {"spec": {"containers": [{"name": "server", "image": "vllm/vllm-openai:v0.6.0",
                                                   "args": ["--model", "/models/canopy-tiny/v1.3-int4-g64/weights"]}]}}},
}
INFERENCE_SERVICE = {
    "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "canopy"},
    "spec": {"predictor": {"model": {"storageUri": "s3://zoo/models/canopy-tiny/v1.3-int4-g64/weights"}}},
}
FIELD_RULE = parse_variant_ref({"field": "spec.predictor.model.storageUri",
                                "pattern": r"models/(?P<model>[^/]+)/(?P<variant>[^/]+)/"}, Loc("promotion.yaml", "variant_ref"))
WRONG = (["a", "b"], {"a": 1}, 7, True, None)


def paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield prefix + (i,)
            yield from paths(value, prefix + (i,))


def with_value(data, path, value):
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def test_parse_manifest__annotation_and_field_rules():
    [obj] = parse_manifest(yaml.safe_dump(ROLLOUT), PATH, VariantRefRule())
    # No --served-model-name: vLLM names the model (and its metrics) by its --model, whatever the annotation says.
    assert (obj.object, str(obj.ref), obj.application, obj.served_model) == (
        "canopy/Rollout/canopy", "canopy-tiny/v1.3-int4-g64", "canopy", "/models/canopy-tiny/v1.3-int4-g64/weights")
    assert obj.key == ("argoproj.io", "Rollout", "canopy", "canopy")
    assert obj.canary_steps == ({"setWeight": 10}, {"pause": {"duration": "10m"}})
    [obj] = parse_manifest(yaml.safe_dump(INFERENCE_SERVICE), PATH, FIELD_RULE)
    assert str(obj.ref) == "canopy-tiny/v1.3-int4-g64"


@pytest.mark.parametrize("doc,rule", [(ROLLOUT, VariantRefRule()), (INFERENCE_SERVICE, FIELD_RULE)],
                         ids=["annotation", "field"])
def test_parse_manifest__wrong_type_anywhere_is_input_error_never_a_crash(doc, rule):
    for path in paths(doc):
        for wrong in WRONG:
            text = yaml.safe_dump(with_value(doc, path, wrong))
            try:
                for obj in parse_manifest(text, PATH, rule):
                    assert isinstance(obj.application, str) and isinstance(obj.served_model, str)
                    assert obj.canary_steps is None or all(isinstance(s, dict) for s in obj.canary_steps)
            except InputError as exc:
                assert exc.file == PATH and exc.field.startswith("document[0]") and exc.fix, (path, wrong, exc)


def test_parse_manifest__wrong_type_messages_name_field_and_fix():
    with pytest.raises(InputError) as exc:
        parse_manifest(yaml.safe_dump(with_value(ROLLOUT, ("metadata", "annotations", "promotion-bot/app"), ["a"])),
                       PATH, VariantRefRule())
    assert str(exc.value).startswith(f"{PATH}: document[0].metadata.annotations.promotion-bot/app: must map a string "
                                     "to a string, got list")
    with pytest.raises(InputError, match=r"spec.strategy.canary.steps: must be a list, got int"):
        parse_manifest(yaml.safe_dump(with_value(ROLLOUT, ("spec", "strategy", "canary", "steps"), 3)), PATH,
                       VariantRefRule())
    with pytest.raises(InputError, match=r"spec.predictor.model.storageUri: must be a string, got list"):
        parse_manifest(yaml.safe_dump(with_value(INFERENCE_SERVICE, ("spec", "predictor", "model", "storageUri"),
                                                 ["models/canopy-tiny/v1.3-int4-g64/"])), PATH, FIELD_RULE)


def test_parse_manifest__zoo_reference_disagreeing_with_the_annotation_is_an_error():
    doc = with_value(ROLLOUT, ("spec", "template", "spec", "containers", 0, "args", 1),
                     "/models/canopy-tiny/v1.4-int2-g64/weights")
    with pytest.raises(InputError) as exc:
        parse_manifest(yaml.safe_dump(doc), PATH, VariantRefRule())
    assert exc.value.field == "document[0].spec.template.spec.containers[0].args[1]"
    assert ("references zoo variant canopy-tiny/v1.4-int2-g64 but annotation promotion-bot/variant says "
            "canopy-tiny/v1.3-int4-g64") in exc.value.message


@pytest.mark.parametrize("where,value", [
    (("spec", "template", "spec", "containers", 0, "env"), [{"name": "MODEL", "value": "canopy-tiny/v1.4-int2-g64"}]),
    (("spec", "template", "spec", "volumes"), [{"name": "w", "hostPath": {"path": "/zoo/models/canopy-tiny/v1.4-int2-g64"}}]),
])
def test_parse_manifest__any_string_field_counts_as_a_reference(where, value):
    with pytest.raises(InputError, match="references zoo variant canopy-tiny/v1.4-int2-g64"):
        parse_manifest(yaml.safe_dump(with_value(ROLLOUT, where, value)), PATH, VariantRefRule())


def test_parse_manifest__field_rule_checks_the_other_references_too():
    doc = with_value(INFERENCE_SERVICE, ("spec", "predictor", "model", "args"), ["--model=canopy-tiny/v1.4-int2-g64"])
    with pytest.raises(InputError, match=re.escape("but field spec.predictor.model.storageUri ('s3://zoo/models/canopy-tiny/v1.3-int4-g64/weights') says canopy-tiny/v1.3-int4-g64")):
        parse_manifest(yaml.safe_dump(doc), PATH, FIELD_RULE)


def test_parse_manifest__object_serving_a_variant_without_naming_it_is_an_error():
    doc = copy.deepcopy(ROLLOUT)
    del doc["metadata"]["annotations"]["promotion-bot/variant"]
    with pytest.raises(InputError) as exc:
        parse_manifest(yaml.safe_dump(doc), PATH, VariantRefRule())
    assert "references zoo variant canopy-tiny/v1.3-int4-g64 but canopy/Rollout/canopy does not name its variant" in str(exc.value)
    assert "metadata.annotations: {promotion-bot/variant: canopy-tiny/v1.3-int4-g64}" in exc.value.fix


def test_parse_manifest__images_and_unrelated_strings_are_not_references():
    doc = with_value(ROLLOUT, ("spec", "template", "spec", "containers", 0, "image"), "ghcr.io/vllm/vllm-openai:v0.11.0-cu12")
    assert len(parse_manifest(yaml.safe_dump(doc), PATH, VariantRefRule())) == 1
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "canopy"}, "spec": {"ports": [{"port": 80}]}}
    assert parse_manifest(yaml.safe_dump(service), PATH, VariantRefRule()) == []


def test_parse_manifest__json_files_and_lists_are_read():
    from bot.gitops.manifests import parse_objects

    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "canopy"}}
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": [ROLLOUT, service]})
    objects = parse_objects(text, "environments/prod/canopy.json", VariantRefRule())
    assert [o.label for o in objects] == ["canopy/Rollout/canopy", "Service/canopy"]
    assert [o.served is not None for o in objects] == [True, False]
    with pytest.raises(InputError, match="malformed JSON"):
        parse_objects("{", "environments/prod/canopy.json", VariantRefRule())
