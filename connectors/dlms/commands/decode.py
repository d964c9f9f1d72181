"""``tb-dlms decode HEX...``: explain a captured frame or APDU as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from ..protocol.errors import DlmsError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("decode", help="explain a captured HDLC frame, wrapper PDU or APDU")
    parser.add_argument("hex", nargs="+", help="hex bytes; spaces allowed (7E A0 07 ...)")
    parser.add_argument("--show-secrets", action="store_true", help="print LLS passwords")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..capture import describe, parse_hex

    try:
        result = describe(parse_hex(args.hex), show_secrets=args.show_secrets)
    except DlmsError as exc:
        print(f"tb-dlms decode: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
