"""dlms.json for pushing meters: the top-level ``push`` section (where meters connect) and a
meter's ``push`` section (how it is recognised, its keys, how its notification body maps to keys).

A meter with ``push`` and no ``connection`` only pushes; with both, it is polled and pushes (its
alarms, say) to the same device. Fields: push_fields.py; errors name the meter and the field
("meter 'P-7': push.objects[2].obis: ..."), never a key's value.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine.push_listener import PushEndpoint, PushLimits
from ..protocol.errors import DlmsError
from ..protocol.obis import Obis
from ..protocol.push_setup import parse_host_port
from ..protocol.security.apdu import SecurityContext
from ..protocol.security.control import Policy
from ..protocol.security.gcm import GcmKey
from .config_fields import by_key, keys
from .field_readers import MISSING, Section, show
from .meter_entry import parse_report_strategy, read_obis
from .profile_config import parse_time_zone
from .push_fields import PUSH_FIELDS, PUSH_LISTENER_FIELDS, PUSH_METER_FIELDS, PUSH_OBJECT_FIELDS
from .security_entry import hex_field, read_secret

__all__ = ["PushMeter", "PushObject", "PushSettings", "check_push_meters", "parse_push_meter",
           "parse_push_only", "parse_push_settings", "push_warnings"]

_TOP, _LISTENER = by_key(PUSH_FIELDS), by_key(PUSH_LISTENER_FIELDS)
_METER, _OBJECT = by_key(PUSH_METER_FIELDS), by_key(PUSH_OBJECT_FIELDS)
_POLICIES = {"auth": Policy.AUTHENTICATION, "enc": Policy.ENCRYPTION,
             "auth-enc": Policy.AUTHENTICATED_ENCRYPTION}
_NO_AUTH_KEY = bytes(16)  # encryption only: GCM never uses the authentication key


@dataclass(frozen=True)
class PushSettings:
    endpoints: tuple[PushEndpoint, ...]
    limits: PushLimits
    address: str | None = None  # host:port meters reach us at (the push_setup_point RPC)


@dataclass(frozen=True)
class PushObject:
    """One element of the notification body (an entry of the Push setup's object list)."""

    class_id: int
    obis: Obis
    attribute: int
    data_index: int
    key: str | None
    kind: str  # "timeseries" or "attribute" (the converter's point kind)
    scaler: int
    identity: bool
    timestamp: bool
    report_strategy: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Device:
    """What the converter needs of a device: ``spec.name`` and ``spec.device_type``."""

    name: str
    device_type: str


@dataclass(frozen=True)
class PushMeter:
    name: str
    device_type: str
    objects: tuple[PushObject, ...]
    system_title: bytes | None = None
    address: int | None = None
    identity: str | None = None
    required: Policy | None = None  # None: plain notifications accepted
    keys: SecurityContext | None = field(default=None, repr=False)
    time_zone: _dt.tzinfo | None = None
    report_strategy: dict[str, Any] | None = None
    # Other pushes of the meter: their Push setup's logical name -> their objects
    setups: tuple[tuple[bytes, tuple[PushObject, ...]], ...] = ()
    spec: _Device = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", _Device(self.name, self.device_type))

    def objects_for(self, body: Any) -> tuple[PushObject, ...]:
        """The object list a body is read with: the one of the Push setup whose logical name
        is its first element (the IDIS way of telling pushes apart), else ``objects``."""
        if self.setups and isinstance(body, (list, tuple)) and body:
            first = body[0]
            for name, objects in self.setups:
                if first == name:
                    return objects
        return self.objects

    @property
    def all_objects(self) -> tuple[PushObject, ...]:
        return self.objects + tuple(o for _, objects in self.setups for o in objects)

    @property
    def identity_index(self) -> int | None:
        for i, o in enumerate(self.objects):
            if o.identity:
                return i
        return None


def parse_push_settings(root: Section) -> PushSettings | None:
    s = root.obj("push")
    if s is None:
        return None
    s.warn_unknown(keys(PUSH_FIELDS))
    idle_ms, message_ms, connections, per_address, apdu = (s.read(_TOP[k]) for k in (
        "idleTimeout", "messageTimeout", "maxConnections", "maxConnectionsPerAddress",
        "maxApduSize"))
    endpoints: list[PushEndpoint] = []
    seen: dict[tuple[Any, ...], int] = {}
    listeners = s.items("listeners")
    if not listeners and not s.bad:
        s.error("listeners", "needs at least one listener")
    for i, item in enumerate(listeners):
        item.warn_unknown(keys(PUSH_LISTENER_FIELDS))
        kind, framing, host, baud = (item.read(_LISTENER[k]) for k in (
            "type", "framing", "host", "baudrate"))
        if kind == "serial":
            device = item.string("port", required=True)
            endpoint = PushEndpoint("serial", framing, device=device or "", baudrate=baud)
            where: tuple[Any, ...] = ("serial", device)
        else:
            port = item.integer("port", None, 1, 0xFFFF, required=True)
            endpoint = PushEndpoint("tcp", framing, host, port or 0)
            where = ("tcp", port)
        if where in seen:
            item.error("port", f"{show(where[1])} is already used by listeners[{seen[where]}]")
        seen.setdefault(where, i)
        if not item.bad:
            endpoints.append(endpoint)
    address = _advertised(s, endpoints)
    if s.bad:
        return None
    return PushSettings(tuple(endpoints), PushLimits(
        max_connections=connections, idle_timeout_s=idle_ms / 1000.0,
        message_timeout_s=message_ms / 1000.0, max_apdu=apdu, max_per_address=per_address),
        address)


def _advertised(s: Section, endpoints: list[PushEndpoint]) -> str | None:
    """``address``, or the first TCP listener's when it names one address (not all of them)."""
    text = s.string("address")
    if text is not None:
        try:
            parse_host_port(text, "address")
        except DlmsError as exc:
            s.error("address", str(exc).split(": ", 1)[-1])
            return None
        return text
    for e in endpoints:
        if e.kind == "tcp" and e.host not in ("0.0.0.0", "::", ""):
            return f"[{e.host}]:{e.port}" if ":" in e.host else f"{e.host}:{e.port}"
    return None


def _objects(s: Section) -> list[PushObject]:
    out: list[PushObject] = []
    used: dict[str, int] = {}
    items = s.items("objects")
    if not items and not s.bad:
        s.error("objects", "needs at least one object (the Push setup's object list)")
    for i, o in enumerate(items):
        o.warn_unknown(keys(PUSH_OBJECT_FIELDS))
        obis = read_obis(o)
        class_id, attribute, index, kind, scaler, identity, stamp = (o.read(_OBJECT[k]) for k in (
            "classId", "attribute", "dataIndex", "type", "scaler", "identity", "timestamp"))
        key = o.string("key")
        strategy = o.raw("reportStrategy")
        if strategy is not None and not isinstance(strategy, dict):
            o.error("reportStrategy", "must be an object")
        if key is not None and key in used:
            o.error("key", f"{show(key)} is already used by objects[{used[key]}]")
        if key is not None:
            used.setdefault(key, i)
        if obis is not None and not o.bad:
            out.append(PushObject(class_id, obis, attribute, index, key, kind, scaler, identity,
                                  stamp, strategy if isinstance(strategy, dict) else None))
    marked = [i for i, o in enumerate(out) if o.identity]
    if len(marked) > 1:
        s.error("objects", f"only one object may be the identity; objects {marked} are marked")
    return out


def _secret(s: Section, key: str, environ: Mapping[str, str]) -> str | None:
    if not any(s.has(k) for k in (key, f"{key}Env", f"{key}File")):
        return None  # optional here: whether it is needed is decided by ``security``
    return read_secret(s, key, environ, "push")


def parse_push_meter(m: Section, environ: Mapping[str, str], name: str | None,
                     device_type: str | None, zone: _dt.tzinfo | None,
                     strategy: dict[str, Any] | None) -> PushMeter | None:
    """The meter's ``push`` section, or None when absent or bad (errors in ``m.report``)."""
    s = m.obj("push")
    if s is None:
        return None
    s.warn_unknown(keys(PUSH_METER_FIELDS))
    objects = _objects(s)
    setups = _setups(s)
    title = hex_field(s, "systemTitle", s.string("systemTitle"), 8) or None
    address = s.read(_METER["address"])
    identity = s.string("identity")
    security = s.string("security", choices=_METER["security"].choices, lower=True)
    block = hex_field(s, "blockCipherKey", _secret(s, "blockCipherKey", environ), 16) or None
    auth = hex_field(s, "authenticationKey", _secret(s, "authenticationKey", environ),
                     16) or None
    if security is None:
        security = "auth-enc" if block is not None else "none"
    context = None
    if security != "none" or block is not None:
        if block is None:
            s.error("blockCipherKey", f"security {security!r} needs the meter's block cipher key")
        if auth is None and security != "enc":
            s.error("authenticationKey", f"security {security!r} needs the meter's "
                                         "authentication key (only 'enc' does without)")
        if title is None:
            s.error("systemTitle", "a ciphered notification is recognised by the meter's "
                                   "system title: give it (16 hex digits)")
        if block is not None and (auth is not None or security == "enc"):
            context = SecurityContext(GcmKey(block, auth or _NO_AUTH_KEY))
    marked = any(o.identity for o in objects)
    if identity is not None and not marked and objects:
        s.error("identity", "no object is marked \"identity\": true, so nothing to compare it to")
    if marked and identity is None:
        s.error("identity", "an object is marked as the identity: give the value it holds")
    if block is None and security == "none" and title is not None and address is None \
            and identity is None:
        s.error("systemTitle", "only ciphered notifications carry a system title: a meter "
                               "pushing in plain is recognised by its address or identity")
    if title is None and address is None and identity is None:
        s.bad = True
        s.report.error("push", "give systemTitle, address or identity: how its notifications "
                               "are recognised")
    if s.bad or name is None:
        return None
    return PushMeter(name, device_type or "default", tuple(objects), title, address, identity,
                     _POLICIES.get(security), context, zone, strategy, setups)


def _setups(s: Section) -> tuple[tuple[bytes, tuple[PushObject, ...]], ...]:
    raw = s.get("setups")
    if raw is MISSING:
        return ()
    if not isinstance(raw, dict):
        s.error("setups", "must be an object: Push setup logical name -> its objects")
        return ()
    out = []
    for name, items in raw.items():
        where = s.where(f"setups[{show(name)}]")
        try:
            obis = Obis.parse(name)
        except (DlmsError, ValueError):
            s.report.error(where, "is not an OBIS code (the Push setup's logical name)")
            s.bad = True
            continue
        sub = Section({"objects": items}, s.report, where)
        objects = _objects(sub)
        s.bad = s.bad or sub.bad
        out.append((obis.to_bytes(), tuple(objects)))
    return tuple(out)


_PUSH_ONLY_KEYS = ("deviceName", "deviceType", "template", "enabled", "push", "timeZone",
                   "reportStrategy")


def parse_push_only(m: Section, environ: Mapping[str, str]) -> PushMeter | None:
    """A meter that only pushes (``push``, no ``connection``)."""
    for key in m.data:
        if key not in _PUSH_ONLY_KEYS:
            m.report.warn(str(key), "ignored: the meter has no connection, it only pushes")
    name = m.string("deviceName", required=True)
    device_type = m.string("deviceType", "default")
    zone = parse_time_zone(m)
    strategy = parse_report_strategy(m)
    return parse_push_meter(m, environ, name, device_type, zone, strategy)


def check_push_meters(meters: list[tuple[PushMeter, str]]) -> tuple[list[PushMeter], list[str]]:
    """Refuse meters whose notifications could not be told apart (the same title, the same
    address, the same identity); the first one keeps it. Returns the meters kept and one error
    line per meter refused."""
    titles: dict[bytes, str] = {}
    plain: dict[tuple[Any, ...], str] = {}
    out: list[PushMeter] = []
    errors: list[str] = []
    for meter, label in meters:
        clash = None
        if meter.system_title is not None and meter.system_title in titles:
            clash = (f"push.systemTitle: {meter.system_title.hex().upper()} is already the "
                     f"title of meter {titles[meter.system_title]!r}")
        recognised = (("identity", meter.identity_index, meter.identity)
                      if meter.identity is not None else ("address", meter.address))
        if clash is None and recognised[-1] is not None and recognised in plain:
            clash = (f"push.{recognised[0]}: {show(recognised[-1])} already recognises meter "
                     f"{plain[recognised]!r}")
        if clash is not None:
            errors.append(f"{label}: {clash}")
            continue
        if meter.system_title is not None:
            titles[meter.system_title] = meter.name
        if recognised[-1] is not None:
            plain[recognised] = meter.name
        out.append(meter)
    return out, errors


def push_warnings(settings: PushSettings | None, meters: list[PushMeter],
                  section_given: bool) -> list[str]:
    if meters and settings is None and not section_given:
        return [f"dlms.json: push: {len(meters)} meters push, but there is no top-level push "
                "section with listeners: nothing will receive their notifications"]
    if settings is not None and not meters:
        return ["dlms.json: push: listeners are set, but no meter has a push section: every "
                "notification will come from an unknown sender"]
    return []
