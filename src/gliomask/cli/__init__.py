"""Command line: a thin layer over the Python API, one module per command. Every user error is one
line and exit code 2."""

from __future__ import annotations

import argparse
import sys

from gliomask import __version__
from gliomask.cli import compare, config, demo, evaluate, export, export_coco, predict, prepare, synth, train
from gliomask.errors import GliomaskError, Preempted

COMMANDS = (synth, prepare, export_coco, train, predict, evaluate, compare, export, demo, config)


class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless the text already states it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gliomask", description="Find and outline brain tumours in multimodal MRI (BraTS) with Mask R-CNN.")
    parser.add_argument("--version", action="version", version=f"gliomask {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    for command_parser in sub.choices.values():
        command_parser.formatter_class = HelpWithDefaults
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Preempted as exc:  # not an error: the run saved where it stood and can be resumed
        print(f"gliomask: {exc}", file=sys.stderr)
        return exc.exit_code
    except GliomaskError as exc:
        print(f"gliomask: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `gliomask config | head`: the reader left; not an error of ours
        sys.stdout = None
        return 0
    except OSError as exc:  # a read-only folder, a full disk, a path that is a file: one line, not a traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"gliomask: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gliomask: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
