"""One meter of dlms.json -> MeterConfig. Every bad field is one error naming meter and field.

Keys, defaults, ranges and choices come from the table in ``config_fields`` (which also generates
config/README.md's key tables and config/dlms.schema.json); this module adds the rules that
depend on other fields (addresses and the wrapper, passwords, RPC kinds, timer orderings).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

from ..engine.spec import MeterSpec, ObjectRef, PollPoint, RecoverySpec, SerialSpec, TcpSpec
from ..protocol.errors import ConfigError, DlmsError
from ..protocol.obis import Obis
from ..session.settings import SessionSettings
from .config_fields import (
    ATTRIBUTE_UPDATE_FIELDS,
    CONNECT_TIMEOUT,
    METER_FIELDS,
    POINT_FIELDS,
    REPORT_TYPES,
    RPC_FIELDS,
    SCALARS,
    SERIAL_FIELDS,
    STRATEGY_FIELDS,
    TCP_FIELDS,
    by_key,
    keys,
)
from .field_readers import MISSING, Report, Section, num, show
from .model import BUILTIN_RPCS, AttributeUpdate, MeterConfig, RpcMethod
from .profile_config import parse_profiles, parse_time_zone
from .security_entry import parse_password, parse_security
from .values import coerce_value, parse_type_name

__all__ = ["METER_KEYS", "parse_meter", "parse_report_strategy", "shared"]

T = TypeVar("T")
# Meters of a fleet poll the same points: one object for each, not one per meter (10,000 meters
# x 9 points x OBIS, reference and point: ~30 MB). Bounded, so that hot reloads cannot grow it.
_SHARED: dict[Hashable, Any] = {}
_SHARED_MAX = 65_536


def shared(value: T, key: Hashable) -> T:
    """The one equal immutable ``value`` already handed out under ``key``, else ``value``."""
    found = _SHARED.get(key)
    if found is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        found = _SHARED[key] = value
    return found

METER_KEYS = keys(METER_FIELDS)
_METER = by_key(METER_FIELDS)
_TCP, _SERIAL = by_key(TCP_FIELDS), by_key(SERIAL_FIELDS)
_POINT, _UPDATE, _RPC = by_key(POINT_FIELDS), by_key(ATTRIBUTE_UPDATE_FIELDS), by_key(RPC_FIELDS)
_STRATEGY = by_key(STRATEGY_FIELDS)


def parse_report_strategy(
    section: Section, key: str = "reportStrategy"
) -> dict[str, Any] | None:
    """A gateway reportStrategy object, checked the way ReportStrategyConfig would refuse it."""
    s = section.obj(key)
    if s is None:
        return None
    s.warn_unknown(keys(STRATEGY_FIELDS))
    kind = s.string("type", required=True)
    if kind is not None and kind.upper() not in REPORT_TYPES:
        s.error("type", f"{show(kind)} is not one of {', '.join(REPORT_TYPES)}")
        return None
    if kind is None:
        return None
    out: dict[str, Any] = {"type": kind.upper()}
    if out["type"] in ("ON_REPORT_PERIOD", "ON_CHANGE_OR_REPORT_PERIOD"):
        f = _STRATEGY["reportPeriod"]
        period = s.integer(f.key, None, *f.int_range(), required=True)
        if period is not None:
            out["reportPeriod"] = period
    elif s.has("reportPeriod"):
        s.report.warn(s.where("reportPeriod"), f"ignored with type {out['type']}")
    agg = s.read(_STRATEGY["aggregationFunction"])
    if agg is not None:
        out["aggregationFunction"] = agg
    ttl = s.read(_STRATEGY["ttl"])
    if ttl is not None:
        out["ttl"] = ttl
    return out if not s.bad else None


def read_obis(s: Section) -> Obis | None:
    """The ``obis`` field of a point (or push object), or None with its error reported."""
    value = s.get("obis", required=True)
    if value is MISSING:
        return None
    if not isinstance(value, str):
        s.error("obis", f"{show(value)} is not an OBIS code (write it as a string, e.g. '1-0:1.8.0')")
        return None
    try:
        obis = Obis.parse(value)
    except DlmsError:
        s.error("obis", f"{show(value)} is not an OBIS code (e.g. '1-0:1.8.0' or '1.0.1.8.0.255')")
        return None
    return shared(obis, ("obis", obis.to_bytes()))


def _ref(s: Section, explicit: bool) -> ObjectRef | None:
    """obis + classId + attribute; ``explicit``: writes must name class and attribute."""
    table = _UPDATE if explicit else _POINT
    obis = read_obis(s)
    class_id = s.read(table["classId"])
    attribute = s.read(table["attribute"])
    if obis is None or class_id is None or attribute is None:
        return None
    return shared(ObjectRef(class_id, obis, attribute), ("ref", class_id, obis, attribute))


def _points(meter: Section, key: str, kind: str) -> list[PollPoint]:
    out: list[PollPoint] = []
    seen: dict[str, int] = {}
    for i, s in enumerate(meter.items(key)):
        s.warn_unknown(keys(POINT_FIELDS))
        name = s.read(_POINT["key"])
        ref = _ref(s, explicit=False)
        strategy = parse_report_strategy(s)
        if name is not None and name in seen:
            s.error("key", f"{show(name)} is already used by {key}[{seen[name]}]")
            continue
        if name is not None:
            seen[name] = i
        if name is not None and ref is not None and not s.bad:
            same = ("point", name, ref, kind, json.dumps(strategy, sort_keys=True))
            out.append(shared(PollPoint(name, ref, kind, strategy), same))
    return out


def _attribute_updates(meter: Section) -> list[AttributeUpdate]:
    out: list[AttributeUpdate] = []
    seen: set[str] = set()
    for s in meter.items("attributeUpdates"):
        s.warn_unknown(keys(ATTRIBUTE_UPDATE_FIELDS))
        key = s.read(_UPDATE["key"])
        ref = _ref(s, explicit=True)
        data_type = _type(s, "type", required=True)
        if key is not None and key in seen:
            s.error("key", f"{show(key)} is configured twice")
            continue
        if key is not None:
            seen.add(key)
        if key is not None and ref is not None and data_type is not None and not s.bad:
            out.append(AttributeUpdate(key, ref, data_type))
    return out


def _type(s: Section, key: str, required: bool) -> Any:
    if required and not s.has(key):
        s.error(key, "is required (the A-XDR type, e.g. 'long-unsigned')")
        return None
    name = s.get(key, required)
    if name is MISSING:
        return None
    try:
        return parse_type_name(name)
    except ConfigError as exc:
        s.error(key, str(exc))
        return None


def _rpcs(meter: Section) -> list[RpcMethod]:
    out: list[RpcMethod] = []
    seen: set[str] = set()
    for s in meter.items("rpc"):
        s.warn_unknown(keys(RPC_FIELDS))
        method = s.read(_RPC["method"])
        kind = s.read(_RPC["type"])
        obis = read_obis(s)
        class_id = s.read(_RPC["classId"])
        index = None
        if kind is not None:  # the index is required, and named, by the kind
            f = _RPC["methodIndex" if kind == "action" else "attribute"]
            index = s.integer(f.key, None, *f.int_range(), required=True)
        value_type = _type(s, "valueType", required=kind == "set")
        if method is not None and method in BUILTIN_RPCS:
            s.error("method", f"{show(method)} is a built-in RPC: choose another name")
        elif method is not None and method in seen:
            s.error("method", f"{show(method)} is configured twice")
        if method is not None:
            seen.add(method)
        has_value = s.has("value")
        if has_value and value_type is None and kind != "get":
            s.error("valueType", "is required with a fixed value")
        elif has_value and value_type is not None:
            try:  # a fixed value that cannot be sent is a config error now, not an RPC failure later
                coerce_value(s.raw("value"), value_type)
            except ConfigError as exc:
                s.error("value", str(exc))
        if s.bad or None in (method, kind, obis, class_id, index):
            continue
        out.append(RpcMethod(method, kind, class_id, obis, index, value_type,  # type: ignore[arg-type]
                             s.raw("value"), has_value))
    return out


def _connection(meter: Section) -> tuple[Any, dict[str, Any]]:
    """(TcpSpec | SerialSpec | None, session keyword arguments taken from the connection)."""
    c = meter.obj("connection", required=True)
    if c is None:
        return None, {}
    kind = c.string("type", required=True, choices=("tcp", "serial"), lower=True)
    connect_ms = c.read(CONNECT_TIMEOUT)
    if kind == "tcp":
        c.warn_unknown(keys(TCP_FIELDS))
        host, port, wrapper = (c.read(_TCP[k]) for k in ("host", "port", "wrapper"))
        if host is None or port is None:
            return None, {}
        return TcpSpec(host, port, connect_ms / 1000.0), {"wrapper": wrapper,
                                                           "connect_timeout": connect_ms / 1000.0}
    if kind == "serial":
        c.warn_unknown(keys(SERIAL_FIELDS))
        port_name, baud, bytesize, parity, stopbits, mode_e = (
            c.read(_SERIAL[k])
            for k in ("port", "baudrate", "bytesize", "parity", "stopbits", "modeE"))
        if port_name is None or c.bad:
            return None, {}
        spec = SerialSpec(port_name, baud, bytesize, parity, stopbits, mode_e)
        return spec, {"wrapper": False, "connect_timeout": connect_ms / 1000.0}
    return None, {}


def _addresses(m: Section, wrapper: bool, v: dict[str, Any]) -> dict[str, Any]:
    client, logical = v["clientAddress"], v["serverLogicalAddress"]
    physical, size = v["serverPhysicalAddress"], v["serverAddressSize"]
    if wrapper:
        for key in ("serverPhysicalAddress", "serverAddressSize"):
            if m.has(key):
                m.error(key, "HDLC addressing does not apply with connection.wrapper = true")
        return {"client": client, "server_logical": logical}
    if m.has("serverAddressSize") and size is None:
        pass  # a bad size is already reported: no limits to check against
    elif size == 1 and physical is not None:
        m.error("serverPhysicalAddress", "a 1-byte server address has no physical part")
    elif size in (2, 4) and physical is None:
        m.error("serverPhysicalAddress", f"is required with serverAddressSize {size}")
    else:
        # Without serverAddressSize the shortest form is used: 1 byte, else 2, else 4.
        used = size or (1 if physical is None else 4)
        limit = {1: 0x7F, 2: 0x7F, 4: 0x3FFF}[used]
        for key, value in (("serverLogicalAddress", logical), ("serverPhysicalAddress", physical)):
            if value is not None and value > limit:
                m.error(key, f"{value} does not fit a {used}-byte server address "
                             f"(0..{limit})")
    return {"client": client, "server_logical": logical, "server_physical": physical,
            "address_size": size}

# The ...Env / ...File keys of the secrets: the scan RPC's block names them (never the values).
_SECRET_SOURCES = tuple(f"{key}{suffix}" for key in ("password", "blockCipherKey",
                        "authenticationKey") for suffix in ("Env", "File"))


def parse_meter(m: Section, environ: Mapping[str, str]) -> MeterConfig | None:
    """The meter, or None when any field is bad (the errors are in ``m.report``)."""
    report: Report = m.report
    m.warn_unknown(METER_KEYS)
    transport, link = _connection(m)
    wrapper = bool(link.get("wrapper"))
    # HDLC addresses are narrower than the wrapper's 16-bit wPorts
    narrow = {} if wrapper else {"clientAddress": 0x7F, "serverLogicalAddress": 0x3FFF,
                                 "publicClientAddress": 0x7F}
    v = {f.key: m.read(f, hi=narrow.get(f.key))  # every plain field, in the table's order
         for f in METER_FIELDS if f.kind in SCALARS and not f.manual}
    name, device_type, auth = v["deviceName"], v["deviceType"], v["authentication"]
    password = parse_password(m, auth, environ)
    security = parse_security(m, auth, v, environ)
    addresses = _addresses(m, wrapper, v)
    poll_ms, timeout_ms, retries = v["pollPeriod"], v["timeout"], v["retries"]
    operation_ms = v["operationTimeout"]
    spacing_ms, backoff_ms = v["connectAttemptSpacingMs"], v["backoffInitialMs"]
    backoff_max_ms = v["backoffMaxMs"]
    if backoff_max_ms < backoff_ms:
        m.error("backoffMaxMs",
                f"{num(backoff_max_ms)} is below backoffInitialMs {num(backoff_ms)}")
    breaker, breaker_ms = v["circuitBreakerFailures"], v["circuitBreakerOpenMs"]
    watchdog_ms = v["watchdogMs"]
    if watchdog_ms and watchdog_ms <= poll_ms:
        m.error("watchdogMs", f"{num(watchdog_ms)} must be longer than pollPeriod {num(poll_ms)} "
                              "(or 0: three poll periods, at least 30 s)")
    health_ms, clock_ms = v["healthPeriod"], v["clockCheckPeriod"]
    drift_s, inactivity_ms = v["clockDriftThresholdS"], v["inactivityTimeout"]
    info, window, pdu = v["maxInfoLength"], v["windowSize"], v["maxPduSize"]
    list_items, sign = v["maxListItems"], v["deviationSign"]
    strategy = parse_report_strategy(m)
    points = _points(m, "timeseries", "timeseries") + _points(m, "attributes", "attribute")
    static = _points(m, "staticAttributes", "attribute")
    updates = _attribute_updates(m)
    rpcs = _rpcs(m)
    profiles = parse_profiles(m)
    zone = parse_time_zone(m)
    if not points and not static and not profiles:
        report.warn("", "no timeseries, attributes or staticAttributes: only health is published")
    if report.errors or name is None or transport is None:
        return None
    inactivity_s = inactivity_ms / 1000.0
    try:
        session = SessionSettings(
            **addresses, authentication=auth, password=password,
            response_timeout=timeout_ms / 1000.0, retries=retries,
            operation_timeout=operation_ms / 1000.0,
            max_info_tx=info, max_info_rx=info, window_tx=window, window_rx=window,
            max_pdu_size=pdu, max_list_items=list_items, inactivity_timeout=inactivity_s,
            keepalive_margin=min(30.0, inactivity_s / 3.0), deviation_sign=sign, name=name,
            **link, **security,
        )
    except ConfigError as exc:  # the checks above should have caught it: say it anyway
        report.error("", str(exc))
        return None
    spec = MeterSpec(
        name=name, device_type=device_type or "default", transport=transport, session=session,
        poll_period_s=poll_ms / 1000.0, points=tuple(points),
        recovery=RecoverySpec(
            min_connect_spacing_s=spacing_ms / 1000.0, backoff_initial_s=backoff_ms / 1000.0,
            backoff_max_s=backoff_max_ms / 1000.0, breaker_threshold=breaker or 5,
            breaker_open_s=breaker_ms / 1000.0, watchdog_s=watchdog_ms / 1000.0),
        health_period_s=health_ms / 1000.0,
    )
    return MeterConfig(
        spec=spec, report_strategy=strategy, static_attributes=tuple(static),
        attribute_updates=tuple(updates), rpc=tuple(rpcs),
        clock_check_period_s=clock_ms / 1000.0, clock_drift_threshold_s=drift_s,
        profiles=tuple(profiles), time_zone=zone,
        secret_sources=tuple((k, m.data[k]) for k in _SECRET_SOURCES
                             if isinstance(m.data.get(k), str)),
    )
