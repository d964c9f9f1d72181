"""Uplink converter: a poll cycle's readings -> ConvertedData with the meter's answer time as ts,
report strategy resolved key > device (meter) > connector, refused points left out."""

from __future__ import annotations

from typing import Any

import pytest
from tb_dlms.connector.model import MeterConfig
from tb_dlms.converters.uplink import DlmsUplinkConverter
from tb_dlms.engine.events import PointReading
from tb_dlms.engine.spec import MeterSpec, ObjectRef, PollPoint, TcpSpec
from tb_dlms.protocol.errors import DataAccessError
from tb_dlms.protocol.obis import Obis
from tb_dlms.session.reading import Reading, Ref
from tb_dlms.session.settings import SessionSettings
from thingsboard_gateway.gateway.constants import ReportStrategy
from thingsboard_gateway.gateway.entities.datapoint_key import DatapointKey
from thingsboard_gateway.gateway.statistics.statistics_service import StatisticsService

T0 = 1_700_000_000_123  # an epoch-ms read time, deliberately not "now"
ON_CHANGE = {"type": "ON_CHANGE"}
PERIOD = {"type": "ON_REPORT_PERIOD", "reportPeriod": 30000}


def point(key: str, obis: str, kind: str = "timeseries", strategy: Any = None,
          class_id: int = 3) -> PollPoint:
    return PollPoint(key, ObjectRef(class_id, Obis.parse(obis), 2), kind, strategy)


def meter(points: tuple[PollPoint, ...], strategy: Any = None,
          name: str = "Microstar-1") -> MeterConfig:
    spec = MeterSpec(name, "DLMS Meter", TcpSpec("127.0.0.1", 3333),
                     SessionSettings(client=1, name=name), points=points)
    return MeterConfig(spec, report_strategy=strategy)


def ok(p: PollPoint, value: Any, read_at: int = T0, unit: str | None = "V") -> PointReading:
    ref = Ref(p.ref.class_id, p.ref.obis, p.ref.attribute)
    return PointReading(p, Reading(ref, value, value, -1 if unit else None, unit, read_at))


VOLTAGE = point("voltage_l1", "1-1:32.7.0")
ENERGY = point("active_energy", "1-1:1.8.0", strategy=PERIOD)
SERIAL = point("serial_number", "0-0:96.1.0.255", kind="attribute", class_id=1)


def strategy_of(cd: Any, key: str) -> Any:
    for entry in cd.telemetry:
        for dk in entry.values:
            if dk.key == key:
                return dk.report_strategy
    for dk in cd.attributes:
        if dk.key == key:
            return dk.report_strategy
    raise KeyError(key)


def test_readings_become_telemetry_at_the_meter_answer_time_and_attributes() -> None:
    m = meter((VOLTAGE, ENERGY, SERIAL))
    cd = DlmsUplinkConverter().convert(m, [
        ok(VOLTAGE, 230.1), ok(ENERGY, 12345.6, unit="Wh"), ok(SERIAL, "MS123456", unit=None)])
    assert cd.to_dict() == {
        "deviceName": "Microstar-1",
        "deviceType": "DLMS Meter",
        "telemetry": [{"ts": T0, "values": {"voltage_l1": 230.1, "active_energy": 12345.6}}],
        "attributes": {"serial_number": "MS123456"},
    }
    assert cd.telemetry_datapoints_count == 2 and cd.attributes_datapoints_count == 1


def test_readings_answered_at_different_times_get_their_own_entries() -> None:
    m = meter((VOLTAGE, ENERGY))
    cd = DlmsUplinkConverter().convert(m, [ok(VOLTAGE, 230.0, T0), ok(ENERGY, 1.0, T0 + 850)])
    assert [(e.ts, e.to_dict()["values"]) for e in cd.telemetry] == [
        (T0, {"voltage_l1": 230.0}), (T0 + 850, {"active_energy": 1.0})]


def test_a_refused_point_is_left_out_and_the_others_are_sent() -> None:
    m = meter((VOLTAGE, ENERGY, SERIAL))
    refused = PointReading(ENERGY, DataAccessError(4, "object-undefined"))
    cd = DlmsUplinkConverter().convert(m, [ok(VOLTAGE, 229.9), refused,
                                           ok(SERIAL, None, unit=None)])
    assert cd.to_dict()["telemetry"] == [{"ts": T0, "values": {"voltage_l1": 229.9}}]
    assert cd.to_dict()["attributes"] == {}  # a null value is not sent either


