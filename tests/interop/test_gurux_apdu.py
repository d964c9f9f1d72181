"""Cross-checks of our APDUs and Association against gurux_dlms (an independent implementation).

Gurux is imported here only (test-only dependency). Its client runs with InterfaceType.PDU, so it
produces and parses bare APDUs; GXDLMSTranslator turns PDUs into XML (an independent decoder for
what we produce) and XML into PDUs (Gurux-built responses for our client). GXDLMSServer is not
used: Gurux's Python server classes crash on the first frame.
"""

from __future__ import annotations

from typing import Any

import pytest

gurux = pytest.importorskip("gurux_dlms")

from gurux_dlms import (
    GXByteBuffer,
    GXDLMSClient,
    GXDLMSException,
    GXDLMSTranslator,
    GXReplyData,
)
from gurux_dlms.enums import Authentication as GAuth
from gurux_dlms.enums import Conformance as GConformance
from gurux_dlms.enums import DataType as GDataType
from gurux_dlms.enums import InterfaceType, TranslatorOutputType
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.objects import (
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSRegister,
)
from tb_dlms.protocol.apdu import (
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    MethodDescriptor,
    SelectiveAccess,
)
from tb_dlms.protocol.apdu.acse import AcseServiceUserDiagnostic
from tb_dlms.protocol.apdu.xdlms import Conformance
from tb_dlms.protocol.association import (
    NEED_DATA,
    Associated,
    Association,
    AssociationRequested,
    AssociationSettings,
    GetRequested,
    GetResult,
    Role,
)
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.obis import Obis

pytestmark = pytest.mark.interop

SERVER_CONFORMANCE = Conformance(0x00FFFF) & ~Conformance.ATTRIBUTE0_SUPPORTED_WITH_SET
CODES = ("1.1.32.7.0.255", "1.1.52.7.0.255", "1.1.72.7.0.255", "1.1.31.7.0.255",
         "1.1.51.7.0.255", "1.1.71.7.0.255", "1.1.14.7.0.255", "1.1.1.7.0.255", "1.1.1.8.0.255")
U16 = DataType.LONG_UNSIGNED


def one(frames: Any) -> bytes:
    """Gurux returns lists (of lists) of bytearrays; with InterfaceType.PDU there is one APDU."""
    while isinstance(frames, list):
        assert len(frames) == 1
        frames = frames[0]
    return bytes(frames)


def gurux_client(auth: Any = GAuth.NONE, password: Any = None, client: int = 16,
                 pdu: int = 0xFFFF) -> GXDLMSClient:
    c = GXDLMSClient(True, client, 1, auth, password, InterfaceType.PDU)
    c.maxReceivePDUSize = pdu
    return c


def our_server(**kw: Any) -> Association:
    kw.setdefault("conformance", SERVER_CONFORMANCE)
    return Association(Role.SERVER, AssociationSettings(**kw))


def serve(srv: Association, apdu: bytes) -> Any:
    srv.receive_data(apdu)
    event = srv.next_event()
    assert srv.next_event() is NEED_DATA
    return event


def associate(c: GXDLMSClient, srv: Association) -> AssociationRequested:
    event = serve(srv, one(c.aarqRequest()))
    assert isinstance(event, AssociationRequested)
    c.parseAareResponse(GXByteBuffer(srv.data_to_send()))
    return event


def gurux_parse(c: GXDLMSClient, apdu: bytes) -> GXReplyData:
    reply = GXReplyData()
    assert c.getData(GXByteBuffer(apdu), reply)
    return reply


def xml(apdu: bytes) -> str:
    return GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML).pduToXml(GXByteBuffer(apdu))


def from_xml(text: str) -> bytes:
    buf = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML).xmlToPdu(text)
    return bytes(buf.array())


