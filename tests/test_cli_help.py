"""Every flag of every ``gm-jax`` command says what it does and what it defaults to."""

import argparse

from gm_jax.cli import build_parser


def _subcommands(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def flags_without_default(parser) -> list[str]:
    """``COMMAND --flag`` for each optional argument whose help is missing or states no default."""
    bad = []
    for name, sub in _subcommands(parser).items():
        for action in sub._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            text = sub._get_formatter()._expand_help(action) if action.help else ""
            if "default" not in text and "required" not in text:
                bad.append(f"{name} {action.option_strings[-1]}")
    return bad


def test_every_flag_states_its_default():
    parser = build_parser()
    assert {"train", "sample", "evaluate", "config", "compare"} <= set(_subcommands(parser))
    assert flags_without_default(parser) == []


def test_the_check_finds_a_flag_without_a_default():
    parser = build_parser()
    _subcommands(parser)["train"].add_argument("--new", help="something")
    _subcommands(parser)["list"].add_argument("--other")
    assert flags_without_default(parser) == ["train --new", "list --other"]


def test_defaults_are_filled_in():
    help_text = _subcommands(build_parser())["sample"].format_help()
    assert "(default: 64)" in help_text and "%(default)" not in help_text