def test_an_all_refused_cycle_gives_empty_converted_data() -> None:
    m = meter((VOLTAGE,))
    cd = DlmsUplinkConverter().convert(m, [PointReading(VOLTAGE, DataAccessError(3, "denied"))])
    assert not cd.telemetry and not cd.attributes


@pytest.mark.parametrize("key_rs, device_rs, connector_rs, expected", [
    (PERIOD, ON_CHANGE, {"type": "ON_RECEIVED"}, ReportStrategy.ON_REPORT_PERIOD),
    (None, ON_CHANGE, {"type": "ON_REPORT_PERIOD", "reportPeriod": 5000}, ReportStrategy.ON_CHANGE),
    (None, None, ON_CHANGE, ReportStrategy.ON_CHANGE),
    (None, None, None, None),  # the gateway applies its connector/main strategy
], ids=["key-wins", "device-over-connector", "connector", "none"])
def test_report_strategy_precedence_key_device_connector(key_rs: Any, device_rs: Any,
                                                        connector_rs: Any, expected: Any) -> None:
    p = point("voltage_l1", "1-1:32.7.0", strategy=key_rs)
    m = meter((p,), strategy=device_rs)
    conv = DlmsUplinkConverter({"reportStrategy": connector_rs} if connector_rs else None)
    rs = strategy_of(conv.convert(m, [ok(p, 230.0)]), "voltage_l1")
    if expected is None:
        assert rs is None
    else:
        assert rs.report_strategy is expected
    if key_rs == PERIOD:
        assert rs.report_period == 30000


def test_device_strategies_are_per_meter_and_keys_are_built_once() -> None:
    a = meter((VOLTAGE,), strategy=ON_CHANGE, name="A")
    b = meter((VOLTAGE,), strategy=None, name="B")
    conv = DlmsUplinkConverter()
    first = conv.convert(a, [ok(VOLTAGE, 1.0)])
    assert strategy_of(first, "voltage_l1").report_strategy is ReportStrategy.ON_CHANGE
    assert strategy_of(conv.convert(b, [ok(VOLTAGE, 1.0)]), "voltage_l1") is None
    again = conv.convert(a, [ok(VOLTAGE, 2.0)])
    (k1,) = first.telemetry[0].values
    (k2,) = again.telemetry[0].values
    assert k1 is k2  # cached DatapointKey, not rebuilt per reading
    conv.forget("A")
    (k3,) = conv.convert(a, [ok(VOLTAGE, 3.0)]).telemetry[0].values
    assert k3 is not k1 and k3 == k1


def test_status_keys_are_always_on_received() -> None:
    m = meter((VOLTAGE,), strategy=ON_CHANGE)
    conv = DlmsUplinkConverter({"reportStrategy": PERIOD})
    cd = conv.status(m, telemetry={"success_rate": 100.0, "unreachable": False,
                                   "clock_drift_s": None}, ts=T0)
    assert cd.to_dict()["telemetry"] == [{"ts": T0, "values": {"success_rate": 100.0,
                                                               "unreachable": False}}]
    for dk in cd.telemetry[0].values:
        assert dk.report_strategy.report_strategy is ReportStrategy.ON_RECEIVED


def test_static_attributes_use_the_point_keys() -> None:
    m = meter((), strategy=None)
    cd = DlmsUplinkConverter().attributes(m, [(SERIAL, "MS123456"), (SERIAL, None)])
    assert cd.to_dict()["attributes"] == {"serial_number": "MS123456"}
    assert isinstance(next(iter(cd.attributes)), DatapointKey)


def test_converter_statistics_are_counted_for_the_connector(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StatisticsService, "ENABLED", True)
    monkeypatch.setattr(StatisticsService, "CONNECTOR_STATISTICS_STORAGE", {})
    m = meter((VOLTAGE, ENERGY, SERIAL))
    DlmsUplinkConverter({"name": "DLMS Meters"}).convert(
        m, [ok(VOLTAGE, 1.0), ok(ENERGY, 2.0), ok(SERIAL, "x", unit=None)])
    assert StatisticsService.CONNECTOR_STATISTICS_STORAGE["DLMS Meters"] == {
        "convertersMsgProcessed": 1, "convertersTsProduced": 2, "convertersAttrProduced": 1}
