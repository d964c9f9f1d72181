"""Interoperability of our HDLC link and wrapper with gurux_dlms (an independent implementation).

Gurux plays the client; our HdlcConnection plays the meter (server role). Gurux's own Python
server classes are not used (they fail on the first frame). gurux_dlms is GPLv2 and imported here,
in tests only, never by the package.
"""

from __future__ import annotations

import pytest

gurux = pytest.importorskip("gurux_dlms")

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.objects import GXDLMSData
from tb_dlms.protocol.hdlc import (
    NEED_DATA,
    ConnectRequested,
    DataReceived,
    Disconnected,
    FrameKind,
    HdlcAddress,
    HdlcConnection,
    HdlcFramer,
    LinkParameters,
    LinkState,
    Role,
    decode_frame,
)
from tb_dlms.protocol.wrapper import WrapperFramer, WrapperPdu, encode_wrapper

pytestmark = pytest.mark.interop

# Green Book AARE example (LN referencing, no security, association accepted, max PDU 0x04C8).
AARE = bytes.fromhex(
    "61 29 A1 09 06 07 60 85 74 05 08 01 01 A2 03 02 01 00 A3 05 A1 03 02 01 00"
    " BE 10 04 0E 08 00 06 5F 1F 04 00 00 1E 1D 04 C8 00 07"
)


def gurux_client(max_info: int = 32, interface=InterfaceType.HDLC) -> GXDLMSClient:
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, interface)
    client.hdlcSettings.maxInfoTX = max_info
    client.hdlcSettings.maxInfoRX = max_info
    return client


def meter(limits: LinkParameters) -> HdlcConnection:
    return HdlcConnection(Role.SERVER, HdlcAddress(16), HdlcAddress(1), limits)


def drain(link: HdlcConnection) -> list:
    events = []
    while (event := link.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def gurux_parse(client: GXDLMSClient, raw: bytes, reply: GXReplyData | None = None) -> GXReplyData:
    reply = reply if reply is not None else GXReplyData()
    assert client.getData(GXByteBuffer(raw), reply)
    return reply


def frames(raw: bytes):
    framer = HdlcFramer()
    framer.feed(raw)
    out = []
    while (frame := framer.next_frame()) is not None:
        out.append(frame)
    return out


def connect(client: GXDLMSClient, server: HdlcConnection) -> None:
    server.receive_data(bytes(client.snrmRequest()))
    drain(server)
    client.parseUAResponse(gurux_parse(client, server.data_to_send()).data)


def send_segmented(client: GXDLMSClient, server: HdlcConnection, requests) -> list:
    """Gurux sends its frames one by one, each after our answer (RR) like on a real line."""
    events = []
    for raw in requests:
        server.receive_data(bytes(raw))
        events += drain(server)
        answer = server.data_to_send()
        if answer:
            gurux_parse(client, answer)
    return events


def respond(client: GXDLMSClient, server: HdlcConnection, apdu: bytes):
    """Our segmented answer, paced by Gurux's receiverReady (RR); returns its reply, frame count."""
    out = server.send_data(apdu)
    reply = GXReplyData()
    count = 0
    while True:
        count += 1
        gurux_parse(client, out, reply)
        if not reply.isMoreData():
            return reply, count
        server.receive_data(bytes(client.receiverReady(reply)))
        assert drain(server) == []
        out = server.data_to_send()


def test_gurux_snrm_decodes_and_our_ua_is_accepted():
    client = gurux_client(max_info=64)
    snrm = decode_frame(bytes(client.snrmRequest()))
    assert snrm.kind is FrameKind.SNRM and snrm.poll_final
    assert (snrm.destination, snrm.source) == (HdlcAddress(1), HdlcAddress(16))

    server = meter(LinkParameters(max_info_tx=32, max_info_rx=48))
    server.receive_data(bytes(client.snrmRequest()))
    assert drain(server) == [ConnectRequested(LinkParameters(32, 48, 1, 1))]
    client.parseUAResponse(gurux_parse(client, server.data_to_send()).data)
    # Gurux now sends at most what we receive and expects at most what we send.
    settings = client.hdlcSettings
    assert (settings.maxInfoTX, settings.maxInfoRX) == (48, 32)
    assert (settings.windowSizeTX, settings.windowSizeRX) == (1, 1)


def test_gurux_segmented_aarq_is_reassembled_with_rrs():
    client = gurux_client(max_info=32)
    server = meter(LinkParameters(32, 32))
    connect(client, server)
    requests = [bytes(f) for f in client.aarqRequest()]
    assert len(requests) >= 2  # the AARQ does not fit in 32 bytes
    gurux_frames = [decode_frame(raw) for raw in requests]
    assert [f.segmented for f in gurux_frames] == [True] * (len(requests) - 1) + [False]
    assert [f.ns for f in gurux_frames] == list(range(len(requests)))

    answers = []
    events = []
    for raw in requests:
        server.receive_data(raw)
        events += drain(server)
        answers.append(server.data_to_send())
    # One RR acknowledging each segment but the last; Gurux accepts each of them.
    for n, answer in enumerate(answers[:-1]):
        (rr,) = frames(answer)
        assert (rr.kind, rr.nr, rr.poll_final) == (FrameKind.RR, n + 1, True)
        gurux_parse(client, answer)
    assert answers[-1] == b""
    payload = b"".join(f.info for f in gurux_frames)
    assert payload[:3] == b"\xe6\xe6\x00"
    assert events == [DataReceived(payload[3:])]
    assert events[0].apdu[0] == 0x60  # AARQ tag


def test_our_segmented_responses_are_reassembled_by_gurux():
    client = gurux_client(max_info=32)
    server = meter(LinkParameters(32, 32))
    connect(client, server)
    assert len(send_segmented(client, server, client.aarqRequest())) == 1
    reply, count = respond(client, server, AARE)
    assert count == 2
    client.parseAareResponse(reply.data)  # raises if Gurux does not see an accepted AARE
    assert client.maxReceivePDUSize == 0x04C8

    # GET of a 296-byte octet string: 10 frames, N(S) wraps past 7 on both sides.
    request = client.read(GXDLMSData("0.0.96.1.0.255"), 2)
    events = send_segmented(client, server, request)
    assert len(events) == 1 and events[0].apdu[:2] == b"\xc0\x01"
    value = bytes(range(256)) + bytes(40)
    response = bytes.fromhex("C4 01 C1 00 09 82 01 28") + value
    reply, count = respond(client, server, response)
    assert count == 10
    assert bytes(reply.value) == value

    disc = bytes(client.disconnectRequest())
    server.receive_data(disc)
    assert drain(server) == [Disconnected("peer sent DISC")]
    (ua,) = frames(server.data_to_send())
    assert ua.kind is FrameKind.UA and server.state is LinkState.DISCONNECTED


def test_gurux_wrapper_frames_match_ours():
    client = gurux_client(interface=InterfaceType.WRAPPER)
    (raw,) = [bytes(f) for f in client.aarqRequest()]
    framer = WrapperFramer()
    framer.feed(raw)
    pdu = framer.next_pdu()
    assert (pdu.source, pdu.destination) == (16, 1) and pdu.apdu[0] == 0x60
    assert encode_wrapper(pdu.apdu, 16, 1) == raw
    # And Gurux reads our wrapper PDU back.
    reply = gurux_parse(client, WrapperPdu(1, 16, AARE).encode())
    client.parseAareResponse(reply.data)
    assert client.maxReceivePDUSize == 0x04C8
