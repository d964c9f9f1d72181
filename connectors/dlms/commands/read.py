"""``tb-dlms read``: read a few objects from one meter and print them as one JSON object.

Exit codes: 0 all read, 1 some object failed (its entry says why), 2 connection or association
failure (one line on stderr) or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..protocol.errors import DataAccessError, DlmsError
from ..protocol.obis import Obis
from .connection import (
    PASSWORD_ENV,
    add_connection_options,
    connection_session,
    connection_settings,
    connection_transport,
)
from .keys import AUTH_KEY_ENV, BLOCK_KEY_ENV

_EPILOG = f"""\
OBJECT is OBIS[/class[/attribute]]: class 3 (Register) and attribute 2 (value) by default; for
classes 3 and 4 the scaler_unit is read too and applied. Examples: 1-1:32.7.0  0-0:1.0.0/8/2

The LLS password may come from the environment variable {PASSWORD_ENV} instead of --password
(command lines show up in process lists and shell histories); likewise the HLS-GMAC keys from
{BLOCK_KEY_ENV} and {AUTH_KEY_ENV} instead of --block-key and --auth-key. With --auth hls-gmac
and no --invocation-counter, the frame counter 0-0:43.1.0.255 (attribute 2) is first read with
the public client (16) and the session continues from the value after it.

Output: one JSON object keyed by each OBJECT as given, e.g.
  {{"1-1:32.7.0": {{"value": 230.1, "unit": "V", "scaler": -1, "raw": 2301}},
   "0-0:1.0.0/8/2": {{"value": "2024-05-01T10:00:00+02:00"}},
   "0-0:99.9.9": {{"error": "object-undefined"}}}}
Exit status: 0 all read, 1 some object failed, 2 connection or association failure."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "read",
        help="read objects from one meter and print them as JSON",
        description="Connect to one meter, read OBJECTs, print one JSON object.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_options(p)
    p.add_argument(
        "--timeout", type=float, default=10.0,
        help="seconds the whole read may take: connect, read and close (default 10); each"
        " answer is waited for a third of it, then asked again",
    )
    p.add_argument("--from", dest="from_", metavar="ISO",
                   help="profiles (OBIS/7/2): rows captured from this time (ISO-8601; without an "
                   "offset: --time-zone)")
    p.add_argument("--to", metavar="ISO", help="profiles: rows up to this time (default: now)")
    p.add_argument("--time-zone", metavar="ZONE",
                   help="the meter's time zone (IANA) for times without an offset (default: ours)")
    p.add_argument("--trace", action="store_true", help="write every frame in hex to stderr")
    p.add_argument("objects", nargs="+", metavar="OBJECT", help="OBIS[/class[/attribute]]")
    p.set_defaults(func=run)


def parse_object(text: str) -> tuple[int, Obis, int]:
    """``OBIS[/class[/attribute]]`` -> (class_id, obis, attribute); ValueError or
    LocalProtocolError (a bad OBIS code) naming the text."""
    parts = text.strip().split("/")
    if len(parts) > 3 or not parts[0]:
        raise ValueError(f"{text!r} is not OBIS[/class[/attribute]]")
    obis = Obis.parse(parts[0])
    try:
        class_id = int(parts[1]) if len(parts) > 1 else 3
        attribute = int(parts[2]) if len(parts) > 2 else 2
    except ValueError:
        raise ValueError(f"{text!r}: class and attribute must be numbers") from None
    if not 0 <= class_id <= 0xFFFF or not -128 <= attribute <= 127:
        raise ValueError(f"{text!r}: class or attribute out of range")
    return class_id, obis, attribute


def _fail(message: str) -> int:
    print(f"tb-dlms read: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:

    if not 0 < args.timeout < 1e6:  # (nan fails this too)
        return _fail(f"--timeout must be a positive number of seconds, not {args.timeout}")
    try:
        refs = [parse_object(text) for text in args.objects]
        settings = connection_settings(args)
        transport = connection_transport(args)
    except (ValueError, DlmsError) as exc:
        return _fail(str(exc))
    # One deadline for connect and read together, whatever the meter sends (close has its own
    # short bound): the command ends within --timeout plus a moment.
    deadline = time.monotonic() + args.timeout
    session = connection_session(args, settings, transport, "read")
    session.machine.until = deadline
    if args.from_ is not None or args.to is not None:
        return _profiles(args, session, refs)
    try:
        session.connect()
        results = session.read(refs)
    except DlmsError as exc:
        return _fail(str(exc))
    finally:
        session.close()
    out: dict[str, Any] = {}
    failed = False
    for text, result in zip(args.objects, results):
        if isinstance(result, DataAccessError):
            out[text] = {"error": result.name}
            failed = True
        else:
            out[text] = result.to_json()
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 1 if failed else 0


def _profiles(args: argparse.Namespace, session: Any, refs: list[tuple[int, Obis, int]]) -> int:
    """--from/--to: each OBJECT a profile buffer (class 7, attribute 2), rows by range."""
    import datetime as dt
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from ..connector.profile_config import ProfileConfig
    from ..connector.profile_reader import ProfileReader
    from ..connector.profile_rpc import ProfileRequestError, parse_time, read_profile

    try:
        zone = ZoneInfo(args.time_zone) if args.time_zone else None
    except (ZoneInfoNotFoundError, ValueError):
        return _fail(f"--time-zone: {args.time_zone!r} is not a time zone name")
    if any((class_id, attribute) != (7, 2) for class_id, _, attribute in refs):
        return _fail("--from/--to read profiles: give OBJECTs as OBIS/7/2")
    readers = [ProfileReader("meter", ProfileConfig(obis, max_rows_per_read=500), zone,
                             session.settings.deviation_sign) for _, obis, _ in refs]
    try:
        if args.from_ is None:
            return _fail("--to goes with --from")
        start = parse_time(args.from_, "--from", readers[0].zone)
        end = (parse_time(args.to, "--to", readers[0].zone) if args.to
               else dt.datetime.now(dt.timezone.utc))
    except ProfileRequestError as exc:
        return _fail(str(exc))
    out: dict[str, Any] = {}
    try:
        session.connect()
        for text, reader in zip(args.objects, readers):
            out[text] = read_profile(session, reader, start, end)
    except (DlmsError, ProfileRequestError) as exc:
        return _fail(str(exc))
    finally:
        session.close()
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
