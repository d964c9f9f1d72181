"""Push setup (class 40) codecs: round trips through A-XDR, the bytes of a hand-built vector,
version 1/2 shapes read, hostile shapes refused with the field named, the JSON shapes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tb_dlms.protocol.axdr import Typed, decode_data, encode_data
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.protocol.errors import DecodeError, DlmsError, LocalProtocolError
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.push_setup import (
    PushListEntry,
    RepetitionDelay,
    SendDestination,
    decode_communication_window,
    decode_number_of_retries,
    decode_push_object_list,
    decode_randomisation_start_interval,
    decode_repetition_delay,
    decode_send_destination,
    encode_communication_window,
    encode_number_of_retries,
    encode_push_object_list,
    encode_randomisation_start_interval,
    encode_repetition_delay,
    encode_send_destination,
    entry_from_json,
    message_code,
    parse_host_port,
    transport_code,
    transport_name,
    window_to_json,
)

OBJECTS = (PushListEntry(8, Obis(0, 0, 1, 0, 0, 255), 2),
           PushListEntry(3, Obis(1, 0, 1, 8, 0, 255), 2),
           PushListEntry(7, Obis(1, 0, 99, 1, 0, 255), 2, 3))
WINDOW = (CosemDateTime(2026, 1, 1, None, 0, 0, 0, 0, -60, 0),
          CosemDateTime(None, None, None, None, 6, 30, 0, 0, None, None))  # wildcards kept


def wire(typed: Typed, *, as_typed: bool = False) -> Any:
    """What the session hands over after the value went to the meter and came back."""
    data = encode_data(typed)
    value, end = decode_data(data, typed=as_typed)
    assert end == len(data)
    return value


@pytest.mark.parametrize("as_typed", [False, True])
def test_every_attribute_round_trips(as_typed: bool) -> None:
    dest = SendDestination(0, b"gw.example.net:4059", 0)
    assert decode_push_object_list(wire(encode_push_object_list(OBJECTS),
                                        as_typed=as_typed)) == OBJECTS
    assert decode_send_destination(wire(encode_send_destination(dest),
                                        as_typed=as_typed)) == dest
    assert decode_communication_window(wire(encode_communication_window([WINDOW]),
                                            as_typed=as_typed)) == (WINDOW,)
    assert decode_randomisation_start_interval(
        wire(encode_randomisation_start_interval(65535), as_typed=as_typed)) == 65535
    assert decode_number_of_retries(wire(encode_number_of_retries(255), as_typed=as_typed)) == 255
    assert decode_repetition_delay(wire(encode_repetition_delay(900), as_typed=as_typed)) == 900
    delay = RepetitionDelay(60, 2, 3600)
    assert decode_repetition_delay(wire(encode_repetition_delay(delay), as_typed=as_typed)) == delay
    assert decode_push_object_list(wire(encode_push_object_list([]), as_typed=as_typed)) == ()


def test_the_bytes_on_the_wire() -> None:
    # Hand-built from the Blue Book layouts: structure(3){enum 0, octet-string, enum 0} and one
    # object list entry structure(4){long-unsigned 3, octet-string(6), integer 2, long-unsigned 0}.
    dest = encode_data(encode_send_destination(SendDestination(0, b"10.0.0.1:4059", 0)))
    assert dest == bytes.fromhex("0203" "1600" "090d") + b"10.0.0.1:4059" + bytes.fromhex("1600")
    entry = encode_data(encode_push_object_list(OBJECTS[1:2]))
    assert entry == bytes.fromhex("0101" "0204" "120003" "0906 0100010800ff" "0f02" "120000")
    assert encode_data(encode_number_of_retries(3)) == bytes.fromhex("1103")
    assert encode_data(encode_randomisation_start_interval(300)) == bytes.fromhex("12012c")


def test_a_long_destination_decodes() -> None:
    # No length limit in the Blue Book: a meter's 70,000-octet destination is a value, not a crash.
    long = SendDestination(2, b"f" * 70_000, 0)
    assert decode_send_destination(wire(encode_send_destination(long))) == long


def test_version_1_and_2_extra_fields_are_ignored() -> None:
    ln = Obis(1, 0, 1, 8, 0, 255).to_bytes()
    v1 = [(3, ln, 2, 0, (0, None))]  # + restriction
    v2 = [(3, ln, 2, 0, (0, None), [(8, bytes(6), 2, 0)])]  # + restriction, columns
    assert decode_push_object_list(v1) == decode_push_object_list(v2) == OBJECTS[1:2]
    assert decode_send_destination((1, "1.2.3.4:5", 128)) == SendDestination(1, b"1.2.3.4:5", 128)


@pytest.mark.parametrize(("decode", "value", "field"), [
    (decode_push_object_list, None, "push_object_list: expected a structure or array"),
    (decode_push_object_list, b"\x01", "push_object_list: expected a structure or array"),
    (decode_push_object_list, [5], "push_object_list[0]: expected"),
    (decode_push_object_list, [(3, bytes(6), 2)], "push_object_list[0]: 3 elements"),
    (decode_push_object_list, [(3, bytes(5), 2, 0)], "push_object_list[0].logical_name"),
    (decode_push_object_list, [(3, "abcdef", 2, 0)], "push_object_list[0].logical_name"),
    (decode_push_object_list, [(True, bytes(6), 2, 0)], "push_object_list[0].class_id"),
    (decode_push_object_list, [(70000, bytes(6), 2, 0)], "push_object_list[0].class_id"),
    (decode_push_object_list, [(3, bytes(6), 200, 0)], "push_object_list[0].attribute_index"),
    (decode_push_object_list, [(3, bytes(6), 2, None)], "push_object_list[0].data_index"),
    (decode_push_object_list, [(3, bytes(6), 2, 0), (1, bytes(6), 2, -1)],
     "push_object_list[1].data_index"),
    (decode_send_destination, (0, b"x"), "send_destination_and_method: 2 elements"),
    (decode_send_destination, (0, 5, 0), "send_destination_and_method.destination"),
    (decode_send_destination, (256, b"", 0), "send_destination_and_method.transport_service"),
    (decode_send_destination, (0, b"", 1.5), "send_destination_and_method.message"),
    (decode_communication_window, [(bytes(12),)], "communication_window[0]: 1 elements"),
    (decode_communication_window, [(bytes(11), bytes(12))], "communication_window[0].start"),
    (decode_communication_window, [(WINDOW[0].to_bytes(), b"\x07\xea\x0d" + bytes(9))],
     "communication_window[0].end"),
    (decode_randomisation_start_interval, -1, "randomisation_start_interval"),
    (decode_number_of_retries, 256, "number_of_retries"),
    (decode_number_of_retries, "3", "number_of_retries"),
    (decode_repetition_delay, (1, 2), "repetition_delay: 2 elements"),
    (decode_repetition_delay, (1, 2, None), "repetition_delay.max"),
    (decode_repetition_delay, b"\x00\x10", "repetition_delay"),
])
def test_hostile_shapes_are_refused_naming_the_field(decode: Any, value: Any, field: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode(value)
    assert field in str(err.value)


@given(st.binary(max_size=64))
def test_any_bytes_give_a_value_or_a_decode_error(data: bytes) -> None:
    try:
        value, _ = decode_data(data)
    except DecodeError:
        return
    for decode in (decode_push_object_list, decode_send_destination,
                   decode_communication_window, decode_repetition_delay,
                   decode_number_of_retries, decode_randomisation_start_interval):
        try:
            decode(value)
        except DecodeError:
            pass


def test_encoders_refuse_values_out_of_range() -> None:
    with pytest.raises(LocalProtocolError, match="number_of_retries"):
        encode_number_of_retries(256)
    with pytest.raises(LocalProtocolError, match="randomisation_start_interval"):
        encode_randomisation_start_interval(-1)
    with pytest.raises(LocalProtocolError, match="repetition_delay.max"):
        encode_repetition_delay(RepetitionDelay(1, 1, 70000))
    with pytest.raises(LocalProtocolError, match="classId"):
        PushListEntry(65536, Obis(0, 0, 1, 0, 0, 255), 2)
    with pytest.raises(LocalProtocolError, match="transport"):
        SendDestination(300, b"", 0)


def test_json_shapes() -> None:
    assert OBJECTS[2].to_json() == {"classId": 7, "obis": "1-0:99.1.0.255", "attribute": 2,
                                    "dataIndex": 3}
    assert entry_from_json({"classId": 7, "obis": "1.0.99.1.0.255", "attribute": 2,
                                 "dataIndex": 3}) == OBJECTS[2]
    assert entry_from_json({"classId": 3.0, "obis": "1-0:1.8.0", "attribute": "2"}) == \
        OBJECTS[1]
    # A dlms.json push object as it stands: its defaults, its publishing keys ignored.
    assert entry_from_json({"obis": "0-0:96.1.0.255", "key": "serial", "type": "attribute",
                                 "identity": True}) == PushListEntry(1, Obis(0, 0, 96, 1, 0, 255), 2)
    assert SendDestination(0, b"gw:4059", 0).to_json() == {
        "destination": "gw:4059", "transport": "tcp", "message": "a-xdr"}
    # Octets that are not printable ASCII come as hex; codes without a name as numbers.
    assert SendDestination(200, b"\x00\x01\xfe", 128).to_json() == {
        "destination": "0001fe", "transport": 200, "message": 128}
    assert window_to_json(WINDOW) == {"start": "2026-01-01T00:00:00+01:00",
                                      "end": "****-**-**T06:30:00"}
    assert [transport_name(c) for c in range(9)] == [
        "tcp", "udp", "ftp", "smtp", "sms", "hdlc", "m-bus", "zigbee", "dlms-gateway"]
    assert transport_code("M_Bus") == 6 and transport_code("dlms-gateway") == 8
    assert transport_code(201) == 201 and transport_code("7") == 7
    assert message_code("XML") == 1 and message_code("a-xdr") == 0


@pytest.mark.parametrize(("value", "field"), [
    ([], "object: expected an object"),
    ({"classId": 3, "attribute": 2}, "object.obis is required"),
    ({"classId": 3, "obis": "1-0:1.8.0", "attribute": 2, "dataindex": 0}, "'dataindex'"),
    ({"classId": 70000, "obis": "1-0:1.8.0", "attribute": 2}, "object.classId must be"),
    ({"classId": True, "obis": "1-0:1.8.0", "attribute": 2}, "object.classId must be"),
    ({"classId": 3, "obis": "1-0:1.8", "attribute": 2}, "object.obis"),
    ({"classId": 3, "obis": 5, "attribute": 2}, "object.obis"),
    ({"classId": 3, "obis": "1-0:1.8.0", "attribute": -1}, "object.attribute must be"),
    ({"classId": 3, "obis": "1-0:1.8.0", "attribute": 2, "dataIndex": 1e9}, "object.dataIndex"),
])
def test_bad_json_objects_name_the_key(value: Any, field: str) -> None:
    with pytest.raises(LocalProtocolError) as err:
        entry_from_json(value)
    assert field in str(err.value)


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1:4059", ("127.0.0.1", 4059)),
    ("gw-1.example.net:1", ("gw-1.example.net", 1)),
    ("[::1]:65535", ("::1", 65535)),
    (" host:4059 ", ("host", 4059)),
])
def test_host_port(text: str, parsed: tuple[str, int]) -> None:
    assert parse_host_port(text) == parsed


@pytest.mark.parametrize("text", [
    "host", "host:", ":4059", "host:0", "host:65536", "host:40 59", "ho st:4059", "-host:1",
    "host\n:4059", "::1:4059", "[zz]:4059", "host:\u0664\u0660\u0665\u0669", "h\u00f6st:1",
    "a" * 300 + ":1", 4059, None,
])
def test_bad_host_port_is_refused(text: Any) -> None:
    with pytest.raises(LocalProtocolError, match="destination"):
        parse_host_port(text)


@pytest.mark.parametrize("value", ["tcpip", "", -1, 256, True, None, 1.5])
def test_unknown_transports_are_refused(value: Any) -> None:
    with pytest.raises(LocalProtocolError, match="transport"):
        transport_code(value)


def test_every_refusal_is_a_dlms_error() -> None:
    # The RPC layer turns DlmsErrors into replies: nothing else may escape.
    for bad in ({"classId": [], "obis": {}, "attribute": object()}, {"classId": 1}):
        with pytest.raises(DlmsError):
            entry_from_json(bad)
