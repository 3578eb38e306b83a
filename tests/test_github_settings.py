"""The Actions environment: named errors, no token in repr, no token in children's environment."""

from __future__ import annotations

import pytest

from bot.core.errors import InputError
from bot.github.settings import Settings

ENV = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": "/tmp/event.json",
       "GITHUB_REPOSITORY": "acme-ml/gitops", "GITHUB_TOKEN": "ghs_secret_value_123",
       "GITHUB_API_URL": "https://ghe.example.com/api/v3/", "GITHUB_SERVER_URL": "https://ghe.example.com",
       "GITHUB_RUN_ID": "99"}


def test_settings__reads_actions_environment():
    s = Settings.from_env(ENV)
    assert s.api_url == "https://ghe.example.com/api/v3"
    assert s.run_url == "https://ghe.example.com/acme-ml/gitops/actions/runs/99"
    assert s.step_summary is None and s.output is None


@pytest.mark.parametrize("missing", ["GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH", "GITHUB_REPOSITORY", "GITHUB_TOKEN"])
def test_settings__missing_variable_is_named(missing):
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(InputError) as err:
        Settings.from_env(env)
    assert err.value.field == missing
    assert err.value.fix


def test_settings__token_not_in_repr():
    s = Settings.from_env(ENV)
    assert "ghs_secret_value_123" not in repr(s)
    assert "ghs_secret_value_123" not in str(s)
