"""GitHub REST objects as the API returns them, built from the documented examples.

Every field the OpenAPI description marks required is present; tests validate each response
against that description (`openapi.py`), so a missing field fails a test instead of drifting.
"""

from __future__ import annotations

from datetime import datetime, timezone

NOW = "2026-11-25T12:00:00Z"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def user(api: str, web: str, login: str, uid: int, kind: str = "User") -> dict:
    u = f"{api}/users/{login}"
    return {
        "login": login, "id": uid, "node_id": f"U_{uid}", "avatar_url": f"{web}/avatars/u/{uid}",
        "gravatar_id": "", "url": u, "html_url": f"{web}/{login}", "followers_url": f"{u}/followers",
        "following_url": f"{u}/following{{/other_user}}", "gists_url": f"{u}/gists{{/gist_id}}",
        "starred_url": f"{u}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{u}/subscriptions",
        "organizations_url": f"{u}/orgs", "repos_url": f"{u}/repos", "events_url": f"{u}/events{{/privacy}}",
        "received_events_url": f"{u}/received_events", "type": kind, "site_admin": False,
        "user_view_type": "public",
    }


def private_user(api: str, web: str, login: str, uid: int) -> dict:
    """GET /user for a personal token: the public fields plus the account's own."""
    out = user(api, web, login, uid)
    out.update({
        "name": login, "company": None, "blog": "", "location": None, "email": None, "hireable": None,
        "bio": None, "public_repos": 1, "public_gists": 0, "followers": 0, "following": 0,
        "created_at": NOW, "updated_at": NOW, "private_gists": 0, "total_private_repos": 0,
        "owned_private_repos": 0, "disk_usage": 0, "collaborators": 0, "two_factor_authentication": True,
        "plan": {"collaborators": 0, "name": "free", "space": 976562499, "private_repos": 10000},
        "user_view_type": "private",
    })
    return out


def repository(api: str, web: str, full_name: str, rid: int, owner: dict) -> dict:
    r = f"{api}/repos/{full_name}"
    name = full_name.split("/")[1]
    templated = {
        "forks_url": "/forks", "keys_url": "/keys{/key_id}", "collaborators_url": "/collaborators{/collaborator}",
        "teams_url": "/teams", "hooks_url": "/hooks", "issue_events_url": "/issues/events{/number}",
        "events_url": "/events", "assignees_url": "/assignees{/user}", "branches_url": "/branches{/branch}",
        "tags_url": "/tags", "blobs_url": "/git/blobs{/sha}", "git_tags_url": "/git/tags{/sha}",
        "git_refs_url": "/git/refs{/sha}", "trees_url": "/git/trees{/sha}", "statuses_url": "/statuses/{sha}",
        "languages_url": "/languages", "stargazers_url": "/stargazers", "contributors_url": "/contributors",
        "subscribers_url": "/subscribers", "subscription_url": "/subscription", "commits_url": "/commits{/sha}",
        "git_commits_url": "/git/commits{/sha}", "comments_url": "/comments{/number}",
        "issue_comment_url": "/issues/comments{/number}", "contents_url": "/contents/{+path}",
        "compare_url": "/compare/{base}...{head}", "merges_url": "/merges", "archive_url": "/{archive_format}{/ref}",
        "downloads_url": "/downloads", "issues_url": "/issues{/number}", "pulls_url": "/pulls{/number}",
        "milestones_url": "/milestones{/number}", "notifications_url": "/notifications{?since,all,participating}",
        "labels_url": "/labels{/name}", "releases_url": "/releases{/id}", "deployments_url": "/deployments",
    }
    out = {k: r + v for k, v in templated.items()}
    out.update({
        "id": rid, "node_id": f"R_{rid}", "name": name, "full_name": full_name, "owner": owner, "private": False,
        "html_url": f"{web}/{full_name}", "description": None, "fork": False, "url": r,
        "git_url": f"git://{web.split('://')[-1]}/{full_name}.git", "ssh_url": f"git@example.com:{full_name}.git",
        "clone_url": f"{web}/{full_name}.git", "svn_url": f"{web}/{full_name}", "mirror_url": None,
        "homepage": None, "language": None, "forks_count": 0, "stargazers_count": 0, "watchers_count": 0,
        "size": 1, "default_branch": "main", "open_issues_count": 1, "is_template": False, "topics": [],
        "has_issues": True, "has_projects": True, "has_wiki": True, "has_pages": False, "has_downloads": True,
        "has_discussions": False, "archived": False, "disabled": False, "visibility": "public",
        "pushed_at": NOW, "created_at": NOW, "updated_at": NOW, "forks": 0, "open_issues": 1, "watchers": 0,
        "license": None, "allow_forking": True, "web_commit_signoff_required": False,
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        "network_count": 0, "subscribers_count": 0,
    })
    return out


def label(api: str, repo: str, name: str, lid: int) -> dict:
    return {"id": lid, "node_id": f"LA_{lid}", "url": f"{api}/repos/{repo}/labels/{name}", "name": name,
            "description": "", "color": "ededed", "default": False}


def reactions(url: str) -> dict:
    return {"url": f"{url}/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "confused": 0,
            "heart": 0, "hooray": 0, "eyes": 0, "rocket": 0}


