"""`promotion-bot monitor`: judge prod from Prometheus (and its probes, when the policy has them);
on a trip open one revert PR."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bot.core.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("monitor", help="evaluate prod's rollback rules; open a revert PR on a trip",
                       description=__doc__ + "\n\nExit codes: 0 healthy, 1 a rule tripped, 2 could not judge.")
    p.add_argument("--repo", type=Path, default=Path("."), help="path of the GitOps repository clone (default: .)")
    p.add_argument("--prometheus-url", default=os.environ.get("PROMETHEUS_URL"),
                   help="base URL of the Prometheus HTTP API, e.g. http://prometheus:9090 (default: $PROMETHEUS_URL)")
    p.add_argument("--env", default="prod", help="environment to watch (default: prod)")
    p.add_argument("--branch", help="default branch (default: the remote's HEAD, else the checked-out branch)")
    p.add_argument("--json", type=Path, help="write the JSON report here")
    p.add_argument("--dry-run", action="store_true", help="push nothing, open nothing: print the PR that would be opened")
    p.add_argument("--forge-dir", type=Path, help="write PRs, comments and issues as files here (local mode)")
    p.add_argument("--probe-history", type=Path, help="probe history file (default: the policy's probes.history)")
    p.add_argument("--no-probes", action="store_true", help="evaluate the metric rules only, even when the policy has probes")
    add_at(p)
    p.set_defaults(func=run)


def add_at(parser) -> None:
    parser.add_argument("--at", type=evaluation_time, metavar="TIME",
                        help="evaluate the rules as of TIME (Unix seconds or ISO 8601, e.g. 2026-12-07T03:00:00Z) "
                             "instead of now: replays what the pass saw then")


def evaluation_time(text: str) -> float:
    """``--at``: Unix seconds, or an ISO 8601 time (UTC unless it names its offset)."""
    from datetime import datetime, timezone

    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: write Unix seconds or 2026-12-07T03:00:00Z") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def run(args) -> int:
    from bot.forge.local import LocalForge
    from bot.monitor.prometheus import checked_url
    from bot.monitor.watch import monitor

    if not args.prometheus_url:
        raise InputError("command line", "--prometheus-url", "is required",
                         "pass --prometheus-url http://prometheus:9090 or set PROMETHEUS_URL")
    url = checked_url(args.prometheus_url, file="command line", field="--prometheus-url")
    if args.forge_dir is None and not args.dry_run:
        raise InputError("command line", "--forge-dir", "is required unless --dry-run is given",
                         "pass --forge-dir DIR to write PRs as files, --dry-run to only print them, "
                         "or use `promotion-bot github monitor` inside GitHub Actions")
    forge = LocalForge(args.forge_dir) if args.forge_dir else None
    return monitor(args.repo, url, env=args.env, forge=forge, json_path=args.json,
                   dry_run=args.dry_run, branch=args.branch, probes=not args.no_probes,
                   history_path=args.probe_history, now=args.at)
