"""Check the fake's responses, and the requests the bot sends it, against GitHub's own
OpenAPI description of the REST API (trimmed copy in `openapi.json.gz`, see `trim_openapi.py`).
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from pathlib import Path

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_FILE = Path(__file__).with_name("openapi.json.gz")
HOST = "https://api.github.com"

# Known gaps between GitHub's description and what GitHub (and PyGithub) really send:
# (method, path regex, substring of the validation error).
ALLOWLIST: tuple[tuple[str, str, str], ...] = (
    # PyGithub's Issue.add_to_labels posts a bare JSON array, which GitHub accepts ("You can also
    # pass an `array` of labels directly") but the schema only describes the {"labels": [...]} object.
    ("POST", r"/repos/[^/]+/[^/]+/issues/\d+/labels", "is not valid under any of the given schemas"),
)


@functools.lru_cache(maxsize=1)
def spec_app() -> OpenAPI:
    spec = json.loads(gzip.decompress(SPEC_FILE.read_bytes()))
    # Validating GitHub's own description takes seconds and is not what these tests are about.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def spec_version() -> str:
    spec = json.loads(gzip.decompress(SPEC_FILE.read_bytes()))
    return spec["info"].get("x-source", spec["info"]["version"])


class _Request:
    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                 body: bytes | None) -> None:
        self.host_url = HOST
        self.path = path
        self.method = method.lower()
        self.body = body or None
        self.content_type = (headers.get("Content-Type") or "application/json").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, vs in query.items() for v in vs]),
            header=Headers(list(headers.items())), cookie=ImmutableMultiDict())


class _Response:
    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.status_code = status
        self.headers = Headers(list(headers.items()))
        self.content_type = headers.get("Content-Type", "application/json").lower()
        self.data = data


def _allowed(method: str, path: str, error: str) -> bool:
    return any(m == method and re.fullmatch(p, path) and s in error for m, p, s in ALLOWLIST)


def _leaves(error) -> list[str]:
    """The innermost schema errors: where a oneOf failed, what each branch said."""
    if error.context:
        return [leaf for sub in error.context for leaf in _leaves(sub)]
    where = "/".join(map(str, error.absolute_path)) or "(root)"
    return [f"{where}: {error.message[:300]}"]


def _describe(exc: Exception) -> str:
    parts = [f"{type(exc).__name__}: {str(exc)[:200]}"]
    for node in (exc, exc.__cause__):
        for sub in getattr(node, "schema_errors", None) or ():
            parts.extend(f"  - {leaf}" for leaf in _leaves(sub))
    return "\n".join(parts)


def check(method: str, path: str, query: dict[str, list[str]], req_headers: dict[str, str], body: bytes | None,
          status: int, resp_headers: dict[str, str], data: bytes) -> list[str]:
    """Validation errors for one exchange (empty when both sides match GitHub's description)."""
    app = spec_app()
    request = _Request(method, path, query, req_headers, body)
    errors = []
    for what, run in (("request", lambda: app.validate_request(request)),
                      ("response", lambda: app.validate_response(request, _Response(status, resp_headers, data)))):
        try:
            run()
        except Exception as exc:  # openapi-core raises one of many validation error types
            text = _describe(exc)
            if not _allowed(method, path, text):
                errors.append(f"{method} {path} {what}: {text}")
    return errors