# ---- association -------------------------------------------------------------------------------
def test_gurux_aarq_none_accepted_and_our_aare_parsed_by_gurux() -> None:
    c, srv = gurux_client(), our_server(max_pdu_size=1024)
    event = associate(c, srv)
    assert event.accepted and event.mechanism == 0
    assert event.client_max_pdu_size == 0xFFFF
    # Gurux keeps the conformance bits in reversed order; compare by name.
    for name in ("GET", "SET", "ACTION", "MULTIPLE_REFERENCES", "SELECTIVE_ACCESS",
                 "BLOCK_TRANSFER_WITH_GET_OR_READ"):
        assert c.negotiatedConformance & getattr(GConformance, name), name
    assert not c.negotiatedConformance & GConformance.GENERAL_PROTECTION
    # Gurux adopts the server's max receive PDU size from our InitiateResponse.
    assert c.maxReceivePDUSize == 1024


@pytest.mark.parametrize("password", ["2", "22222222", "p" * 40])
def test_gurux_aarq_lls_accepted(password: str) -> None:
    c = gurux_client(GAuth.LOW, password, client=1)
    srv = our_server(authentication="lls", password=password.encode())
    assert associate(c, srv).accepted


def test_gurux_lls_wrong_password_rejected_and_gurux_understands_why() -> None:
    c = gurux_client(GAuth.LOW, "22222223", client=1)
    srv = our_server(authentication="lls", password=b"22222222")
    event = serve(srv, one(c.aarqRequest()))
    assert not event.accepted
    assert event.diagnostic == AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE
    with pytest.raises(GXDLMSException, match="(?i)authentication failure"):
        c.parseAareResponse(GXByteBuffer(srv.data_to_send()))


def test_our_aarq_and_rlrq_decoded_by_gurux_translator() -> None:
    cli = Association(Role.CLIENT, AssociationSettings("lls", b"22222222"))
    text = xml(cli.associate())
    assert "<AssociationRequest>" in text
    assert 'Value="Low"' in text or "Low" in text
    assert "3232323232323232" in text  # the password, as Gurux reads it back
    assert "<GetRequest>" not in text


# ---- GET / SET / ACTION: Gurux requests, our server -----------------------------------------
@pytest.fixture
def gurux_pair() -> tuple[GXDLMSClient, Association]:
    c, srv = gurux_client(), our_server()
    associate(c, srv)
    return c, srv


def test_get_normal(gurux_pair) -> None:
    c, srv = gurux_pair
    reg = GXDLMSRegister("1.1.32.7.0.255")
    event = serve(srv, one(c.read(reg, 2)))
    assert event == GetRequested(event.invoke_id, (
        (AttributeDescriptor(3, Obis.parse("1-1:32.7.0.255"), 2), None),))
    reply = gurux_parse(c, srv.respond_get(event.invoke_id, [Typed(U16, 2301)]))
    assert reply.value == 2301 and reply.error == 0


def test_get_error_result(gurux_pair) -> None:
    c, srv = gurux_pair
    event = serve(srv, one(c.read(GXDLMSRegister("1.1.32.7.0.255"), 2)))
    apdu = srv.respond_get(event.invoke_id, [DataAccessResult.OBJECT_UNDEFINED])
    reply = GXReplyData()
    try:
        c.getData(GXByteBuffer(apdu), reply)
    except GXDLMSException:
        pass  # some Gurux versions raise for error results
    assert reply.error == DataAccessResult.OBJECT_UNDEFINED


def test_get_with_list_of_nine_registers(gurux_pair) -> None:
    c, srv = gurux_pair
    regs = [GXDLMSRegister(code) for code in CODES]
    items = [(r, 2) for r in regs[:8]] + [(regs[8], 3)]
    event = serve(srv, one(c.readList(items)))
    assert event.with_list and len(event.items) == 9
    assert [str(d.obis) for d, _ in event.items] == [
        str(Obis.parse(code)) for code in CODES]
    assert [d.attribute for d, _ in event.items] == [2] * 8 + [3]
    results: list[Any] = [Typed(U16, 2300 + i) for i in range(8)]
    results.append(Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, 0),
                                              Typed(DataType.ENUM, 30))))
    reply = gurux_parse(c, srv.respond_get(event.invoke_id, results))
    c.updateValues(items, reply.value)
    assert [r.value for r in regs[:8]] == list(range(2300, 2308))
    assert (regs[8].scaler, regs[8].unit) == (1, 30)


