"""The ``twofa`` command explains itself: a version, help on every option with its
default, help on every subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from services.cli.main import main, parser


def parsers(p: argparse.ArgumentParser, path: str = "twofa") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                assert helps.get(name), f"{path} {name} has no help line"
                yield from parsers(child, f"{path} {name}")


def test_twofa_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"twofa {version('twofa')}"


def test_every_option_has_help_and_shows_its_default():
    problems = []
    for path, p in parsers(parser()):
        text = " ".join(p.format_help().split())
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            if not action.help:
                problems.append(f"{path} {name}: no help")
                continue
            optional = bool(action.option_strings) and not action.required
            if optional and action.default not in (None, False) and f"(default: {action.default})" not in text:
                problems.append(f"{path} {name}: default {action.default!r} not shown")
            if optional and action.default is None and action.nargs != 0 and "default" not in action.help.lower():
                problems.append(f"{path} {name}: no default, and the help does not say what then")
    assert problems == []


def test_the_portal_commands_say_how_the_password_is_read():
    for command in ("adduser", "passwd"):
        (p,) = [p for path, p in parsers(parser()) if path == f"twofa portal {command}"]
        text = " ".join(p.format_help().split())
        assert "asked twice when standard input is a terminal" in text
        assert "first line of standard input" in text
