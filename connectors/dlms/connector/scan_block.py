"""A scanned meter -> a dlms.json meter block (or a template), in the loader's own vocabulary.

Pure: the scan's findings (session/scan.py ``ScanResult``) and the connection fields go in, a
dict that ``load_config`` takes without errors or warnings comes out. What goes in the block:

- ``timeseries``: every register (class 3, 4) whose value and scaler_unit the scan read;
- ``staticAttributes``: the identity objects (class 1: serial number, firmware, logical device
  name) whose value the scan read;
- ``profiles``: every profile (class 7) whose buffer the client may read and whose capture
  objects were read, with a column per captured object but the clock.

Keys come from the OBIS catalogue (protocol/obis_catalogue.py), unique within the block.
Secrets are never in a block: ``connection_fields_from_config`` references the configured
environment variable or file, or a placeholder variable name for an inline secret.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..engine.spec import SerialSpec, TcpSpec
from ..protocol.obis import Obis
from ..protocol.obis_catalogue import describe, is_identity, unique_key
from ..session.reading import REGISTER_CLASSES
from ..session.scan import ScanResult, scan_meter
from .model import MeterConfig

__all__ = [
    "ADDRESS_KEYS", "SECRET_ENV_NAMES", "build_block", "build_template",
    "connection_fields_from_config", "scan_job", "secrets_needed", "session_fields",
]

# The variable names a block refers to when the secret did not come from one.
SECRET_ENV_NAMES = {"password": "DLMS_PASSWORD", "blockCipherKey": "DLMS_BLOCK_CIPHER_KEY",
                    "authenticationKey": "DLMS_AUTHENTICATION_KEY"}
# Meter keys that say where one meter is: not part of a template.
ADDRESS_KEYS = frozenset(("deviceName", "connection", "serverLogicalAddress",
                          "serverPhysicalAddress", "serverAddressSize", "enabled"))
_MIN_PROFILE_MS, _MAX_PROFILE_MS = 10_000, 86_400_000
_LOAD_PROFILES = ((99, 1), (99, 2))  # columns keep their plain keys: the same quantities


def _points(scan: ScanResult, taken: set[str]) -> tuple[list[dict[str, Any]],
                                                         list[dict[str, Any]]]:
    timeseries: list[dict[str, Any]] = []
    static: list[dict[str, Any]] = []
    for o in scan.objects:
        found = (o.class_id, o.obis)
        if found not in scan.values:  # refused, or not read: the list says it is not readable
            continue
        if o.class_id in REGISTER_CLASSES and found in scan.scalers:
            key = unique_key(describe(o.obis).key, taken)
            timeseries.append({"key": key, "obis": str(o.obis), "classId": o.class_id,
                               "attribute": 2})
        elif o.class_id == 1 and is_identity(o.obis):
            key = unique_key(describe(o.obis).key, taken)
            static.append({"key": key, "obis": str(o.obis), "classId": 1, "attribute": 2})
    return timeseries, static


def _column_key(profile: Obis, obis: Obis, attribute: int) -> str:
    key = describe(obis).key
    if attribute != 2:
        key = f"{key}_a{attribute}"
    if (profile.c, profile.d) not in _LOAD_PROFILES:
        key = f"{describe(profile).key}_{key}"
    return key


def _profiles(scan: ScanResult) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for o in scan.objects:
        if o.class_id != 7 or not o.may_read(2) or o.obis not in scan.captures:
            continue
        entry: dict[str, Any] = {"obis": str(o.obis)}
        period = scan.capture_periods.get(o.obis, 0)
        if period > 0:  # 0: captured on events (a log); the default poll period applies
            entry["pollPeriod"] = min(max(period * 1000, _MIN_PROFILE_MS), _MAX_PROFILE_MS)
        names: set[str] = set()
        columns = []
        for col in scan.captures[o.obis]:
            if col.is_clock:
                continue
            key = unique_key(_column_key(o.obis, col.obis, col.attribute), names)
            columns.append({"obis": str(col.obis), "attribute": col.attribute, "key": key})
        if columns:
            entry["columns"] = columns
        out.append(entry)
    return out


def build_block(scan: ScanResult, fields: Mapping[str, Any]) -> dict[str, Any]:
    """One meter entry: ``fields`` (deviceName, connection, addresses, authentication and secret
    references) followed by the points and profiles found by the scan."""
    block = dict(fields)
    taken: set[str] = set()
    timeseries, static = _points(scan, taken)
    block["timeseries"] = timeseries
    if static:
        block["staticAttributes"] = static
    profiles = _profiles(scan)
    if profiles:
        block["profiles"] = profiles
    return block


def build_template(name: str, scan: ScanResult, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``{"templates": {name: {...}}}``: the block without the keys that locate one meter."""
    block = build_block(scan, fields)
    return {"templates": {name: {k: v for k, v in block.items() if k not in ADDRESS_KEYS}}}


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def connection_fields_from_config(meter: MeterConfig,
                                  secret_sources: Mapping[str, str] | None = None
                                  ) -> tuple[dict[str, Any], list[str]]:
    """The non-point fields of a configured meter's block, and notes on secrets referenced by a
    placeholder. ``secret_sources``: the meter's ``...Env``/``...File`` keys as configured."""
    spec, s = meter.spec, meter.spec.session
    out: dict[str, Any] = {"deviceName": meter.name, "deviceType": spec.device_type}
    t = spec.transport
    if isinstance(t, TcpSpec):
        out["connection"] = {"type": "tcp", "host": t.host, "port": t.port,
                             "wrapper": bool(s.wrapper),
                             "connectTimeout": _ms(t.connect_timeout_s)}
    elif isinstance(t, SerialSpec):
        out["connection"] = {"type": "serial", "port": t.port, "baudrate": t.baudrate,
                             "bytesize": t.bytesize, "parity": t.parity,
                             "stopbits": t.stopbits, "modeE": t.mode_e}
    out.update(session_fields(s))
    notes = []
    sources = dict(secret_sources or {})
    needed = secrets_needed(s)
    for key in needed:
        given = [k for k in (f"{key}Env", f"{key}File") if k in sources]
        if given:
            out[given[0]] = sources[given[0]]
        else:
            out[f"{key}Env"] = SECRET_ENV_NAMES[key]
            notes.append(f"{key} is written inline in dlms.json: the block names the "
                         f"environment variable {SECRET_ENV_NAMES[key]} instead")
    out["pollPeriod"] = _ms(spec.poll_period_s)
    return out, notes


