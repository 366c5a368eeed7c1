"""``agenthub``'s parser: every command and option explains itself; a token's prefix is found."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from agenthub.cli import _ASYNC_COMMANDS, _FLAGS, _parser, token_prefix


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def test_every_command_and_option_has_a_help_line():
    missing = []
    for path, parser in commands(_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                missing += [(*path, name) for name in action.choices if not helps.get(name)]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append((*path, action.dest))
    assert missing == []


def test_every_command_that_prints_data_takes_json():
    without = [
        " ".join(path)
        for path, parser in commands(_parser())
        if path
        and not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        and not any("--json" in a.option_strings for a in parser._actions)
    ]
    assert without == ["serve"]  # serve prints logs, not data


def test_flag_names_refer_to_real_options():
    leaves = {" ".join(path): parser for path, parser in commands(_parser())}
    for command, flags in _FLAGS.items():
        assert command in _ASYNC_COMMANDS
        known = {o for a in leaves[command]._actions for o in a.option_strings}
        known |= {str(a.metavar) for a in leaves[command]._actions if not a.option_strings}
        assert set(flags.values()) <= known, command


@pytest.mark.parametrize(
    ("given", "prefix"),
    [
        ("k3v9q2m1x0ab", "k3v9q2m1x0ab"),
        ("agt_k3v9q2m1x0ab_Zm9v_YmFy-YmF6" + "x" * 30, "k3v9q2m1x0ab"),
        (" agt_k3v9q2m1x0ab_secret\n", "k3v9q2m1x0ab"),
        ("not-a-token", "not-a-token"),
    ],
)
def test_token_prefix(given, prefix):
    assert token_prefix(given) == prefix
