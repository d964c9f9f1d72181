"""The connection options ``tb-dlms read`` and ``tb-dlms scan`` share, and what they build:
the session settings, the transport and the blocking session."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from .keys import AUTH_KEY_ENV, BLOCK_KEY_ENV, hex_option, key_option

__all__ = ["PASSWORD_ENV", "add_connection_options", "connection_session", "connection_settings",
           "connection_transport"]

PASSWORD_ENV = "TB_DLMS_PASSWORD"


def add_connection_options(p: argparse.ArgumentParser) -> None:
    """Where the meter is and how to associate (not --timeout: each command says what it bounds)."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="meter or converter host (TCP)")
    where.add_argument("--serial", metavar="DEV", help="serial device or pyserial URL")
    p.add_argument("--port", type=int, help="TCP port (with --host; required there)")
    p.add_argument("--baud", type=int, default=9600, help="serial baud rate (default 9600)")
    p.add_argument("--mode-e", action="store_true", help="IEC 62056-21 mode E sign-on (optical)")
    p.add_argument("--wrapper", action="store_true", help="IEC 62056-47 wrapper instead of HDLC")
    p.add_argument("--client", type=int, help="client address (default 16; 1 with --auth lls)")
    p.add_argument("--server-logical", type=int, default=1, help="server logical address")
    p.add_argument("--server-physical", type=int,
                   help="server physical address (default: none, logical only)")
    p.add_argument("--address-size", type=int, choices=(1, 2, 4),
                   help="server address bytes (default: 1; 2 or 4 as --server-physical needs)")
    p.add_argument("--auth", choices=("none", "lls", "hls-gmac"), default="none", metavar="MODE",
                   help="authentication (default none): none, lls or hls-gmac")
    p.add_argument("--password", help=f"LLS password (or set {PASSWORD_ENV})")
    p.add_argument("--system-title", metavar="HEX16", help="our (the client's) system title")
    p.add_argument("--block-key", metavar="HEX32",
                   help=f"block cipher key (or set {BLOCK_KEY_ENV}); never printed")
    p.add_argument("--auth-key", metavar="HEX32",
                   help=f"authentication key (or set {AUTH_KEY_ENV}); never printed")
    p.add_argument("--security", choices=("auth-enc", "auth", "enc"),
                   help="protection of every APDU with hls-gmac (default: auth-enc)")
    p.add_argument("--dedicated-key", action="store_true", default=None,
                   help="with hls-gmac: propose a fresh random dedicated key and cipher the "
                   "requests with it (ded-xxx), for meters that offer one")
    p.add_argument("--invocation-counter", type=int, metavar="N",
                   help="first invocation counter to send (default: the meter's frame counter "
                   "+ 1, read with the public client)")


def _required_key(option: str | None, name: str, env: str) -> bytes:
    key = key_option(option, name, env)
    if key is None:
        raise ValueError(f"{name} (or {env}) is required with --auth hls-gmac")
    return key


def _hls(args: argparse.Namespace) -> dict[str, Any]:
    if args.auth != "hls-gmac":
        given = [o for o, v in (("--system-title", args.system_title), ("--block-key",
                 args.block_key), ("--auth-key", args.auth_key), ("--security", args.security),
                 ("--invocation-counter", args.invocation_counter),
                 ("--dedicated-key", args.dedicated_key)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} go(es) with --auth hls-gmac")
        return {}
    counter = args.invocation_counter
    if counter is not None and not 0 <= counter <= 0xFFFFFFFF:
        raise ValueError("--invocation-counter must be in 0..4294967295")
    return {
        "system_title": hex_option(args.system_title or "", "--system-title", 8),
        "block_key": _required_key(args.block_key, "--block-key", BLOCK_KEY_ENV),
        "auth_key": _required_key(args.auth_key, "--auth-key", AUTH_KEY_ENV),
        "security": args.security or "auth-enc",
        "invocation_counter": counter,  # None: the session reads the frame counter first
        "dedicated_key": bool(args.dedicated_key),
    }


def connection_settings(args: argparse.Namespace) -> Any:
    from ..session import SessionSettings

    password: str = args.password if args.password is not None else os.environ.get(PASSWORD_ENV, "")
    client = args.client if args.client is not None else (16 if args.auth == "none" else 1)
    return SessionSettings(
        **_hls(args),
        client=client,
        server_logical=args.server_logical,
        server_physical=args.server_physical,
        address_size=args.address_size,
        authentication=args.auth,
        password=password.encode("utf-8") if args.auth == "lls" else b"",
        wrapper=args.wrapper,
        connect_timeout=args.timeout / 3,
        response_timeout=args.timeout / 3,
        operation_timeout=args.timeout,
    )


def connection_transport(args: argparse.Namespace) -> Any:
    if args.host is not None:
        from ..transport import TcpTransport

        if args.port is None:
            raise ValueError("--port is needed with --host")
        return TcpTransport(args.host, args.port, connect_timeout=args.timeout)
    from ..transport import SerialTransport

    if args.port is not None:
        raise ValueError("--port goes with --host, not --serial")
    return SerialTransport(args.serial, args.baud, mode_e=args.mode_e)


def connection_session(args: argparse.Namespace, settings: Any, transport: Any, command: str) -> Any:
    from ..session import BlockingSession, FrameTrace

    sink = (lambda line: print(line, file=sys.stderr, flush=True)) if args.trace else None
    # The one-line error is the whole story on stderr (--trace shows the frames live).
    quiet = logging.getLogger(f"tb_dlms.commands.{command}.session")
    quiet.propagate = False
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    return BlockingSession(transport, settings, log=quiet, trace=FrameTrace(sink=sink))
