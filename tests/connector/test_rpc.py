"""RPC handler logic against a fake engine and session: which DLMS service each RPC becomes,
what the reply says, and that every failure becomes a reply (never an exception)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from typing import Any, Callable

import pytest
from tb_dlms.connector.config import load_config
from tb_dlms.connector.rpc import CLOCK_OBIS, DISCONNECT_OBIS, RpcDispatcher, connector_rpc
from tb_dlms.connector.values import coerce_value, parse_type_name
from tb_dlms.protocol.apdu import ActionResult, DataAccessResult
from tb_dlms.protocol.axdr import BitString, DataType, Typed
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.protocol.errors import ConfigError, DataAccessError, LocalProtocolError, NoAnswer
from tb_dlms.protocol.obis import Obis
from tb_dlms.session.reading import Reading, Ref

T0 = 1_714_557_600_000
UTC = dt.timezone.utc
NOW = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


class FakeSession:
    """Answers like BlockingSession: get/read -> Reading | DataAccessError, set -> result, action."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.values: dict[Ref, Any] = {}
        self.set_result = DataAccessResult.SUCCESS
        self.action_result: tuple[Any, Any] = (ActionResult.SUCCESS, None)

    def _one(self, ref: Ref) -> Any:
        value = self.values.get(ref)
        if isinstance(value, DataAccessError) or value is None:
            return value or DataAccessError(4, "object-undefined")
        if isinstance(value, Reading):
            return value
        return Reading(ref, value, value, None, None, T0)

    def get(self, ref: Ref) -> Any:
        self.calls.append(("get", ref))
        return self._one(ref)

    def read(self, refs: list[Ref]) -> list[Any]:
        self.calls.append(("read", tuple(refs)))
        return [self._one(r) for r in refs]

    def set(self, ref: Ref, value: Any) -> Any:
        self.calls.append(("set", ref, value))
        if ref.class_id == 8 and self.set_result == DataAccessResult.SUCCESS:
            self.values[ref] = value.value  # the clock now holds what was set
        return self.set_result

    def action(self, class_id: int, obis: Any, method: int, parameters: Any = None) -> Any:
        self.calls.append(("action", class_id, obis, method, parameters))
        return self.action_result


class FakeEngine:
    """Runs each job at once on the fake session (the real engine runs it on the worker)."""

    def __init__(self) -> None:
        self.session = FakeSession()
        self.reconnects: list[str] = []
        self.fail_with: BaseException | None = None
        self.refuse_submit: BaseException | None = None
        self.timeouts: list[float] = []

    def submit(self, name: str, fn: Callable[[Any], Any], timeout_s: float = 30.0) -> Future[Any]:
        if self.refuse_submit is not None:
            raise self.refuse_submit
        self.timeouts.append(timeout_s)
        f: Future[Any] = Future()
        if self.fail_with is not None:
            f.set_exception(self.fail_with)
            return f
        try:
            f.set_result(fn(self.session))
        except BaseException as exc:  # noqa: BLE001 - like a worker: the future carries it
            f.set_exception(exc)
        return f

    def reconnect(self, name: str) -> None:
        self.reconnects.append(name)

    def health(self) -> dict[str, dict[str, Any]]:
        return {"Microstar-1": {"total_reads": 10, "successful_reads": 9, "failed_reads": 1,
                                "registers_read": 81, "reconnects": 2, "total_cycles": 8,
                                "cycles_on_time": 6, "cycles_missed": 1}}

    def states(self) -> dict[str, dict[str, Any]]:
        return {"Microstar-1": {"state": "associated", "connected": True, "channel": "tcp://h:1"}}


METER = {
    "deviceName": "Microstar-1", "connection": {"type": "tcp", "host": "h", "port": 1},
    "clockDriftThresholdS": 2,
    "timeseries": [{"key": "voltage_l1", "obis": "1-1:32.7.0"}],
    "rpc": [
        {"method": "get_serial", "type": "get", "obis": "0-0:96.1.0.255", "classId": 1,
         "attribute": 2},
        {"method": "set_demand_period", "type": "set", "obis": "1-0:0.8.0.255", "classId": 1,
         "attribute": 2, "valueType": "double-long-unsigned"},
        {"method": "reset_max_demand", "type": "action", "obis": "1-0:1.6.0.255", "classId": 4,
         "methodIndex": 1, "valueType": "integer", "value": 0},
    ],
}


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def clocks() -> list[tuple[str, float]]:
    return []