def issue_comment(api: str, web: str, repo: str, cid: int, issue: int, body: str, author: dict,
                  created: str, updated: str) -> dict:
    url = f"{api}/repos/{repo}/issues/comments/{cid}"
    return {"id": cid, "node_id": f"IC_{cid}", "url": url, "body": body,
            "html_url": f"{web}/{repo}/pull/{issue}#issuecomment-{cid}", "user": author,
            "created_at": created, "updated_at": updated, "issue_url": f"{api}/repos/{repo}/issues/{issue}",
            "author_association": "NONE", "reactions": reactions(url)}


def status(api: str, repo: str, sid: int, sha: str, state: str, context: str, description: str | None,
           target_url: str | None, creator: dict) -> dict:
    return {"url": f"{api}/repos/{repo}/statuses/{sha}", "avatar_url": creator["avatar_url"], "id": sid,
            "node_id": f"SC_{sid}", "state": state, "description": description, "target_url": target_url,
            "context": context, "created_at": now(), "updated_at": now(), "creator": creator}


def _links(api: str, web: str, repo: str, number: int, head_sha: str) -> dict:
    r = f"{api}/repos/{repo}"
    return {"self": {"href": f"{r}/pulls/{number}"}, "html": {"href": f"{web}/{repo}/pull/{number}"},
            "issue": {"href": f"{r}/issues/{number}"}, "comments": {"href": f"{r}/issues/{number}/comments"},
            "review_comments": {"href": f"{r}/pulls/{number}/comments"},
            "review_comment": {"href": f"{r}/pulls/comments{{/number}}"},
            "commits": {"href": f"{r}/pulls/{number}/commits"}, "statuses": {"href": f"{r}/statuses/{head_sha}"}}


def pull_request(api: str, web: str, repo: dict, number: int, pr: dict, author: dict, head_repo: dict | None,
                 *, simple: bool = False, auto_merge: dict | None = None, merged_by: dict | None = None) -> dict:
    """A pull request; ``simple`` gives the list shape (no merge or diff counts)."""
    full = repo["full_name"]
    r = f"{api}/repos/{full}"
    head_owner = head_repo["owner"] if head_repo else author
    out = {
        "url": f"{r}/pulls/{number}", "id": 1000 + number, "node_id": f"PR_{number}",
        "html_url": f"{web}/{full}/pull/{number}", "diff_url": f"{web}/{full}/pull/{number}.diff",
        "patch_url": f"{web}/{full}/pull/{number}.patch", "issue_url": f"{r}/issues/{number}",
        "commits_url": f"{r}/pulls/{number}/commits", "review_comments_url": f"{r}/pulls/{number}/comments",
        "review_comment_url": f"{r}/pulls/comments{{/number}}", "comments_url": f"{r}/issues/{number}/comments",
        "statuses_url": f"{r}/statuses/{pr['head_sha']}", "number": number, "state": pr["state"],
        "locked": False, "title": pr["title"], "user": author, "body": pr.get("body"),
        "labels": pr.get("labels", []), "milestone": None, "active_lock_reason": None,
        "created_at": NOW, "updated_at": NOW, "closed_at": pr.get("merged_at"), "merged_at": pr.get("merged_at"),
        "merge_commit_sha": pr.get("merge_commit_sha"), "assignee": None, "assignees": [],
        "requested_reviewers": [], "requested_teams": [],
        "head": {"label": f"{head_owner['login']}:{pr['head_ref']}", "ref": pr["head_ref"], "sha": pr["head_sha"],
                 "user": head_owner, "repo": head_repo},
        "base": {"label": f"{repo['owner']['login']}:{pr['base_ref']}", "ref": pr["base_ref"], "sha": pr["base_sha"],
                 "user": repo["owner"], "repo": repo},
        "_links": _links(api, web, full, number, pr["head_sha"]), "author_association": "CONTRIBUTOR",
        "auto_merge": auto_merge, "draft": False,
    }
    if not simple:
        out.update({"merged": pr.get("merged_at") is not None, "mergeable": True, "rebaseable": True,
                    "mergeable_state": pr.get("mergeable_state", "clean"), "merged_by": merged_by,
                    "comments": 0, "review_comments": 0,
                    "maintainer_can_modify": False, "commits": 1, "additions": 1, "deletions": 1,
                    "changed_files": 1})
    return out


def issue(api: str, web: str, repo: dict, number: int, title: str, body: str | None, author: dict,
          labels: list[dict]) -> dict:
    full = repo["full_name"]
    r = f"{api}/repos/{full}"
    url = f"{r}/issues/{number}"
    return {
        "id": 2000 + number, "node_id": f"I_{number}", "url": url, "repository_url": r,
        "labels_url": f"{url}/labels{{/name}}", "comments_url": f"{url}/comments", "events_url": f"{url}/events",
        "html_url": f"{web}/{full}/issues/{number}", "number": number, "state": "open",
        "title": title, "body": body, "user": author, "labels": labels, "assignee": None, "assignees": [],
        "milestone": None, "locked": False, "active_lock_reason": None, "comments": 0,
        "closed_at": None, "created_at": NOW, "updated_at": NOW, "closed_by": None,
        "author_association": "OWNER", "reactions": reactions(url),
    }
