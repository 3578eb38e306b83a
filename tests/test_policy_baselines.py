"""Baselines the policy names exist in the zoo at the base revision, used by a check or not."""

from __future__ import annotations

import pytest

from bot.checks import load_policy
from bot.core.errors import InputError
from bot.policy.model import baseline_problems
from bot.vcs.reader import GitReader
from bot.zoo.variants import Zoo
from tests.gitops import POLICY, demo_like_repo


def problems(repo, policy_text: str, **kwargs) -> list[str]:
    reader = GitReader(repo.path)
    rev = reader.resolve("HEAD")
    return [str(p) for p in baseline_problems(load_policy.parse(policy_text), Zoo(reader, rev), **kwargs)]


def test_baseline_problems__typo_is_named_with_did_you_mean(tmp_path):
    repo = demo_like_repo(tmp_path)
    assert problems(repo, POLICY.replace("baseline: v1.0-fp32", "baseline: v1.0-fp23")) == [
        "promotion.yaml: models.canopy-tiny.baseline: baseline canopy-tiny/v1.0-fp23 does not exist: there is no "
        "models/canopy-tiny/v1.0-fp23/ (fix: did you mean `v1.0-fp32`?)"]
    assert problems(repo, POLICY) == []


def test_baseline_problems__environment_baseline_must_exist(tmp_path):
    repo = demo_like_repo(tmp_path)
    policy = POLICY.replace("  - name: staging\n", "  - name: staging\n    baseline: v1.2-int4-g64\n")
    assert problems(repo, policy) == [
        "promotion.yaml: environments[1].baseline: baseline canopy-tiny/v1.2-int4-g64 does not exist: there is no "
        "models/canopy-tiny/v1.2-int4-g64/ (fix: did you mean `v1.3-int4-g64`?)"]


def test_baseline_problems__new_model_allowed_in_a_pr_not_in_validate(tmp_path):
    repo = demo_like_repo(tmp_path)
    policy = POLICY.replace("models:\n", "models:\n  acme-1b:\n    baseline: v1.0-bf16\n")
    assert problems(repo, policy) == []  # its baseline comes with the PR that adds the model
    assert problems(repo, policy, new_models=False) == [
        "promotion.yaml: models.acme-1b: names model 'acme-1b' but the zoo has no models/acme-1b/ "
        "(fix: add models/acme-1b/<variant>/variant.yaml, or remove the entry)"]


def test_policy_load__gate_refuses_a_missing_baseline_no_check_uses(tmp_path):
    repo = demo_like_repo(tmp_path, policy=POLICY.replace("baseline: v1.0-fp32", "baseline: v2.0-bf61"))
    reader = GitReader(repo.path)
    with pytest.raises(InputError, match="baseline canopy-tiny/v2.0-bf61 does not exist"):
        load_policy.load(reader, reader.resolve("HEAD"))


@pytest.mark.parametrize("entry, fix", [
    ("{check: zoo, timout: 5m}", "did you mean `timeout`?"),
    ("{check: perplexity, task: x, timout: 5m}", "did you mean `timeout`?"),
    ("{check: perplexity, task: x, limt: 5}", "did you mean `limit`?"),
    ("{check: zoo, foo: 1}", "at the top of the policy: `zoo: {require: [recipe, calibration, weights]}`; a gate "
                             "entry also takes confidence, decide, on_inconclusive, runs_on, shards, timeout"),
    ("{check: promotion-order, foo: 1}", "check `promotion-order` has no options of its own; every entry takes "
                                         "check, confidence, decide"),
])
def test_parse_policy__mistyped_gate_entry_key_names_the_fix(entry, fix):
    with pytest.raises(InputError) as exc:
        load_policy.parse(f"environments:\n  - name: test\n    gate:\n      - {entry}\n")
    assert exc.value.field.startswith("environments[0].gate[0].") and fix in exc.value.fix, exc.value
