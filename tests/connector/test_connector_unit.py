"""DlmsConnector against a fake gateway and a fake engine: the Connector contract, data out through
send_to_storage, alarm keys on state changes, attribute updates -> SET, RPC -> reply, and no
exception ever escaping into the gateway."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import pytest
from tb_dlms.connector.dlms_connector import DlmsConnector
from tb_dlms.connector.rpc import CLOCK_OBIS
from tb_dlms.engine.events import PointReading
from tb_dlms.engine.health import MeterState
from tb_dlms.protocol.apdu import DataAccessResult
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.protocol.errors import DataAccessError
from tb_dlms.protocol.obis import Obis
from tb_dlms.session.reading import Reading, Ref
from thingsboard_gateway.gateway.statistics.statistics_service import StatisticsService

ROOT = Path(__file__).resolve().parents[2]
ENV = {"DLMS_MICROSTAR_PASSWORD": "22222222"}
T0 = 1_714_557_600_000


class FakeGateway:
    def __init__(self) -> None:
        self.stored: list[tuple[str, Any, Any]] = []
        self.devices: list[tuple[str, str]] = []
        self.replies: list[dict[str, Any]] = []
        self.connected = True

    def send_to_storage(self, connector_name: str, connector_id: Any, data: Any) -> None:
        self.stored.append((connector_name, connector_id, data))

    def add_device(self, name: str, content: dict[str, Any], device_type: str = "default") -> bool:
        if not self.connected:
            return False
        assert content["connector"].get_name() == "DLMS Meters"
        self.devices.append((name, device_type))
        return True

    def send_rpc_reply(self, device: Any = None, req_id: Any = None, content: Any = None,
                       **kw: Any) -> None:
        self.replies.append({"device": device, "req_id": req_id, "content": content})

    # helpers for the assertions
    def telemetry_of(self, device: str) -> list[dict[str, Any]]:
        return [e for _n, _i, cd in self.stored if cd.device_name == device
                for e in cd.to_dict()["telemetry"]]

    def attributes_of(self, device: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _n, _i, cd in self.stored:
            if cd.device_name == device:
                out.update(cd.to_dict()["attributes"])
        return out


class FakeSession:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.values: dict[Ref, Any] = {}

    def _one(self, ref: Ref) -> Any:
        if ref not in self.values:
            return DataAccessError(4, "object-undefined")
        return Reading(ref, self.values[ref], self.values[ref], None, None, T0)

    def get(self, ref: Ref) -> Any:
        self.calls.append(("get", ref))
        return self._one(ref)

    def read(self, refs: list[Ref]) -> list[Any]:
        self.calls.append(("read", tuple(refs)))
        return [self._one(r) for r in refs]

    def set(self, ref: Ref, value: Any) -> Any:
        self.calls.append(("set", ref, value))
        return DataAccessResult.SUCCESS


class FlushingSink:
    """The connector's sink only queues for its publisher thread: wait for it after each event,
    so a test reads what the gateway got right after the engine spoke."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._sink, name)

        def call(*args: Any) -> None:
            method(*args)
            assert self._sink._c._publisher.flush(5.0), "publisher did not drain"

        return call


class FakeEngine:
    def __init__(self, specs: list[Any], sink: Any) -> None:
        self.specs = specs
        self.sink = FlushingSink(sink)
        self.session = FakeSession()
        self.started = self.stopped = False
        self.hold = False
        self.released: list[str] = []

    def start(self, hold: bool = False) -> None:
        self.started, self.hold = True, hold

    def release(self, name: str) -> bool:
        self.released.append(name)
        return True

    def stop(self, timeout_s: float = 5.0) -> bool:
        self.stopped = True
        return True

    def submit(self, name: str, fn: Callable[[Any], Any], timeout_s: float = 30.0) -> Future[Any]:
        f: Future[Any] = Future()
        try:
            f.set_result(fn(self.session))
        except Exception as exc:  # noqa: BLE001
            f.set_exception(exc)
        return f

    def reconnect(self, name: str) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {s.name: {"total_reads": 0} for s in self.specs}

    def states(self) -> dict[str, Any]:
        return {s.name: {"state": "associated"} for s in self.specs}

    def spec(self, name: str) -> Any:
        return next(s for s in self.specs if s.name == name)


