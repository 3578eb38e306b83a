"""GitHub API requests one PR event costs: `promotion-bot github pr` against the fake GitHub
on a GitOps repo with ~3,000 files and a PR promoting one variant.

Target: 8 requests per run, first run (creates the comment) and rerun (edits it) alike, whatever
the number of files: `pending` and the final status on `promotion-bot` and on test, `success` on
staging and prod (untouched: decided at once, set once), one page of comments, the comment. The
action passes the workflow token's login, saving `GET /user` (9 without it).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

REPO = "acme-ml/gitops"  # as in tests/github_fake/harness.py
TARGET_REQUESTS = 8
FILES = 2900


class _Env:
    """The one `monkeypatch` call the test harness makes, applied for real."""

    def setenv(self, key: str, value: str) -> None:
        os.environ[key] = value


def _route(path: str) -> str:
    path = re.sub(r"/[0-9a-f]{40}", "/{sha}", path)
    path = re.sub(r"/\d+", "/{n}", path)
    return path.replace(f"/repos/{REPO}", "")


def main() -> int:
    from github_fake import FakeGitHub
    from github_fake.harness import TOKEN, pr_event, run_action
    from gitops import demo_like_repo, manifest

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-github-") as tmp:
        tmp_path = Path(tmp)
        repo = demo_like_repo(tmp_path / "gitops")
        for i in range(FILES):
            repo.write(f"environments/{('test', 'staging', 'prod')[i % 3]}/app-{i}.yaml",
                       manifest("canopy-tiny/v1.0-fp32", name=f"app-{i}", extra_doc=False))
        base = repo.commit(f"{FILES} more manifests")
        repo.set_variant("test", "canopy-tiny/v1.3-int4-g64")
        head = repo.commit("Promote v1.3-int4-g64 to test")
        files = sum(1 for _ in repo.path.rglob("*") if ".git" not in _.parts and _.is_file())
        failed = 0
        with FakeGitHub(validate=False) as fake:
            fake.add_repo(REPO)
            fake.add_token(TOKEN, None)
            runs = (("first run", "github-actions[bot]"), ("rerun", "github-actions[bot]"),
                    ("rerun, login unknown", ""))
            for label, login in runs:
                os.environ["PROMOTION_BOT_LOGIN"] = login  # what action.yml sets for the workflow's token
                before = len(fake.requests)
                started = time.monotonic()
                run = run_action(_Env(), tmp_path / re.sub(r"\W+", "-", label), fake, repo.path, "pull_request",
                                 pr_event("pull_request.opened.json", base=base, head=head))
                wall = time.monotonic() - started
                calls = fake.requests[before:]
                kinds = Counter(f"{r.method} {_route(r.path)}" for r in calls)
                target = TARGET_REQUESTS + (0 if login else 1)
                ok = run.code == 0 and len(calls) <= target
                failed += not ok
                print(f"{label}: {len(calls)} requests (target <= {target}), {wall:.2f}s wall, "
                      f"{files} files, exit {run.code}: {dict(kinds)}")
    os.environ.clear()
    os.environ.update(saved)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
