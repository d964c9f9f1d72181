"""``tb-dlms``: the command line of the connector.

decode    explain captured frames / APDUs as JSON
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .protocol.errors import DlmsError


def _cmd_decode(args: argparse.Namespace) -> int:
    from .capture import describe, parse_hex

    try:
        result = describe(parse_hex(args.hex), show_secrets=args.show_secrets)
    except DlmsError as exc:
        print(f"tb-dlms decode: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tb-dlms", description="DLMS/COSEM connector tools")
    sub = parser.add_subparsers(dest="command", required=True)

    decode = sub.add_parser("decode", help="explain a captured HDLC frame, wrapper PDU or APDU")
    decode.add_argument("hex", nargs="+", help="hex bytes; spaces allowed (7E A0 07 ...)")
    decode.add_argument("--show-secrets", action="store_true", help="print LLS passwords")
    decode.set_defaults(func=_cmd_decode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