@pytest.fixture
def rpc(engine: FakeEngine, clocks: list[tuple[str, float]]) -> RpcDispatcher:
    cfg = load_config({"meters": [METER]})
    assert cfg.errors == ()
    return RpcDispatcher(engine, cfg.by_name, now=lambda: NOW,
                         on_clock=lambda name, drift: clocks.append((name, drift)),
                         status=lambda name: {"unreachable": False})


def call(rpc: RpcDispatcher, method: str, params: Any = None, device: str = "Microstar-1") -> Any:
    future = rpc.device_rpc(device, method, params)
    assert future.done()
    return future.result()


# ---- read / set / action ----------------------------------------------------------------------
def test_read_gets_one_attribute_with_register_defaults(rpc: RpcDispatcher,
                                                        engine: FakeEngine) -> None:
    ref = Ref(3, Obis.parse("1-1:32.7.0"), 2)
    engine.session.values[ref] = Reading(ref, 230.1, 2301, -1, "V", T0)
    reply = call(rpc, "read", {"obis": "1-1:32.7.0"})
    assert engine.session.calls == [("get", ref)]
    assert reply == {"success": True, "obis": "1-1:32.7.0.255", "classId": 3, "attribute": 2,
                     "value": 230.1, "unit": "V", "scaler": -1, "raw": 2301, "ts": T0}


def test_read_refused_and_bad_params_are_error_replies(rpc: RpcDispatcher,
                                                       engine: FakeEngine) -> None:
    reply = call(rpc, "read", {"obis": "0-0:96.1.0.255", "classId": 1})
    assert reply == {"success": False,
                     "error": "the meter refused 0-0:96.1.0.255/1/2: object-undefined"}
    assert call(rpc, "read", {"obis": "1-1:99"}) == {
        "success": False, "error": "params.obis: '1-1:99' is not an OBIS code"}
    assert call(rpc, "read", {"obis": "1-1:32.7.0", "attribute": 0})["error"] == (
        "params.attribute must be an integer in 1..127, got 0")
    assert call(rpc, "read", "1-1:32.7.0")["success"] is False
    assert len(engine.session.calls) == 1  # bad params never reach the meter


def test_set_sends_the_declared_type(rpc: RpcDispatcher, engine: FakeEngine) -> None:
    params = {"obis": "1-0:0.8.0.255", "classId": 1, "attribute": 2, "value": 900,
              "type": "double-long-unsigned"}
    assert call(rpc, "set", params)["success"] is True
    ((_, ref, value),) = engine.session.calls
    assert ref == Ref(1, Obis.parse("1-0:0.8.0.255"), 2)
    assert value == Typed(DataType.DOUBLE_LONG_UNSIGNED, 900)
    engine.session.set_result = DataAccessResult.READ_WRITE_DENIED
    assert call(rpc, "set", params) == {
        "success": False, "error": "the meter refused SET 1-0:0.8.0.255/1/2: read-write-denied"}
    bad = dict(params, value=-1)
    assert "out of range 0..4294967295" in call(rpc, "set", bad)["error"]
    assert "params.type is required" in call(rpc, "set", {k: v for k, v in params.items()
                                                         if k != "type"})["error"]
    assert len(engine.session.calls) == 2


def test_action_without_value_sends_null_data(rpc: RpcDispatcher, engine: FakeEngine) -> None:
    engine.session.action_result = (ActionResult.SUCCESS, 7)
    reply = call(rpc, "action", {"obis": "0-0:10.0.0.255", "classId": 9, "method": 1})
    assert reply == {"success": True, "data": 7}
    assert engine.session.calls == [
        ("action", 9, Obis.parse("0-0:10.0.0.255"), 1, Typed(DataType.NULL_DATA, None))]


# ---- clock --------------------------------------------------------------------------------------
def clock_bytes(moment: dt.datetime) -> bytes:
    return CosemDateTime.from_datetime(moment).to_bytes()


def test_clock_read_reports_drift_and_publishes_it(rpc: RpcDispatcher, engine: FakeEngine,
                                                   clocks: list[tuple[str, float]]) -> None:
    ahead = NOW.astimezone(dt.timezone(dt.timedelta(hours=2))) + dt.timedelta(seconds=5)
    engine.session.values[Ref(8, CLOCK_OBIS, 2)] = clock_bytes(ahead)  # octet-string(12)
    reply = call(rpc, "clock_read")
    assert reply == {"success": True, "meter_time": "2024-05-01T12:00:05+02:00",
                     "gateway_time": "2024-05-01T10:00:00+00:00", "drift_s": 5.0,
                     "threshold_s": 2.0, "alarm": True}
    assert clocks == [("Microstar-1", 5.0)]


