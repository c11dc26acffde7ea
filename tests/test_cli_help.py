"""Every command and option explains itself, and every config key can be listed with its default."""

from __future__ import annotations

import argparse

from conftest import run_cli

from gliomask.cli import build_parser
from gliomask.config import Config, describe_keys


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_option_of_every_command_has_help_with_its_default():
    for name, command in _commands().items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"gliomask {name} {action.option_strings or action.dest}: no help text"
        formatter = command._get_formatter()
        for action in command._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) \
                    and not isinstance(action, argparse._HelpAction):
                assert "default" in formatter._get_help_string(action), (name, action.dest)


def test_config_command_lists_every_key_with_default_and_help():
    result = run_cli("config")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    keys = describe_keys()
    assert len(lines) == len(keys) == sum(len(vars(getattr(Config(), s))) for s in ("model", "train", "infer"))
    for (key, _, text), line in zip(keys, lines):
        assert line.startswith(f"{key}="), line
        assert text and line.rstrip().endswith(text), f"{key}: no help text"
    assert "train.lr=0.02" in result.stdout and "infer.region_thresholds=[0.5,0.5,0.5]" in result.stdout
    as_yaml = run_cli("config", "--yaml")
    import yaml

    assert yaml.safe_load(as_yaml.stdout) == Config().to_dict()
