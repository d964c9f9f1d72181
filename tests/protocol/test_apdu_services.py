"""GET / SET / ACTION APDUs: vectors with provenance, round trips, decode_apdu dispatch."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.apdu import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    AttributeDescriptor,
    ConfirmedServiceError,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDataBlock,
    GetResponseWithList,
    InitiateRequest,
    InitiateResponse,
    MethodDescriptor,
    SelectiveAccess,
    SetRequestNormal,
    SetRequestWithList,
    SetResponseNormal,
    SetResponseWithList,
    decode_apdu,
)
from tb_dlms.protocol.apdu.common import invoke_byte, split_invoke_byte
from tb_dlms.protocol.apdu.get import decode_block_payload, encode_results_for_blocks
from tb_dlms.protocol.apdu.xdlms import Conformance
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.errors import DecodeError, LocalProtocolError
from tb_dlms.protocol.obis import Obis

U16 = DataType.LONG_UNSIGNED
VOLTAGE_L1 = AttributeDescriptor(3, Obis.parse("1-1:32.7.0.255"), 2)
VOLTAGE_L2_SCALER = AttributeDescriptor(3, Obis.parse("1-1:52.7.0.255"), 3)

# The nine registers of the replaced system (ORIGINAL_SYSTEM.md), attribute 2 each.
NINE = tuple(
    (AttributeDescriptor(3, Obis.parse(code), 2), None)
    for code in ("1-1:32.7.0", "1-1:52.7.0", "1-1:72.7.0", "1-1:31.7.0", "1-1:51.7.0",
                 "1-1:71.7.0", "1-1:14.7.0", "1-1:1.7.0", "1-1:1.8.0")
)


# Vectors built by gurux_dlms 1.0.203 (GXDLMSClient, InterfaceType.PDU, invoke id 1, high
# priority, confirmed -> C1): read(register 1.1.32.7.0.255, 2); readList of (32.7.0, 2) and
# (52.7.0, 3); write(GXDLMSData 0.0.96.1.0.255 value "ABC", 2);
# GXDLMSDisconnectControl("0.0.96.3.10.255").remoteDisconnect(client).
GURUX_GET = bytes.fromhex("c001c100030101200700ff0200")
GURUX_GET_LIST = bytes.fromhex("c003c10200030101200700ff020000030101340700ff0300")
GURUX_SET = bytes.fromhex("c101c100010000600100ff02000a03414243")
GURUX_ACTION = bytes.fromhex("c301c10046000060030aff01010f00")


def test_gurux_get_normal_vector() -> None:
    assert GetRequestNormal(1, VOLTAGE_L1).encode() == GURUX_GET
    assert decode_apdu(GURUX_GET) == GetRequestNormal(1, VOLTAGE_L1)


def test_gurux_get_with_list_vector() -> None:
    req = GetRequestWithList(1, ((VOLTAGE_L1, None), (VOLTAGE_L2_SCALER, None)))
    assert req.encode() == GURUX_GET_LIST
    assert decode_apdu(GURUX_GET_LIST) == req


def test_gurux_set_vector() -> None:
    req = SetRequestNormal(1, AttributeDescriptor(1, Obis.parse("0-0:96.1.0.255"), 2), "ABC")
    assert req.encode() == GURUX_SET
    decoded = decode_apdu(GURUX_SET, typed=True)
    assert decoded == SetRequestNormal(1, req.descriptor, Typed(DataType.VISIBLE_STRING, "ABC"))


def test_gurux_action_vector() -> None:
    req = ActionRequestNormal(1, MethodDescriptor(70, Obis.parse("0-0:96.3.10.255"), 1),
                              Typed(DataType.INTEGER, 0))
    assert req.encode() == GURUX_ACTION
    assert decode_apdu(GURUX_ACTION, typed=True) == req
    assert decode_apdu(GURUX_ACTION).parameters == 0


def test_invoke_id_and_priority_byte() -> None:
    # Blue Book: bits 0-3 invoke id, bit 6 service class confirmed, bit 7 priority high.
    assert invoke_byte(1, True, True) == 0xC1
    assert invoke_byte(1, True, False) == 0x81
    assert invoke_byte(15, False, False) == 0x0F
    assert split_invoke_byte(0xF5) == (5, True, True)  # reserved bits 4-5 ignored
    with pytest.raises(LocalProtocolError):
        invoke_byte(16, True, True)


def test_descriptor_validation() -> None:
    with pytest.raises(LocalProtocolError):
        AttributeDescriptor(70000, Obis.parse("1-0:1.8.0"), 2)
    with pytest.raises(LocalProtocolError):
        AttributeDescriptor(3, Obis.parse("1-0:1.8.0"), 200)
    # Negative attribute ids are the Blue Book's manufacturer-specific ones (Integer8).
    d = AttributeDescriptor(3, "1-0:1.8.0.255", -1)
    assert d.wire.hex() == "0003" "0100010800ff" "ff"
    assert str(d) == "3/1-0:1.8.0.255/-1"


def test_get_with_list_of_nine_round_trip() -> None:
    req = GetRequestWithList(7, NINE)
    raw = req.encode()
    assert raw[:4] == bytes((0xC0, 3, 0xC7, 9)) and len(raw) == 4 + 9 * 10
    assert decode_apdu(raw) == req


def test_get_with_selective_access_round_trip() -> None:
    # Profile generic entry descriptor: structure {from_entry, to_entry, from_col, to_col}.
    entry = Typed(DataType.STRUCTURE, (
        Typed(DataType.DOUBLE_LONG_UNSIGNED, 1), Typed(DataType.DOUBLE_LONG_UNSIGNED, 10),
        Typed(DataType.LONG_UNSIGNED, 1), Typed(DataType.LONG_UNSIGNED, 0)))
    req = GetRequestNormal(3, AttributeDescriptor(7, "1-0:99.1.0.255", 2),
                           SelectiveAccess(2, entry), high_priority=False)
    raw = req.encode()
    assert raw[2] == 0x43 and raw[12:14] == b"\x01\x02"
    assert decode_apdu(raw) == req


VALUES = st.recursive(
    st.one_of(
        st.integers(0, 0xFFFF).map(lambda v: Typed(DataType.LONG_UNSIGNED, v)),
        st.integers(-(2 ** 31), 2 ** 31 - 1).map(lambda v: Typed(DataType.DOUBLE_LONG, v)),
        st.binary(max_size=40).map(lambda v: Typed(DataType.OCTET_STRING, v)),
        st.booleans().map(lambda v: Typed(DataType.BOOLEAN, v)),
        st.just(Typed(DataType.NULL_DATA, None)),
    ),
    lambda kids: st.lists(kids, max_size=4).map(lambda v: Typed(DataType.STRUCTURE, tuple(v))),
    max_leaves=12,
)
RESULTS = st.one_of(VALUES, st.sampled_from(list(DataAccessResult)))


@given(st.integers(0, 15), RESULTS)
@settings(max_examples=150, deadline=None)
def test_get_response_normal_round_trip(iid, result) -> None:
    resp = GetResponseNormal(iid, result)
    assert decode_apdu(resp.encode(), typed=True) == resp


@given(st.integers(0, 15), st.lists(RESULTS, max_size=20))
@settings(max_examples=150, deadline=None)
def test_get_response_with_list_round_trip(iid, results) -> None:
    resp = GetResponseWithList(iid, tuple(results))
    assert decode_apdu(resp.encode(), typed=True) == resp


@given(st.integers(0, 15), st.booleans(), st.integers(0, 2 ** 32 - 1),
       st.one_of(st.binary(max_size=600), st.sampled_from(list(DataAccessResult))))
@settings(max_examples=100, deadline=None)
def test_get_data_block_round_trip(iid, last, number, raw) -> None:
    resp = GetResponseWithDataBlock(iid, last, number, raw)
    assert decode_apdu(resp.encode()) == resp
    assert decode_apdu(GetRequestNext(iid, number).encode()) == GetRequestNext(iid, number)


@given(st.lists(RESULTS, min_size=1, max_size=10), st.booleans())
@settings(max_examples=100, deadline=None)
def test_block_payload_round_trip(results, with_list) -> None:
    if not with_list:
        results = [r for r in results if not isinstance(r, DataAccessResult)][:1]
        if not results:
            return
    payload = encode_results_for_blocks(results, with_list)
    assert decode_block_payload(payload, with_list, typed=True) == tuple(results)


def test_get_response_natives() -> None:
    # Register value then scaler_unit {-1, V(35)}: what a poll cycle decodes.
    raw = GetResponseWithList(1, (
        Typed(DataType.LONG_UNSIGNED, 2301), DataAccessResult.OBJECT_UNDEFINED,
        Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, -1), Typed(DataType.ENUM, 35))),
    )).encode()
    assert raw.hex() == "c403c103001208fd01040002020fff1623"
    resp = decode_apdu(raw)
    assert resp.results == (2301, DataAccessResult.OBJECT_UNDEFINED, (-1, 35))


def test_set_and_action_round_trips() -> None:
    clock = AttributeDescriptor(8, "0-0:1.0.0.255", 2)
    value = Typed(DataType.OCTET_STRING, bytes(12))
    for apdu in (
        SetRequestNormal(2, clock, value),
        SetRequestNormal(2, clock, value, SelectiveAccess(1, Typed(DataType.UNSIGNED, 5))),
        SetRequestWithList(3, ((clock, None, value),
                               (VOLTAGE_L1, None, Typed(DataType.LONG_UNSIGNED, 5)))),
        SetResponseNormal(2, DataAccessResult.READ_WRITE_DENIED),
        SetResponseWithList(3, (DataAccessResult.SUCCESS, DataAccessResult.TYPE_UNMATCHED)),
        ActionRequestNormal(4, MethodDescriptor(70, "0-0:96.3.10.255", 2)),
        ActionResponseNormal(4, ActionResult.SUCCESS),
        ActionResponseNormal(4, ActionResult.SUCCESS, Typed(DataType.UNSIGNED, 9)),
        ActionResponseNormal(4, ActionResult.OTHER_REASON, DataAccessResult.HARDWARE_FAULT),
    ):
        assert decode_apdu(apdu.encode(), typed=True) == apdu


def test_unknown_result_values_survive() -> None:
    # Some meters send manufacturer-specific result codes; they must not break the decode.
    resp = decode_apdu(bytes.fromhex("c501c105"))
    assert resp.result == 5 and resp.result.label == "unknown-5"
    assert ActionResult(251).label == "unknown-251"
    assert DataAccessResult.DATA_BLOCK_NUMBER_INVALID.label == "data-block-number-invalid"


def test_decode_apdu_dispatches_acse_and_inner_apdus() -> None:
    init = InitiateRequest(Conformance.GET)
    assert decode_apdu(init.encode()) == init
    iresp = InitiateResponse(Conformance.GET, 512)
    assert decode_apdu(iresp.encode()) == iresp
    for apdu in (AARQ(user_information=init), AARE(user_information=iresp), RLRQ(), RLRE()):
        assert decode_apdu(apdu.encode()) == apdu
    assert isinstance(decode_apdu(bytes.fromhex("D80101")), ExceptionResponse)
    assert isinstance(decode_apdu(bytes.fromhex("0E010602")), ConfirmedServiceError)


@pytest.mark.parametrize("raw, message", [
    ("", "empty"),
    ("DB0102", "general-glo-ciphering is not decoded here"),
    ("77", "unknown APDU tag"),
    ("C0", "truncated"),
    ("C00AC1", "unknown get-request choice"),
    ("C001C100030101200700", "truncated COSEM descriptor"),
    ("C001C100030101200700ff0202", "bad OPTIONAL flag"),
    ("C401C10012", "truncated"),
    ("C401C1001208FD00", "trailing"),
    ("C402C1000000000100820100", "truncated raw-data"),
    ("C102C1", "not supported"),
    ("C702C1", "not supported"),
])
def test_bad_apdus_are_decode_errors(raw: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message) as info:
        decode_apdu(bytes.fromhex(raw))
    assert info.value.offset is not None