def test_clock_without_deviation_is_taken_as_gateway_local_time(rpc: RpcDispatcher,
                                                                engine: FakeEngine) -> None:
    local = NOW.astimezone()  # this machine's zone
    naive = local.replace(tzinfo=None) - dt.timedelta(seconds=3)
    engine.session.values[Ref(8, CLOCK_OBIS, 2)] = CosemDateTime.from_datetime(naive).to_bytes()
    assert call(rpc, "clock_read")["drift_s"] == -3.0


def test_clock_sync_sets_the_clock_to_now_and_reads_it_back(rpc: RpcDispatcher,
                                                            engine: FakeEngine) -> None:
    reply = call(rpc, "clock_sync")
    kind, ref, value = engine.session.calls[0]
    assert (kind, ref) == ("set", Ref(8, CLOCK_OBIS, 2))
    assert value.type is DataType.OCTET_STRING and len(value.value) == 12
    assert CosemDateTime.from_bytes(value.value).to_datetime() == NOW
    assert CosemDateTime.from_bytes(value.value).deviation == 0  # UTC; Blue Book sign
    assert engine.session.calls[1] == ("get", Ref(8, CLOCK_OBIS, 2))
    assert reply == {"success": True, "set_to": "2024-05-01T10:00:00+00:00",
                     "meter_time": "2024-05-01T10:00:00+00:00", "drift_s": 0.0}


# ---- disconnect control -------------------------------------------------------------------------
@pytest.mark.parametrize("method, index", [("disconnect", 1), ("reconnect", 2)])
def test_relay_actions_use_class_70_methods(rpc: RpcDispatcher, engine: FakeEngine, method: str,
                                            index: int) -> None:
    assert call(rpc, method) == {"success": True}
    assert engine.session.calls == [
        ("action", 70, DISCONNECT_OBIS, index, Typed(DataType.INTEGER, 0))]
    engine.session.action_result = (ActionResult.READ_WRITE_DENIED, None)
    assert "read-write-denied" in call(rpc, method)["error"]


def test_relay_state_reads_output_control_state_and_mode(rpc: RpcDispatcher,
                                                        engine: FakeEngine) -> None:
    for attribute, value in ((2, True), (3, 1), (4, 4)):
        engine.session.values[Ref(70, DISCONNECT_OBIS, attribute)] = value
    assert call(rpc, "relay_state") == {"success": True, "output_state": True,
                                        "control_state": 1, "control_state_name": "connected",
                                        "control_mode": 4}
    engine.session.values.clear()
    assert call(rpc, "relay_state")["success"] is False


# ---- session and health -------------------------------------------------------------------------
def test_reconnect_session_and_health_do_not_touch_the_meter(rpc: RpcDispatcher,
                                                             engine: FakeEngine) -> None:
    assert call(rpc, "reconnect_session")["success"] is True
    assert engine.reconnects == ["Microstar-1"]
    health = call(rpc, "health")
    assert health["success"] is True and health["total_reads"] == 10
    assert health["unreachable"] is False
    assert engine.session.calls == []


# ---- configured rpc ---------------------------------------------------------------------------
def test_configured_get_set_and_action(rpc: RpcDispatcher, engine: FakeEngine) -> None:
    serial = Ref(1, Obis.parse("0-0:96.1.0.255"), 2)
    engine.session.values[serial] = "MS123456"
    assert call(rpc, "get_serial")["value"] == "MS123456"
    assert call(rpc, "set_demand_period", 900)["success"] is True  # a scalar params
    assert call(rpc, "set_demand_period", '{"value": 60}')["success"] is True  # JSON text
    assert call(rpc, "reset_max_demand")["success"] is True
    assert engine.session.calls[1:] == [
        ("set", Ref(1, Obis.parse("1-0:0.8.0.255"), 2), Typed(DataType.DOUBLE_LONG_UNSIGNED, 900)),
        ("set", Ref(1, Obis.parse("1-0:0.8.0.255"), 2), Typed(DataType.DOUBLE_LONG_UNSIGNED, 60)),
        ("action", 4, Obis.parse("1-0:1.6.0.255"), 1, Typed(DataType.INTEGER, 0)),
    ]
    assert "params.value is required" in call(rpc, "set_demand_period", {})["error"]


def test_unknown_methods_and_devices_are_error_replies(rpc: RpcDispatcher) -> None:
    assert call(rpc, "dance") == {"success": False,
                                  "error": "unknown method 'dance' for Microstar-1"}
    assert call(rpc, "read", {}, device="Nope") == {"success": False,
                                                    "error": "unknown device 'Nope'"}


