"""protocol/push_stream.py: the bytes of a pushing meter cut into APDUs (wrapper PDUs, HDLC UI
frames), on frames Gurux builds (an independent implementation; test-only) and on hostile input."""

from __future__ import annotations

import datetime

import pytest
from tb_dlms.protocol.hdlc.address import HdlcAddress
from tb_dlms.protocol.hdlc.frame import Frame, FrameKind, encode_frame
from tb_dlms.protocol.push import decode_data_notification
from tb_dlms.protocol.push_stream import PushedApdu, PushStream, StreamProblem
from tb_dlms.protocol.wrapper import encode_wrapper

gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms import GXByteBuffer, GXDLMSNotify  # noqa: E402
from gurux_dlms.enums import DataType as GxType  # noqa: E402
from gurux_dlms.enums import InterfaceType  # noqa: E402

WHEN = datetime.datetime(2026, 12, 4, 10, 0, 0)
CLIENT = HdlcAddress(0x10)


def gurux_message(interface: InterfaceType, server: int, value: int) -> bytes:
    """One data-notification as a Gurux meter at ``server`` frames it for ``interface``."""
    notify = GXDLMSNotify(True, 1, server, interface)
    body = GXByteBuffer()
    body.setUInt8(GxType.UINT32)
    body.setUInt32(value)
    (message,) = notify.generateDataNotificationMessages(WHEN, body)
    return bytes(message)


def apdus(events: list[object]) -> list[PushedApdu]:
    return [e for e in events if isinstance(e, PushedApdu)]


def ui(source: HdlcAddress, info: bytes, segmented: bool = False) -> bytes:
    return encode_frame(Frame(FrameKind.UI, CLIENT, source, True, segmented=segmented, info=info))


def test_wrapper_pdus_from_gurux_come_out_whole_whatever_the_cut() -> None:
    stream = PushStream("wrapper")
    data = gurux_message(InterfaceType.WRAPPER, 1, 7) + gurux_message(InterfaceType.WRAPPER, 1, 8)
    out: list[object] = []
    for i in range(len(data)):  # one octet at a time: TCP may cut anywhere
        out += stream.feed(data[i:i + 1])
    got = apdus(out)
    assert [decode_data_notification(p.apdu).body for p in got] == [7, 8]
    assert {p.source for p in got} == {1}
    assert stream.buffered == 0


def test_a_wrapper_stream_out_of_step_fails_for_good() -> None:
    stream = PushStream("wrapper", max_apdu=100)
    assert stream.feed(encode_wrapper(bytes(200), 1, 1)) == []
    assert stream.error is not None and "exceeds the limit 100" in str(stream.error)
    assert stream.feed(gurux_message(InterfaceType.WRAPPER, 1, 7)) == []  # nothing more taken
    assert stream.buffered == 0
    bad_version = PushStream("wrapper")
    bad_version.feed(b"\x00\x02" + bytes(6))
    assert "version" in str(bad_version.error)


def test_hdlc_ui_frames_from_gurux_carry_the_sender_address() -> None:
    stream = PushStream("hdlc")
    frame = gurux_message(InterfaceType.HDLC, 0x11, 99)
    got = apdus(stream.feed(b"\x00noise" + frame + frame))
    assert [decode_data_notification(p.apdu).body for p in got] == [99, 99]
    assert got[0].source == 0x11


def test_garbage_and_bad_frames_are_reported_and_skipped() -> None:
    stream = PushStream("hdlc")
    good = ui(HdlcAddress(1, 17, 2), b"\xe6\xe7\x00" + bytes.fromhex("0F00000001000600"))
    bad = bytearray(good)
    bad[-3] ^= 0xFF  # FCS broken
    events = stream.feed(b"\x01\x02\x03" + bytes(bad) + good)
    assert [p.apdu for p in apdus(events)] == [bytes.fromhex("0F00000001000600")]
    assert apdus(events)[0].source == 17  # the physical address, when there is one
    assert sum(e.octets for e in events if isinstance(e, StreamProblem)) >= 3


def test_segmented_ui_frames_are_joined_and_bounded() -> None:
    apdu = bytes.fromhex("0F0000000100") + b"\x09\x82\x01\x2c" + bytes(300)
    info = b"\xe6\xe7\x00" + apdu
    parts = [info[i:i + 128] for i in range(0, len(info), 128)]
    frames = b"".join(ui(HdlcAddress(1), p, i < len(parts) - 1) for i, p in enumerate(parts))
    assert [p.apdu for p in apdus(PushStream("hdlc").feed(frames))] == [apdu]
    small = PushStream("hdlc", max_apdu=200)
    events = small.feed(frames)
    assert not apdus(events)
    assert any("longer than 200" in e.message for e in events if isinstance(e, StreamProblem))
    assert small.buffered <= 203


def test_other_hdlc_frames_and_interleaved_senders_are_refused() -> None:
    stream = PushStream("hdlc")
    snrm = encode_frame(Frame(FrameKind.SNRM, HdlcAddress(1), CLIENT))
    first = ui(HdlcAddress(1, 5, 2), b"\xe6\xe7\x00\x0f\x00", True)
    other = ui(HdlcAddress(1, 6, 2), b"\xe6\xe7\x00" + bytes.fromhex("0F00000001000600"))
    events = stream.feed(snrm + first + other)
    problems = [e.message for e in events if isinstance(e, StreamProblem)]
    assert any("SNRM" in m for m in problems)
    assert any("cut short" in m for m in problems)
    assert [p.source for p in apdus(events)] == [6]


def test_a_stream_that_never_ends_a_frame_holds_bounded_memory() -> None:
    stream = PushStream("hdlc")
    for _ in range(200):
        stream.feed(b"\x7e\xa8\x00" + bytes(1000))
    assert stream.buffered <= 2 * (0x7FF + 2)


def test_pdus_cut_before_a_bad_header_are_kept_and_the_stream_fails() -> None:
    stream = PushStream("wrapper", max_apdu=100)
    good = encode_wrapper(bytes.fromhex("0F00000001000600"), 3, 1)
    events = stream.feed(good + good + b"\x00\x09" + bytes(6))
    assert [p.source for p in apdus(events)] == [3, 3]
    assert stream.error is not None and "version" in str(stream.error)