def test_set_and_action(gurux_pair) -> None:
    c, srv = gurux_pair
    data = GXDLMSData("0.0.96.1.0.255")
    data.value = "ABC"
    event = serve(srv, one(c.write(data, 2)))
    (descriptor, access, value), = event.items
    assert (descriptor.class_id, str(descriptor.obis), descriptor.attribute) == (
        1, "0-0:96.1.0.255", 2)
    assert value == Typed(DataType.VISIBLE_STRING, "ABC") and access is None
    assert gurux_parse(c, srv.respond_set(event.invoke_id, DataAccessResult.SUCCESS)).error == 0

    relay = GXDLMSDisconnectControl("0.0.96.3.10.255")
    event = serve(srv, one(relay.remoteDisconnect(c)))
    assert event.descriptor == MethodDescriptor(70, Obis.parse("0-0:96.3.10.255"), 1)
    assert event.parameters == Typed(DataType.INTEGER, 0)
    reply = gurux_parse(c, srv.respond_action(event.invoke_id, ActionResult.SUCCESS))
    assert reply.error == 0


def test_our_server_blocks_reassembled_by_gurux() -> None:
    c, srv = gurux_client(pdu=64), our_server()
    associate(c, srv)
    event = serve(srv, one(c.read(GXDLMSData("0.0.96.1.0.255"), 2)))
    payload = bytes(range(200))
    apdu = srv.respond_get(event.invoke_id, [Typed(DataType.OCTET_STRING, payload)])
    reply, blocks = GXReplyData(), 1
    while True:
        assert len(apdu) <= 64
        c.getData(GXByteBuffer(apdu), reply)
        if not reply.isMoreData():
            break
        assert serve_next(srv, one(c.receiverReady(reply)))
        apdu = srv.data_to_send()
        blocks += 1
    assert blocks == 4 and bytes(reply.value) == payload


def serve_next(srv: Association, apdu: bytes) -> bool:
    srv.receive_data(apdu)
    return srv.next_event() is NEED_DATA  # GET-next is served without an event


# ---- our client, Gurux-built responses --------------------------------------------------------
def _associated_client(pdu: int = 0xFFFF) -> Association:
    cli, srv = Association(Role.CLIENT, AssociationSettings(max_pdu_size=pdu)), our_server()
    srv.receive_data(cli.associate())
    srv.next_event()
    cli.receive_data(srv.data_to_send())
    assert isinstance(cli.next_event(), Associated)
    return cli


def test_gurux_translator_built_blocks_reassembled_by_our_client() -> None:
    # Two GetResponse-with-DataBlock APDUs written as Gurux XML (element names as Gurux's own
    # pduToXml prints them) and encoded by GXDLMSTranslator.xmlToPdu. The raw data joined is
    # the A-XDR octet-string 09 0A 00..09, split 5 + 7 bytes (Green Book: raw-data carries the
    # encoded Data, cut anywhere).
    cli = _associated_client()
    iid, _ = cli.get(AttributeDescriptor(1, Obis.parse("0-0:96.1.0.255"), 2))
    raw = "090a00010203040506070809"

    def block(last: int, number: int, chunk: str) -> bytes:
        return from_xml(
            f'<GetResponse><GetResponsewithDataBlock><InvokeIdAndPriority Value="C{iid:X}" />'
            f'<Result><LastBlock Value="{last:02X}" /><BlockNumber Value="{number:08X}" />'
            f'<Result><RawData Value="{chunk}" /></Result></Result>'
            "</GetResponsewithDataBlock></GetResponse>")

    cli.receive_data(block(0, 1, raw[:10]))
    assert cli.next_event() is NEED_DATA
    ack = cli.data_to_send()
    assert "<GetRequestForNextDataBlock>" in xml(ack) and 'Value="00000001"' in xml(ack)
    cli.receive_data(block(1, 2, raw[10:]))
    assert cli.next_event() == GetResult(iid, (bytes(range(10)),))