def test_engine_failures_become_error_replies(rpc: RpcDispatcher, engine: FakeEngine) -> None:
    engine.fail_with = NoAnswer("Microstar-1: request not started within 30 s")
    assert call(rpc, "clock_read") == {
        "success": False, "error": "Microstar-1: request not started within 30 s"}
    engine.fail_with = RuntimeError("bug")
    assert call(rpc, "clock_read") == {"success": False, "error": "RuntimeError: bug"}
    engine.fail_with = None
    engine.refuse_submit = LocalProtocolError("the polling engine is not running")
    assert call(rpc, "clock_read")["error"] == "the polling engine is not running"


def test_params_timeout_in_ms_bounds_the_wait(rpc: RpcDispatcher, engine: FakeEngine) -> None:
    call(rpc, "relay_state", {"timeout": 5000})
    call(rpc, "relay_state")
    assert engine.timeouts == [5.0, 30.0]


# ---- connector rpc ------------------------------------------------------------------------------
def test_connector_rpcs_statistics_and_meters(rpc: RpcDispatcher, engine: FakeEngine) -> None:
    stats = connector_rpc("dlms_statistics", None, engine=engine, meters=rpc.meters,
                          statistics={"MessagesReceived": 3, "MessagesSent": 4})
    assert stats == {"success": True, "MessagesReceived": 3, "MessagesSent": 4, "meters": 1,
                     "total_reads": 10, "successful_reads": 9, "failed_reads": 1,
                     "registers_read": 81, "reconnects": 2, "total_cycles": 8,
                     "cycles_on_time": 6, "cycles_missed": 1, "on_time_rate": 75.0}
    meters = connector_rpc("dlms_meters", {}, engine=engine, meters=rpc.meters, statistics={},
                           status=lambda n: {"unreachable": False, "connection_detail": "x"})
    assert meters == {"success": True, "meters": [{
        "deviceName": "Microstar-1", "deviceType": "default", "state": "associated",
        "connected": True, "channel": "tcp://h:1", "unreachable": False}]}
    assert connector_rpc("custom_meters", {}, engine=engine, meters=rpc.meters,
                         statistics={})["success"] is True  # type "custom" in the UI
    assert connector_rpc("dlms_nope", {}, engine=engine, meters=rpc.meters,
                         statistics={})["success"] is False


# ---- value coercion (shared by set, configured rpc and attribute updates) ------------------------
@pytest.mark.parametrize("type_name, value, expected", [
    ("long-unsigned", 5, 5), ("long-unsigned", 5.0, 5), ("long-unsigned", "5", 5),
    ("integer", -128, -128), ("enum", 2, 2), ("long64-unsigned", 2**64 - 1, 2**64 - 1),
    ("boolean", "true", True), ("boolean", 0, False),
    ("float32", "1.5", 1.5), ("octet-string", "MS123", b"MS123"),
    ("octet-string", "0x01 02:ff", b"\x01\x02\xff"), ("octet-string", [1, 2], b"\x01\x02"),
    ("visible-string", "abc", "abc"), ("bit-string", "0101", BitString("0101")),
    ("null-data", "anything", None),
])
def test_coerce_value_accepts(type_name: str, value: Any, expected: Any) -> None:
    assert coerce_value(value, parse_type_name(type_name)) == Typed(
        parse_type_name(type_name), expected)


@pytest.mark.parametrize("type_name, value", [
    ("long-unsigned", 65536), ("long-unsigned", -1), ("long-unsigned", 1.5),
    ("long-unsigned", True), ("long-unsigned", "five"), ("integer", 128), ("boolean", 2),
    ("float64", "nan"), ("octet-string", "0xzz"), ("octet-string", [256]),
    ("visible-string", 5), ("bit-string", "012"), ("date-time", "yesterday"),
])
def test_coerce_value_refuses_without_clamping(type_name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match="cannot send"):
        coerce_value(value, parse_type_name(type_name))


def test_coerce_date_time_keeps_the_offset_as_deviation() -> None:
    typed = coerce_value("2024-05-01T12:00:00+02:00", DataType.DATE_TIME)
    assert typed.value.deviation == -120  # Blue Book: minutes to add to local time to get UTC
    assert coerce_value("2024-05-01T12:00:00", DataType.DATE_TIME).value.deviation is None
    assert coerce_value(T0, DataType.DATE_TIME).value.to_datetime() == NOW
    assert coerce_value("2024-05-01", DataType.DATE).value.day == 1
    assert coerce_value("12:30:00", DataType.TIME).value.minute == 30
    with pytest.raises(ConfigError, match="is not an A-XDR type"):
        parse_type_name("array")
