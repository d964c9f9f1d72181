"""Client and server Association talking to each other in memory."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.apdu import (
    AARE,
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    ExceptionResponse,
    GetResponseNormal,
    GetResponseWithDataBlock,
    MethodDescriptor,
    SelectiveAccess,
    ServiceErrorCode,
    SetResponseNormal,
    StateError,
    decode_apdu,
)
from tb_dlms.protocol.apdu.acse import AcseServiceUserDiagnostic, AssociationResult
from tb_dlms.protocol.apdu.xdlms import DEFAULT_CLIENT_CONFORMANCE, Conformance
from tb_dlms.protocol.association import (
    NEED_DATA,
    ActionCompleted,
    ActionRequested,
    Associated,
    Association,
    AssociationRequested,
    AssociationSettings,
    AssociationState,
    GetRequested,
    GetResult,
    Released,
    ReleaseRequested,
    RequestRefused,
    Role,
    ServiceFailure,
    SetRequested,
    SetResult,
    StaleResponse,
)
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.errors import (
    AssociationError,
    AuthenticationError,
    LocalProtocolError,
    RemoteProtocolError,
)
from tb_dlms.protocol.obis import Obis

U16 = DataType.LONG_UNSIGNED
CODES = ("1-1:32.7.0", "1-1:52.7.0", "1-1:72.7.0", "1-1:31.7.0", "1-1:51.7.0", "1-1:71.7.0",
         "1-1:14.7.0", "1-1:1.7.0", "1-1:1.8.0")
REGISTERS = [AttributeDescriptor(3, Obis.parse(c), 2) for c in CODES]
SERVER_CONFORMANCE = Conformance(0x00701F) | Conformance.MULTIPLE_REFERENCES


def server(**kw: Any) -> Association:
    kw.setdefault("conformance", SERVER_CONFORMANCE)
    return Association(Role.SERVER, AssociationSettings(**kw))


def server_event(srv: Association, apdu: bytes) -> Any:
    srv.receive_data(apdu)
    event = srv.next_event()
    assert srv.next_event() is NEED_DATA
    return event


def client_event(cli: Association, apdu: bytes) -> Any:
    cli.receive_data(apdu)
    return cli.next_event()


def associate(cli: Association, srv: Association) -> Associated:
    requested = server_event(srv, cli.associate())
    assert isinstance(requested, AssociationRequested) and requested.accepted
    event = client_event(cli, srv.data_to_send())
    assert isinstance(event, Associated)
    assert srv.data_to_send() == b""
    return event


@pytest.fixture
def pair() -> tuple[Association, Association]:
    cli, srv = Association(Role.CLIENT), server()
    associate(cli, srv)
    return cli, srv


def test_association_none_negotiates_intersection_and_pdu() -> None:
    cli = Association(Role.CLIENT, AssociationSettings(max_pdu_size=512))
    srv = server(max_pdu_size=1024)
    event = associate(cli, srv)
    assert event.conformance == DEFAULT_CLIENT_CONFORMANCE & SERVER_CONFORMANCE
    assert cli.negotiated_conformance == srv.negotiated_conformance == event.conformance
    assert event.server_max_pdu_size == cli.server_max_pdu_size == 1024
    assert srv.client_max_pdu_size == 512
    assert cli.state is srv.state is AssociationState.ASSOCIATED


@pytest.mark.parametrize("password", [b"2", b"22222222", bytes(range(48, 88))])  # 1, 8, 40
def test_lls_good_password(password: bytes) -> None:
    cli = Association(Role.CLIENT, AssociationSettings("lls", password))
    srv = server(authentication="lls", password=password)
    associate(cli, srv)


@pytest.mark.parametrize("password", [b"2", b"22222223", b"x" * 40])
def test_lls_wrong_password_is_authentication_error(password: bytes) -> None:
    cli = Association(Role.CLIENT, AssociationSettings("lls", password))
    srv = server(authentication="lls", password=b"22222222")
    requested = server_event(srv, cli.associate())
    assert not requested.accepted
    assert requested.diagnostic == AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE
    aare = AARE.decode(srv.data_to_send())
    assert aare.result == AssociationResult.REJECTED_PERMANENT
    cli.receive_data(aare.encode())
    with pytest.raises(AuthenticationError, match="association rejected: authentication failure"):
        cli.next_event()
    assert cli.state is srv.state is AssociationState.IDLE
    cli.associate()  # the client may try again


def test_mechanism_mismatch_and_other_rejections() -> None:
    cli = Association(Role.CLIENT)  # no authentication
    srv = server(authentication="lls", password="secret")
    assert server_event(srv, cli.associate()).diagnostic == (
        AcseServiceUserDiagnostic.AUTHENTICATION_MECHANISM_NAME_REQUIRED)
    with pytest.raises(AuthenticationError):
        client_event(cli, srv.data_to_send())
    # A client proposing only SN services gets an xDLMS initiate error: AssociationError.
    cli = Association(Role.CLIENT, AssociationSettings(conformance=Conformance.READ))
    srv = server()
    requested = server_event(srv, cli.associate())
    assert requested.service_error is not None
    with pytest.raises(AssociationError, match="incompatible-conformance") as info:
        client_event(cli, srv.data_to_send())
    assert not isinstance(info.value, AuthenticationError)


def test_get_normal(pair) -> None:
    cli, srv = pair
    iid, request = cli.get(REGISTERS[0])
    event = server_event(srv, request)
    assert event == GetRequested(iid, ((REGISTERS[0], None),), False)
    result = client_event(cli, srv.respond_get(iid, [Typed(U16, 2301)]))
    assert result == GetResult(iid, (2301,))
    assert cli.outstanding_invoke_id is None


def test_get_with_list_of_nine(pair) -> None:
    cli, srv = pair
    iid, request = cli.get_with_list(REGISTERS)
    event = server_event(srv, request)
    assert event.with_list and [d for d, _ in event.items] == REGISTERS
    values: list[Any] = [Typed(U16, 2300 + i) for i in range(8)] + [
        DataAccessResult.OBJECT_UNDEFINED]
    result = client_event(cli, srv.respond_get(iid, values))
    assert result.results == tuple(range(2300, 2308)) + (DataAccessResult.OBJECT_UNDEFINED,)


@pytest.mark.parametrize("with_list", [False, True])
def test_block_transfer(with_list: bool) -> None:
    cli = Association(Role.CLIENT, AssociationSettings(max_pdu_size=64))
    srv = server()
    associate(cli, srv)
    big = Typed(DataType.ARRAY, [Typed(DataType.OCTET_STRING, bytes([i]) * 20)
                                 for i in range(12)])
    if with_list:
        iid, request = cli.get_with_list([REGISTERS[0], REGISTERS[1]])
        answer = [Typed(U16, 7), big]
    else:
        iid, request = cli.get(AttributeDescriptor(7, "1-0:99.1.0.255", 2))
        answer = [big]
    server_event(srv, request)
    apdu = srv.respond_get(iid, answer)
    blocks = 0
    while True:
        assert len(apdu) <= 64
        assert isinstance(decode_apdu(apdu), GetResponseWithDataBlock)
        blocks += 1
        cli.receive_data(apdu)
        event = cli.next_event()
        if event is not NEED_DATA:
            break
        nxt = cli.data_to_send()
        assert cli.data_to_send() == b""
        srv.receive_data(nxt)
        assert srv.next_event() is NEED_DATA  # served automatically, no event
        apdu = srv.data_to_send()
    assert blocks > 3
    expected = [bytes([i]) * 20 for i in range(12)]
    assert event == GetResult(iid, (7, expected) if with_list else (expected,))


def test_wrong_block_number_is_remote_error(pair) -> None:
    cli, _ = pair
    iid, _ = cli.get(REGISTERS[0])
    cli.receive_data(GetResponseWithDataBlock(iid, False, 2, b"\x12").encode())
    with pytest.raises(RemoteProtocolError, match="block 2 received, 1 expected"):
        cli.next_event()


def test_server_refuses_unknown_get_next(pair) -> None:
    _, srv = pair
    srv.receive_data(bytes.fromhex("c002c100000001"))
    refused = srv.next_event()
    assert isinstance(refused, RequestRefused)
    block = decode_apdu(srv.data_to_send())
    assert block.raw_data == DataAccessResult.NO_LONG_GET_IN_PROGRESS


def test_set_and_action(pair) -> None:
    cli, srv = pair
    clock = AttributeDescriptor(8, "0-0:1.0.0.255", 2)
    value = Typed(DataType.OCTET_STRING, bytes(12))
    iid, request = cli.set(clock, value)
    assert server_event(srv, request) == SetRequested(iid, ((clock, None, value),), False)
    assert client_event(cli, srv.respond_set(iid, DataAccessResult.READ_WRITE_DENIED)) == (
        SetResult(iid, (DataAccessResult.READ_WRITE_DENIED,)))
    iid, request = cli.set_with_list([(clock, value), (REGISTERS[0], Typed(U16, 0))])
    assert server_event(srv, request).with_list
    assert client_event(cli, srv.respond_set(iid, [DataAccessResult.SUCCESS] * 2)).results == (
        DataAccessResult.SUCCESS,) * 2
    relay = MethodDescriptor(70, "0-0:96.3.10.255", 1)
    iid, request = cli.action(relay, Typed(DataType.INTEGER, 0))
    assert server_event(srv, request) == ActionRequested(iid, relay, Typed(DataType.INTEGER, 0))
    done = client_event(cli, srv.respond_action(iid, ActionResult.SUCCESS, Typed(U16, 1)))
    assert done == ActionCompleted(iid, ActionResult.SUCCESS, 1)


def test_release(pair) -> None:
    cli, srv = pair
    assert server_event(srv, cli.release()) == ReleaseRequested(0)
    assert client_event(cli, srv.data_to_send()) == Released(0)
    assert cli.state is srv.state is AssociationState.IDLE
    with pytest.raises(LocalProtocolError):
        cli.get(REGISTERS[0])


def test_stale_invoke_id_is_never_taken_as_the_answer(pair) -> None:
    cli, srv = pair
    old, request = cli.get(REGISTERS[0])
    server_event(srv, request)
    late = srv.respond_get(old, [Typed(U16, 1)])
    assert cli.abandon() == old  # timeout: the session gives up and asks again
    new, request = cli.get(REGISTERS[0])
    assert new != old
    server_event(srv, request)
    stale = client_event(cli, late)
    assert isinstance(stale, StaleResponse) and stale.invoke_id == old
    assert cli.outstanding_invoke_id == new
    assert client_event(cli, srv.respond_get(new, [Typed(U16, 2)])) == GetResult(new, (2,))
    # A duplicate of an answered response is stale too.
    assert isinstance(client_event(cli, GetResponseNormal(new, Typed(U16, 2)).encode()),
                      StaleResponse)


def test_invoke_ids_rotate_through_16_values(pair) -> None:
    cli, srv = pair
    seen = []
    for _ in range(20):
        iid, request = cli.get(REGISTERS[0])
        seen.append(iid)
        server_event(srv, request)
        client_event(cli, srv.respond_get(iid, [Typed(U16, 0)]))
    assert seen[:16] == list(range(1, 16)) + [0] and seen[16] == 1


def test_local_errors() -> None:
    cli = Association(Role.CLIENT)
    with pytest.raises(LocalProtocolError, match="state idle"):
        cli.get(REGISTERS[0])
    srv = server()
    associate(cli, srv)
    cli.get(REGISTERS[0])
    with pytest.raises(LocalProtocolError, match="still outstanding"):
        cli.get(REGISTERS[1])
    with pytest.raises(LocalProtocolError):
        cli.associate()
    with pytest.raises(LocalProtocolError, match="only a server"):
        cli.respond_get(1, [Typed(U16, 1)])
    with pytest.raises(LocalProtocolError, match="only a client"):
        srv.get(REGISTERS[0])
    with pytest.raises(LocalProtocolError, match="no get request 9"):
        srv.respond_get(9, [Typed(U16, 1)])
    with pytest.raises(LocalProtocolError):
        AssociationSettings("lls")  # LLS without a password
    with pytest.raises(LocalProtocolError):
        AssociationSettings("hls5")
    with pytest.raises(LocalProtocolError):
        cli.receive_data(b"")


def test_service_not_granted_is_local_error() -> None:
    cli = Association(Role.CLIENT)
    associate(cli, server(conformance=Conformance.GET))
    with pytest.raises(LocalProtocolError, match="did not grant get-with-list"):
        cli.get_with_list(REGISTERS)
    with pytest.raises(LocalProtocolError, match="selective access"):
        cli.get(REGISTERS[0], SelectiveAccess(1, None))
    with pytest.raises(LocalProtocolError, match="set"):
        cli.set(REGISTERS[0], Typed(U16, 1))


def test_server_refuses_requests_before_association_and_ungranted_services() -> None:
    cli, srv = Association(Role.CLIENT), server(conformance=Conformance.GET)
    srv.receive_data(bytes.fromhex("c001c100030101200700ff0200"))  # GET before the AARQ
    assert isinstance(srv.next_event(), RequestRefused)
    assert decode_apdu(srv.data_to_send()) == ExceptionResponse(
        StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE)
    associate(cli, srv)
    srv.receive_data(bytes.fromhex("c101c100010000600100ff02000a03414243"))  # SET not granted
    assert isinstance(srv.next_event(), RequestRefused)
    failure = client_event(cli, srv.data_to_send())
    assert failure == ServiceFailure(None, ExceptionResponse(
        StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED))


def test_exception_response_fails_the_outstanding_request(pair) -> None:
    cli, _ = pair
    iid, _ = cli.get(REGISTERS[0])
    event = client_event(cli, bytes.fromhex("D80102"))
    assert isinstance(event, ServiceFailure) and event.invoke_id == iid
    assert cli.outstanding_invoke_id is None


def test_mismatched_service_and_unexpected_apdu_are_remote_errors(pair) -> None:
    cli, _ = pair
    iid, _ = cli.get(REGISTERS[0])
    cli.receive_data(SetResponseNormal(iid, DataAccessResult.SUCCESS).encode())
    with pytest.raises(RemoteProtocolError, match="does not answer"):
        cli.next_event()
    cli.receive_data(bytes.fromhex("6203800100"))  # an RLRQ sent to a client
    with pytest.raises(RemoteProtocolError, match="unexpected RLRQ"):
        cli.next_event()


def test_wrong_result_count_is_remote_error(pair) -> None:
    cli, srv = pair
    iid, request = cli.get_with_list(REGISTERS[:2])
    server_event(srv, request)
    cli.receive_data(bytes.fromhex("c403c1" if iid == 1 else "c403c2") + b"\x01\x00\x12\x00\x01")
    with pytest.raises(RemoteProtocolError, match="1 result"):
        cli.next_event()


def test_typed_values_setting() -> None:
    cli = Association(Role.CLIENT, AssociationSettings(typed_values=True))
    srv = server()
    associate(cli, srv)
    iid, request = cli.get(REGISTERS[0])
    server_event(srv, request)
    assert client_event(cli, srv.respond_get(iid, [Typed(U16, 5)])).results == (Typed(U16, 5),)


def test_events_wait_for_complete_apdus() -> None:
    cli = Association(Role.CLIENT)
    assert cli.next_event() is NEED_DATA
    srv = server()
    srv.receive_data(cli.associate())
    srv.receive_data(bytes.fromhex("c001c100030101200700ff0200"))
    assert isinstance(srv.next_event(), AssociationRequested)
    assert isinstance(srv.next_event(), GetRequested)
    assert srv.next_event() is NEED_DATA


@given(st.integers(12, 300), st.lists(st.binary(max_size=120), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_block_transfer_any_pdu_size(pdu: int, strings: list) -> None:
    cli = Association(Role.CLIENT, AssociationSettings(max_pdu_size=pdu))
    srv = server()
    associate(cli, srv)
    iid, request = cli.get(REGISTERS[0])
    server_event(srv, request)
    apdu = srv.respond_get(iid, [Typed(DataType.ARRAY, [
        Typed(DataType.OCTET_STRING, s) for s in strings])])
    for _ in range(10_000):
        assert len(apdu) <= pdu
        cli.receive_data(apdu)
        event = cli.next_event()
        if event is not NEED_DATA:
            break
        srv.receive_data(cli.data_to_send())
        assert srv.next_event() is NEED_DATA
        apdu = srv.data_to_send()
    assert event == GetResult(iid, (strings,))


def test_password_never_in_settings_repr():
    settings = AssociationSettings(authentication="lls", password=b"s3cr3t-22222222")
    assert "s3cr3t" not in repr(settings)
    assert settings.password == b"s3cr3t-22222222"
