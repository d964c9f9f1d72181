"""The push setup RPCs through the dispatcher, on test_rpc's fake engine and a fake session
that keeps what is SET (through A-XDR, as a meter would): which services each RPC becomes, the
reply shapes, params refused before the meter is asked anything, refusals named."""

from __future__ import annotations

from typing import Any

import pytest
from tb_dlms.connector.config import load_config
from tb_dlms.connector.push_setup_rpc import PushSetupRpcs
from tb_dlms.connector.rpc import RpcDispatcher
from tb_dlms.protocol.apdu import ActionResult, DataAccessResult
from tb_dlms.protocol.axdr import DataType, Typed, decode_data, encode_data
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.protocol.errors import ConfigError, DataAccessError
from tb_dlms.protocol.obis import Obis
from tb_dlms.session.reading import Ref
from test_rpc import METER, FakeEngine, FakeSession, call

PUSH = Obis(0, 0, 25, 9, 0, 255)
ENERGY = {"classId": 3, "obis": "1-0:1.8.0.255", "attribute": 2, "dataIndex": 0}
CLOCK = {"classId": 8, "obis": "0-0:1.0.0.255", "attribute": 2, "dataIndex": 0}


class PushSession(FakeSession):
    """A meter with a push setup at 0-0:25.9.0.255: a SET that succeeds is kept."""

    def __init__(self) -> None:
        super().__init__()
        start = CosemDateTime(2026, 1, 1, None, 0, 0, 0, 0, None, None).to_bytes()
        end = CosemDateTime(2026, 1, 1, None, 6, 0, 0, 0, None, None).to_bytes()
        for attribute, value in {
                2: [(3, bytes.fromhex("0100010800ff"), 2, 0)],
                3: (1, b"192.0.2.7:4059", 1),
                4: [(start, end)], 5: 5, 6: 3, 7: 120}.items():
            self.values[Ref(40, PUSH, attribute)] = value
        self.refuse: dict[int, Any] = {}  # attribute -> the SET result

    def set(self, ref: Ref, value: Any) -> Any:
        self.calls.append(("set", ref, value))
        result = self.refuse.get(ref.attribute, DataAccessResult.SUCCESS)
        if result == DataAccessResult.SUCCESS:
            self.values[ref] = decode_data(encode_data(value))[0]
        return result


@pytest.fixture
def engine() -> FakeEngine:
    engine = FakeEngine()
    engine.session = PushSession()
    return engine


def dispatcher(engine: FakeEngine, listener: str | None = None) -> RpcDispatcher:
    cfg = load_config({"meters": [METER]})
    assert cfg.errors == ()
    return RpcDispatcher(engine, cfg.by_name, push_setup=PushSetupRpcs(listener))


@pytest.fixture
def rpc(engine: FakeEngine) -> RpcDispatcher:
    return dispatcher(engine)


def refs(*attributes: int) -> tuple[Ref, ...]:
    return tuple(Ref(40, PUSH, a) for a in attributes)


# ---- push_setup_read ----------------------------------------------------------------------------
def test_read_takes_attributes_2_to_7_in_one_read(rpc: RpcDispatcher, engine: FakeEngine) -> None:
    reply = call(rpc, "push_setup_read")
    assert engine.session.calls == [("read", refs(2, 3, 4, 5, 6, 7))]
    assert reply == {
        "success": True, "obis": "0-0:25.9.0.255", "objects": [ENERGY],
        "destination": "192.0.2.7:4059", "transport": "udp", "message": "xml",
        "communicationWindow": [{"start": "2026-01-01T00:00:00", "end": "2026-01-01T06:00:00"}],
        "randomisationStartInterval": 5, "numberOfRetries": 3, "repetitionDelay": 120}


def test_read_of_an_object_the_meter_lacks_names_meter_object_attribute(
        rpc: RpcDispatcher, engine: FakeEngine) -> None:
    reply = call(rpc, "push_setup_read", {"obis": "0-0:25.9.0.1"})
    assert reply == {"success": False, "error": (
        "Microstar-1: push setup 0-0:25.9.0.1 refused attribute 2 (push_object_list): "
        "object-undefined; attribute 3 (send_destination_and_method): object-undefined")}


