"""``tb-dlms simulate``: N simulated DLMS meters on consecutive TCP ports, until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a key is 32 hex digits") from None
    if len(key) != 16:
        raise argparse.ArgumentTypeError(f"a key is 32 hex digits (16 octets), got {len(key)} octets")
    return key


# The Green Book's example keys: documented test keys, never for a real meter.
_TEST_BLOCK_KEY = "000102030405060708090A0B0C0D0E0F"
_TEST_AUTH_KEY = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="serve simulated DLMS meters on consecutive TCP ports",
        description="Meter i listens on base-port + i (HDLC server address logical 1, "
        "physical physical-base + i, or the 1-byte address 0x03). Clients 1 and 32: LLS "
        "password 22222222; client 16: public, no authentication.",
    )
    p.add_argument("--count", type=_positive, default=1, help="number of meters (default 1)")
    p.add_argument("--base-port", type=_not_negative, default=3333, help="port of meter 0")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument(
        "--processes", type=_positive, default=None, metavar="N",
        help="serve the meters from N processes, each a contiguous slice (default: auto, as "
        "many as the open-file limit needs: each meter costs 2 file descriptors)",
    )
    p.add_argument("--wrapper", action="store_true", help="IEC 62056-47 wrapper instead of HDLC")
    p.add_argument(
        "--model", choices=("poly", "mono", "ct", "mixed"), default="poly",
        help="meter model (default poly): poly three phase, mono single phase residential, ct "
        "C&I CT connected, mixed: meter i is poly, mono, ct for i %% 3 = 0, 1, 2",
    )
    p.add_argument("--max-info", type=_positive, help="HDLC max information field (32..2030; default 128)")
    p.add_argument("--max-pdu", type=_positive, help="max PDU size: longer GETs use blocks (default 1024)")
    p.add_argument("--no-with-list", action="store_true", help="refuse GET/SET-with-list")
    p.add_argument(
        "--bad-with-list", choices=("short", "block"),
        help="malformed GET-with-list answers: one result short, or a data-block layout",
    )
    p.add_argument(
        "--window", type=int, choices=range(1, 8), default=1, help="HDLC window granted (1..7)"
    )
    p.add_argument(
        "--partial-ack", type=_not_negative, default=0,
        help="take only the first N frames of each client burst (0 = all)",
    )
    p.add_argument("--latency-ms", type=_not_negative, default=0, help="delay before replies")
    p.add_argument("--drop-every", type=_not_negative, default=0, help="drop every Nth reply")
    p.add_argument(
        "--garbage-every", type=_not_negative, default=0, help="noise before every Nth reply"
    )
    p.add_argument(
        "--physical-base", type=_not_negative, default=16, help="HDLC physical of meter 0"
    )
    p.add_argument(
        "--meters-per-port", type=_positive, default=1,
        help="meters behind each port, like a data concentrator (HDLC physical addresses)",
    )
    p.add_argument("--password", default="22222222",
                   help="LLS password of clients 1 and 32 (also the secret of HLS MD5, SHA1, SHA256)")
    p.add_argument(
        "--auth", choices=("lls", "hls-gmac", "hls-sha256", "hls-md5", "hls-sha1"), default="lls",
        metavar="MODE", help="authentication of clients 1 and 32, default lls; or hls-gmac, "
        "hls-sha256, hls-md5, hls-sha1 (client 16 stays public)",
    )
    p.add_argument(
        "--security", choices=("none", "auth", "enc", "auth-enc"),
        help="ciphered xDLMS (suite 0) required of clients 1 and 32 (default: auth-enc with "
        "hls-gmac, else none); the client system title comes from the AARQ",
    )
    p.add_argument("--block-key", type=_key, default=_TEST_BLOCK_KEY, metavar="HEX32",
                   help="global unicast block cipher key (default: the Green Book test key "
                   f"{_TEST_BLOCK_KEY})")
    p.add_argument("--auth-key", type=_key, default=_TEST_AUTH_KEY, metavar="HEX32",
                   help=f"authentication key (default: the Green Book test key {_TEST_AUTH_KEY})")
    p.add_argument(
        "--inactivity-timeout", type=float, default=180.0, help="seconds before idle links close"
    )
    p.add_argument(
        "--no-range-access", action="store_true",
        help="profiles refuse selector 1 (by range) with other-reason; by entry still works",
    )
    p.add_argument(
        "--clock-status-every", type=_not_negative, default=0, metavar="N",
        help="every Nth profile row stamped with clock status doubtful (0x02) or invalid "
        "(0x01), alternately (0 = never)",
    )
    p.add_argument(
        "--time-zone", default="", metavar="ZONE",
        help="IANA zone the meters keep local time in, e.g. Europe/Madrid: clock and profile "
        "stamps carry the deviation and the DST bit (default: UTC)",
    )
    p.add_argument(
        "--deviation-unspecified", action="store_true",
        help="stamp local time with deviation 0x8000 (not specified)",
    )
    p.add_argument(
        "--push-to", metavar="HOST:PORT",
        help="meters push DataNotifications there (Push setup 0-0:25.9.0.255 attribute 3; a "
        "client may rewrite it), over the wrapper with --wrapper, else HDLC UI frames",
    )
    p.add_argument("--push-period", type=float, default=0.0, metavar="S",
                   help="seconds between a meter's regular pushes (default 0: only on method "
                   "1 and alarms); first pushes spread over the period")
    p.add_argument(
        "--push-security", choices=("none", "auth", "enc", "auth-enc"),
        help="protection of the pushes (default none); else general-glo-ciphering with the "
        "block and authentication keys",
    )
    p.add_argument("--push-suite-id", type=int, choices=(0, 1), default=0,
                   help="suite id in a ciphered push's security control byte (default 0; "
                   "AES-GCM-128 either way, field meters send 1)")
    p.add_argument("--push-replay-every", type=_not_negative, default=0, metavar="N",
                   help="every Nth push also resends the previous one byte for byte (a "
                   "replay, for testing a receiver; default 0: never)")
    p.add_argument(
        "--print-expected",
        metavar="OBIS",
        action="append",
        help="print meter 0's expected register value now (repeatable) and exit",
    )
    p.add_argument(
        "--print-profile", metavar="OBIS",
        help="print meter 0's profile rows now (1-0:99.1.0, 1-0:98.1.0, 0-0:99.98.0), with "
        "the other options applied, and exit",
    )
    p.set_defaults(func=run)


def _options(args: argparse.Namespace) -> Any:
    from ..simulator.model import MeterOptions

    kw: dict[str, Any] = {
        "with_list": not args.no_with_list,
        "latency_s": args.latency_ms / 1000.0,
        "drop_every": args.drop_every,
        "garbage_every": args.garbage_every,
        "password": args.password.encode("utf-8"),
        "inactivity_timeout_s": args.inactivity_timeout,
        "wrapper": args.wrapper,
        "bad_with_list": args.bad_with_list or "",
        "window": args.window,
        "partial_ack": args.partial_ack,
        "authentication": args.auth,
        "security": _security(args),
        "block_key": _as_key(args.block_key),
        "auth_key": _as_key(args.auth_key),
        "profile_range_access": not args.no_range_access,
        "clock_status_every": args.clock_status_every,
        "time_zone": args.time_zone,
        "deviation_unspecified": args.deviation_unspecified,
        "model": args.model,
        "push_to": args.push_to or "",
        "push_period_s": args.push_period,
        "push_security": "" if args.push_security in (None, "none") else args.push_security,
        "push_suite_id": args.push_suite_id,
        "push_replay_every": args.push_replay_every,
    }
    if args.max_info is not None:
        kw["max_info_field"] = args.max_info
    if args.max_pdu is not None:
        kw["max_pdu_size"] = args.max_pdu
    return MeterOptions(**kw)


def _as_key(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else bytes.fromhex(value)  # the default: a string


def _security(args: argparse.Namespace) -> str:
    if args.security is None:
        return "auth-enc" if args.auth == "hls-gmac" else ""
    return "" if args.security == "none" else str(args.security)


def _print_expected(codes: list[str], options: Any) -> int:
    from ..protocol.errors import DlmsError
    from ..simulator.model import MeterModel

    model = MeterModel(0, options=options)
    now = time.time()
    for code in codes:
        try:
            raw, scaler, unit = model.expected(code, now)
        except (KeyError, DlmsError) as exc:
            print(f"tb-dlms simulate: {exc}", file=sys.stderr)
            return 2
        print(
            f"{code} raw={raw} scaler={scaler} unit={unit} value={model.expected_value(code, now)}"
        )
    return 0


def _print_profile(obis: str, options: Any) -> int:
    from ..protocol.errors import DlmsError
    from ..simulator.model import MeterModel

    try:
        rows = MeterModel(0, options=options).expected_profile_rows(obis)
    except DlmsError as exc:
        print(f"tb-dlms simulate: {exc}", file=sys.stderr)
        return 2
    for r in rows:
        values = " ".join(str(x) for x in r.values)
        print(f"{r.entry} {r.time.isoformat()} status=0x{r.clock_status:02x} {values}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..protocol.errors import DlmsError
    from . import simulate_launcher as launcher

    try:
        options = _options(args)
        if args.print_expected:
            return _print_expected(args.print_expected, options)
        if args.print_profile:
            return _print_profile(args.print_profile, options)
        slices = launcher.plan(args.count, args.meters_per_port, args.processes, args.base_port)
        if len(slices) > 1:
            return launcher.run_fleet(args, options, slices)
        server = launcher.build_server(args, options, 0, args.count)
    except (DlmsError, ValueError, OSError) as exc:
        print(f"tb-dlms simulate: {exc}", file=sys.stderr)
        return 2
    ports = server.ports
    print(launcher.ready_line(args, options, server.wrapper, (ports[0], ports[-1])), flush=True)
    print(launcher.stopped_line(launcher.serve(server)), flush=True)
    return 0
