"""dlms.json -> ConnectorConfig: validated meters (MeterSpec + extras), errors, warnings.

Rules (the Modbus connector clamps silently and crashes late; we do neither):
- every bad field is one error naming the meter and the field:
  ``meter 'Meter-2': timeseries[3].obis: '1-1:99' is not an OBIS code (...)``;
- a meter with any error is skipped as a whole (one ``skipped`` line lists its errors); the
  other meters run;
- unknown keys are warnings (with a "did you mean" hint), never silently used or dropped;
- secrets come from the file or from an environment variable (``passwordEnv``) and are never put
  in a message.

Importable without the gateway: the connector and the CLI (``tb-dlms check``) both use it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from ..engine.spec import SerialSpec
from ..protocol.errors import ConfigError
from .config_fields import LOG_LEVELS, TOP_FIELDS, by_key, keys, secret_keys
from .field_readers import MAX_DEPTH, Report, Section, depth_over, num, show
from .meter_entry import METER_KEYS, parse_meter, parse_report_strategy
from .model import ConnectorConfig, MeterConfig
from .push_config import (
    PushMeter,
    check_push_meters,
    parse_push_meter,
    parse_push_only,
    parse_push_settings,
    push_warnings,
)
from .shards import parse_shard, shard_keys
from .templates import Templates, parse_templates, unused_warnings

__all__ = ["LOG_LEVELS", "MASK", "METER_KEYS", "TOP_KEYS", "is_secret_key", "load_config",
           "load_config_file", "masked"]

# "name", "id" and "configVersion" are written into the file by the gateway itself.
TOP_KEYS = keys(TOP_FIELDS)
_TOP = by_key(TOP_FIELDS)

MASK = "********"
# Secret-like keys: password, and the ciphering keys to come (blockCipherKey, authenticationKey,
# masterKey...). "key" alone is a ThingsBoard key name and "passwordEnv" names a variable: neither
# is a secret.
_SECRET = re.compile(r"(?:password|secret|.*(?:Password|Secret|[a-z0-9]Key))")
_SECRET_KEYS = secret_keys()  # the table's secrets; the pattern catches the keys still to come


def is_secret_key(name: str) -> bool:
    return name in _SECRET_KEYS or bool(_SECRET.fullmatch(name))


def masked(data: Any) -> Any:
    """A copy of a connector config with every secret-like value replaced by MASK.

    Walked without recursion (the gateway hands over whatever the file holds); the input is not
    touched, so the connector keeps using the real values.
    """
    def copy_of(node: Any) -> Any:
        return {} if isinstance(node, dict) else [] if isinstance(node, list) else node

    root = copy_of(data)
    stack = [(data, root)]
    while stack:
        src, dst = stack.pop()
        pairs = src.items() if isinstance(src, dict) else enumerate(src)
        for k, v in pairs:
            if isinstance(k, str) and is_secret_key(k) and v is not None:
                v_out: Any = MASK
            else:
                v_out = copy_of(v)
                if isinstance(v, (dict, list)):
                    stack.append((v, v_out))
            if isinstance(dst, dict):
                dst[k] = v_out
            else:
                dst.append(v_out)
    return root


def _label(item: Any, index: int) -> str:
    name = item.get("deviceName") if isinstance(item, dict) else None
    if isinstance(name, str) and name.strip():
        return f"meter {show(name.strip())}"
    return f"meters[{index}]"


def _name(item: Any) -> str | None:
    """The name the engine will use (stripped): ' M1' and 'M1' are one device."""
    name = item.get("deviceName") if isinstance(item, dict) else None
    return name.strip() if isinstance(name, str) else None


def _word(value: Any) -> str:
    """A value as dlms.json spells it: true, 5000, 'E'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return num(value) if isinstance(value, (int, float)) else show(value)


# What meters sharing one channel must agree on: (object, attribute, dlms.json field).
_SERIAL_LINE = (("t", "baudrate", "baudrate"), ("t", "bytesize", "bytesize"),
                ("t", "parity", "parity"), ("t", "stopbits", "stopbits"), ("t", "mode_e", "modeE"))
_TCP_LINE = (("t", "connect_timeout_s", "connectTimeout"), ("s", "wrapper", "wrapper"))


