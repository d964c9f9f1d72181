"""``tb-dlms scan``: associate with one meter, read what it has, print a ready dlms.json block.

Exit codes as ``tb-dlms read``: 0 done, 1 some objects could not be described (stderr says
which; the block leaves them out), 2 connection or association failure or bad arguments.
``--bus FIRST-LAST`` instead lists the HDLC physical addresses that answer on one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from ..protocol.errors import DlmsError
from .connection import (
    PASSWORD_ENV,
    add_connection_options,
    connection_session,
    connection_settings,
    connection_transport,
)

_EPILOG = f"""\
Prints one meter entry for dlms.json: timeseries for every register the association may read,
staticAttributes for the identity objects (serial number, firmware, logical device name),
profiles for the profile generic objects, keys named from the built-in OBIS catalogue (unknown
codes: obis_A_B_C_D_E). Secrets are never printed: the block names environment variables
(passwordEnv DLMS_PASSWORD, blockCipherKeyEnv DLMS_BLOCK_CIPHER_KEY, authenticationKeyEnv
DLMS_AUTHENTICATION_KEY) to set where the gateway runs. The password may come from
{PASSWORD_ENV} as with tb-dlms read.

--template NAME prints {{"templates": {{NAME: {{...}}}}}} instead: the points, profiles and
settings without the fields that locate one meter.

--bus FIRST-LAST (with --host/--port or --serial) sends one SNRM to each HDLC physical address
in the range and prints the ones that answer: [{{"serverPhysicalAddress": 17, "answer": "UA",
"roundTripMs": 3.1}}, ...]."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scan",
        help="read a meter's object list and print a dlms.json meter block",
        description="Associate with one meter, read its object list, register scalers and "
        "profile captures, print a dlms.json meter block (or probe a bus with --bus).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_options(p)
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds the whole scan may take (default 30); each answer is waited "
                   "for a tenth of it, then asked again")
    p.add_argument("--device-name", help="deviceName of the block (default: from the serial "
                   "number, else the address)")
    p.add_argument("--device-type", default="DLMS Meter", help="deviceType of the block")
    p.add_argument("--template", metavar="NAME", help="print a template instead of a meter")
    p.add_argument("--bus", metavar="FIRST-LAST",
                   help="probe these HDLC physical addresses instead of scanning one meter")
    p.add_argument("--probe-timeout", type=float, default=0.3,
                   help="seconds to wait for each address's answer when probing a bus (default 0.3)")
    p.add_argument("--trace", action="store_true", help="write every frame in hex to stderr")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"tb-dlms scan: {message}", file=sys.stderr)
    return 2


def _note(message: str) -> None:
    print(f"tb-dlms scan: {message}", file=sys.stderr)


def _fields(args: argparse.Namespace, settings: Any) -> tuple[dict[str, Any], list[str]]:
    """deviceName, connection, addresses, authentication: as this scan connected."""
    out: dict[str, Any] = {"deviceName": args.device_name or "", "deviceType": args.device_type}
    if args.host is not None:
        out["connection"] = {"type": "tcp", "host": args.host, "port": args.port,
                             "wrapper": bool(args.wrapper)}
    else:
        out["connection"] = {"type": "serial", "port": args.serial, "baudrate": args.baud,
                             "modeE": bool(args.mode_e)}
    from ..connector.scan_block import SECRET_ENV_NAMES, secrets_needed, session_fields

    out.update(session_fields(settings))
    notes = []
    for key in secrets_needed(settings):  # the same names the scan RPC uses
        out[f"{key}Env"] = SECRET_ENV_NAMES[key]
        notes.append(f"the block reads {key} from the environment variable "
                     f"{SECRET_ENV_NAMES[key]} of the gateway ({key}Env); set it there")
    return out, notes


def _device_name(args: argparse.Namespace, serial: str | None) -> str:
    if serial:
        return f"Meter {serial}"
    where = f"{args.host}:{args.port}" if args.host is not None else args.serial
    physical = f"/{args.server_physical}" if args.server_physical is not None else ""
    return f"Meter {where}{physical}"


def _serial_text(raw: Any) -> str | None:
    if isinstance(raw, (bytes, bytearray)):
        try:
            text = bytes(raw).decode("ascii")
        except UnicodeDecodeError:
            return bytes(raw).hex().upper()
        return text if text.isprintable() and text.strip() else None
    return str(raw) if isinstance(raw, (int, str)) and str(raw).strip() else None


def _serial(scan: Any) -> str | None:
    """The serial number's value the scan read, for the device name."""
    from ..protocol.obis_catalogue import describe

    for (class_id, obis), raw in scan.values.items():
        if class_id == 1 and describe(obis).key == "serial_number":
            return _serial_text(raw)
    return None


def run(args: argparse.Namespace) -> int:
    if not 0 < args.timeout < 1e6:  # (nan fails this too)
        return _fail(f"--timeout must be a positive number of seconds, not {args.timeout}")
    if args.bus is not None:
        from .scan_bus import run_bus

        return run_bus(args)
    try:
        settings = connection_settings(args)
        # A scan reads a few large answers: wait longer for each than a poll would.
        settings = dataclasses.replace(settings, response_timeout=args.timeout / 10,
                                       connect_timeout=args.timeout / 10)
        transport = connection_transport(args)
        fields, notes = _fields(args, settings)
    except (ValueError, DlmsError) as exc:
        return _fail(str(exc))
    from ..connector.scan_block import build_block, build_template
    from ..session.scan import scan_meter

    session = connection_session(args, settings, transport, "scan")
    session.machine.until = time.monotonic() + args.timeout
    try:
        session.connect()
        scan = scan_meter(session)
    except DlmsError as exc:
        return _fail(str(exc))
    finally:
        session.close()
    fields["deviceName"] = args.device_name or _device_name(args, _serial(scan))
    block = build_block(scan, fields)
    out = build_template(args.template, scan, fields) if args.template else block
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    for note in notes:
        _note(note)
    _note(f"{len(scan.objects)} objects listed; {len(block['timeseries'])} timeseries, "
          f"{len(block.get('staticAttributes', []))} static attributes, "
          f"{len(block.get('profiles', []))} profiles")
    for problem in scan.problems:
        _note(f"left out {problem}")
    return 1 if scan.problems else 0
