"""Every command and every option of the CLI says what it is for (`--help` is the user's manual)."""

from __future__ import annotations

import argparse

from bot.cli import build_parser


def undocumented(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not helps.get(name):
                    missing.append(" ".join(path + (name,)))
                missing += undocumented(sub, path + (name,))
        elif not action.help or action.help == argparse.SUPPRESS and action.dest != "help":
            missing.append(f"{' '.join(path) or 'promotion-bot'} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_cli__every_command_and_option_has_help():
    parser = build_parser()
    assert undocumented(parser) == []
    commands = {a for act in parser._actions if isinstance(act, argparse._SubParsersAction) for a in act.choices}
    assert {"check", "plan", "run-check", "report", "zoo", "monitor", "github"} <= commands


def test_cli__check_help_says_the_pr_is_judged_from_its_merge_base(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = sub.choices["check"].format_help()
    assert "only its own changes (since its merge base with --base)" in " ".join(text.split())
    assert "its tip gives the policy, the baselines and what each environment serves" in " ".join(text.split())


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    return {a for act in parser._actions if isinstance(act, argparse._SubParsersAction) for a in act.choices}


def test_cli__the_command_table_names_the_module_of_every_command():
    # A run imports only its command's module: the table must say where each command lives.
    import importlib
    import pkgutil

    import bot.commands
    from bot.cli import COMMANDS

    for info in pkgutil.iter_modules(bot.commands.__path__):
        parser = argparse.ArgumentParser()
        importlib.import_module(f"bot.commands.{info.name}").register(parser.add_subparsers())
        assert {c: info.name for c in _commands(parser)} == {c: m for c, m in COMMANDS.items() if m == info.name}
    assert _commands(build_parser("plan")) == {"plan", "run-check", "report"}
    assert _commands(build_parser("nosuch")) == set(COMMANDS)  # a typo gets the full list from argparse
