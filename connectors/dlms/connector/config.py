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
from collections.abc import Mapping
from typing import Any

from ..engine.spec import SerialSpec
from ..protocol.errors import ConfigError
from ._fields import Report, Section
from ._meter import METER_KEYS, parse_meter, parse_report_strategy
from .model import ConnectorConfig, MeterConfig

__all__ = ["LOG_LEVELS", "METER_KEYS", "TOP_KEYS", "load_config", "load_config_file"]

# "name", "id" and "configVersion" are written into the file by the gateway itself.
TOP_KEYS = ("name", "id", "configVersion", "logLevel", "enableRemoteLogging", "reportStrategy",
            "gcFreezeAfterMs", "meters")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NONE")


def _label(item: Any, index: int) -> str:
    name = item.get("deviceName") if isinstance(item, dict) else None
    if isinstance(name, str) and name.strip():
        return f"meter {name.strip()!r}"
    return f"meters[{index}]"


def _line_conflict(meter: MeterConfig, lines: dict[str, tuple[str, Any]]) -> str | None:
    """Meters sharing one serial port must agree on its settings (one line, one worker)."""
    t = meter.spec.transport
    key = t.channel_key
    if not isinstance(t, SerialSpec):
        return None
    first = lines.setdefault(key, (meter.name, t))
    if first[0] == meter.name:
        return None
    other: SerialSpec = first[1]
    for attr, field in (("baudrate", "baudrate"), ("bytesize", "bytesize"), ("parity", "parity"),
                        ("stopbits", "stopbits"), ("mode_e", "modeE")):
        if getattr(t, attr) != getattr(other, attr):
            return (f"connection.{field}: {getattr(t, attr)!r} differs from "
                    f"{getattr(other, attr)!r} of meter {first[0]!r} on the same port {t.port}")
    return None


def _address_clash(meter: MeterConfig, seen: dict[tuple[Any, ...], str]) -> str | None:
    s = meter.spec.session
    ident = (meter.spec.transport.channel_key, s.client, s.server_logical, s.server_physical)
    other = seen.setdefault(ident, meter.name)
    if other == meter.name:
        return None
    return (f"serverLogicalAddress: meter {other!r} already uses client {s.client}, server "
            f"{s.server_logical}/{s.server_physical} on {meter.spec.transport.channel_key}")


def load_config(data: Any, environ: Mapping[str, str] | None = None) -> ConnectorConfig:
    """Validate a parsed dlms.json. Never raises for bad meters: see ``errors``/``skipped``.

    ``environ`` (default ``os.environ``) resolves ``passwordEnv``.
    """
    env = os.environ if environ is None else environ
    top = Report("dlms.json")
    if not isinstance(data, dict):
        top.error("", f"must be a JSON object, got {type(data).__name__}")
        return ConnectorConfig(errors=tuple(top.errors))
    root = Section(data, top)
    root.warn_unknown(TOP_KEYS)
    level = root.string("logLevel", "INFO", choices=LOG_LEVELS, lower=False) or "INFO"
    remote = root.boolean("enableRemoteLogging", False)
    strategy = parse_report_strategy(root)
    gc_freeze_ms = root.number("gcFreezeAfterMs", 60_000, 1_000, 86_400_000, allow_zero=True)
    errors, warnings, skipped, disabled = list(top.errors), list(top.warnings), [], []
    raw_meters = data.get("meters")
    if not isinstance(raw_meters, list):
        what = "is required" if raw_meters is None else "must be a list of meters"
        errors.append(f"dlms.json: meters: {what}")
        raw_meters = []
    elif not raw_meters:
        warnings.append("dlms.json: meters: the list is empty, nothing to poll")
    meters: list[MeterConfig] = []
    names: dict[str, int] = {}
    lines: dict[str, tuple[str, Any]] = {}
    addresses: dict[tuple[Any, ...], str] = {}
    for i, item in enumerate(raw_meters):
        report = Report(_label(item, i))
        if not isinstance(item, dict):
            report.error("", f"meters[{i}] must be an object")
        elif item.get("enabled", True) is False:
            disabled.append(str(item.get("deviceName", f"meters[{i}]")))
            continue
        meter = parse_meter(Section(item, report), env) if not report.errors else None
        name = item.get("deviceName") if isinstance(item, dict) else None
        if meter is not None and name in names:
            report.error("deviceName", f"{name!r} is already used by meters[{names[name]}]")
            meter = None
        if meter is not None:
            for clash in (_line_conflict(meter, lines), _address_clash(meter, addresses)):
                if clash:
                    report.error("", clash)
                    meter = None
                    break
        if isinstance(name, str) and name not in names:
            names[name] = i
        errors.extend(report.errors)
        warnings.extend(report.warnings)
        if meter is None:
            count = len(report.errors)
            skipped.append(f"{report.label} skipped ({count} error{'s' * (count != 1)}): "
                           + "; ".join(e[len(report.label) + 2:] for e in report.errors))
            continue
        meters.append(meter)
    return ConnectorConfig(
        meters=tuple(meters), errors=tuple(errors), warnings=tuple(warnings),
        skipped=tuple(skipped), disabled=tuple(disabled), log_level=level,
        enable_remote_logging=remote, report_strategy=strategy,
        gc_freeze_after_s=gc_freeze_ms / 1000.0,
    )


def load_config_file(path: str | os.PathLike[str],
                     environ: Mapping[str, str] | None = None) -> ConnectorConfig:
    """Read and validate a dlms.json file; ConfigError if it is not JSON at all."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{os.fspath(path)}: cannot read the configuration: {exc}") from None
    return load_config(data, environ)
