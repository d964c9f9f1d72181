"""BER, ACSE (AARQ/AARE/RLRQ/RLRE) and xDLMS initiate: vectors and round trips."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.apdu import ber
from tb_dlms.protocol.apdu.acse import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseServiceProviderDiagnostic,
    AcseServiceUserDiagnostic,
    ApplicationContext,
    AssociationResult,
    AuthMechanism,
)
from tb_dlms.protocol.apdu.service import (
    ConfirmedService,
    ConfirmedServiceError,
    ErrorClass,
    ExceptionResponse,
    ServiceErrorCode,
    StateError,
)
from tb_dlms.protocol.apdu.xdlms import Conformance, InitiateRequest, InitiateResponse
from tb_dlms.protocol.errors import DecodeError

# Green Book (DLMS UA 1000-2), AARQ/AARE examples for LN referencing without ciphering:
# no security, then LLS with password "12345678"; the AARE grants 00 50 1F and 500 bytes.
GB_AARQ_NONE = bytes.fromhex(
    "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
GB_AARQ_LLS = bytes.fromhex(
    "6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
    "BE10040E01000000065F1F0400007E1F04B0")
GB_AARE = bytes.fromhex(
    "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000501F01F40007")
# Built by gurux_dlms 1.0.203: GXDLMSClient(True, 1, 1, Authentication.LOW, "22222222",
# InterfaceType.PDU).aarqRequest() -- the password of the replaced system.
GURUX_AARQ_LLS_22222222 = bytes.fromhex(
    "6036a1090607608574050801018a0207808b0760857405080201ac0a80083232323232323232"
    "be10040e01000000065f1f0400401e5dffff")


@pytest.mark.parametrize("n, encoded", [
    (0, "00"), (0x7F, "7F"), (0x80, "8180"), (0xFF, "81FF"), (0x100, "820100"),
    (0xFFFF, "82FFFF"), (0x10000, "83010000"),
])
def test_ber_length(n: int, encoded: str) -> None:
    raw = bytes.fromhex(encoded)
    assert ber.encode_length(n) == raw
    assert ber.decode_length(raw, 0) == (n, len(raw))


@pytest.mark.parametrize("raw", ["", "80", "8201", "85FFFFFFFFFF"])
def test_ber_length_rejects_truncated_indefinite_or_huge(raw: str) -> None:
    with pytest.raises(DecodeError):
        ber.decode_length(bytes.fromhex(raw), 0)


@given(st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1))
@settings(max_examples=100, deadline=None)
def test_ber_integer_round_trip(value: int) -> None:
    raw = ber.encode_integer(value)
    assert ber.decode_integer(raw, 0, len(raw)) == value


def test_green_book_aarq_none() -> None:
    aarq = AARQ.decode(GB_AARQ_NONE)
    assert aarq.application_context == ApplicationContext.LOGICAL_NAME
    assert aarq.mechanism == AuthMechanism.NONE
    assert aarq.calling_authentication_value is None
    assert aarq.user_information == InitiateRequest(Conformance(0x007E1F), 1200)
    assert aarq.encode() == GB_AARQ_NONE


def test_green_book_aarq_lls() -> None:
    aarq = AARQ.decode(GB_AARQ_LLS)
    assert aarq.mechanism == AuthMechanism.LLS
    assert aarq.calling_authentication_value == b"12345678"
    assert aarq.encode() == GB_AARQ_LLS


def test_green_book_aare() -> None:
    aare = AARE.decode(GB_AARE)
    assert aare.result == AssociationResult.ACCEPTED
    assert aare.diagnostic == AcseServiceUserDiagnostic.NULL
    info = aare.user_information
    assert isinstance(info, InitiateResponse)
    assert info.server_max_receive_pdu_size == 500 and info.vaa_name == 7
    assert info.negotiated_conformance.labels == (
        "priority-mgmt-supported", "block-transfer-with-get-or-read", "get", "set",
        "selective-access", "event-notification", "action")
    assert aare.encode() == GB_AARE


def test_gurux_aarq_lls_is_what_we_build() -> None:
    ours = AARQ(ApplicationContext.LOGICAL_NAME, AuthMechanism.LLS, b"22222222",
                InitiateRequest(Conformance(0x401E5D), 0xFFFF))
    assert ours.encode() == GURUX_AARQ_LLS_22222222


@pytest.mark.parametrize("length", [1, 8, 40, 127, 200])
def test_aarq_lengths_follow_the_password(length: int) -> None:
    password = bytes(range(33, 33 + length)) if length < 90 else b"p" * length
    aarq = AARQ(mechanism=AuthMechanism.LLS, calling_authentication_value=password,
                user_information=InitiateRequest(Conformance.GET))
    raw = aarq.encode()
    outer, start = ber.decode_length(raw, 1)
    assert start + outer == len(raw)
    assert AARQ.decode(raw) == aarq


def test_conformance_bit_positions_follow_the_blue_book() -> None:
    # Bit 0 is the MSB of the first octet; get is bit 19, action bit 23 (last).
    assert Conformance.ACTION.encode() == bytes.fromhex("5F1F0400000001")
    assert Conformance.GET.encode() == bytes.fromhex("5F1F0400000010")
    assert Conformance.GENERAL_PROTECTION.encode() == bytes.fromhex("5F1F0400400000")
    assert Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ == 0x001000
    assert Conformance.MULTIPLE_REFERENCES == 0x000200


def test_random_conformance_values_from_meters_do_not_stay_in_memory() -> None:
    # Flag caches each composite value it builds; a meter can send any of 2**24 (issue 8: 200,000
    # random AAREs left 62,403 values cached, +33 MB). The cache must stay bounded, values exact.
    rng = random.Random(8)
    cache = Conformance._value2member_map_
    for _ in range(5000):
        value = rng.getrandbits(24)
        raw = AARE(user_information=InitiateResponse(Conformance(value), 512)).encode()
        info = AARE.decode(raw).user_information
        assert isinstance(info, InitiateResponse)
        assert int(info.negotiated_conformance) == value
        assert info.negotiated_conformance.encode()[4:] == value.to_bytes(3, "big")
    assert len(cache) <= len(Conformance.__members__) + 64 + 1
    assert Conformance(0x001000) is Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ


@given(
    conformance=st.integers(0, 0xFFFFFF), size=st.integers(0, 0xFFFF),
    version=st.integers(0, 255), allowed=st.booleans(),
    key=st.none() | st.binary(max_size=300), qos=st.none() | st.integers(-128, 127),
)
@settings(max_examples=150, deadline=None)
def test_initiate_request_round_trip(conformance, size, version, allowed, key, qos) -> None:
    req = InitiateRequest(Conformance(conformance), size, version, allowed, key, qos)
    assert InitiateRequest.decode(req.encode()) == req


@given(st.integers(0, 0xFFFFFF), st.integers(0, 0xFFFF), st.integers(-32768, 32767),
       st.none() | st.integers(-128, 127))
@settings(max_examples=100, deadline=None)
def test_initiate_response_round_trip(conformance, size, vaa, qos) -> None:
    resp = InitiateResponse(Conformance(conformance), size, 6, vaa, qos)
    assert InitiateResponse.decode(resp.encode()) == resp


@pytest.mark.parametrize("diagnostic", [
    AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE,
    AcseServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
    AcseServiceProviderDiagnostic.NO_COMMON_ACSE_VERSION,
])
def test_rejected_aare_round_trip(diagnostic) -> None:
    aare = AARE(AssociationResult.REJECTED_PERMANENT, diagnostic, user_information=(
        ConfirmedServiceError(ConfirmedService.INITIATE_ERROR, ErrorClass.INITIATE, 1)))
    assert AARE.decode(aare.encode()) == aare


def test_rejected_aare_authentication_failure_bytes() -> None:
    # Green Book layout: result rejected-permanent(1), acse-service-user [1] 13.
    raw = AARE(AssociationResult.REJECTED_PERMANENT,
               AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE).encode()
    assert raw == bytes.fromhex("6117A109060760857405080101A203020101A305A10302010D")
    assert AARE.decode(raw).diagnostic_label == "acse-service-user: authentication-failure"


def test_aare_with_hls_fields_and_ap_title_round_trip() -> None:
    aare = AARE(mechanism=AuthMechanism.HLS_GMAC, responding_authentication_value=b"\x01" * 16,
                user_information=InitiateResponse(Conformance.GET, 1024),
                responding_ap_title=b"ABCDEFGH")
    assert AARE.decode(aare.encode()) == aare


def test_aarq_ciphered_user_information_kept_raw() -> None:
    aarq = AARQ(ApplicationContext.LOGICAL_NAME_WITH_CIPHERING, calling_ap_title=b"SYSTITLE",
                user_information=b"\x21\x03\x30\x00\x01")
    assert AARQ.decode(aarq.encode()) == aarq


def test_release_vectors() -> None:
    # Green Book: RLRQ with reason normal is 62 03 80 01 00; RLRE likewise 63 03 80 01 00.
    assert RLRQ().encode() == bytes.fromhex("6203800100")
    assert RLRE().encode() == bytes.fromhex("6303800100")
    assert RLRQ.decode(bytes.fromhex("6200")) == RLRQ(None)
    rlre = RLRE(0, b"\x08\x00\x06\x5f\x1f\x04\x00\x00\x00\x10\x04\x00\x00\x07")
    assert RLRE.decode(rlre.encode()) == rlre


def test_service_error_names() -> None:
    err = ConfirmedServiceError.decode(bytes.fromhex("0E010601"))
    assert str(err) == "confirmed-service-error: initiate-error, initiate: dlms-version-too-low"
    exc = ExceptionResponse.decode(bytes.fromhex("D80102"))
    assert (exc.state_error, exc.service_error) == (
        StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED)
    assert str(exc) == "exception-response: service-not-allowed, service-not-supported"
    counter = ExceptionResponse(StateError.SERVICE_UNKNOWN,
                                ServiceErrorCode.INVOCATION_COUNTER_ERROR, 77)
    assert ExceptionResponse.decode(counter.encode()) == counter


@pytest.mark.parametrize("raw", [
    "", "60", "6005A1", "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04",
    "6103A10100",  # AARE without result
    "6009A107060560857405",  # unknown context OID
    "600BA109060760857405080109",  # context 9 unknown
    "6102BF00",  # multi-byte tag
    "6203800100FF",  # trailing byte
])
def test_acse_garbage_is_decode_error(raw: str) -> None:
    data = bytes.fromhex(raw)
    for cls in (AARQ, AARE, RLRQ):
        with pytest.raises(DecodeError):
            cls.decode(data)