def session_fields(s: Any) -> dict[str, Any]:
    """Addresses, authentication and security of a block, from session settings (the CLI's,
    as it connected, or a configured meter's): one spelling for both."""
    out: dict[str, Any] = {"clientAddress": s.client, "serverLogicalAddress": s.server_logical}
    if s.server_physical is not None:
        out["serverPhysicalAddress"] = s.server_physical
    if s.address_size is not None and not s.wrapper:
        out["serverAddressSize"] = s.address_size
    out["authentication"] = s.authentication
    if s.authentication.startswith("hls"):
        out["security"] = s.security or "auth-enc"
        out["systemTitle"] = s.system_title.hex().upper()
        if s.dedicated_key:
            out["dedicatedKey"] = True
    return out


def secrets_needed(s: Any) -> list[str]:
    """The secret fields a block must name a source for (``password``, the HLS keys)."""
    needed = ["password"] if s.authentication != "none" and s.password else []
    if s.authentication.startswith("hls"):
        needed += ["blockCipherKey", "authenticationKey"]
    return needed


def scan_job(meter: MeterConfig) -> Callable[[Any], dict[str, Any]]:
    """The ``scan`` device RPC: a job for the meter's worker that scans over its session and
    replies ``{"success": true, "block": {...}}`` (and ``notes`` on secrets and left-out objects)."""
    fields, notes = connection_fields_from_config(meter, dict(meter.secret_sources))

    def job(session: Any) -> dict[str, Any]:
        found = scan_meter(session)
        reply: dict[str, Any] = {"success": True, "block": build_block(found, fields)}
        if notes or found.problems:
            reply["notes"] = notes + [f"left out {p}" for p in found.problems]
        return reply

    return job