def test_gurux_built_normal_response_decoded_by_our_client() -> None:
    # GXDLMSTranslator.xmlToPdu writes its own invoke id (1): our client's first request is 1.
    cli = _associated_client()
    iid, _ = cli.get(AttributeDescriptor(3, Obis.parse("1-1:32.7.0.255"), 3))
    assert iid == 1
    apdu = from_xml(
        '<GetResponse><GetResponseNormal><InvokeIdAndPriority Value="C1" /><Result><Data>'
        '<Structure Qty="02"><Int8 Value="FF" /><Enum Value="23" /></Structure>'
        "</Data></Result></GetResponseNormal></GetResponse>")
    cli.receive_data(apdu)
    assert cli.next_event() == GetResult(iid, ((-1, 35),))


def gurux_data(kind: Any, value: Any) -> bytes:
    """Gurux's own A-XDR encoding of one value."""
    buf = GXByteBuffer()
    _GXCommon.setData(None, buf, kind, value)
    return bytes(buf.array())


def test_gurux_encoded_with_list_response_decoded_by_our_client() -> None:
    # Gurux's translator cannot encode a GetResponseWithList from XML (it fails on its own
    # output), so the framing is written by hand after the Green Book (C4 03 iip, count, then
    # per item 00 Data or 01 data-access-result) around values encoded by Gurux.
    cli = _associated_client()
    iid, _ = cli.get_with_list([AttributeDescriptor(3, Obis.parse(code), 2) for code in CODES])
    items = [b"\x00" + gurux_data(GDataType.UINT16, 2300 + i) for i in range(8)]
    items.append(b"\x01\x04")  # object-undefined
    cli.receive_data(bytes((0xC4, 0x03, 0xC0 | iid, 9)) + b"".join(items))
    assert cli.next_event() == GetResult(
        iid, tuple(range(2300, 2308)) + (DataAccessResult.OBJECT_UNDEFINED,))


# ---- our requests, decoded by GXDLMSTranslator ------------------------------------------------
def test_our_requests_decoded_by_gurux_translator() -> None:
    cli = _associated_client()
    _, get = cli.get(AttributeDescriptor(3, Obis.parse("1-1:32.7.0.255"), 2))
    text = xml(get)
    assert "<GetRequestNormal>" in text and 'Value="0101200700FF"' in text
    assert '<ClassId Value="0003" />' in text and '<AttributeId Value="02" />' in text
    cli.abandon()
    _, get_list = cli.get_with_list([AttributeDescriptor(3, Obis.parse(c), 2) for c in CODES])
    text = xml(get_list)
    assert "<GetRequestWithList>" in text and text.count("<AttributeDescriptor>") == 9
    cli.abandon()
    entry = Typed(DataType.STRUCTURE, (Typed(DataType.DOUBLE_LONG_UNSIGNED, 1),
                                       Typed(DataType.DOUBLE_LONG_UNSIGNED, 5),
                                       Typed(U16, 1), Typed(U16, 0)))
    _, sel = cli.get(AttributeDescriptor(7, Obis.parse("1-0:99.1.0.255"), 2),
                     SelectiveAccess(2, entry))
    text = xml(sel)
    assert '<AccessSelector Value="02" />' in text and '<UInt32 Value="00000005" />' in text
    cli.abandon()
    _, set_ = cli.set(AttributeDescriptor(1, Obis.parse("0-0:96.1.0.255"), 2), "ABC")
    text = xml(set_)
    assert "<SetRequestNormal>" in text and '<String Value="ABC" />' in text
    cli.abandon()
    _, act = cli.action(MethodDescriptor(70, Obis.parse("0-0:96.3.10.255"), 1),
                        Typed(DataType.INTEGER, 0))
    text = xml(act)
    assert "<ActionRequestNormal>" in text and '<MethodId Value="01" />' in text
    cli.abandon()
    assert '<Reason Value="Normal" />' in xml(cli.release())