def test_read_with_optional_attributes_denied_answers_the_rest(rpc: RpcDispatcher,
                                                                engine: FakeEngine) -> None:
    engine.session.values[Ref(40, PUSH, 4)] = DataAccessError(3, "read-write-denied")
    engine.session.values[Ref(40, PUSH, 7)] = DataAccessError(3, "read-write-denied")
    reply = call(rpc, "push_setup_read")
    assert reply["success"] is True and reply["objects"] == [ENERGY]
    assert reply["communicationWindow"] is None and reply["repetitionDelay"] is None
    assert reply["errors"] == {"communicationWindow": "read-write-denied",
                               "repetitionDelay": "read-write-denied"}
    engine.session.values[Ref(40, PUSH, 3)] = DataAccessError(3, "read-write-denied")
    assert call(rpc, "push_setup_read") == {"success": False, "error": (
        "Microstar-1: push setup 0-0:25.9.0.255 refused attribute 3 "
        "(send_destination_and_method): read-write-denied")}


def test_a_malformed_answer_is_a_failure_naming_the_field(rpc: RpcDispatcher,
                                                          engine: FakeEngine) -> None:
    engine.session.values[Ref(40, PUSH, 2)] = [(3, b"short", 2, 0)]
    reply = call(rpc, "push_setup_read")
    assert reply["success"] is False
    assert reply["error"].startswith("Microstar-1: push setup 0-0:25.9.0.255 attribute 2 "
                                     "(push_object_list): malformed answer: "
                                     "push_object_list[0].logical_name: expected 6 octets")


# ---- push_setup_write ---------------------------------------------------------------------------
def test_write_sets_each_attribute_given_in_order_then_reads_back(rpc: RpcDispatcher,
                                                                  engine: FakeEngine) -> None:
    params = {"objects": [CLOCK, ENERGY], "destination": "gw.example.net:4063",
              "transport": "tcp", "message": "a-xdr", "randomisationStartInterval": 30,
              "numberOfRetries": 2, "repetitionDelay": {"min": 10, "exponent": 2, "max": 600}}
    reply = call(rpc, "push_setup_write", params)
    assert reply == {"success": True, "obis": "0-0:25.9.0.255",
                     "destination": "gw.example.net:4063", "transport": "tcp",
                     "message": "a-xdr", "results": {
                         "objects": "success", "destination": "success",
                         "randomisationStartInterval": "success", "numberOfRetries": "success",
                         "repetitionDelay": "success"}}
    sets = [c for c in engine.session.calls if c[0] == "set"]
    assert [c[1] for c in sets] == list(refs(2, 3, 5, 6, 7))
    assert len(engine.session.calls) == 5  # all parts of attribute 3 given: nothing read first
    assert sets[1][2] == Typed(DataType.STRUCTURE, [
        Typed(DataType.ENUM, 0), Typed(DataType.OCTET_STRING, b"gw.example.net:4063"),
        Typed(DataType.ENUM, 0)])
    assert sets[2][2] == Typed(DataType.LONG_UNSIGNED, 30)
    assert sets[3][2] == Typed(DataType.UNSIGNED, 2)
    back = call(rpc, "push_setup_read")
    assert back["objects"] == [CLOCK, ENERGY]
    assert (back["destination"], back["transport"], back["message"]) == (
        "gw.example.net:4063", "tcp", "a-xdr")
    assert back["repetitionDelay"] == {"min": 10, "exponent": 2, "max": 600}


def test_a_destination_alone_keeps_the_meters_transport_and_message(
        rpc: RpcDispatcher, engine: FakeEngine) -> None:
    reply = call(rpc, "push_setup_write", {"destination": "[2001:db8::7]:4059"})
    assert reply["success"] is True
    assert (reply["destination"], reply["transport"], reply["message"]) == (
        "[2001:db8::7]:4059", "udp", "xml")
    assert engine.session.calls[0] == ("get", Ref(40, PUSH, 3))
    assert engine.session.calls[1][2] == Typed(DataType.STRUCTURE, [
        Typed(DataType.ENUM, 1), Typed(DataType.OCTET_STRING, b"[2001:db8::7]:4059"),
        Typed(DataType.ENUM, 1)])


