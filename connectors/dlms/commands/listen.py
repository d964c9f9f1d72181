"""``tb-dlms listen``: receive pushed notifications and print each as one JSON line.

For commissioning: point a meter's Push setup at this machine and see what it sends (its
system title, address, date-time and body, in the order of its object list) before writing its
``push`` section. Ciphered notifications are opened with --block-key/--auth-key (or the
environment) whatever their sender's title; a replay is reported as such.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import threading
from typing import Any

from ..protocol.errors import DlmsError
from .keys import AUTH_KEY_ENV, BLOCK_KEY_ENV, key_option

_EPILOG = f"""\
Each line is a JSON object: received_at, peer, source (wrapper wPort or HDLC address), then
for a notification opened: system_title, invocation_counter, protection, long_invoke_id,
high_priority, date_time (null when the meter sent none) and body (a structure as a list);
for one refused: refused (malformed, replay, bad-tag, ...) and error. Keys come from
--block-key/--auth-key or {BLOCK_KEY_ENV}/{AUTH_KEY_ENV} and are never printed.
Exit status: 0 (Ctrl-C, or --count reached), 1 --timeout passed first, 2 bad option or port."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("listen", help="receive pushed DLMS notifications, one JSON line each",
                       description=__doc__.split("\n\n")[0], epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=4059, help="TCP port (default 4059)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0: all)")
    framing = p.add_mutually_exclusive_group()
    framing.add_argument("--wrapper", dest="framing", action="store_const", const="wrapper",
                         help="(the default) the IEC 62056-47 wrapper")
    framing.add_argument("--hdlc", dest="framing", action="store_const", const="hdlc",
                         help="HDLC UI frames")
    p.add_argument("--serial", metavar="DEVICE", help="read a serial line (or pyserial URL) "
                   "instead of listening on TCP")
    p.add_argument("--baudrate", type=int, default=9600, help="serial speed (default 9600)")
    p.add_argument("--block-key", metavar="HEX32", help=f"block cipher key (or {BLOCK_KEY_ENV})")
    p.add_argument("--auth-key", metavar="HEX32", help=f"authentication key (or {AUTH_KEY_ENV})")
    p.add_argument("--count", type=int, default=0, help="stop after N notifications (0: never)")
    p.add_argument("--timeout", type=float, default=0.0,
                   help="give up after S seconds (exit 1); 0: never")
    p.set_defaults(func=run, framing="wrapper")


def _opener(args: argparse.Namespace) -> Any:
    from ..protocol.push import PushOpener
    from ..protocol.security.apdu import SecurityContext
    from ..protocol.security.gcm import GcmKey

    block = key_option(args.block_key, "--block-key", BLOCK_KEY_ENV)
    auth = key_option(args.auth_key, "--auth-key", AUTH_KEY_ENV)
    if block is None and auth is not None:
        raise ValueError(f"--block-key (or {BLOCK_KEY_ENV}) is needed to decipher")
    default = None if block is None else SecurityContext(GcmKey(block, auth or bytes(16)))
    return PushOpener({}, default=default)


def _line(peer: str, pushed: Any, received_at: float, opener: Any) -> dict[str, Any]:
    from ..protocol.obis import Obis
    from ..protocol.push import PushRejected
    from ..session.reading import render_value

    out: dict[str, Any] = {
        "received_at": _dt.datetime.fromtimestamp(received_at, _dt.timezone.utc).isoformat(),
        "peer": peer, "source": pushed.source}
    try:
        note = opener.open(pushed.apdu)
    except PushRejected as exc:
        title = exc.system_title.hex().upper() if exc.system_title else None
        return {**out, "system_title": title, "refused": exc.kind, "error": str(exc)}
    out.update({
        "system_title": note.system_title.hex().upper() if note.system_title else None,
        "invocation_counter": note.invocation_counter, "protection": note.protection,
        "long_invoke_id": note.long_invoke_id, "high_priority": note.high_priority,
        "date_time": note.date_time.isoformat() if note.date_time else None,
        "body": render_value(0, 0, note.body)})
    if note.attribute is not None:
        class_id, obis, attribute = note.attribute
        out["attribute"] = {"classId": class_id, "obis": str(Obis.from_bytes(obis)),
                            "attribute": attribute}
    return out


def run(args: argparse.Namespace) -> int:
    from ..engine.push_listener import PushEndpoint, PushListener

    try:
        opener = _opener(args)
    except (ValueError, DlmsError) as exc:
        print(f"tb-dlms listen: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    seen = [0]

    def on_apdu(peer: str, pushed: Any, received_at: float) -> None:
        print(json.dumps(_line(peer, pushed, received_at, opener), ensure_ascii=False),
              flush=True)
        seen[0] += 1
        if args.count and seen[0] >= args.count:
            done.set()

    def on_problem(peer: str, message: str) -> None:
        print(json.dumps({"peer": peer, "problem": message}), file=sys.stderr, flush=True)

    endpoint = (PushEndpoint("serial", args.framing, device=args.serial, baudrate=args.baudrate)
                if args.serial else PushEndpoint("tcp", args.framing, args.host, args.port))
    listener = PushListener([endpoint], on_apdu, on_problem)
    try:
        listener.start()
    except OSError as exc:
        print(f"tb-dlms listen: {exc}", file=sys.stderr)
        return 2
    where = endpoint.label if args.serial else \
        f"{args.framing} {listener.addresses[0][0]}:{listener.addresses[0][1]}"
    print(f"tb-dlms listen: waiting for notifications on {where}", file=sys.stderr, flush=True)
    try:
        finished = done.wait(args.timeout or None)
    except KeyboardInterrupt:
        finished = True
    finally:
        listener.stop()
    return 0 if finished else 1
