"""A small stateful GitHub REST server on loopback, for driving PyGithub over real HTTP.

It keeps repos, pull requests, issue comments (paginated with Link headers), statuses and
labels; records every request; can inject failures (a 502 once, a secondary rate limit with
Retry-After, a permanent 500, a read-only token as on fork PRs); and checks each exchange
against GitHub's OpenAPI description, collecting mismatches in `validation_errors`.

With a bare Git repository behind a repo (`add_repo(..., git_dir=...)`) it behaves like GitHub
where a bot's day depends on it:

- branch protection with required status contexts: a merge is refused (405, GitHub's words)
  while one is missing or not `success` on the PR's head;
- merges are real merge commits on the branch; `refs/pull/<n>/head` and `/merge` are kept;
- events (`pull_request`, `merge_group`) are queued in `events` for the workflow runner
  (`actions.py`), marked when the workflow's own token caused them: those start no workflow;
- tokens carry the permissions a workflow's `permissions:` grants (403 without them);
- auto-merge (GraphQL `enablePullRequestAutoMerge`, refused when the repository does not allow it
  or nothing is left to wait for) merges, or queues, once every required context is green;
- the merge queue: a queued PR becomes a `gh-readonly-queue/...` commit on top of the branch (or
  the entry ahead), checked through a `merge_group` event; all required contexts green
  fast-forwards the branch, one failing drops the entry.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from . import openapi, shapes
from .flows import PullRequestFlows
from .host import GitHost

SECONDARY_RATE_LIMIT = ("You have exceeded a secondary rate limit. "
                        "Please wait a few minutes before you try again.")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    body: Any
    status: int
    authorization: str | None


@dataclass
class Event:
    """A webhook event the fake raised, for the workflow runner."""

    name: str
    payload: dict
    actor: str | None  # the login; None: the workflow's own token (GITHUB_TOKEN)

    @property
    def by_workflow_token(self) -> bool:
        return self.actor is None


@dataclass
class Protection:
    contexts: tuple[str, ...]
    merge_queue: bool = False


@dataclass
class Failure:
    method: str
    path: str  # regex over the path without the API prefix
    status: int
    times: int | None  # None: forever
    headers: dict = field(default_factory=dict)
    message: str = "Server Error"


class FakeGitHub(PullRequestFlows):
    def __init__(self, *, prefix: str = "", validate: bool = True) -> None:
        self.prefix = prefix.rstrip("/")  # "/api/v3" serves like GitHub Enterprise Server
        self.validate = validate
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.validation_errors: list[str] = []
        self.failures: list[Failure] = []
        self.tokens: dict[str, str | None] = {}  # token -> login; None: an Actions installation token
        self.read_only_tokens: set[str] = set()
        self.repos: dict[str, dict] = {}
        self.pulls: dict[tuple[str, int], dict] = {}
        self.comments: list[dict] = []
        self.statuses: list[dict] = []
        self.labels: dict[tuple[str, int], list[str]] = {}
        self.issues: dict[tuple[str, int], dict] = {}
        self.hosts: dict[str, GitHost] = {}
        self.protections: dict[tuple[str, str], Protection] = {}
        self.permissions: dict[str, dict | None] = {}  # token -> {"contents": "write", ...}; None: all
        self.events: list[Event] = []
        self.queues: dict[tuple[str, str], list[dict]] = {}
        self.state_lock = threading.RLock()  # one change of state at a time, as GitHub's own ordering
        self._token: str | None = None  # the token of the request being served
        self._ids = 100
        self._users: dict[str, int] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-github", daemon=True)

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    @property
    def web(self) -> str:
        return "https://github.example.com"

    def start(self) -> "FakeGitHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeGitHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- state set-up -------------------------------------------------------------------------

    def next_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    def user(self, login: str) -> dict:
        uid = self._users.setdefault(login, 5000 + len(self._users))
        kind = "Bot" if login.endswith("[bot]") else "User"
        return shapes.user(self.url, self.web, login, uid, kind)

    def add_token(self, token: str, login: str | None, *, read_only: bool = False,
                  permissions: dict | None = None) -> None:
        """``login`` None: a workflow's GITHUB_TOKEN (events it causes start no workflow).
        ``permissions``: what a workflow's `permissions:` grants; None grants everything."""
        self.tokens[token] = login
        self.permissions[token] = permissions
        if read_only:
            self.read_only_tokens.add(token)

    def add_repo(self, full_name: str, *, git_dir=None, allow_auto_merge: bool = False) -> dict:
        owner = self.user(full_name.split("/")[0])
        repo = shapes.repository(self.url, self.web, full_name, 300 + len(self.repos), owner)
        repo.update(allow_auto_merge=allow_auto_merge, allow_merge_commit=True, allow_squash_merge=True,
                    allow_rebase_merge=True, delete_branch_on_merge=False)
        self.repos[full_name] = repo
        if git_dir is not None:
            self.hosts[full_name] = GitHost(git_dir)
        return repo

    def protect(self, repo: str, branch: str, contexts, *, merge_queue: bool = False) -> None:
        """Branch protection: ``contexts`` must be `success` on a PR's head (and, with a merge queue,
        on the queue's commit) before it merges."""
        self.protections[(repo, branch)] = Protection(tuple(contexts), merge_queue)

    def add_pull(self, repo: str, number: int, *, base_sha: str, head_sha: str, head_ref: str = "promote",
                 base_ref: str = "main", title: str = "Promote", author: str = "octocat",
                 head_repo: str | None = None, state: str = "open", merged_at: str | None = None) -> None:
        if head_repo and head_repo not in self.repos:
            self.add_repo(head_repo)
        self.pulls[(repo, number)] = {
            "number": number, "base_sha": base_sha, "head_sha": head_sha, "head_ref": head_ref,
            "base_ref": base_ref, "title": title, "author": author, "head_repo": head_repo or repo,
            "state": state, "merged_at": merged_at, "body": None}

    def add_comment(self, repo: str, issue: int, body: str, author: str) -> dict:
        cid = self.next_id()
        c = {"id": cid, "repo": repo, "issue": issue, "body": body, "author": author,
             "created": shapes.now(), "updated": shapes.now()}
        self.comments.append(c)
        return c

    def fail(self, method: str, path: str, status: int, *, times: int | None = 1, retry_after: int | None = None,
             message: str | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        default = SECONDARY_RATE_LIMIT if status in (403, 429) else "Server Error"
        self.failures.append(Failure(method, path, status, times, headers, message or default))

    # --- queries for tests --------------------------------------------------------------------

    def comments_on(self, repo: str, issue: int) -> list[dict]:
        return [c for c in self.comments if c["repo"] == repo and c["issue"] == issue]

    def statuses_for(self, sha: str, context: str | None = None) -> list[dict]:
        return [s for s in self.statuses if s["sha"] == sha and (context is None or s["context"] == context)]

    def latest_status(self, sha: str, context: str) -> dict | None:
        found = self.statuses_for(sha, context)
        return found[-1] if found else None

    def pull(self, repo: str, number: int) -> dict:
        return self.pulls[(repo, number)]

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests
                if (method is None or r.method == method) and (path is None or re.fullmatch(path, r.path))]

    # --- HTTP ---------------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: tests read `fake.requests`
                pass

            def _serve(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = parts.path
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix):]
        query = parse_qs(parts.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        auth = h.headers.get("Authorization")
        token = auth.split(" ", 1)[1] if auth and " " in auth else None
        status, payload, headers, injected = self._respond(h.command, path, query, body, token)
        data = b"" if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **headers, **self._rate_headers()}
        with self.lock:
            self.requests.append(Recorded(h.command, path, query, body, status, auth))
        if self.validate and not injected and status < 400 and not path.endswith("/graphql"):  # REST only
            req_headers = {k: v for k, v in h.headers.items()}
            self.validation_errors.extend(
                openapi.check(h.command, path, query, req_headers, raw, status, headers, data))
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _rate_headers(self) -> dict:
        return {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Used": "1",
                "X-RateLimit-Reset": str(int(time.time()) + 3600), "X-RateLimit-Resource": "core"}

    def _error(self, status: int, message: str, headers: dict | None = None):
        return status, {"message": message, "documentation_url": "https://docs.github.com/rest",
                        "status": str(status)}, headers or {}, True

    def _respond(self, method: str, path: str, query: dict, body: Any, token: str | None):
        with self.lock:
            for f in self.failures:
                if f.method == method and re.fullmatch(f.path, path) and (f.times is None or f.times > 0):
                    if f.times is not None:
                        f.times -= 1
                    return self._error(f.status, f.message, f.headers)
        if token not in self.tokens:
            return self._error(401, "Bad credentials")
        login = self.tokens[token]
        if method != "GET" and token in self.read_only_tokens:
            return self._error(403, "Resource not accessible by integration")
        if not self._permitted(token, method, path):
            return self._error(403, "Resource not accessible by integration")
        for pattern, verb, fn in self._routes():
            m = re.fullmatch(pattern, path)
            if m and verb == method:
                with self.state_lock:
                    self._token = token
                    result = fn(m, query, body, login)
                if len(result) == 3:
                    return (*result, False)
                return result
        return self._error(404, "Not Found")

    # What each write needs of a workflow token's `permissions:` (any one of the scopes listed).
    _NEEDS = ((r".*/statuses/[0-9a-f]{40}", ("statuses",)),
              (r".*/issues/\d+/comments|.*/issues/comments/\d+|.*/issues/\d+/labels", ("pull-requests", "issues")),
              (r".*/pulls/\d+/merge", ("contents",)),
              (r".*/pulls", ("pull-requests",)),
              (r".*/issues", ("issues",)),
              (r"(/api)?/graphql", ("pull-requests",)))

    def _grants(self, token: str | None, scope: str) -> bool:
        perms = self.permissions.get(token)
        return perms is None or perms.get(scope) == "write"

    def _permitted(self, token: str | None, method: str, path: str) -> bool:
        if method == "GET":
            return True
        for pattern, scopes in self._NEEDS:
            if re.fullmatch(pattern, path):
                return any(self._grants(token, s) for s in scopes)
        return True

    def _routes(self):
        repo = r"/repos/(?P<repo>[^/]+/[^/]+)"
        return [
            (r"/user", "GET", self._get_user),
            (repo, "GET", self._get_repo),
            (repo + r"/pulls", "GET", self._list_pulls),
            (repo + r"/pulls", "POST", self._create_pull),
            (repo + r"/pulls/(?P<n>\d+)", "GET", self._get_pull),
            (repo + r"/pulls/(?P<n>\d+)/merge", "PUT", self._merge_pull),
            (r"(?:/api)?/graphql", "POST", self._graphql),
            (repo + r"/issues", "POST", self._create_issue),
            (repo + r"/issues/(?P<n>\d+)/comments", "GET", self._list_comments),
            (repo + r"/issues/(?P<n>\d+)/comments", "POST", self._create_comment),
            (repo + r"/issues/comments/(?P<id>\d+)", "PATCH", self._edit_comment),
            (repo + r"/issues/(?P<n>\d+)/labels", "POST", self._add_labels),
            (repo + r"/statuses/(?P<sha>[0-9a-f]{40})", "POST", self._create_status),
            (repo + r"/commits/(?P<sha>[0-9a-f]{40})/pulls", "GET", self._commit_pulls),
        ]

    def _repo(self, m):
        return self.repos.get(m["repo"])

    # --- endpoints ----------------------------------------------------------------------------

    def _get_user(self, m, query, body, login):
        if login is None:  # installation tokens cannot read /user
            return self._error(403, "Resource not accessible by integration")
        return 200, shapes.private_user(self.url, self.web, login, self._users.setdefault(login, 5000)), {}

    def _get_repo(self, m, query, body, login):
        repo = self._repo(m)
        return (200, repo, {}) if repo else self._error(404, "Not Found")

    def _pull_json(self, repo_name: str, pr: dict, simple: bool = False) -> dict:
        labels = [shapes.label(self.url, repo_name, n, i + 1)
                  for i, n in enumerate(self.labels.get((repo_name, pr["number"]), []))]
        head_repo = self.repos.get(pr["head_repo"])
        auto = pr.get("auto_merge")
        auto_merge = {"enabled_by": self.user(auto["enabled_by"] or "github-actions[bot]"),
                      "merge_method": auto["merge_method"], "commit_title": pr["title"],
                      "commit_message": ""} if auto else None
        merged_by = self.user(pr["merged_by"]) if pr.get("merged_by") else None
        return shapes.pull_request(self.url, self.web, self.repos[repo_name], pr["number"], dict(pr, labels=labels),
                                   self.user(pr["author"]), head_repo, simple=simple, auto_merge=auto_merge,
                                   merged_by=merged_by)

    def _get_pull(self, m, query, body, login):
        pr = self.pulls.get((m["repo"], int(m["n"])))
        if not pr or not self._repo(m):
            return self._error(404, "Not Found")
        return 200, self._pull_json(m["repo"], pr), {}

    def _list_pulls(self, m, query, body, login):
        state = (query.get("state") or ["open"])[0]
        head = (query.get("head") or [None])[0]
        out = []
        for (repo, _), pr in sorted(self.pulls.items()):
            if repo != m["repo"] or (state != "all" and pr["state"] != state):
                continue
            if head and head != f"{self.repos[pr['head_repo']]['owner']['login']}:{pr['head_ref']}":
                continue
            out.append(self._pull_json(repo, pr, simple=True))
        return 200, out, {}

    def _create_pull(self, m, query, body, login):
        try:
            number = self._open(m["repo"], body["head"], body["base"], body["title"], body.get("body"), login)
        except LookupError as exc:
            return self._error(422, f"Validation Failed: {exc}")
        return 201, self._pull_json(m["repo"], self.pulls[(m["repo"], number)]), {}

    def _create_issue(self, m, query, body, login):
        number = 1 + max([n for (r, n) in self.pulls if r == m["repo"]] + [n for (r, n) in self.issues if r == m["repo"]] + [0])
        self.issues[(m["repo"], number)] = body
        labels = [shapes.label(self.url, m["repo"], n, i + 1) for i, n in enumerate(body.get("labels") or [])]
        return 201, shapes.issue(self.url, self.web, self.repos[m["repo"]], number, body["title"], body.get("body"),
                                 self.user(login or "github-actions[bot]"), labels), {}

    def _comment_json(self, c: dict) -> dict:
        return shapes.issue_comment(self.url, self.web, c["repo"], c["id"], c["issue"], c["body"],
                                    self.user(c["author"]), c["created"], c["updated"])

    def _list_comments(self, m, query, body, login):
        per_page = min(int((query.get("per_page") or ["30"])[0]), 100)
        page = int((query.get("page") or ["1"])[0])
        items = self.comments_on(m["repo"], int(m["n"]))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        links = []
        base = f"{self.url}/repos/{m['repo']}/issues/{m['n']}/comments"
        if page < last:
            links.append(f'<{base}?{urlencode({"per_page": per_page, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}?{urlencode({"per_page": per_page, "page": last})}>; rel="last"')
        if page > 1:
            links.append(f'<{base}?{urlencode({"per_page": per_page, "page": 1})}>; rel="first"')
            links.append(f'<{base}?{urlencode({"per_page": per_page, "page": page - 1})}>; rel="prev"')
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, [self._comment_json(c) for c in chunk], headers

    def _create_comment(self, m, query, body, login):
        if len(body.get("body", "")) > 65536:
            return self._error(422, "Validation Failed: body is too long (maximum is 65536 characters)")
        c = self.add_comment(m["repo"], int(m["n"]), body["body"], login or "github-actions[bot]")
        return 201, self._comment_json(c), {}

    def _edit_comment(self, m, query, body, login):
        c = next((c for c in self.comments if c["id"] == int(m["id"]) and c["repo"] == m["repo"]), None)
        if c is None:
            return self._error(404, "Not Found")
        if len(body.get("body", "")) > 65536:
            return self._error(422, "Validation Failed: body is too long (maximum is 65536 characters)")
        c["body"] = body["body"]
        c["updated"] = shapes.now()
        return 200, self._comment_json(c), {}

    def _add_labels(self, m, query, body, login):
        names = body["labels"] if isinstance(body, dict) else body
        names = [n if isinstance(n, str) else n["name"] for n in names]
        current = self.labels.setdefault((m["repo"], int(m["n"])), [])
        current.extend(n for n in names if n not in current)
        return 200, [shapes.label(self.url, m["repo"], n, i + 1) for i, n in enumerate(current)], {}

    def _create_status(self, m, query, body, login):
        if body.get("state") not in ("pending", "success", "failure", "error"):
            return self._error(422, "Validation Failed: state")
        if len(body.get("description") or "") > 140:
            return self._error(422, "Validation Failed: description is too long (maximum is 140 characters)")
        s = {"sha": m["sha"], "state": body["state"], "context": body.get("context", "default"),
             "description": body.get("description"), "target_url": body.get("target_url"), "id": self.next_id(),
             "creator": login or "github-actions[bot]"}
        self.statuses.append(s)
        self._after_status(m["repo"], m["sha"])
        return 201, shapes.status(self.url, m["repo"], s["id"], s["sha"], s["state"], s["context"],
                                  s["description"], s["target_url"], self.user(login or "github-actions[bot]")), {}

    def _commit_pulls(self, m, query, body, login):
        out = [self._pull_json(repo, pr, simple=True) for (repo, _), pr in sorted(self.pulls.items())
               if repo == m["repo"] and m["sha"] in (pr["head_sha"], pr.get("merge_commit_sha"))]
        return 200, out, {}
