"""Regenerate `openapi.json.gz`: GitHub's REST description trimmed to the endpoints the bot calls.

The full description lives in the npm package `@octokit/openapi` (file
`generated/api.github.com.json`, 13 MB). Only the operations in ``KEEP`` and the components
they reference are kept, so loading it in tests takes well under a second.

    npm pack @octokit/openapi@23.0.2 && tar xzf octokit-openapi-23.0.2.tgz package/generated/api.github.com.json
    python tests/github_fake/trim_openapi.py package/generated/api.github.com.json 23.0.2
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

KEEP = {
    "/user": ["get"],
    "/repos/{owner}/{repo}": ["get"],
    "/repos/{owner}/{repo}/pulls": ["get", "post"],
    "/repos/{owner}/{repo}/pulls/{pull_number}": ["get"],
    "/repos/{owner}/{repo}/pulls/{pull_number}/merge": ["put"],
    "/repos/{owner}/{repo}/issues": ["post"],
    "/repos/{owner}/{repo}/issues/{issue_number}/comments": ["get", "post"],
    "/repos/{owner}/{repo}/issues/comments/{comment_id}": ["patch"],
    "/repos/{owner}/{repo}/issues/{issue_number}/labels": ["post"],
    "/repos/{owner}/{repo}/statuses/{sha}": ["post"],
    "/repos/{owner}/{repo}/commits/{commit_sha}/pulls": ["get"],
    "/repos/{owner}/{repo}/commits/{ref}/status": ["get"],
}

OUT = Path(__file__).with_name("openapi.json.gz")


def refs(node, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def trim(spec: dict) -> dict:
    paths = {}
    for path, methods in KEEP.items():
        item = spec["paths"][path]
        paths[path] = {k: v for k, v in item.items() if k in methods or k == "parameters"}
    pending: set[str] = set()
    refs(paths, pending)
    kept: dict[str, dict] = {}
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        node = spec["components"][section][name]
        kept.setdefault(section, {})[name] = node
        refs(node, pending)
    return {"openapi": spec["openapi"], "info": spec["info"], "servers": spec.get("servers", []),
            "paths": paths, "components": kept}


def main(source: str, version: str) -> None:
    spec = json.loads(Path(source).read_text())
    out = trim(spec)
    out["info"] = dict(out["info"], **{"x-source": f"npm @octokit/openapi@{version} generated/api.github.com.json"})
    OUT.write_bytes(gzip.compress(json.dumps(out, separators=(",", ":"), sort_keys=True).encode(), mtime=0))
    print(f"{OUT}: {OUT.stat().st_size:,} bytes, {len(out['paths'])} paths", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
