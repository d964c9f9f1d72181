"""``tb-dlms scan --bus FIRST-LAST``: which HDLC physical addresses answer on one line."""

from __future__ import annotations

import argparse
import json
import sys

from ..protocol.errors import DlmsError
from .connection import connection_transport

__all__ = ["parse_range", "run_bus"]

MAX_ADDRESSES = 16384  # the 14-bit physical address space of 4-byte addressing


def parse_range(text: str) -> range:
    """``FIRST-LAST`` (or one address) -> the addresses; ValueError naming the text."""
    first, sep, last = text.partition("-")
    try:
        lo = int(first)
        hi = int(last) if sep else lo
    except ValueError:
        raise ValueError(f"--bus {text!r}: expected FIRST-LAST, e.g. 16-30") from None
    if not 0 <= lo <= hi < MAX_ADDRESSES:
        raise ValueError(f"--bus {text!r}: addresses must be 0..{MAX_ADDRESSES - 1}, first <= last")
    return range(lo, hi + 1)


def run_bus(args: argparse.Namespace) -> int:
    from ..session.bus_probe import probe_bus

    def fail(message: str) -> int:
        print(f"tb-dlms scan: {message}", file=sys.stderr)
        return 2

    if not 0 < args.probe_timeout <= 60:
        return fail(f"--probe-timeout must be in (0, 60] seconds, not {args.probe_timeout}")
    if args.wrapper:
        return fail("--bus probes HDLC addresses; the wrapper has none")
    try:
        addresses = parse_range(args.bus)
        transport = connection_transport(args)
    except (ValueError, DlmsError) as exc:
        return fail(str(exc))
    client = args.client if args.client is not None else 16
    try:
        transport.open()
        found = probe_bus(transport, addresses, client=client, logical=args.server_logical,
                          address_size=args.address_size, timeout=args.probe_timeout)
    except DlmsError as exc:
        return fail(str(exc))
    finally:
        transport.close()
    out = [{"serverPhysicalAddress": a.physical, "answer": a.answer,
            "roundTripMs": a.round_trip_ms} for a in found]
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    print(f"tb-dlms scan: {len(found)} of {len(addresses)} addresses answered",
          file=sys.stderr)
    return 0
