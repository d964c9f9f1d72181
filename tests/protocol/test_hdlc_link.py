"""HDLC link state machine: a client and a server HdlcConnection talking to each other in memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.errors import DlmsError, LocalProtocolError, RemoteProtocolError
from tb_dlms.protocol.hdlc import (
    NEED_DATA,
    Connected,
    ConnectRequested,
    DataReceived,
    Disconnected,
    Frame,
    FrameKind,
    FrameRejected,
    HdlcAddress,
    HdlcConnection,
    HdlcFramer,
    LinkParameters,
    LinkState,
    Role,
    UnexpectedFrame,
    UnnumberedDataReceived,
    decode_frame,
    decode_parameters,
    encode_frame,
)
from tb_dlms.protocol.hdlc.link import MAX_GO_BACK

CLIENT = HdlcAddress(16)
SERVER = HdlcAddress(1, 17, 2)


def frames_of(data: bytes) -> list[Frame]:
    framer = HdlcFramer()
    framer.feed(data)
    out = []
    while (frame := framer.next_frame()) is not None:
        out.append(frame)
    assert framer.bad_frames == 0 and framer.discarded_bytes == 0
    return out


def drain(link: HdlcConnection) -> list:
    events = []
    while (event := link.next_event()) is not NEED_DATA:
        events.append(event)
    return events


class Wire:
    """Carries bytes both ways until both sides are quiet; records every frame on the way."""

    def __init__(self, client: HdlcConnection, server: HdlcConnection) -> None:
        self.client, self.server = client, server
        self.log: list[tuple[str, Frame]] = []

    def run(self, to_server: bytes = b"", to_client: bytes = b""):
        client_events, server_events = [], []
        for _ in range(500):
            if not to_server and not to_client:
                return client_events, server_events
            if to_server:
                self.log += [("C", f) for f in frames_of(to_server)]
                self.server.receive_data(to_server)
                to_server = b""
                server_events += drain(self.server)
                to_client += self.server.data_to_send()
            if to_client:
                self.log += [("S", f) for f in frames_of(to_client)]
                self.client.receive_data(to_client)
                to_client = b""
                client_events += drain(self.client)
                to_server += self.client.data_to_send()
        raise AssertionError("link did not go quiet")


DEFAULTS = LinkParameters()


def connected_pair(client_params=DEFAULTS, server_params=DEFAULTS):
    client = HdlcConnection(Role.CLIENT, CLIENT, SERVER, client_params)
    server = HdlcConnection(Role.SERVER, CLIENT, SERVER, server_params)
    wire = Wire(client, server)
    client_events, server_events = wire.run(to_server=client.connect())
    assert client.state is server.state is LinkState.CONNECTED
    assert len(client_events) == len(server_events) == 1
    wire.log.clear()
    return client, server, wire, client_events[0], server_events[0]


# -------------------------------------------------------------------------------- connection


def test_seed_snrm_and_disc_are_what_our_client_sends():
    # Seed document architecture-v2.es.md: SNRM and DISC to the Microstar meter (client 1, server 1,
    # default parameters, so the SNRM carries no information field).
    client = HdlcConnection(Role.CLIENT, HdlcAddress(1), HdlcAddress(1))
    assert client.connect() == bytes.fromhex("7E A0 07 03 03 93 8C 11 7E")
    assert client.state is LinkState.CONNECTING
    assert client.disconnect() == bytes.fromhex("7E A0 07 03 03 53 80 D7 7E")


def test_connect_negotiates_small_max_info():
    client_params = LinkParameters(max_info_tx=32, max_info_rx=32)
    server_params = LinkParameters(max_info_tx=512, max_info_rx=64, window_tx=1, window_rx=1)
    client = HdlcConnection(Role.CLIENT, CLIENT, SERVER, client_params)
    server = HdlcConnection(Role.SERVER, CLIENT, SERVER, server_params)
    snrm = client.connect()
    assert decode_parameters(decode_frame(snrm).info) == client_params
    server.receive_data(snrm)
    assert server.next_event() == ConnectRequested(LinkParameters(32, 32, 1, 1))
    assert server.next_event() is NEED_DATA
    ua = server.data_to_send()
    (ua_frame,) = frames_of(ua)
    assert ua_frame.kind is FrameKind.UA and ua_frame.destination == CLIENT
    assert decode_parameters(ua_frame.info) == LinkParameters(32, 32, 1, 1)
    client.receive_data(ua)
    assert client.next_event() == Connected(LinkParameters(32, 32, 1, 1))
    assert client.parameters == server.parameters.swapped()


def test_asymmetric_negotiation_is_seen_swapped_by_each_side():
    _, _, _, connected, requested = connected_pair(
        LinkParameters(max_info_tx=64, max_info_rx=256, window_tx=2, window_rx=3),
        LinkParameters(max_info_tx=128, max_info_rx=1024, window_tx=7, window_rx=7),
    )
    assert requested == ConnectRequested(LinkParameters(128, 64, 3, 2))
    assert connected == Connected(LinkParameters(64, 128, 2, 3))


def test_refused_connection_and_snrm_retransmission():
    client = HdlcConnection(Role.CLIENT, CLIENT, SERVER)
    snrm = client.connect()
    assert client.retransmit() == snrm
    client.receive_data(encode_frame(Frame(FrameKind.DM, CLIENT, SERVER)))
    assert client.next_event() == Disconnected("connection refused (DM)")
    assert client.state is LinkState.DISCONNECTED


# -------------------------------------------------------------------------- data and sequence


def _i_frames(log, side):
    return [f for who, f in log if who == side and f.kind is FrameKind.I]


def test_first_exchange_matches_seed_control_fields_and_fixes_nr():
    # Seed captures: AARQ 0x10 (N(S)=0 N(R)=0 P), AARE 0x30 (N(S)=0 N(R)=1 F), then the old system
    # sent the GET with 0x12 (N(R)=0, wrong); the right control field is 0x32 (N(S)=1 N(R)=1).
    client2 = HdlcConnection(Role.CLIENT, HdlcAddress(1), HdlcAddress(1))
    server2 = HdlcConnection(Role.SERVER, HdlcAddress(1), HdlcAddress(1))
    wire2 = Wire(client2, server2)
    wire2.run(to_server=client2.connect())
    aarq = client2.send_data(b"\x60\x1d")
    assert aarq[5] == 0x10
    _, (_request,) = wire2.run(to_server=aarq)
    aare = server2.send_data(b"\x61\x29")
    assert aare[5] == 0x30
    (response,), _ = wire2.run(to_client=aare)
    assert response == DataReceived(b"\x61\x29")
    assert client2.send_data(b"\xc0\x01")[5] == 0x32


def test_wraparound_over_many_exchanges():
    client, server, wire, _, _ = connected_pair()
    for n in range(20):
        request = bytes([0xC0, 0x01, n])
        _, server_events = wire.run(to_server=client.send_data(request))
        assert server_events == [DataReceived(request)]
        client_events, _ = wire.run(to_client=server.send_data(b"\xc4" + request))
        assert client_events == [DataReceived(b"\xc4" + request)]
    sent = _i_frames(wire.log, "C")
    answered = _i_frames(wire.log, "S")
    assert [f.ns for f in sent] == [n % 8 for n in range(20)]
    assert [f.nr for f in sent] == [n % 8 for n in range(20)]
    assert [f.ns for f in answered] == [n % 8 for n in range(20)]
    assert [f.nr for f in answered] == [(n + 1) % 8 for n in range(20)]
    assert all(f.poll_final and not f.segmented for f in sent + answered)
    assert not [f for _, f in wire.log if f.kind is FrameKind.RR]  # I frames acknowledge


def test_300_byte_apdus_cross_segmented_both_ways():
    params = LinkParameters(max_info_tx=32, max_info_rx=32)
    client, server, wire, _, _ = connected_pair(params, params)
    request = bytes(range(256)) + bytes(44)
    _, server_events = wire.run(to_server=client.send_data(request))
    assert server_events == [DataReceived(request)]
    segments = _i_frames(wire.log, "C")
    assert len(segments) == 10  # 3-byte LLC + 300 bytes in 32-byte pieces
    assert all(len(f.info) <= 32 for f in segments)
    assert [f.ns for f in segments] == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    assert [f.segmented for f in segments] == [True] * 9 + [False]
    assert segments[0].info[:3] == b"\xe6\xe6\x00"
    # Each segment but the last is answered by an RR acknowledging it, in order.
    order = [(who, f.kind, f.ns if f.kind is FrameKind.I else f.nr) for who, f in wire.log]
    expected = []
    for n in range(9):
        expected += [("C", FrameKind.I, n % 8), ("S", FrameKind.RR, (n + 1) % 8)]
    assert order == expected + [("C", FrameKind.I, 1)]

    wire.log.clear()
    response = bytes(reversed(request))
    client_events, _ = wire.run(to_client=server.send_data(response))
    assert client_events == [DataReceived(response)]
    answer = _i_frames(wire.log, "S")
    assert len(answer) == 10
    assert [f.ns for f in answer] == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    assert all(f.nr == 2 for f in answer)  # the client's 10 frames: V(R) = 10 mod 8
    rrs = [f for who, f in wire.log if who == "C"]
    assert [(f.kind, f.nr) for f in rrs] == [(FrameKind.RR, (n + 1) % 8) for n in range(9)]

    # The next request carries on from both counters.
    (next_frame,) = frames_of(client.send_data(b"\xc0"))
    assert (next_frame.ns, next_frame.nr) == (2, 2)


def test_window_larger_than_one():
    params = LinkParameters(max_info_tx=32, max_info_rx=32, window_tx=3, window_rx=3)
    client, server, wire, connected, _ = connected_pair(params, params)
    assert connected.parameters.window_tx == 3
    request = bytes(300)
    _, server_events = wire.run(to_server=client.send_data(request))
    assert server_events == [DataReceived(request)]
    kinds = [(who, f.kind, f.poll_final) for who, f in wire.log]
    burst = [("C", FrameKind.I, False), ("C", FrameKind.I, False), ("C", FrameKind.I, True)]
    rr = [("S", FrameKind.RR, True)]
    # 10 segments: three full windows acknowledged by one RR each, then the last segment.
    assert kinds == burst + rr + burst + rr + burst + rr + [("C", FrameKind.I, True)]
    client_events, _ = wire.run(to_client=server.send_data(request))
    assert client_events == [DataReceived(request)]


def test_byte_by_byte_gives_no_event_until_complete():
    client, server, _, _, _ = connected_pair()
    raw = client.send_data(b"\xc0\x01\x00\x03")
    for byte in raw[:-1]:
        server.receive_data(bytes([byte]))
        assert server.next_event() is NEED_DATA
    server.receive_data(raw[-1:])
    assert server.next_event() == DataReceived(b"\xc0\x01\x00\x03")


# ------------------------------------------------------------------ loss, duplicates, retransmit


def test_lost_response_retransmitted_request_is_not_delivered_twice():
    client, server, wire, _, _ = connected_pair()
    request = client.send_data(b"\xc0\x01")
    wire.run(to_server=request)
    lost_response = server.send_data(b"\xc4\x01")  # never reaches the client
    again = client.retransmit()
    assert again == request  # same N(S), same N(R)
    server.receive_data(again)
    assert server.next_event() is NEED_DATA  # duplicate: not delivered
    assert server.duplicate_frames == 1
    assert server.data_to_send() == lost_response  # acknowledged by repeating the answer
    client_events, _ = wire.run(to_client=lost_response)
    assert client_events == [DataReceived(b"\xc4\x01")]


def test_lost_rr_during_segmented_send():
    params = LinkParameters(max_info_tx=32, max_info_rx=32)
    client, server, wire, _, _ = connected_pair(params, params)
    first = client.send_data(bytes(100))
    server.receive_data(first)
    assert server.next_event() is NEED_DATA
    server.data_to_send()  # the RR is lost
    server.receive_data(client.retransmit())  # the client times out and repeats segment 0
    assert server.next_event() is NEED_DATA
    rr = server.data_to_send()
    assert [(f.kind, f.nr) for f in frames_of(rr)] == [(FrameKind.RR, 1)]
    _, server_events = wire.run(to_client=rr)
    assert server_events == [DataReceived(bytes(100))]  # segment 0 counted once


def test_lost_first_segment_of_response_recovered_by_repeated_request():
    params = LinkParameters(max_info_tx=32, max_info_rx=32)
    client, server, wire, _, _ = connected_pair(params, params)
    request = client.send_data(b"\xc0\x01")
    wire.run(to_server=request)
    server.send_data(bytes(50))  # segment 0 of the response is lost on the line
    assert client.retransmit() == request  # unacknowledged: the same I frame again
    client_events, _ = wire.run(to_server=request)
    assert client_events == [DataReceived(bytes(50))]
    assert server.duplicate_frames == 1


def test_lost_later_segment_of_response_recovered_by_rr_poll():
    params = LinkParameters(max_info_tx=32, max_info_rx=32)
    client, server, wire, _, _ = connected_pair(params, params)
    wire.run(to_server=client.send_data(b"\xc0\x01"))
    client.receive_data(server.send_data(bytes(50)))  # segment 0 arrives, acks the request
    assert client.next_event() is NEED_DATA
    client.data_to_send()  # its RR is lost
    poll = client.retransmit()  # nothing outstanding on the client side: RR poll
    assert [(f.kind, f.nr, f.poll_final) for f in frames_of(poll)] == [(FrameKind.RR, 1, True)]
    client_events, _ = wire.run(to_server=poll)
    assert client_events == [DataReceived(bytes(50))]
    assert client.retransmissions == 0


def test_retransmit_repeats_a_whole_window_with_the_same_ns():
    params = LinkParameters(max_info_tx=32, max_info_rx=32, window_tx=3, window_rx=3)
    client, _server, wire, _, _ = connected_pair(params, params)
    first = client.send_data(bytes(200))  # the burst is lost
    again = client.retransmit()
    assert again == first
    assert [(f.ns, f.poll_final) for f in frames_of(again)] == [(0, False), (1, False), (2, True)]
    assert client.retransmissions == 1
    _, server_events = wire.run(to_server=again)
    assert server_events == [DataReceived(bytes(200))]


def _rr(nr: int) -> bytes:
    return encode_frame(Frame(FrameKind.RR, CLIENT, SERVER, True, nr=nr))


def test_partial_acknowledgement_sends_the_rest_again_from_nr():
    # Issue 8: the meter answers the poll of burst 0,1,2 with RR N(R)=1: frames 1 and 2 were
    # lost, so they go again (same N(S)), followed by the next segment to fill the window.
    params = LinkParameters(max_info_tx=32, max_info_rx=32, window_tx=3, window_rx=3)
    client, server, wire, _, _ = connected_pair(params, params)
    request = bytes(200)  # 203 bytes with the LLC: 7 segments
    first = client.send_data(request)
    assert [f.ns for f in frames_of(first)] == [0, 1, 2]
    client.receive_data(_rr(1))
    assert client.next_event() is NEED_DATA
    again = frames_of(client.data_to_send())
    assert [(f.ns, f.poll_final, f.segmented) for f in again] == [
        (1, False, True), (2, False, True), (3, True, True)]
    assert [f.info for f in again[:2]] == [f.info for f in frames_of(first)[1:]]
    assert client.retransmissions == 1
    # The server got frame 0 only; with the go-back burst the rest flows, nothing twice.
    wire.run(to_server=encode_frame(frames_of(first)[0]))
    _, server_events = wire.run(to_server=b"".join(encode_frame(f) for f in again))
    assert server_events == [DataReceived(request)]
    assert server.duplicate_frames == 0


def test_partial_acknowledgement_by_a_busy_peer_sends_nothing():
    params = LinkParameters(max_info_tx=32, max_info_rx=32, window_tx=3, window_rx=3)
    client, _server, _, _, _ = connected_pair(params, params)
    client.send_data(bytes(200))
    client.receive_data(encode_frame(Frame(FrameKind.RNR, CLIENT, SERVER, True, nr=1)))
    assert client.next_event() is NEED_DATA
    assert client.data_to_send() == b""  # RNR: no I frame until it is ready again
    client.receive_data(_rr(1))
    assert client.next_event() is NEED_DATA
    assert [f.ns for f in frames_of(client.data_to_send())] == [1, 2, 3]


def test_partial_acknowledgement_without_progress_is_bounded():
    params = LinkParameters(max_info_tx=32, max_info_rx=32, window_tx=3, window_rx=3)
    client, _server, _, _, _ = connected_pair(params, params)
    client.send_data(bytes(200))
    client.receive_data(_rr(1))  # progress: frame 0 taken
    assert client.next_event() is NEED_DATA
    assert [f.ns for f in frames_of(client.data_to_send())] == [1, 2, 3]
    for _ in range(MAX_GO_BACK):
        client.receive_data(_rr(1))  # nothing more taken, again and again
        assert client.next_event() is NEED_DATA
        assert [f.ns for f in frames_of(client.data_to_send())] == [1, 2, 3]
    client.receive_data(_rr(1))
    with pytest.raises(RemoteProtocolError, match="took none of 3 frame"):
        client.next_event()
    assert client.retransmissions == MAX_GO_BACK + 1


@pytest.mark.parametrize("sender", ["server", "client"])
def test_new_apdu_with_a_lagging_nr_settles_the_previous_burst(sender):
    # Issue 8, found with gurux-dlms at window 3: it answers a two-frame AARE with a request
    # whose N(R) counts only the first frame. The peer has the whole APDU (it answered it), so
    # the next APDU must go out instead of failing "the previous APDU is not acknowledged yet".
    params = LinkParameters(max_info_tx=32, max_info_rx=32, window_tx=3, window_rx=3)
    client, server, _, _, _ = connected_pair(params, params)
    if sender == "server":
        server.receive_data(client.send_data(b"\x01"))
        assert drain(server) == [DataReceived(b"\x01")]
        us, peer_address, them = server, (SERVER, CLIENT), b"\xe6\xe6\x00"
    else:
        us, peer_address, them = client, (CLIENT, SERVER), b"\xe6\xe7\x00"
    burst = frames_of(us.send_data(bytes(40)))  # two frames
    assert len(burst) == 2
    vr = 1 if sender == "server" else 0
    lagging = Frame(FrameKind.I, *peer_address, True, vr, burst[0].ns + 1, False, them + b"\x02")
    us.receive_data(encode_frame(lagging))
    assert drain(us) == [DataReceived(b"\x02")]
    answer = frames_of(us.send_data(b"\x03"))  # no LocalProtocolError
    assert [(f.ns, f.info) for f in answer] == [((burst[-1].ns + 1) & 7, us._llc_tx + b"\x03")]


def test_rnr_holds_segments_until_rr():
    params = LinkParameters(max_info_tx=32, max_info_rx=32)
    client, _server, _, _, _ = connected_pair(params, params)
    client.send_data(bytes(100))
    client.receive_data(encode_frame(Frame(FrameKind.RNR, CLIENT, SERVER, True, nr=1)))
    assert client.next_event() is NEED_DATA
    assert client.data_to_send() == b""  # the server is busy: nothing more
    assert [f.kind for f in frames_of(client.retransmit())] == [FrameKind.RR]  # poll it
    client.receive_data(encode_frame(Frame(FrameKind.RR, CLIENT, SERVER, True, nr=1)))
    assert client.next_event() is NEED_DATA
    (segment,) = frames_of(client.data_to_send())
    assert (segment.kind, segment.ns, segment.segmented) == (FrameKind.I, 1, True)


def test_rr_poll_with_nothing_to_send_is_answered_with_rr():
    client, _server, wire, _, _ = connected_pair()
    wire.run(to_server=client.retransmit())
    assert [(who, f.kind) for who, f in wire.log] == [("C", FrameKind.RR), ("S", FrameKind.RR)]


def test_out_of_sequence_frame_is_reported_and_rr_sent():
    _client, server, _, _, _ = connected_pair()
    bogus = encode_frame(Frame(FrameKind.I, SERVER, CLIENT, True, 3, 0, False, b"\xe6\xe6\x00\x01"))
    server.receive_data(bogus)
    event = server.next_event()
    assert isinstance(event, UnexpectedFrame) and "N(S)=3" in event.reason
    assert [(f.kind, f.nr) for f in frames_of(server.data_to_send())] == [(FrameKind.RR, 0)]


def test_invalid_nr_is_reported_and_changes_nothing():
    client, server, wire, _, _ = connected_pair()
    bogus = encode_frame(Frame(FrameKind.I, SERVER, CLIENT, True, 0, 5, False, b"\xe6\xe6\x00\x01"))
    server.receive_data(bogus)
    event = server.next_event()
    assert isinstance(event, UnexpectedFrame) and "N(R)=5" in event.reason
    _, server_events = wire.run(to_server=client.send_data(b"\x01"))
    assert server_events == [DataReceived(b"\x01")]


# ---------------------------------------------------------------------------------- disconnect


def test_disconnect():
    client, server, wire, _, _ = connected_pair()
    client_events, server_events = wire.run(to_server=client.disconnect())
    assert server_events == [Disconnected("peer sent DISC")]
    assert client_events == [Disconnected("disconnected")]
    assert client.state is server.state is LinkState.DISCONNECTED
    # A DISC to a disconnected server is answered with DM.
    client2 = HdlcConnection(Role.CLIENT, CLIENT, SERVER)
    client2.connect()
    disc = client2.disconnect()
    server.receive_data(disc)
    assert server.next_event() is NEED_DATA
    dm = server.data_to_send()
    assert frames_of(dm)[0].kind is FrameKind.DM
    client2.receive_data(dm)
    assert client2.next_event() == Disconnected("disconnected (peer answered DM)")


def test_server_in_ndm_answers_i_frames_with_dm():
    server = HdlcConnection(Role.SERVER, CLIENT, SERVER)
    server.receive_data(encode_frame(Frame(FrameKind.I, SERVER, CLIENT, info=b"\xe6\xe6\x00\x01")))
    assert isinstance(server.next_event(), UnexpectedFrame)
    assert frames_of(server.data_to_send())[0].kind is FrameKind.DM


def test_eof():
    client, _, _, _, _ = connected_pair()
    client.receive_data(b"")
    assert client.next_event() == Disconnected("connection closed by peer (EOF)")
    assert client.state is LinkState.CLOSED
    assert client.next_event() is NEED_DATA
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"\x7e")
    with pytest.raises(LocalProtocolError):
        client.send_data(b"\x01")


# ------------------------------------------------------------------------------ local errors


def test_illegal_calls_raise_local_protocol_error():
    client = HdlcConnection(Role.CLIENT, CLIENT, SERVER)
    server = HdlcConnection(Role.SERVER, CLIENT, SERVER)
    with pytest.raises(LocalProtocolError, match="send_data"):
        client.send_data(b"\x01")
    with pytest.raises(LocalProtocolError, match="disconnect"):
        client.disconnect()
    with pytest.raises(LocalProtocolError, match="client role"):
        server.connect()
    client.connect()
    with pytest.raises(LocalProtocolError, match="connect"):
        client.connect()
    with pytest.raises(LocalProtocolError, match="1 byte"):
        HdlcConnection(Role.CLIENT, HdlcAddress(1, 2, 2), SERVER)
    client, server, _, _, _ = connected_pair()
    client.send_data(b"\x01")
    with pytest.raises(LocalProtocolError, match="not acknowledged"):
        client.send_data(b"\x02")


# --------------------------------------------------------------------------- remote problems


def test_wrong_llc_header_raises_remote_protocol_error():
    client, _server, wire, _, _ = connected_pair()
    wire.run(to_server=client.send_data(b"\xc0"))
    bad = encode_frame(Frame(FrameKind.I, CLIENT, SERVER, True, 0, 1, False, b"\xe6\xe6\x00\xc4"))
    client.receive_data(bad)
    with pytest.raises(RemoteProtocolError, match="LLC"):
        client.next_event()
    # The frame is consumed, the link stays up and goes on with the next frame.
    assert client.state is LinkState.CONNECTED
    ui = Frame(FrameKind.UI, CLIENT, SERVER, info=b"\xe6\xe7\x00\x0f")
    client.receive_data(encode_frame(ui))
    assert client.next_event() == UnnumberedDataReceived(b"\x0f")


def test_oversized_reassembly_is_refused_once():
    params = LinkParameters(max_info_tx=32, max_info_rx=32)
    client = HdlcConnection(Role.CLIENT, CLIENT, SERVER, params)
    server = HdlcConnection(Role.SERVER, CLIENT, SERVER, params, max_apdu=50)
    wire = Wire(client, server)
    wire.run(to_server=client.connect())
    with pytest.raises(RemoteProtocolError, match="larger than 50"):
        wire.run(to_server=client.send_data(bytes(100)))
    assert server.state is LinkState.CONNECTED


def test_frmr_and_ui_events():
    client, _server, _, _, _ = connected_pair()
    frmr = Frame(FrameKind.FRMR, CLIENT, SERVER, info=b"\x10\x00\x01")
    client.receive_data(encode_frame(frmr))
    assert client.next_event() == FrameRejected(frmr)
    ui = Frame(FrameKind.UI, CLIENT, SERVER, info=b"\xe6\xe7\x00\x0f\x00\x00\x00\x01")
    client.receive_data(encode_frame(ui))
    assert client.next_event() == UnnumberedDataReceived(b"\x0f\x00\x00\x00\x01")


def test_unexpected_ua_and_command_from_server():
    client, _, _, _, _ = connected_pair()
    client.receive_data(encode_frame(Frame(FrameKind.UA, CLIENT, SERVER)))
    client.receive_data(encode_frame(Frame(FrameKind.SNRM, CLIENT, SERVER)))
    events = drain(client)
    assert [type(e) for e in events] == [UnexpectedFrame, UnexpectedFrame]
    assert client.state is LinkState.CONNECTED


# ------------------------------------------------------------------------------------ multidrop


def test_two_servers_on_one_bus():
    # RS-485 multidrop: meters 17 and 18 hear every byte; only the addressed one reacts.
    meter17 = HdlcConnection(Role.SERVER, CLIENT, HdlcAddress(1, 17, 2))
    meter18 = HdlcConnection(Role.SERVER, CLIENT, HdlcAddress(1, 18, 2))
    to17 = HdlcConnection(Role.CLIENT, CLIENT, HdlcAddress(1, 17, 2))
    to18 = HdlcConnection(Role.CLIENT, CLIENT, HdlcAddress(1, 18, 2))

    def bus(data: bytes):
        replies = []
        for meter in (meter17, meter18):
            meter.receive_data(data)
            replies.append((drain(meter), meter.data_to_send()))
        return replies

    (ev17, ua17), (ev18, ua18) = bus(to17.connect())
    assert isinstance(ev17[0], ConnectRequested) and ua17
    assert ev18 == [] and ua18 == b""
    assert meter18.ignored_frames == 1 and meter18.state is LinkState.DISCONNECTED
    # Both clients listen on the same bus too: the UA of meter 17 is ignored by the client of 18.
    for link in (to17, to18):
        link.receive_data(ua17)
    assert isinstance(to17.next_event(), Connected)
    assert to18.next_event() is NEED_DATA and to18.ignored_frames == 1
    (ev17, _), (ev18, _) = bus(to17.send_data(b"\xc0\x01"))
    assert ev17 == [DataReceived(b"\xc0\x01")] and ev18 == []
    (ev17, _), (ev18, ua18) = bus(to18.connect())
    assert ev17 == [] and isinstance(ev18[0], ConnectRequested) and ua18
    assert meter17.ignored_frames == 1 and meter17.state is LinkState.CONNECTED


# ---------------------------------------------------------------------------------------- fuzz


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6), st.booleans())
def test_fuzz_only_dlms_errors_escape(chunks, as_server):
    client, server, _, _, _ = connected_pair()
    link = server if as_server else client
    good = [
        encode_frame(Frame(FrameKind.I, SERVER, CLIENT, True, 0, 0, False, b"\xe6\xe6\x00\x01")),
        encode_frame(Frame(FrameKind.RR, CLIENT, SERVER, True, nr=2)),
        encode_frame(Frame(FrameKind.I, CLIENT, SERVER, True, 0, 0, True, b"\xe6\xe7")),
    ]
    for chunk in chunks:
        link.receive_data(chunk + good[len(chunk) % 3])
        try:
            drain(link)
        except DlmsError:
            pass
        link.data_to_send()
