"""Messages a team other than the demo's reads: policy typos, variant references, fixes naming its
own models (tests/acme.py: acme-chat, acme-1b), never the demo's canopy."""

from __future__ import annotations

import pytest
from acme import MODEL, POLICY, acme_repo, rollout

from bot.checks.load_policy import parse as parse_policy
from bot.commands.card import load_variant_dir
from bot.core.errors import InputError
from bot.core.fields import Loc
from bot.gitops.manifests import parse_manifest
from bot.policy.variant_refs import VariantRefRule


def policy_error(policy: str) -> InputError:
    with pytest.raises(InputError) as exc:
        parse_policy(policy, "promotion.yaml")
    return exc.value


def test_policy__a_setting_under_check_zoo_says_where_requirements_go():
    exc = policy_error(POLICY.replace("      - check: zoo\n", "      - check: zoo\n        require: [recipe]\n", 1))
    assert exc.field == "environments[0].gate[0].require"
    assert "is not a setting of check `zoo`, which has no options of its own" in exc.message
    assert "`zoo: {require: [recipe, calibration, weights]}`" in exc.fix
    assert "a gate entry also takes confidence, decide, on_inconclusive, runs_on, shards, timeout" in exc.fix


@pytest.mark.parametrize("check", ["zoo", "promotion-order"])
def test_policy__a_typo_of_an_entry_key_is_named(check):
    policy = POLICY.replace(f"      - check: {check}\n", f"      - check: {check}\n        timout: 5m\n", 1)
    exc = policy_error(policy)
    assert exc.field.endswith(".timout") and "did you mean `timeout`?" in exc.fix


def test_fields__nothing_allowed_says_so_not_an_empty_list():
    from bot.core.fields import reject_unknown

    with pytest.raises(InputError) as exc:
        reject_unknown({"x": 1}, set(), Loc("promotion.yaml", "a"))
    assert "allowed keys: " not in str(exc.value) and exc.value.fix == "a takes no settings: remove it"


def test_parse_manifest__a_bad_reference_cites_the_variant_it_seems_to_mean():
    text = rollout("v2.4-int8").replace(f"promotion-bot/variant: {MODEL}/v2.4-int8",
                                        f"promotion-bot/variant: models/{MODEL}/v2.4-int8")
    with pytest.raises(InputError) as exc:
        parse_manifest(text, "environments/prod/acme-chat.yaml", VariantRefRule())
    assert exc.value.field == "document[0].metadata.annotations[promotion-bot/variant]"
    assert f"e.g. `{MODEL}/v2.4-int8`" in exc.value.fix and "canopy" not in str(exc.value)


def test_card__a_missing_folder_cites_a_variant_of_this_zoo(tmp_path):
    repo = acme_repo(tmp_path / "acme")
    with pytest.raises(InputError) as exc:
        load_variant_dir(repo.path / "models" / MODEL / "v9.9-int4")
    assert f"such as models/{MODEL}/v2.0-bf16" in exc.value.fix and "canopy" not in str(exc.value)