def config() -> dict[str, Any]:
    data = json.loads((ROOT / "config" / "dlms.json").read_text(encoding="utf-8"))
    data.update(name="DLMS Meters", id="c0ffee")
    return data


def wait_for(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def make(gateway: FakeGateway):
    made: list[DlmsConnector] = []
    engines: list[FakeEngine] = []

    def build(cfg: dict[str, Any] | None = None) -> tuple[DlmsConnector, FakeEngine | None]:
        def factory(specs: list[Any], sink: Any) -> FakeEngine:
            engines.append(FakeEngine(specs, sink))
            return engines[-1]

        c = DlmsConnector(gateway, cfg or config(), "dlms", engine_factory=factory, environ=ENV,
                          logger=logging.getLogger("test.dlms"),
                          converter_logger=logging.getLogger("test.dlms.converter"))
        c.open()
        made.append(c)
        return c, engines[-1] if engines else None

    yield build
    for c in made:
        c.close()


def test_open_registers_meters_starts_the_engine_and_close_stops_it(make, gateway) -> None:
    c, engine = make()
    assert engine.started and [s.name for s in engine.specs] == ["Microstar-1", "Meter-0012345"]
    assert c.is_connected() and not c.is_stopped()
    assert (c.get_name(), c.get_type(), c.get_id()) == ("DLMS Meters", "dlms", "c0ffee")
    assert c.get_config()["meters"][0]["deviceName"] == "Microstar-1"
    wait_for(lambda: len(gateway.devices) == 2)
    assert sorted(gateway.devices) == [
        ("Meter-0012345", "DLMS Meter"), ("Microstar-1", "DLMS Meter")]
    # Every meter shows its alarm keys from the start, all clear.
    first = wait_for(lambda: gateway.telemetry_of("Microstar-1"))[0]["values"]
    assert first["connection_state"] == "disconnected"
    assert first["unreachable"] is False and first["auth_failed"] is False
    c.close()
    c.close()  # the gateway calls close() until is_stopped(): it must be idempotent
    assert engine.stopped and c.is_stopped() and not c.is_connected()


def test_registration_is_retried_while_thingsboard_is_away(make, gateway, monkeypatch) -> None:
    monkeypatch.setattr("tb_dlms.connector.dlms_connector._REGISTER_RETRY_S", 0.05)
    monkeypatch.setattr("tb_dlms.connector.dlms_connector._CONNECT_GRACE_S", 0.0)
    gateway.connected = False
    _, engine = make()
    time.sleep(0.1)
    assert gateway.devices == []
    wait_for(lambda: sorted(engine.released) == sorted(s.name for s in engine.specs))
    assert gateway.devices == []  # polled anyway: the gateway keeps the readings
    gateway.connected = True
    wait_for(lambda: len(gateway.devices) == 2)


def test_each_meter_is_polled_once_its_device_is_registered_in_config_order(make, gateway,
                                                                         monkeypatch):
    # 10,000 new devices: the gateway takes them one by one (slowly); a meter polled before
    # its device is known would make the gateway register it on its data path instead. (With
    # one registration worker the order is exact; several overlap, see test_registration.)
    monkeypatch.setattr("tb_dlms.connector.dlms_connector._REGISTER_WORKERS", 1)
    _, engine = make()
    wait_for(lambda: len(engine.released) == 2)
    assert engine.hold
    names = [s.name for s in engine.specs]
    assert engine.released == names == [d[0] for d in gateway.devices]


def test_readings_go_to_storage_with_the_read_time(make, gateway, monkeypatch) -> None:
    monkeypatch.setattr(StatisticsService, "ENABLED", True)
    monkeypatch.setattr(StatisticsService, "CONNECTOR_STATISTICS_STORAGE", {})
    c, engine = make()
    spec = engine.spec("Microstar-1")
    p = spec.points[0]
    ref = Ref(p.ref.class_id, p.ref.obis, p.ref.attribute)
    before = dict(c.statistics)
    engine.sink.on_readings(spec, [PointReading(p, Reading(ref, 230.1, 2301, -1, "V", T0))], T0)
    name, cid, cd = gateway.stored[-1]
    assert (name, cid) == ("DLMS Meters", "c0ffee")
    assert cd.to_dict()["telemetry"] == [{"ts": T0, "values": {"voltage_l1": 230.1}}]
    assert c.statistics["MessagesReceived"] == before["MessagesReceived"] + 1
    assert c.statistics["MessagesSent"] >= before["MessagesSent"] + 1
    stats = StatisticsService.CONNECTOR_STATISTICS_STORAGE["DLMS Meters"]
    assert stats["connectorMsgsReceived"] == 1  # one cycle from a meter
    assert "storageMsgPushed" not in stats  # the gateway counts that one itself


def test_state_changes_publish_alarm_keys_and_association_reads_static_attributes(make,
                                                                                 gateway) -> None:
    _c, engine = make()
    spec = engine.spec("Microstar-1")
    engine.session.values[Ref(1, Obis.parse("0-0:96.1.0.255"), 2)] = "MS123456"
    gateway.stored.clear()
    engine.sink.on_state(spec, MeterState.AUTH_FAILED, "association refused: authentication")
    values = gateway.telemetry_of("Microstar-1")[-1]["values"]
    assert values == {"connection_state": "auth-failed", "auth_failed": True,
                      "connection_detail": "association refused: authentication"}
    engine.sink.on_state(spec, MeterState.ASSOCIATED, "associated over tcp")
    values = gateway.telemetry_of("Microstar-1")[-1]["values"]
    assert values["connection_state"] == "associated" and values["auth_failed"] is False
    assert gateway.attributes_of("Microstar-1") == {"serial_number": "MS123456"}


def test_health_publishes_the_snapshot_with_the_alarm_keys(make, gateway) -> None:
    _c, engine = make()
    spec = engine.spec("Meter-0012345")
    engine.sink.on_health(spec, {"total_reads": 12, "success_rate": 91.67,
                                 "connection_state": "associated"})
    values = gateway.telemetry_of("Meter-0012345")[-1]["values"]
    assert values["total_reads"] == 12 and values["success_rate"] == 91.67
    assert {"unreachable", "watchdog_expired", "circuit_open", "auth_failed",
            "clock_drift_alarm"} <= set(values)


def test_clock_check_runs_once_associated_and_publishes_the_drift(make, gateway) -> None:
    _c, engine = make()
    spec = engine.spec("Microstar-1")
    meter_now = dt.datetime.now().astimezone() + dt.timedelta(seconds=30)
    engine.session.values[Ref(8, CLOCK_OBIS, 2)] = CosemDateTime.from_datetime(meter_now).to_bytes()
    engine.sink.on_state(spec, MeterState.ASSOCIATED, "associated")

    def drift() -> Any:
        for entry in gateway.telemetry_of("Microstar-1"):
            if "clock_drift_s" in entry["values"]:
                return entry["values"]
        return None

    values = wait_for(drift)
    assert 28 < values["clock_drift_s"] < 32 and values["clock_drift_alarm"] is True


def test_attribute_update_becomes_a_set_with_the_declared_type(make, gateway, caplog) -> None:
    c, engine = make()
    assert c.get_device_shared_attributes_keys("Microstar-1") == ["relay_control_mode"]
    assert c.get_device_shared_attributes_keys("Unknown") == []
    c.on_attributes_update({"device": "Microstar-1", "data": {"relay_control_mode": 1,
                                                              "not_configured": 5}})
    assert engine.session.calls == [
        ("set", Ref(70, Obis.parse("0-0:96.3.10.255"), 4), Typed(DataType.ENUM, 1))]
    with caplog.at_level(logging.ERROR, logger="test.dlms"):
        c.on_attributes_update({"device": "Microstar-1", "data": {"relay_control_mode": 300}})
        c.on_attributes_update({"device": "Nope", "data": {"x": 1}})
        c.on_attributes_update({"garbage": True})
    assert len(engine.session.calls) == 1  # the bad value was never sent
    assert "Microstar-1: attribute 'relay_control_mode': cannot send 300 as enum" in caplog.text


def test_device_rpc_is_answered_with_send_rpc_reply(make, gateway) -> None:
    c, engine = make()
    ref = Ref(3, Obis.parse("1-1:32.7.0"), 2)
    engine.session.values[ref] = 230.1
    result = c.server_side_rpc_handler({"device": "Microstar-1", "id": 7, "data": {
        "id": 7, "method": "read", "params": {"obis": "1-1:32.7.0"}}})
    assert result is None
    (reply,) = gateway.replies
    assert reply["device"] == "Microstar-1" and reply["req_id"] == 7
    assert reply["content"]["success"] is True and reply["content"]["value"] == 230.1
    c.server_side_rpc_handler({"device": "Microstar-1", "data": {"id": 8, "method": "nope"}})
    assert gateway.replies[-1]["content"] == {
        "success": False, "error": "unknown method 'nope' for Microstar-1"}


def test_echoed_replies_without_method_are_ignored(make, gateway) -> None:
    c, _ = make()
    assert c.server_side_rpc_handler({"device": "Microstar-1", "data": {"id": 7,
                                                                        "success": True}}) is None
    assert c.server_side_rpc_handler({"id": "100", "success": True}) is None
    assert gateway.replies == []


def test_connector_rpcs_return_the_reply(make, gateway) -> None:
    c, _ = make()
    meters = c.server_side_rpc_handler({"method": "dlms_meters", "params": {}, "id": "100"})
    assert [m["deviceName"] for m in meters["meters"]] == ["Microstar-1", "Meter-0012345"]
    stats = c.server_side_rpc_handler({"method": "dlms_statistics", "params": "{}", "id": "101"})
    assert stats["success"] is True and stats["meters"] == 2
    assert stats["MessagesReceived"] >= 1
    assert gateway.replies == []  # the gateway sends the returned value itself


def test_a_bad_meter_is_skipped_with_one_error_and_the_others_run(make, caplog) -> None:
    cfg = config()
    cfg["meters"][1]["timeseries"][0]["obis"] = "1-1:99"
    with caplog.at_level(logging.WARNING, logger="test.dlms"):
        _c, engine = make(cfg)
    assert [s.name for s in engine.specs] == ["Microstar-1"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [("meter 'Meter-0012345' skipped (1 error): timeseries[0].obis: '1-1:99' is "
                      "not an OBIS code (e.g. '1-0:1.8.0' or '1.0.1.8.0.255')")]
    assert "22222222" not in caplog.text


def test_a_broken_configuration_never_raises_into_the_gateway(gateway, caplog) -> None:
    c = DlmsConnector(gateway, {"name": "DLMS Meters", "meters": "all of them"}, "dlms",
                      logger=logging.getLogger("test.dlms"),
                      converter_logger=logging.getLogger("test.dlms.converter"))
    with caplog.at_level(logging.ERROR, logger="test.dlms"):
        c.open()
    assert "dlms.json: meters: must be a list of meters" in caplog.text
    reply = c.server_side_rpc_handler(
        {"device": "Microstar-1", "data": {"id": 1, "method": "read"}})
    assert reply is None and gateway.replies[-1]["content"]["success"] is False
    c.close()
    assert c.is_stopped()


def test_a_failing_engine_start_is_logged_not_raised(gateway, caplog) -> None:
    def factory(specs: Any, sink: Any) -> Any:
        raise RuntimeError("no threads left")

    c = DlmsConnector(gateway, copy.deepcopy(config()), "dlms", engine_factory=factory,
                      environ=ENV, logger=logging.getLogger("test.dlms"),
                      converter_logger=logging.getLogger("test.dlms.converter"))
    with caplog.at_level(logging.ERROR, logger="test.dlms"):
        c.open()
    assert "cannot start" in caplog.text and not c.is_connected()
    c.close()


def test_a_gateway_that_hangs_in_registration_does_not_hold_the_polling(make, gateway,
                                                                        monkeypatch) -> None:
    monkeypatch.setattr("tb_dlms.connector.dlms_connector._REGISTER_STALL_S", 0.3)
    hung = threading.Event()
    monkeypatch.setattr(gateway, "add_device", lambda *a, **k: hung.wait(10.0))
    try:
        _, engine = make()
        time.sleep(0.1)
        assert engine.released == []  # held while registration may still come
        wait_for(lambda: sorted(engine.released) == sorted(s.name for s in engine.specs),
                 timeout=5.0)
    finally:
        hung.set()
