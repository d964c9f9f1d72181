"""``tb-dlms``: the command line of the connector (sub-commands live in ``tb_dlms.commands``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata
from typing import Sequence

from .commands import COMMANDS

DISTRIBUTION = "tb-dlms-connector"  # setup.py name


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _ShowDefaults(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help when it has a default worth saying and its help
    does not already say one (many say it in their own words, e.g. "default 3")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default is not None
            and default is not False
            and default != argparse.SUPPRESS
            and "default" not in text
            and action.help != argparse.SUPPRESS
        ):
            text += " (default: %(default)s)"
        return text


class _ShowDefaultsRaw(_ShowDefaults, argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tb-dlms", description="DLMS/COSEM connector tools")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").register(sub)
    for command in sub.choices.values():
        raw = isinstance(command.formatter_class, type) and issubclass(
            command.formatter_class, argparse.RawDescriptionHelpFormatter)
        command.formatter_class = _ShowDefaultsRaw if raw else _ShowDefaults
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