def test_a_host_port_is_not_written_over_a_non_ip_transport_unasked(
        rpc: RpcDispatcher, engine: FakeEngine) -> None:
    engine.session.values[Ref(40, PUSH, 3)] = (4, b"+3581234567", 0)  # sms
    reply = call(rpc, "push_setup_write", {"destination": "10.0.0.1:4059"})
    assert reply == {"success": False, "error": (
        "Microstar-1: push setup 0-0:25.9.0.255 pushes over transport 'sms': give "
        "params.transport with a destination that is not host:port")}
    assert [c[0] for c in engine.session.calls] == ["get"]
    # Named, a non-IP transport takes any printable destination.
    reply = call(rpc, "push_setup_write", {"destination": "+3589876543", "transport": "sms"})
    assert reply["success"] is True and reply["destination"] == "+3589876543"


@pytest.mark.parametrize(("params", "error"), [
    ({}, "params: nothing to write"),
    ([], "params must be an object"),
    ({"destinaton": "h:1"}, "params: unknown key(s) 'destinaton'"),
    ({"obis": "0-0:25.9", "numberOfRetries": 1}, "params.obis"),
    ({"destination": "gateway"}, "params.destination: expected 'host:port'"),
    ({"destination": "gw:99999"}, "params.destination: port '99999' is not in 1..65535"),
    ({"destination": "gw:4059", "transport": "carrier-pigeon"}, "params.transport: unknown"),
    ({"destination": "\x01", "transport": "sms"}, "params.destination: expected printable"),
    ({"destination": "0.0.0.0:4059"}, "params.destination: 0.0.0.0 is a listening address"),
    ({"message": 300}, "params.message must be an integer in 0..255"),
    ({"objects": {"classId": 3}}, "params.objects must be an array"),
    ({"objects": [dict(ENERGY, classId=65536)]}, "params.objects[0].classId must be"),
    ({"objects": [ENERGY, dict(ENERGY, obis="1-0:1.8")]}, "params.objects[1].obis"),
    ({"objects": [ENERGY] * 257}, "params.objects: 257 entries, at most 256"),
    ({"numberOfRetries": 256}, "params.numberOfRetries: number_of_retries must be"),
    ({"randomisationStartInterval": "soon"}, "params.randomisationStartInterval must be an"),
    ({"repetitionDelay": {"min": 1}}, "params.repetitionDelay: seconds, or {min, exponent"),
    ({"repetitionDelay": -5}, "params.repetitionDelay: repetition_delay must be"),
    # one bad param among good ones: nothing is written
    ({"objects": [ENERGY], "numberOfRetries": -1}, "params.numberOfRetries"),
])
def test_bad_params_are_refused_before_the_meter_is_asked(
        rpc: RpcDispatcher, engine: FakeEngine, params: Any, error: str) -> None:
    reply = call(rpc, "push_setup_write", params)
    assert reply["success"] is False and error in reply["error"], reply
    assert engine.session.calls == [] and engine.timeouts == []  # never submitted


def test_a_refused_set_stops_the_write_and_names_the_attribute(rpc: RpcDispatcher,
                                                               engine: FakeEngine) -> None:
    engine.session.refuse[3] = DataAccessResult.READ_WRITE_DENIED
    reply = call(rpc, "push_setup_write", {"objects": [CLOCK], "destination": "gw:1",
                                           "transport": "tcp", "message": 0,
                                           "numberOfRetries": 9})
    assert reply == {"success": False, "obis": "0-0:25.9.0.255", "error": (
        "Microstar-1: push setup 0-0:25.9.0.255 attribute 3 (send_destination_and_method): "
        "SET refused: read-write-denied"), "results": {
            "objects": "success", "destination": "read-write-denied",
            "numberOfRetries": "not-attempted"}}
    assert [c[1].attribute for c in engine.session.calls] == [2, 3]


