"""`promotion-bot probe`: run the application-flow suites against what prod serves, record the
pass rate per tag, and evaluate the probe rules; on a trip open one revert PR (like `monitor`)."""

from __future__ import annotations

from pathlib import Path

from bot.core.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("probe", help="probe prod's endpoints with the application-flow suites",
                       description=__doc__ + "\n\nExit codes: 0 healthy, 1 a probe rule tripped, 2 could not judge "
                                             "(an endpoint did not answer, bad input).")
    p.add_argument("--repo", type=Path, default=Path("."), help="path of the GitOps repository clone (default: .)")
    p.add_argument("--env", default="prod", help="environment to probe (default: prod)")
    p.add_argument("--branch", help="default branch (default: the remote's HEAD, else the checked-out branch)")
    p.add_argument("--json", type=Path, help="write the JSON report here")
    p.add_argument("--history", type=Path, help="probe history file (default: the policy's probes.history)")
    p.add_argument("--dry-run", action="store_true", help="push nothing, open nothing: print the PR that would be opened")
    p.add_argument("--forge-dir", type=Path, help="write PRs, comments and issues as files here (local mode)")
    p.set_defaults(func=run)


def run(args) -> int:
    from bot.forge.local import LocalForge
    from bot.monitor.watch import monitor

    if args.forge_dir is None and not args.dry_run:
        raise InputError("command line", "--forge-dir", "is required unless --dry-run is given",
                         "pass --forge-dir DIR to write PRs as files, or --dry-run to only print them")
    forge = LocalForge(args.forge_dir) if args.forge_dir else None
    return monitor(args.repo, None, env=args.env, forge=forge, json_path=args.json, dry_run=args.dry_run,
                   branch=args.branch, metrics=False, probes=True, history_path=args.history)
