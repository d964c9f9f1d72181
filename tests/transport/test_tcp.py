"""TcpTransport against real loopback server sockets (no address outside 127.0.0.1 / ::1)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from tb_dlms.protocol.errors import DlmsError, NoAnswer, TransportError
from tb_dlms.transport.base import Transport
from tb_dlms.transport.tcp import TcpTransport


def echo(conn: socket.socket) -> None:
    while True:
        data = conn.recv(4096)
        if not data:
            return
        conn.sendall(data)


def hold_open(conn: socket.socket) -> None:
    """Accept, send nothing, wait until the client closes."""
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass


def read_exactly(transport: Transport, size: int, budget: float = 1.0) -> bytes:
    data = b""
    deadline = time.monotonic() + budget
    while len(data) < size and time.monotonic() < deadline:
        data += transport.read(0.2)
    return data


def test_connect_write_read_roundtrip_and_counters(serve):
    server = serve(echo)
    # An SNRM-like frame: the transport must pass arbitrary binary through untouched.
    frame = bytes.fromhex("7ea00a00020023219318717e") + bytes(range(256))
    with TcpTransport("127.0.0.1", server.port) as t:
        assert t.is_open
        t.write(frame)
        assert read_exactly(t, len(frame)) == frame
        assert (t.bytes_sent, t.bytes_received) == (len(frame), len(frame))
    assert not t.is_open


def test_description_names_endpoint_and_repr(serve):
    t = TcpTransport("127.0.0.1", 4059)
    assert t.description == "tcp 127.0.0.1:4059"
    assert "closed" in repr(t)


def test_read_timeout_returns_empty_bytes(serve):
    server = serve(hold_open)
    with TcpTransport("127.0.0.1", server.port) as t:
        start = time.monotonic()
        assert t.read(0.15) == b""
        elapsed = time.monotonic() - start
        assert 0.1 <= elapsed < 0.6
        assert t.read(0) == b""  # zero only polls
        assert t.is_open  # a timeout is not a failure


def test_read_returns_what_is_available_without_waiting_for_more(serve):
    def answer_in_two_bursts(conn: socket.socket) -> None:
        conn.recv(10)
        conn.sendall(b"first")
        time.sleep(0.3)
        conn.sendall(b"second")
        hold_open(conn)

    server = serve(answer_in_two_bursts)
    with TcpTransport("127.0.0.1", server.port) as t:
        t.write(b"go")
        start = time.monotonic()
        assert t.read(1.0) == b"first"
        assert time.monotonic() - start < 0.25
        assert t.read(1.0) == b"second"


def test_peer_close_raises_transport_error(serve):
    server = serve(lambda conn: conn.close())
    t = TcpTransport("127.0.0.1", server.port)
    t.open()
    with pytest.raises(TransportError, match=rf"127\.0\.0\.1:{server.port}: connection closed by peer"):
        t.read(1.0)
    assert not t.is_open  # a broken link is closed so the session reconnects


def test_write_after_peer_reset_raises(serve):
    def reset(conn: socket.socket) -> None:
        conn.recv(4)  # reset only once the client is surely connected
        # SO_LINGER 0 makes close() send RST: the hard failure a dropped modem link gives.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    server = serve(reset)
    t = TcpTransport("127.0.0.1", server.port)
    t.open()
    t.write(b"ping")
    time.sleep(0.05)
    with pytest.raises(TransportError, match=rf"127\.0\.0\.1:{server.port}: write failed"):
        for _ in range(3):  # the first send after the RST may still be accepted by the kernel
            t.write(b"x" * 1000)
            time.sleep(0.02)
    assert not t.is_open


def test_connect_refused_names_host_and_port(closed_port):
    t = TcpTransport("127.0.0.1", closed_port)
    with pytest.raises(TransportError, match=rf"tcp 127\.0\.0\.1:{closed_port}: connect failed") as info:
        t.open()
    assert not isinstance(info.value, NoAnswer)
    assert not t.is_open


def test_connect_timeout_raises_timeout_error(full_backlog_port):
    t = TcpTransport("127.0.0.1", full_backlog_port, connect_timeout=0.2)
    start = time.monotonic()
    with pytest.raises(NoAnswer, match=rf"127\.0\.0\.1:{full_backlog_port}: connect timed out"):
        t.open()
    assert time.monotonic() - start < 1.0
    assert not t.is_open


def test_discard_input_drops_a_late_answer(serve):
    def late_then_fresh(conn: socket.socket) -> None:
        conn.sendall(b"late answer")  # arrives before the client's next request
        assert conn.recv(10) == b"req"
        conn.sendall(b"fresh")
        hold_open(conn)

    server = serve(late_then_fresh)
    with TcpTransport("127.0.0.1", server.port) as t:
        deadline = time.monotonic() + 1.0
        dropped = 0
        while dropped < len(b"late answer") and time.monotonic() < deadline:
            dropped += t.discard_input()
            time.sleep(0.01)
        assert dropped == len(b"late answer")
        assert t.discard_input() == 0
        t.write(b"req")
        assert read_exactly(t, 5) == b"fresh"


def test_discard_input_detects_peer_close(serve):
    server = serve(lambda conn: conn.close())
    t = TcpTransport("127.0.0.1", server.port)
    t.open()
    server.accepted.wait(1.0)
    time.sleep(0.05)
    with pytest.raises(TransportError, match="closed by peer"):
        t.discard_input()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
@pytest.mark.parametrize("literal", ["::1", "[::1]"])
def test_ipv6_literal_host(serve, literal):
    server = serve(echo, host="::1")
    t = TcpTransport(literal, server.port)
    assert t.description == f"tcp [::1]:{server.port}"
    with t:
        t.write(b"v6")
        assert read_exactly(t, 2) == b"v6"


def test_nodelay_and_keepalive_are_on(serve):
    server = serve(hold_open)
    with TcpTransport("127.0.0.1", server.port) as t:
        sock = t._sock
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0


def test_close_is_idempotent_and_use_after_close_raises(serve):
    server = serve(hold_open)
    t = TcpTransport("127.0.0.1", server.port)
    t.close()  # never opened: still fine
    t.open()
    t.close()
    t.close()
    for call in (lambda: t.read(0.1), lambda: t.write(b"x"), t.discard_input):
        with pytest.raises(TransportError, match="not open"):
            call()


def test_close_from_another_thread_wakes_a_blocked_read(serve):
    server = serve(hold_open)
    t = TcpTransport("127.0.0.1", server.port)
    t.open()
    closer = threading.Timer(0.1, t.close)
    closer.start()
    start = time.monotonic()
    try:
        with pytest.raises(TransportError):
            t.read(5.0)
    finally:
        closer.join()
    assert time.monotonic() - start < 1.0


def test_reopen_after_close(serve):
    server = serve(echo, connections=2)
    t = TcpTransport("127.0.0.1", server.port)
    for payload in (b"one", b"two"):
        t.open()
        t.write(payload)
        assert read_exactly(t, 3) == payload
        t.close()


@pytest.mark.parametrize("port", [0, 65536, -1, True, "4059"])
def test_bad_port_is_rejected(port):
    with pytest.raises(TransportError, match="port"):
        TcpTransport("127.0.0.1", port)


def test_errors_are_dlms_errors(closed_port):
    # The session layer catches DlmsError subclasses only: transport failures must be among them.
    with pytest.raises(DlmsError):
        TcpTransport("127.0.0.1", closed_port).open()
