"""``tb-dlms``: the command line of the connector (sub-commands live in ``tb_dlms.commands``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tb-dlms", description="DLMS/COSEM connector tools")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
