"""How pull requests move on the fake GitHub: opened, pushed to, merged (through branch
protection), merged by auto-merge, and merged through the merge queue. Mixed into `FakeGitHub`.

Every rule here is GitHub's, in GitHub's words where a client sees them:
- a merge while a required context is missing or not `success` on the head: 405
  `Required status check "<context>" is expected.` (or `... is failing.`);
- a merge of a branch that requires the merge queue: 405 `Changes must be made through the merge queue`;
- auto-merge on a repository that does not allow it: `Auto merge is not allowed for this repository`;
  on a PR with nothing left to wait for: `Pull request Pull request is in clean status`;
- a PR joins the queue only with its required contexts green; the queue's commit merges the PR
  onto the branch (or onto the entry ahead); its contexts all `success` fast-forward the branch,
  one `failure`/`error` drops the entry and rebuilds those behind it.
Events the workflow's own token causes are marked, and start no workflow (actions.py).
"""

from __future__ import annotations

import re
import time

from . import shapes
from .host import Conflict

MERGE_METHODS = ("merge", "squash", "rebase")


class PullRequestFlows:
    # --- as people do it in the web UI ------------------------------------------------------------

    def open_pull_request(self, repo: str, head: str, *, base: str = "main", title: str = "Promote",
                          actor: str = "octocat", body: str | None = None) -> int:
        """A person opens a PR from ``head`` (already pushed) into ``base``."""
        with self.state_lock:
            return self._open(repo, head, base, title, body, actor)

    def pushed(self, repo: str, branch: str, *, actor: str = "octocat") -> None:
        """Someone pushed ``branch``: its open PRs move to the new head (`synchronize`)."""
        with self.state_lock:
            host = self.hosts[repo]
            for (r, _), pr in sorted(self.pulls.items()):
                if r == repo and pr["state"] == "open" and pr["head_ref"] == branch:
                    pr["head_sha"] = host.branch(branch)
                    pr["auto_merge"] = None  # GitHub turns auto-merge off when the head changes
                    self._refresh_pull_refs(repo, pr)
                    self._emit_pull_request(repo, pr, "synchronize", actor)

    def merge(self, repo: str, number: int, *, actor: str = "octocat") -> tuple[int, str]:
        """The merge button: (HTTP status, message), exactly what the REST merge would answer."""
        with self.state_lock:
            status, payload = self._merge(repo, self.pulls[(repo, number)], actor)
            return status, payload["message"]

    def merge_when_ready(self, repo: str, number: int, *, actor: str = "octocat") -> str:
        """"Merge when ready" on a branch with a merge queue (else "Enable auto-merge")."""
        with self.state_lock:
            pr = self.pulls[(repo, number)]
            problem = self._required_problem(repo, pr["base_ref"], pr["head_sha"])
            if problem is None and self._queued_branch(repo, pr["base_ref"]):
                self._enqueue(repo, pr, actor)
                return "queued"
            if problem and "failing" in problem:
                return problem
            pr["auto_merge"] = {"enabled_by": actor, "merge_method": "merge"}
            return "auto-merge enabled"

    # --- REST and GraphQL ---------------------------------------------------------------------------

    def _merge_pull(self, m, query, body, login):
        pr = self.pulls.get((m["repo"], int(m["n"])))
        if pr is None:
            return self._error(404, "Not Found")
        body = body or {}
        method = body.get("merge_method", "merge")
        if not self.repos[m["repo"]].get(f"allow_{'merge_commit' if method == 'merge' else method + '_merge'}", True):
            return self._error(405, f"{method.capitalize()} commits are not allowed on this repository.")
        status, payload = self._merge(m["repo"], pr, login, sha=body.get("sha"))
        if status != 200:
            return self._error(status, payload["message"])
        return 200, payload, {}

    def _graphql(self, m, query, body, login):
        text = (body or {}).get("query", "")
        found = re.search(r"\{\s*(\w+)\(input:", text)
        name = found.group(1) if found else ""
        data = ((body or {}).get("variables") or {}).get("input") or {}
        if name != "enablePullRequestAutoMerge":
            return 200, self._graphql_error(name, "UNPROCESSABLE", f"{name or 'this query'} is not served here"), {}
        if not self._grants(self._token, "contents"):
            return 200, self._graphql_error(name, "FORBIDDEN", "Resource not accessible by integration"), {}
        target = next(((r, pr) for (r, n), pr in self.pulls.items() if f"PR_{n}" == data.get("pullRequestId")), None)
        if target is None:
            return 200, self._graphql_error(name, "NOT_FOUND", "Could not resolve to a node"), {}
        repo, pr = target
        method = str(data.get("mergeMethod", "MERGE")).lower()
        if not self.repos[repo].get("allow_auto_merge"):
            return 200, self._graphql_error(name, "UNPROCESSABLE", "Auto merge is not allowed for this repository"), {}
        if pr["state"] != "open":
            return 200, self._graphql_error(name, "UNPROCESSABLE", "Pull request is not open"), {}
        if self._required_problem(repo, pr["base_ref"], pr["head_sha"]) is None:
            if self._queued_branch(repo, pr["base_ref"]):
                self._enqueue(repo, pr, login)  # "merge when ready": green already, so queued at once
            else:
                return 200, self._graphql_error(name, "UNPROCESSABLE", "Pull request Pull request is in clean status"), {}
        else:
            pr["auto_merge"] = {"enabled_by": login, "merge_method": method}
        actor = self.user(login or "github-actions[bot]")
        return 200, {"data": {name: {"actor": {"avatarUrl": actor["avatar_url"], "login": actor["login"],
                                              "resourcePath": f"/{actor['login']}", "url": actor["html_url"]},
                                    "clientMutationId": None}}}, {}

    @staticmethod
    def _graphql_error(name: str, kind: str, message: str) -> dict:
        return {"data": {name: None} if name else None,
                "errors": [{"type": kind, "path": [name], "locations": [{"line": 2, "column": 3}], "message": message}]}

    # --- the rules ----------------------------------------------------------------------------------

    def _open(self, repo: str, head: str, base: str, title: str, body: str | None, login: str | None) -> int:
        number = 1 + max([n for (r, n) in self.pulls if r == repo] + [n for (r, n) in self.issues if r == repo] + [0])
        host = self.hosts.get(repo)
        head_sha = host.branch(head) if host else "1" * 40
        base_sha = host.branch(base) if host else "0" * 40
        if host and (head_sha is None or base_sha is None):
            raise LookupError(f"no branch {head if head_sha is None else base}")
        self.add_pull(repo, number, base_sha=base_sha, head_sha=head_sha, head_ref=head, base_ref=base, title=title,
                      author=login or "github-actions[bot]")
        pr = self.pulls[(repo, number)]
        pr.update(body=body, auto_merge=None, merged_by=None)
        if host:
            self._refresh_pull_refs(repo, pr)
        self._emit_pull_request(repo, pr, "opened", login)
        return number

    def _refresh_pull_refs(self, repo: str, pr: dict) -> None:
        """`refs/pull/<n>/head`, and `/merge`: the PR merged into its base's tip, as GitHub tests it."""
        host = self.hosts[repo]
        n = pr["number"]
        host.set_ref(f"refs/pull/{n}/head", pr["head_sha"])
        pr["base_sha"] = host.branch(pr["base_ref"])
        try:
            merge = host.merge(pr["base_sha"], pr["head_sha"], f"Merge {pr['head_sha']} into {pr['base_sha']}")
            host.set_ref(f"refs/pull/{n}/merge", merge)
            pr["mergeable_state"] = "clean"
        except Conflict:
            host.delete_ref(f"refs/pull/{n}/merge")
            pr["mergeable_state"] = "dirty"

    def _required_problem(self, repo: str, branch: str, sha: str) -> str | None:
        """Why branch protection refuses ``sha`` now, in GitHub's words; None when it may merge."""
        protection = self.protections.get((repo, branch))
        for context in protection.contexts if protection else ():
            latest = self.latest_status(sha, context)
            if latest is None:
                return f'Required status check "{context}" is expected.'
            if latest["state"] == "pending":
                return f'Required status check "{context}" is in progress.'
            if latest["state"] != "success":
                return f'Required status check "{context}" is failing.'
        return None

    def _queued_branch(self, repo: str, branch: str) -> bool:
        protection = self.protections.get((repo, branch))
        return bool(protection and protection.merge_queue)

    def _merge(self, repo: str, pr: dict, login: str | None, *, sha: str | None = None) -> tuple[int, dict]:
        if pr["state"] != "open":
            return 405, {"message": "Pull Request is not mergeable"}
        if self._queued_branch(repo, pr["base_ref"]):
            return 405, {"message": "Changes must be made through the merge queue"}
        if sha and sha != pr["head_sha"]:
            return 409, {"message": "Head branch was modified. Review and try the merge again."}
        problem = self._required_problem(repo, pr["base_ref"], pr["head_sha"])
        if problem:
            return 405, {"message": problem}
        host = self.hosts.get(repo)
        if host is None:
            merged = "2" * 40
        else:
            tip = host.branch(pr["base_ref"])
            owner = self.repos[pr["head_repo"]]["owner"]["login"]
            try:
                merged = host.merge(tip, pr["head_sha"],
                                    f"Merge pull request #{pr['number']} from {owner}/{pr['head_ref']}\n\n{pr['title']}")
            except Conflict:
                return 405, {"message": "Merge conflict"}
            host.set_ref(f"refs/heads/{pr['base_ref']}", merged, tip)
        self._merged(repo, pr, merged, login)
        return 200, {"sha": merged, "merged": True, "message": "Pull Request successfully merged"}

    def _merged(self, repo: str, pr: dict, sha: str, login: str | None) -> None:
        pr.update(state="closed", merged_at=shapes.now(), merge_commit_sha=sha, auto_merge=None,
                  merged_by=login or "github-actions[bot]", merged_ts=time.time())
        self._emit_pull_request(repo, pr, "closed", login)
        if repo in self.hosts:
            for (r, _), other in self.pulls.items():
                if r == repo and other["state"] == "open" and other["base_ref"] == pr["base_ref"]:
                    self._refresh_pull_refs(repo, other)

    def _after_status(self, repo: str, sha: str) -> None:
        """A status was set: auto-merge PRs and queue entries on ``sha`` may go."""
        for (r, _), pr in sorted(self.pulls.items()):
            if r == repo and pr["state"] == "open" and pr.get("auto_merge") and pr["head_sha"] == sha \
                    and self._required_problem(repo, pr["base_ref"], sha) is None:
                actor = pr["auto_merge"]["enabled_by"]
                if self._queued_branch(repo, pr["base_ref"]):
                    self._enqueue(repo, pr, actor)
                else:
                    self._merge(repo, pr, actor)
        for (r, branch), queue in list(self.queues.items()):
            if r == repo and any(e["head"] == sha for e in queue):
                self._advance_queue(repo, branch)

    # --- the merge queue -------------------------------------------------------------------------------

    def _enqueue(self, repo: str, pr: dict, login: str | None) -> None:
        queue = self.queues.setdefault((repo, pr["base_ref"]), [])
        if any(e["number"] == pr["number"] for e in queue):
            return
        pr["auto_merge"] = None
        queue.append({"number": pr["number"], "actor": login, "head": None, "parent": None, "ref": None})
        self._build_queue(repo, pr["base_ref"])

    def _build_queue(self, repo: str, branch: str) -> None:
        """(Re)build each entry's commit on the one ahead of it (the first on the branch's tip)."""
        host = self.hosts[repo]
        queue = self.queues[(repo, branch)]
        parent = host.branch(branch)
        for entry in list(queue):
            if entry["head"] is None or entry["parent"] != parent:
                if entry["ref"]:
                    host.delete_ref(entry["ref"])
                pr = self.pulls[(repo, entry["number"])]
                owner = self.repos[pr["head_repo"]]["owner"]["login"]
                try:
                    head = host.merge(parent, pr["head_sha"],
                                      f"Merge pull request #{pr['number']} from {owner}/{pr['head_ref']}\n\n{pr['title']}")
                except Conflict:
                    queue.remove(entry)
                    continue
                ref = f"refs/heads/gh-readonly-queue/{branch}/pr-{pr['number']}-{parent}"
                host.set_ref(ref, head)
                entry.update(head=head, parent=parent, ref=ref)
                self._emit_merge_group(repo, branch, entry, "checks_requested")
            parent = entry["head"]

    def _advance_queue(self, repo: str, branch: str) -> None:
        host = self.hosts[repo]
        queue = self.queues[(repo, branch)]
        while queue:
            entry = queue[0]
            problem = self._required_problem(repo, branch, entry["head"])
            if problem is None:
                host.set_ref(f"refs/heads/{branch}", entry["head"], entry["parent"])  # a fast-forward
                host.delete_ref(entry["ref"])
                queue.pop(0)
                self._merged(repo, self.pulls[(repo, entry["number"])], entry["head"], entry["actor"])
                self._emit_merge_group(repo, branch, entry, "destroyed", reason="merged")
                continue
            if "failing" in problem:
                queue.pop(0)
                host.delete_ref(entry["ref"])
                self._emit_merge_group(repo, branch, entry, "destroyed", reason="dequeued")
                for later in queue:
                    later["head"] = None
                self._build_queue(repo, branch)
            return

    # --- events ----------------------------------------------------------------------------------------

    def _emit(self, name: str, payload: dict, actor: str | None) -> None:
        from .server import Event

        payload.setdefault("repository", next(iter(self.repos.values())))
        payload.setdefault("sender", self.user(actor or "github-actions[bot]"))
        self.events.append(Event(name, payload, actor))

    def _emit_pull_request(self, repo: str, pr: dict, action: str, actor: str | None) -> None:
        self._emit("pull_request", {"action": action, "number": pr["number"],
                                    "pull_request": self._pull_json(repo, pr), "repository": self.repos[repo]}, actor)

    def _emit_merge_group(self, repo: str, branch: str, entry: dict, action: str, *, reason: str | None = None) -> None:
        host = self.hosts[repo]
        group = {"head_sha": entry["head"], "head_ref": entry["ref"], "base_sha": entry["parent"],
                 "base_ref": f"refs/heads/{branch}",
                 "head_commit": {"id": entry["head"], "tree_id": host.tree(entry["head"]),
                                 "message": host.message(entry["head"]), "timestamp": shapes.now(),
                                 "author": {"name": "GitHub", "email": "noreply@github.com"},
                                 "committer": {"name": "GitHub", "email": "noreply@github.com"}}}
        payload = {"action": action, "merge_group": group, "repository": self.repos[repo]}
        if reason:
            payload["reason"] = reason
        self._emit("merge_group", payload, entry["actor"])
