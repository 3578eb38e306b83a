"""`make demo`'s monitoring step: prod traffic simulated on a real local Prometheus.

Each prod deployment served healthy traffic for hours before its promotion commit and
``degraded`` traffic for ``after_s`` seconds since; the monitor then runs once "``after_s``
after the promotion" (Prometheus answers for that time from the backfilled history).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bot.checks import load_policy
from bot.demo.local_prometheus import LocalPrometheus
from bot.demo.series import Phase, openmetrics
from bot.forge.local import LocalForge
from bot.gitops.manifests import deployments
from bot.monitor.history import find_promotion
from bot.monitor.watch import monitor
from bot.vcs.reader import GitReader
from bot.vcs.writer import GitWriter

# What a too-aggressive quantization looks like in vLLM's metrics: slower, fewer tokens per second.
DEGRADED = dict(latency_s=3.2, ttft_s=0.6, tokens_per_request=30.0, error_ratio=0.01, feedback_down_ratio=0.3)


def history(timeline: list[tuple[str, str, float]], *, degraded: bool, after_s: float) -> str:
    """OpenMetrics for ``[(app, served_model, promoted_at)]``: healthy before, then degraded (or not)."""
    phases = {}
    for app, served_model, promoted_at in timeline:
        after = Phase(promoted_at, promoted_at + after_s, **(DEGRADED if degraded else {}))
        phases[(app, served_model)] = [Phase(promoted_at - 3 * 3600, promoted_at), after]
    return openmetrics(phases)


def demo_scenario(repo_path: Path, forge_dir: Path, *, degraded: bool = True, after_s: float = 1800.0,
                  env: str = "prod", json_path: Path | None = None, dry_run: bool = False, out=None,
                  history_path: Path | None = None) -> int:
    """One monitoring pass over ``repo_path``'s prod against simulated metrics; returns monitor's exit code.

    With ``degraded`` the rules trip and the revert PR lands in ``forge_dir`` (its branch is pushed
    to the repo's origin when it has one). When the policy has `probes:`, they run too (against
    the variants served locally, as the policy's `serve:` says); their history goes to
    ``history_path`` (default: next to ``forge_dir``).
    """
    timeline, now = _timeline(Path(repo_path), env, after_s)
    print(f"demo: simulating {after_s / 60:.0f} min of {'degraded' if degraded else 'healthy'} traffic "
          f"after the promotion of {len(timeline)} prod deployment(s)", file=sys.stderr, flush=True)
    with LocalPrometheus(history(timeline, degraded=degraded, after_s=after_s)) as prom:
        return monitor(Path(repo_path), prom.url, env=env, forge=LocalForge(forge_dir), json_path=json_path,
                       dry_run=dry_run, now=now, out=out,
                       history_path=history_path or Path(forge_dir).parent / "probe-history.json")


def _timeline(repo_path: Path, env: str, after_s: float) -> tuple[list[tuple[str, str, float]], float]:
    writer, reader = GitWriter(repo_path), GitReader(repo_path)
    try:
        base = writer.base_rev(writer.default_branch())
        policy = load_policy.from_rev(reader, base)
        timeline = []
        history = writer.first_parent_history(base, policy.environment(env).folder)
        for dep in deployments(reader, base, policy, env):
            promo = find_promotion(writer, reader, policy, base, dep, history)
            timeline.append((dep.application, dep.served_model, promo.time if promo else time.time() - after_s))
    finally:
        writer.close()
        reader.close()
    latest = max((t for _, _, t in timeline), default=time.time() - after_s)
    return timeline, latest + after_s - 5
