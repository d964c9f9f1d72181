"""DLMS uplink converter: one poll cycle's readings -> the gateway's ``ConvertedData``.

It knows nothing of bytes: the session already scaled register values and rendered the rest as
JSON-ready values. Its jobs are the ThingsBoard side of a reading:

- the timestamp is the time the meter answered (``Reading.read_at``, epoch ms), not the time
  the gateway got round to publishing it; readings of one GET-with-list share one entry;
- timeseries points become telemetry, attribute points client attributes;
- every key carries its report strategy, first found of: the key's ``reportStrategy``, the
  meter's, the connector's top-level one (``None`` lets the gateway apply its own default);
- a point the meter refused (``DataAccessError``) is left out of that cycle, not sent as null.

It imports nothing of ``tb_dlms``: the connector finds it by class name (``"converter"`` in
dlms.json, ``connector/converter_loading.py``), the way the gateway finds every converter, and a
custom converter can subclass it.

``DatapointKey`` objects are built once per meter and point, not per reading: the converter runs
for every register of every meter on every cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from thingsboard_gateway.connectors.converter import Converter
from thingsboard_gateway.gateway.entities.converted_data import ConvertedData
from thingsboard_gateway.gateway.entities.datapoint_key import DatapointKey
from thingsboard_gateway.gateway.entities.report_strategy_config import ReportStrategyConfig
from thingsboard_gateway.gateway.entities.telemetry_entry import TelemetryEntry
from thingsboard_gateway.gateway.statistics.statistics_service import StatisticsService
from thingsboard_gateway.tb_utility.tb_utility import TBUtility

__all__ = ["ON_RECEIVED", "DlmsUplinkConverter"]

# Health and alarm keys are always sent as received: a dashboard needs every sample, and an
# ON_CHANGE strategy of the user's would hide that a meter is still being watched.
ON_RECEIVED = {"type": "ON_RECEIVED"}

_log = logging.getLogger("tb_dlms.converter")


def _strategy(config: Mapping[str, Any] | None) -> ReportStrategyConfig | None:
    if not config:
        return None
    try:
        return ReportStrategyConfig(dict(config))
    except ValueError:  # the loader already refused bad ones: this is a programming error
        _log.warning("ignoring invalid reportStrategy %r", config)
        return None


class DlmsUplinkConverter(Converter):  # type: ignore[misc] # the gateway has no types
    """``convert(meter, readings)`` with ``meter`` a ``MeterConfig`` (or any object with ``spec``
    and ``report_strategy``) and ``readings`` the engine's ``PointReading`` sequence.

    ``config`` may hold the connector's top-level ``reportStrategy`` and ``name`` (for the
    gateway's converter statistics).
    """

    def __init__(self, config: Mapping[str, Any] | None = None,
                 logger: logging.Logger | None = None) -> None:
        config = config or {}
        self._log = logger or _log
        self._stats_name = str(config.get("name") or getattr(self._log, "name", "dlms"))
        self._connector_strategy = _strategy(config.get("reportStrategy"))
        self._received = _strategy(ON_RECEIVED)
        # meter name -> (point key, kind) -> DatapointKey
        self._keys: dict[str, dict[tuple[str, str], DatapointKey]] = {}
        self._plain: dict[str, DatapointKey] = {}

    # -- keys -----------------------------------------------------------------------------------
    def _device_strategy(self, meter: Any) -> ReportStrategyConfig | None:
        return _strategy(getattr(meter, "report_strategy", None)) or self._connector_strategy

    def datapoint_key(self, meter: Any, point: Any) -> DatapointKey:
        """The key of a poll point with its resolved report strategy (cached per meter)."""
        table = self._keys.get(meter.spec.name)
        if table is None:
            table = self._keys[meter.spec.name] = {}
        ident = (point.key, point.kind)
        key = table.get(ident)
        if key is None:
            key_config = {"reportStrategy": point.report_strategy} if point.report_strategy else {}
            trace_log = self._log if hasattr(self._log, "trace") else None
            key = TBUtility.convert_key_to_datapoint_key(
                point.key, self._device_strategy(meter), key_config, trace_log)
            table[ident] = key
        return key

    def forget(self, meter_name: str | None = None) -> None:
        """Drop cached keys (after a configuration reload)."""
        if meter_name is None:
            self._keys.clear()
        else:
            self._keys.pop(meter_name, None)

    def _status_key(self, key: str) -> DatapointKey:
        dk = self._plain.get(key)
        if dk is None:
            dk = self._plain[key] = DatapointKey(key, self._received)
        return dk

    # -- conversions ------------------------------------------------------------------------------
    def convert(self, config: Any, data: Sequence[Any]) -> ConvertedData:
        """One cycle of ``meter`` (``config``): telemetry grouped by read time, attributes."""
        spec = config.spec
        out = ConvertedData(spec.name, spec.device_type)
        by_ts: dict[int, dict[DatapointKey, Any]] = {}
        attributes = 0
        for reading in data:
            result = reading.result
            if isinstance(result, Exception):  # the meter refused it (DataAccessError)
                continue
            value = result.value
            if value is None:
                continue
            point = reading.point
            key = self.datapoint_key(config, point)
            if point.kind == "attribute":
                out.add_to_attributes(key, value)
                attributes += 1
            else:
                values = by_ts.get(result.read_at)
                if values is None:
                    values = by_ts[result.read_at] = {}
                values[key] = value
        telemetry = 0
        for ts, values in by_ts.items():
            out.add_to_telemetry(TelemetryEntry(values, ts=ts))
            telemetry += len(values)
        StatisticsService.count_connector_message(self._stats_name, "convertersMsgProcessed")
        if telemetry:
            StatisticsService.count_connector_message(self._stats_name, "convertersTsProduced",
                                                      count=telemetry)
        if attributes:
            StatisticsService.count_connector_message(self._stats_name, "convertersAttrProduced",
                                                      count=attributes)
        return out

    def attributes(self, meter: Any, values: Iterable[tuple[Any, Any]]) -> ConvertedData:
        """Static attributes: (PollPoint, value) pairs read once per association."""
        spec = meter.spec
        out = ConvertedData(spec.name, spec.device_type)
        for point, value in values:
            if value is not None:
                out.add_to_attributes(self.datapoint_key(meter, point), value)
        return out

    def rows(self, meter: Any, rows: Iterable[tuple[int, Mapping[str, Any]]]) -> ConvertedData:
        """Profile rows: (epoch ms of the capture, values), one telemetry entry each, always
        ON_RECEIVED (a report strategy must not drop a billing interval)."""
        spec = meter.spec
        out = ConvertedData(spec.name, spec.device_type)
        count = 0
        for ts, values in rows:
            entry = {self._status_key(k): v for k, v in values.items() if v is not None}
            if entry:
                out.add_to_telemetry(TelemetryEntry(entry, ts=ts))
                count += len(entry)
        if count:
            StatisticsService.count_connector_message(self._stats_name, "convertersTsProduced",
                                                      count=count)
        return out

    def pushed(self, meter: Any, ts: int, values: Iterable[tuple[Any, Any]],
               status: Mapping[str, Any] | None = None) -> ConvertedData:
        """A pushed notification: (PushObject, value) pairs at the notification's time ``ts``,
        each key with its report strategy; ``status`` (alarm flags, event names) ON_RECEIVED
        with them."""
        spec = meter.spec
        out = ConvertedData(spec.name, spec.device_type)
        entry: dict[DatapointKey, Any] = {}
        attributes = 0
        for point, value in values:
            if value is None:
                continue
            key = self.datapoint_key(meter, point)
            if point.kind == "attribute":
                out.add_to_attributes(key, value)
                attributes += 1
            else:
                entry[key] = value
        for k, v in (status or {}).items():
            entry[self._status_key(k)] = v
        if entry:
            out.add_to_telemetry(TelemetryEntry(entry, ts=ts))
            StatisticsService.count_connector_message(self._stats_name, "convertersTsProduced",
                                                      count=len(entry))
        if attributes:
            StatisticsService.count_connector_message(self._stats_name, "convertersAttrProduced",
                                                      count=attributes)
        StatisticsService.count_connector_message(self._stats_name, "convertersMsgProcessed")
        return out

    def status(self, meter: Any, telemetry: Mapping[str, Any] | None = None,
               attributes: Mapping[str, Any] | None = None,
               ts: int | None = None) -> ConvertedData:
        """Health telemetry and alarm attributes, always ON_RECEIVED (see ON_RECEIVED)."""
        spec = meter.spec
        out = ConvertedData(spec.name, spec.device_type)
        if telemetry:
            out.add_to_telemetry(TelemetryEntry(
                {self._status_key(k): v for k, v in telemetry.items() if v is not None}, ts=ts))
        if attributes:
            for k, v in attributes.items():
                if v is not None:
                    out.add_to_attributes(self._status_key(k), v)
        return out