def _line_conflict(meter: MeterConfig, lines: dict[str, tuple[str, Any]]) -> str | None:
    """Meters sharing one serial port or one TCP host:port share one connection, so they must
    agree on its settings (the engine refuses to start otherwise, for every meter)."""
    t = meter.spec.transport
    first = lines.setdefault(t.channel_key, (meter.name, meter.spec))
    if first[0] == meter.name:
        return None
    other = first[1]
    rules = _SERIAL_LINE if isinstance(t, SerialSpec) else _TCP_LINE
    where = t.port if isinstance(t, SerialSpec) else f"{t.host}:{t.port}"
    for obj, attr, field in rules:
        mine, theirs = ((t, other.transport) if obj == "t" else (meter.spec.session, other.session))
        a, b = getattr(mine, attr), getattr(theirs, attr)
        if attr == "connect_timeout_s":
            a, b = a * 1000, b * 1000  # say it in the file's unit
        if a != b:
            return (f"connection.{field}: {_word(a)} differs from {_word(b)} of meter "
                    f"{show(first[0])} "
                    f"on the same {'port' if isinstance(t, SerialSpec) else 'host:port'} "
                    f"{where}")
    return None


def _address_clash(meter: MeterConfig, seen: dict[tuple[Any, ...], str]) -> str | None:
    s = meter.spec.session
    ident = (meter.spec.transport.channel_key, s.client, s.server_logical, s.server_physical)
    other = seen.setdefault(ident, meter.name)
    if other == meter.name:
        return None
    return (f"serverLogicalAddress: meter {other!r} already uses client {s.client}, server "
            f"{s.server_logical}/{s.server_physical} on {meter.spec.transport.channel_key}")


def _resolve(raw: Any, index: int, templates: Templates) -> tuple[Any, Report]:
    """(the meter entry merged over its template, its report labelled with both names)."""
    tpl = raw.get("template") if isinstance(raw, dict) else None
    label = _label(raw, index)
    if isinstance(raw, dict) and "template" in raw and isinstance(tpl, str):
        label += f" (template {show(tpl)})"
    report = Report(label)
    if not isinstance(raw, dict):
        report.error("", f"meters[{index}] must be an object")
        return raw, report
    if "template" not in raw:
        return raw, report
    if isinstance(tpl, str) and tpl in templates.valid:
        return templates.merged(tpl, raw), report
    if isinstance(tpl, str):
        templates.used.add(tpl)  # its own errors are reported; "unused" would only confuse
    if raw.get("enabled", True) is not False:
        report.error("template", templates.unknown(tpl))
    return raw, report


def _own_warnings(report: Report, raw: Any, templates: Templates) -> list[str]:
    """The meter's warnings; those about fields its template gave are said once for the
    template ("template 'x': timeseries[0].bogus: unknown key ignored"), not for each meter."""
    tpl = raw.get("template") if isinstance(raw, dict) else None
    if not isinstance(tpl, str) or tpl not in templates.valid:
        return report.warnings
    out = []
    for line, path in zip(report.warnings, report.warning_paths):
        if not templates.owns(path, raw):
            out.append(line)
            continue
        once = f"dlms.json: template {show(tpl)}: {line[len(report.label) + 2:]}"
        if once not in templates.warned:
            templates.warned.add(once)
            out.append(once)
    return out


