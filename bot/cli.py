"""Command-line entry point. Each module in `bot/commands/` exposing `register(subparsers)`
adds its subcommands (`COMMANDS` says which module holds which, so a run imports only the module
of its command); this file only dispatches and turns errors into exit codes.

Exit codes: 0 pass / nothing to do, 1 a gate failed (or a rollback rule tripped), 2 could not judge,
3 inconclusive (the data cannot settle a verdict and the policy blocks on it).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading

from bot.core.errors import InputError, PromotionBotError

# command -> the module of bot/commands that registers it (tests/test_cli_help.py keeps this true)
COMMANDS = {
    "card": "card", "check": "check", "demo": "demo", "github": "github", "init": "init", "monitor": "monitor",
    "plan": "fanout", "probe": "probe", "report": "fanout", "run-check": "fanout", "validate": "validate",
    "zoo": "zoo",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``command`` alone (what a run needs), or of every command (help, a typo)."""
    parser = argparse.ArgumentParser(prog="promotion-bot", description="GitOps promotion bot for compressed LLMs.")
    from bot import __version__
    parser.add_argument("--version", action="version", version=f"promotion-bot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [COMMANDS[command]] if command in COMMANDS else sorted(set(COMMANDS.values()))
    for name in modules:
        importlib.import_module(f"bot.commands.{name}").register(sub)
    return parser


@contextlib.contextmanager
def terminate_as_exit():
    """SIGTERM (a CI runner cancelling the job, `kill`) raises SystemExit(143) while the block runs,
    instead of ending the process on the spot: `finally` blocks run, so the child processes of
    checks and the model servers they started stop with the bot (`bot.gate.children.run`)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def terminated(signum, _frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        with terminate_as_exit():
            return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PromotionBotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
