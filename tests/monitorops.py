"""Helpers for monitoring tests: a GitOps clone with a bare origin, prod manifests naming a
served model, commits at chosen times, and metric histories for a local Prometheus."""

from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from pathlib import Path

import git
from gitops import POLICY, demo_like_repo

PROD = "environments/prod/canopy.yaml"

ROLLBACK = """\
    rollback:
      defaults: false
      rules:
        - name: p95-latency
          query: histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="{model_name}"}[{window}])))
          above: 2.5
          window: 10m
        - name: error-rate
          query: sum(rate(http_requests_total{app="{app}",status=~"5.."}[{window}])) / sum(rate(http_requests_total{app="{app}"}[{window}]))
          above: 0.05
          window: 10m
"""


def policy_with(rollback: str = ROLLBACK) -> str:
    return POLICY + rollback


def prod_manifest(ref: str, served_model: str, *, app: str = "canopy", owner: str = "ml-platform") -> str:
    return textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Rollout
        metadata:
          name: {app}
          labels:
            app.kubernetes.io/name: {app}
          annotations:
            promotion-bot/variant: {ref}
            team: {owner}
            promotion-bot/served-model: {served_model}
        spec:
          replicas: 2
        """)


@contextmanager
def commit_time(ts: float):
    """Commits made inside carry this author and committer time."""
    stamp = f"{int(ts)} +0000"
    old = {k: os.environ.get(k) for k in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")}
    os.environ["GIT_AUTHOR_DATE"] = os.environ["GIT_COMMITTER_DATE"] = stamp
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def clone_with_origin(tmp_path: Path, *, served_model: str, promoted_at: float, policy: str | None = None,
                      to_variant: str = "v1.4-int2-g64", app: str = "canopy"):
    """A repo whose prod served v1.0-fp32 and, since ``promoted_at``, ``to_variant``; pushed to a bare origin."""
    repo = demo_like_repo(tmp_path / "gitops", policy=policy or policy_with())
    with commit_time(promoted_at - 86400):
        repo.write(PROD, prod_manifest("canopy-tiny/v1.0-fp32", served_model, app=app))
        repo.commit("Serve canopy in prod")
    with commit_time(promoted_at):
        repo.write(PROD, prod_manifest(f"canopy-tiny/{to_variant}", served_model, app=app))
        repo.commit(f"Promote {to_variant} to prod")
    bare = tmp_path / "origin.git"
    git.Repo.init(bare, bare=True, initial_branch="main")
    repo.repo.create_remote("origin", str(bare))
    repo.repo.git.push("origin", "main")
    repo.repo.git.fetch("origin")
    repo.repo.git.remote("set-head", "origin", "main")
    return repo, git.Repo(bare)


def remote_branches(bare: git.Repo) -> list[str]:
    return sorted(h.name for h in bare.heads)