# ---- push_now / push_setup_point ------------------------------------------------------------------
def test_push_now_is_method_1_with_integer_0(rpc: RpcDispatcher, engine: FakeEngine) -> None:
    assert call(rpc, "push_now", {"obis": "0-0:25.9.0.2"}) == {
        "success": True, "obis": "0-0:25.9.0.2"}
    assert engine.session.calls == [
        ("action", 40, Obis(0, 0, 25, 9, 0, 2), 1, Typed(DataType.INTEGER, 0))]
    engine.session.action_result = (ActionResult.OBJECT_UNDEFINED, None)
    assert call(rpc, "push_now") == {"success": False, "error": (
        "Microstar-1: push setup 0-0:25.9.0.255 refused method 1 (push): object-undefined")}


def test_point_without_a_listener_needs_the_address(rpc: RpcDispatcher,
                                                    engine: FakeEngine) -> None:
    reply = call(rpc, "push_setup_point")
    assert reply["success"] is False and "no push listener address is configured" in \
        reply["error"]
    assert engine.session.calls == []
    reply = call(rpc, "push_setup_point", {"destination": "10.9.8.7:4059"})
    assert reply == {"success": True, "obis": "0-0:25.9.0.255", "destination": "10.9.8.7:4059",
                     "transport": "tcp", "message": "a-xdr",
                     "results": {"destination": "success"}}
    assert engine.session.calls == [("set", Ref(40, PUSH, 3), Typed(DataType.STRUCTURE, [
        Typed(DataType.ENUM, 0), Typed(DataType.OCTET_STRING, b"10.9.8.7:4059"),
        Typed(DataType.ENUM, 0)]))]


@pytest.mark.parametrize(("params", "destination"), [
    (None, "gw.local:4059"),
    ({"port": 5000}, "gw.local:5000"),
    ({"host": "10.0.0.2"}, "10.0.0.2:4059"),
    ({"host": "fd00::2", "port": "4100"}, "[fd00::2]:4100"),
    ({"destination": "other:1"}, "other:1"),
])
def test_point_uses_the_listener_address_part_by_part(engine: FakeEngine, params: Any,
                                                      destination: str) -> None:
    reply = call(dispatcher(engine, "gw.local:4059"), "push_setup_point", params)
    assert reply["success"] is True and reply["destination"] == destination
    assert call(dispatcher(engine, "gw.local:4059"), "push_setup_read")["destination"] == \
        destination


@pytest.mark.parametrize(("params", "error"), [
    ({"host": "bad host"}, "params.host/port"),
    ({"port": 0}, "params.host/port: port '0'"),
    ({"destination": "a:1", "port": 2}, "give destination or host/port, not both"),
    ({"destination": "nowhere"}, "params.destination"),
    ({"host": "0.0.0.0"}, "params.host/port: 0.0.0.0 is a listening address"),
    ({"destination": "[::]:4059"}, "params.destination: :: is a listening address"),
])
def test_point_refuses_bad_addresses_before_the_meter(engine: FakeEngine, params: Any,
                                                      error: str) -> None:
    reply = call(dispatcher(engine, "gw.local:4059"), "push_setup_point", params)
    assert reply["success"] is False and error in reply["error"], reply
    assert engine.session.calls == []


def test_a_bad_listener_address_is_refused_when_wired() -> None:
    with pytest.raises(ConfigError, match="push listener destination"):
        PushSetupRpcs("0.0.0.0")


def test_a_bind_address_as_the_listener_is_refused_when_pointing(engine: FakeEngine) -> None:
    # The listener's bind address wired in as its destination: the RPC says so, writes nothing.
    reply = call(dispatcher(engine, "0.0.0.0:4059"), "push_setup_point")
    assert reply == {"success": False, "error": "params.host/port: 0.0.0.0 is a listening "
                     "address, not one a meter can push to: give the gateway's address"}
    assert engine.session.calls == []
    assert call(dispatcher(engine, "0.0.0.0:4059"), "push_setup_point",
                {"host": "192.0.2.1"})["destination"] == "192.0.2.1:4059"


def test_configured_rpcs_may_not_take_the_push_names() -> None:
    meter = dict(METER, rpc=[{"method": "push_now", "type": "action", "obis": "0-0:25.9.0.255",
                              "classId": 40, "methodIndex": 1}])
    cfg = load_config({"meters": [meter]})
    assert any("push_now" in e for e in cfg.errors), cfg.errors
