"""The GitHub Actions environment as a frozen dataclass.

Errors name the missing variable. The token is kept out of `repr` (so it never lands in a log
line or a traceback); `promotion-bot github` removes `SECRET_VARIABLES` from its own environment
as soon as the settings are read, and child processes get only what `bot.core.childenv` allows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from bot.core.errors import InputError

# Credentials the bot reads and then removes from its own environment.
SECRET_VARIABLES = frozenset({
    "GITHUB_TOKEN", "GH_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN", "PROMOTION_BOT_TOKEN",
    "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL",
})


def _required(environ: Mapping[str, str], key: str, fix: str) -> str:
    value = environ.get(key, "").strip()
    if not value:
        raise InputError("environment", key, "is not set", fix)
    return value


def _optional_path(environ: Mapping[str, str], key: str) -> Path | None:
    value = environ.get(key, "").strip()
    return Path(value) if value else None


@dataclass(frozen=True)
class Settings:
    event_name: str
    event_path: Path
    repository: str
    token: str = field(repr=False)
    api_url: str = "https://api.github.com"
    server_url: str = "https://github.com"
    run_id: str | None = None
    step_summary: Path | None = None
    output: Path | None = None
    workspace: Path = Path(".")
    bot_login: str | None = None  # the login whose comment is ours; None asks GitHub (GET /user)

    def __repr__(self) -> str:  # dataclass repr=False on the field already hides it; be explicit anyway
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__dataclass_fields__ if k != "token")
        return f"Settings({shown}, token=***)"

    @property
    def repo_url(self) -> str:
        """The repository's web page, the root of links to its files."""
        return f"{self.server_url.rstrip('/')}/{self.repository}"

    @property
    def run_url(self) -> str | None:
        if not self.run_id:
            return None
        return f"{self.server_url.rstrip('/')}/{self.repository}/actions/runs/{self.run_id}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        actions = "this runs inside GitHub Actions; outside it set the variable by hand"
        repository = _required(environ, "GITHUB_REPOSITORY", actions)
        if repository.count("/") != 1:
            raise InputError("environment", "GITHUB_REPOSITORY", f"{repository!r} is not owner/name",
                             "set it to the repository's owner/name")
        return cls(
            event_name=_required(environ, "GITHUB_EVENT_NAME", actions),
            event_path=Path(_required(environ, "GITHUB_EVENT_PATH", actions)),
            repository=repository,
            token=_required(environ, "GITHUB_TOKEN",
                            "pass `github-token: ${{ github.token }}` to the action, or `env: GITHUB_TOKEN: ...`"),
            api_url=(environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
            server_url=(environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
            run_id=environ.get("GITHUB_RUN_ID") or None,
            step_summary=_optional_path(environ, "GITHUB_STEP_SUMMARY"),
            output=_optional_path(environ, "GITHUB_OUTPUT"),
            workspace=Path(environ.get("GITHUB_WORKSPACE") or "."),
            bot_login=environ.get("PROMOTION_BOT_LOGIN") or None,
        )
