"""Command-line entry point. Each module in `bot/commands/` exposing `register(subparsers)`
adds one subcommand; this file only dispatches and turns errors into exit codes.

Exit codes: 0 pass / nothing to do, 1 a gate failed (or a rollback rule tripped), 2 could not judge,
3 inconclusive (the data cannot settle a verdict and the policy blocks on it).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import bot.commands
from bot.core.errors import InputError, PromotionBotError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promotion-bot", description="GitOps promotion bot for compressed LLMs.")
    from bot import __version__
    parser.add_argument("--version", action="version", version=f"promotion-bot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(bot.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"bot.commands.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PromotionBotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