def load_config(data: Any, environ: Mapping[str, str] | None = None) -> ConnectorConfig:
    """Validate a parsed dlms.json. Never raises for bad meters: see ``errors``/``skipped``.

    ``environ`` (default ``os.environ``) resolves ``passwordEnv`` and the other ``...Env`` keys.
    """
    env = os.environ if environ is None else environ
    top = Report("dlms.json")
    if not isinstance(data, dict):
        top.error("", f"must be a JSON object, got {type(data).__name__}")
        return ConnectorConfig(errors=tuple(top.errors))
    root = Section(data, top)
    root.warn_unknown(TOP_KEYS)
    level = root.read(_TOP["logLevel"])
    remote = root.read(_TOP["enableRemoteLogging"])
    strategy = parse_report_strategy(root)
    gc_freeze_ms = root.read(_TOP["gcFreezeAfterMs"])
    converter = root.read(_TOP["converter"])
    state_folder = root.read(_TOP["stateFolder"])
    rows_per_s, reads_in_flight, startup_rate = (root.read(_TOP[k]) for k in (
        "profileRowsPerSecond", "profileReadsInFlight", "startupRate"))
    templates = parse_templates(root, METER_KEYS)
    push = parse_push_settings(root)
    shard, shard_errors = parse_shard(data, env)
    errors, warnings = [*top.errors, *shard_errors], list(top.warnings)
    skipped: list[str] = []
    disabled: list[str] = []
    raw_meters = data.get("meters")
    if not isinstance(raw_meters, list):
        what = "is required" if raw_meters is None else "must be a list of meters"
        errors.append(f"dlms.json: meters: {what}")
        raw_meters = []
    elif not raw_meters:
        warnings.append("dlms.json: meters: the list is empty, nothing to poll")
    meters: list[MeterConfig] = []
    push_meters: list[tuple[PushMeter, str]] = []
    names: dict[str, int] = {}
    lines: dict[str, tuple[str, Any]] = {}
    addresses: dict[tuple[Any, ...], str] = {}
    enabled: list[tuple[str, Any]] = []  # (name, merged entry): the shard keys
    for i, raw in enumerate(raw_meters):
        item, report = _resolve(raw, i, templates)
        if isinstance(item, dict) and item.get("enabled", True) is False:
            disabled.append(_name(item) or f"meters[{i}]")
            continue
        if isinstance(item, dict) and depth_over(item):  # checked before anything walks it
            report.error("", f"nested more than {MAX_DEPTH} levels deep: not a meter entry")
        meter, pushed = _parse_entry(item, report, env)
        name = _name(item)
        if isinstance(name, str):
            enabled.append((name, item))
        if (meter is not None or pushed is not None) and name in names:
            report.error("deviceName", f"{show(name)} is already used by meters[{names[name]}]")
            meter = pushed = None
        if meter is not None:
            for clash in (_line_conflict(meter, lines), _address_clash(meter, addresses)):
                if clash:
                    report.error("", clash)
                    meter = None
                    break
        if isinstance(name, str) and name not in names:
            names[name] = i
        errors.extend(report.errors)
        warnings.extend(_own_warnings(report, raw, templates))
        if meter is None and pushed is not None and not report.errors:
            push_meters.append((pushed, report.label))  # only pushes: not polled
            continue
        if pushed is not None and meter is not None:
            push_meters.append((pushed, report.label))
        if meter is None:
            count = len(report.errors)
            skipped.append(f"{report.label} skipped ({count} error{'s' * (count != 1)}): "
                           + "; ".join(e[len(report.label) + 2:] for e in report.errors))
            continue
        meters.append(meter)
    unused = Report("dlms.json")
    unused_warnings(templates, unused)
    warnings.extend(unused.warnings)
    pushing, push_errors = check_push_meters(push_meters)
    errors.extend(push_errors)
    skipped.extend(f"{line}: its notifications are refused" for line in push_errors)
    warnings.extend(push_warnings(push, pushing, root.has("push")))
    return ConnectorConfig(
        meters=tuple(meters), errors=tuple(errors), warnings=tuple(warnings),
        skipped=tuple(skipped), disabled=tuple(disabled), log_level=level,
        enable_remote_logging=remote, report_strategy=strategy,
        gc_freeze_after_s=gc_freeze_ms / 1000.0, converter=converter,
        state_folder=state_folder or "", profile_rows_per_second=rows_per_s,
        profile_reads_in_flight=reads_in_flight, startup_rate=startup_rate, shard=shard,
        shard_error="; ".join(shard_errors), shard_keys=shard_keys(enabled),
        push=push, push_meters=tuple(pushing),
    )


def _parse_entry(item: Any, report: Report, env: Mapping[str, str]
                 ) -> tuple[MeterConfig | None, PushMeter | None]:
    """(the polled meter, its push section): a meter with ``push`` and no ``connection`` only
    pushes."""
    if report.errors:
        return None, None
    m = Section(item, report)
    if "push" in item and "connection" not in item:
        return None, parse_push_only(m, env)
    meter = parse_meter(m, env)
    if meter is None or "push" not in item:
        return meter, None
    pushed = parse_push_meter(m, env, meter.name, meter.spec.device_type, meter.time_zone,
                              meter.report_strategy)
    return (meter, pushed) if not report.errors else (None, None)


def load_config_file(path: str | os.PathLike[str],
                     environ: Mapping[str, str] | None = None) -> ConnectorConfig:
    """Read and validate a dlms.json file; ConfigError if it is not JSON at all."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{os.fspath(path)}: cannot read the configuration: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{os.fspath(path)}: cannot read the configuration: JSON nested too "
                          "deeply") from None
    return load_config(data, environ)
