"""SerialTransport against real pseudo-terminals (socat pty pair) and pyserial URLs."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import serial
from tb_dlms.protocol.errors import LocalProtocolError, TransportError
from tb_dlms.transport.serial_port import SerialTransport


def read_exactly(transport: SerialTransport, size: int, budget: float = 1.0) -> bytes:
    data = b""
    deadline = time.monotonic() + budget
    while len(data) < size and time.monotonic() < deadline:
        data += transport.read(0.2)
    return data


@pytest.fixture
def linked(pty_pair):
    """(transport on pty a, open, raw pyserial peer on pty b)."""
    peer = serial.Serial(pty_pair.b, 9600, timeout=1.0)
    transport = SerialTransport(pty_pair.a, 9600)
    transport.open()
    yield transport, peer
    transport.close()
    peer.close()


def test_pty_roundtrip_binary_and_counters(linked):
    transport, peer = linked
    # An HDLC-like frame with 0x7E flags and every byte value: the pipe must be 8-bit clean.
    frame = bytes.fromhex("7ea00a00020023219318717e") + bytes(range(256))
    transport.write(frame)
    assert peer.read(len(frame)) == frame
    peer.write(frame[::-1])
    assert read_exactly(transport, len(frame)) == frame[::-1]
    assert (transport.bytes_sent, transport.bytes_received) == (len(frame), len(frame))


def test_read_timeout_returns_empty_bytes(linked):
    transport, _peer = linked
    start = time.monotonic()
    assert transport.read(0.15) == b""
    assert 0.1 <= time.monotonic() - start < 0.6
    assert transport.read(0) == b""
    assert transport.is_open


def test_read_returns_available_bytes_at_once(linked):
    transport, peer = linked
    peer.write(b"abc")
    peer.flush()
    time.sleep(0.05)
    start = time.monotonic()
    assert transport.read(1.0) == b"abc"
    assert time.monotonic() - start < 0.2


def test_inter_byte_timeout_collects_a_burst(pty_pair, run_peer):
    peer = serial.Serial(pty_pair.b, 9600, timeout=1.0)
    transport = SerialTransport(pty_pair.a, inter_byte_timeout=0.15)

    def two_parts() -> None:
        peer.write(b"abc")
        time.sleep(0.05)  # a gap shorter than the inter-byte timeout: same burst
        peer.write(b"def")

    try:
        transport.open()
        run_peer(two_parts).join()
        assert transport.read(1.0) == b"abcdef"
    finally:
        transport.close()
        peer.close()


def test_discard_input_drops_stale_bytes(linked):
    transport, peer = linked
    peer.write(b"late answer")
    peer.flush()
    deadline = time.monotonic() + 1.0
    dropped = 0
    while dropped < 11 and time.monotonic() < deadline:
        dropped += transport.discard_input()
        time.sleep(0.01)
    assert dropped == 11
    assert transport.discard_input() == 0
    peer.write(b"fresh")
    assert read_exactly(transport, 5) == b"fresh"


def test_link_gone_raises_transport_error(pty_pair):
    transport = SerialTransport(pty_pair.a)
    transport.open()
    pty_pair.kill()  # the other end disappears, as an unplugged USB adapter does
    with pytest.raises(TransportError, match=f"serial {pty_pair.a} 9600 8N1: read failed"):
        for _ in range(3):
            transport.read(0.2)
    assert not transport.is_open


def test_exclusive_open_refuses_a_second_user(linked, pty_pair):
    second = SerialTransport(pty_pair.a)
    with pytest.raises(TransportError, match=f"serial {pty_pair.a} .*open failed.*lock"):
        second.open()
    assert not second.is_open


def test_rs485_on_a_port_without_support_fails_clearly(pty_pair):
    transport = SerialTransport(pty_pair.a, rs485=True)
    with pytest.raises(TransportError, match="open failed: .*RS485"):
        transport.open()
    assert not transport.is_open


def test_missing_device_names_the_port():
    transport = SerialTransport("/dev/tb-dlms-no-such-tty", 2400, 7, "E", 1)
    with pytest.raises(TransportError, match=r"serial /dev/tb-dlms-no-such-tty 2400 7E1: open failed"):
        transport.open()


def test_unknown_url_scheme_fails_clearly():
    with pytest.raises(TransportError, match="open failed"):
        SerialTransport("nosuchscheme://x").open()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"parity": "X"}, "parity 'X' is not one of N, E, O, M, S"),
        ({"parity": 1}, "parity 1"),
        ({"bytesize": 9}, "byte size 9 is not one of 5, 6, 7, 8"),
        ({"bytesize": True}, "byte size True"),
        ({"stopbits": 3}, "stop bits 3 is not one of 1, 1.5, 2"),
        ({"baudrate": 0}, "baud rate must be a positive integer"),
        ({"baudrate": "9600"}, "baud rate must be a positive integer"),
        ({"inter_byte_timeout": -1.0}, "inter-byte timeout"),
        ({"mode_e": True, "parity": "E"}, "mode E continues in 8N1"),
    ],
)
def test_bad_settings_are_rejected_with_clear_messages(kwargs, message):
    with pytest.raises(LocalProtocolError, match=message):
        SerialTransport("/dev/ttyUSB0", **kwargs)


def test_empty_port_is_rejected():
    with pytest.raises(LocalProtocolError, match="non-empty"):
        SerialTransport("  ")


@pytest.mark.parametrize(
    "args, kwargs, text",
    [
        (("/dev/ttyUSB0",), {}, "serial /dev/ttyUSB0 9600 8N1"),
        (("/dev/ttyS1", 2400, 7, "e", 1.5), {}, "serial /dev/ttyS1 2400 7E1.5"),
        (("/dev/ttyUSB0",), {"mode_e": True}, "serial /dev/ttyUSB0 mode E"),
        (("rfc2217://user:secret@10.0.0.9:4001",), {}, "serial rfc2217://***@10.0.0.9:4001 9600 8N1"),
    ],
)
def test_description(args, kwargs, text):
    transport = SerialTransport(*args, **kwargs)
    assert transport.description == text
    assert "secret" not in repr(transport)


def test_loop_url_roundtrip():
    with SerialTransport("loop://", 19200) as transport:
        transport.write(b"\x7e\x01\x02\x7e")
        assert read_exactly(transport, 4) == b"\x7e\x01\x02\x7e"
        transport.write(b"stale")
        assert transport.discard_input() == 5
        assert transport.read(0.05) == b""


def test_socket_url_to_loopback_server(serve):
    def echo(conn: socket.socket) -> None:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            conn.sendall(data)

    server = serve(echo)
    with SerialTransport(f"socket://127.0.0.1:{server.port}") as transport:
        transport.write(b"over a terminal server")
        assert read_exactly(transport, 22) == b"over a terminal server"


def test_socket_url_peer_close_raises(serve):
    server = serve(lambda conn: conn.close())
    transport = SerialTransport(f"socket://127.0.0.1:{server.port}")
    transport.open()
    with pytest.raises(TransportError, match="read failed"):
        transport.read(1.0)
    assert not transport.is_open


def test_close_is_idempotent_and_use_after_close_raises(pty_pair):
    transport = SerialTransport(pty_pair.a)
    transport.close()
    transport.open()
    transport.close()
    transport.close()
    for call in (lambda: transport.read(0.1), lambda: transport.write(b"x"), transport.discard_input):
        with pytest.raises(TransportError, match="not open"):
            call()
    transport.open()  # and it can be opened again
    assert transport.is_open
    transport.close()


def test_close_from_another_thread_wakes_a_blocked_read(pty_pair):
    transport = SerialTransport(pty_pair.a)
    transport.open()
    closer = threading.Timer(0.1, transport.close)
    closer.start()
    start = time.monotonic()
    try:
        with pytest.raises(TransportError):
            transport.read(5.0)
    finally:
        closer.join()
    assert time.monotonic() - start < 1.0
