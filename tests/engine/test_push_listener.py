"""engine/push_listener.py on real sockets and a real pseudo-terminal pair: pushes from many
senders, cut anywhere, and senders that are idle, slow, out of step or too many."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from tb_dlms.engine.push_listener import PushEndpoint, PushLimits, PushListener
from tb_dlms.protocol.hdlc.address import HdlcAddress
from tb_dlms.protocol.hdlc.frame import Frame, FrameKind, encode_frame
from tb_dlms.protocol.push_stream import PushedApdu
from tb_dlms.protocol.wrapper import encode_wrapper

NOTE = bytes.fromhex("0F0000000100") + b"\x06\x00\x00\x00\x2a"  # body: double-long-unsigned 42


class Seen:
    def __init__(self) -> None:
        self.apdus: list[tuple[str, PushedApdu, float]] = []
        self.problems: list[tuple[str, str]] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def apdu(self, peer: str, pushed: PushedApdu, at: float) -> None:
        with self.lock:
            self.apdus.append((peer, pushed, at))
            self.threads.add(threading.current_thread().name)

    def problem(self, peer: str, message: str) -> None:
        with self.lock:
            self.problems.append((peer, message))


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def listen() -> Iterator[Callable[..., tuple[PushListener, Seen]]]:
    made: list[PushListener] = []

    def make(framing: str = "wrapper", **limits: float) -> tuple[PushListener, Seen]:
        seen = Seen()
        listener = PushListener([PushEndpoint("tcp", framing, "127.0.0.1", 0)], seen.apdu,
                                seen.problem, limits=PushLimits(**limits))  # type: ignore[arg-type]
        listener.start()
        made.append(listener)
        return listener, seen

    yield make
    for listener in made:
        listener.stop()


def connect(listener: PushListener) -> socket.socket:
    return socket.create_connection(listener.addresses[0], timeout=2)


def closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return False


def test_many_senders_each_apdu_once_whatever_the_cut(
        listen: Callable[..., tuple[PushListener, Seen]]) -> None:
    listener, seen = listen()
    senders = [connect(listener) for _ in range(20)]
    for i, sock in enumerate(senders):
        data = encode_wrapper(NOTE, i + 1, 1) * 3
        for j in range(0, len(data), 5):  # trickled five octets at a time
            sock.sendall(data[j:j + 5])
    assert wait_for(lambda: len(seen.apdus) == 60)
    assert sorted(p.source for _, p, _ in seen.apdus) == sorted(list(range(1, 21)) * 3)
    assert all(p.apdu == NOTE for _, p, _ in seen.apdus)
    assert seen.threads == {"dlms push"}  # one thread for every connection
    assert abs(seen.apdus[0][2] - time.time()) < 5
    assert listener.stats["connections"] == 20
    for sock in senders:
        sock.close()
    assert wait_for(lambda: listener.stats["connections"] == 0)


def test_hdlc_ui_frames_over_tcp(listen: Callable[..., tuple[PushListener, Seen]]) -> None:
    listener, seen = listen("hdlc")
    frame = encode_frame(Frame(FrameKind.UI, HdlcAddress(0x10), HdlcAddress(1, 77, 2),
                               info=b"\xe6\xe7\x00" + NOTE))
    with connect(listener) as sock:
        sock.sendall(b"noise" + frame)
        assert wait_for(lambda: len(seen.apdus) == 1)
    assert seen.apdus[0][1] == PushedApdu(77, NOTE)
    assert seen.problems  # the noise was reported


def test_an_idle_sender_is_closed(listen: Callable[..., tuple[PushListener, Seen]]) -> None:
    listener, _ = listen(idle_timeout_s=0.4)
    with connect(listener) as sock:
        assert closed_by_peer(sock)
    assert listener.stats["closed_idle"] == 1


def test_a_sender_trickling_a_message_forever_is_closed(
        listen: Callable[..., tuple[PushListener, Seen]]) -> None:
    listener, seen = listen(message_timeout_s=0.6)
    data = encode_wrapper(NOTE, 1, 1)
    with connect(listener) as sock:
        deadline = time.monotonic() + 5
        closed = False
        for octet in data[:-1]:  # never the last octet; always within the idle time-out
            try:
                sock.sendall(bytes((octet,)))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() > deadline:
                break
        assert closed or closed_by_peer(sock)
    assert listener.stats["closed_slow"] == 1
    assert any("not complete" in m for _, m in seen.problems)


def test_a_stream_out_of_step_is_closed_and_the_others_go_on(
        listen: Callable[..., tuple[PushListener, Seen]]) -> None:
    listener, seen = listen(max_apdu=512)
    with connect(listener) as bad, connect(listener) as good:
        bad.sendall(b"\x00\x01\x00\x01\x00\x01\xff\xff" + bytes(100))  # length over the limit
        assert closed_by_peer(bad)
        good.sendall(encode_wrapper(NOTE, 9, 1))
        assert wait_for(lambda: len(seen.apdus) == 1)
    assert listener.stats["closed_out_of_step"] == 1
    assert any("exceeds the limit 512" in m for _, m in seen.problems)


def test_connections_beyond_the_limit_are_refused(
        listen: Callable[..., tuple[PushListener, Seen]]) -> None:
    listener, seen = listen(max_connections=2)
    kept = [connect(listener), connect(listener)]
    assert wait_for(lambda: listener.stats["connections"] == 2)
    extra = connect(listener)
    assert closed_by_peer(extra)
    assert listener.stats["refused"] == 1
    kept[0].sendall(encode_wrapper(NOTE, 1, 1))
    assert wait_for(lambda: len(seen.apdus) == 1)
    for sock in (*kept, extra):
        sock.close()


def test_a_port_in_use_names_the_endpoint() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listener = PushListener([PushEndpoint("tcp", "wrapper", "127.0.0.1", port)],
                                lambda *a: None, lambda *a: None)
        with pytest.raises(OSError, match=f"push listener wrapper 127.0.0.1:{port}"):
            listener.start()


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed")
def test_pushes_on_a_serial_line() -> None:
    from tb_dlms.testing.pty import PtyPair

    pair = PtyPair()
    seen = Seen()
    listener = PushListener([PushEndpoint("serial", "hdlc", device=pair.a)], seen.apdu,
                            seen.problem)
    listener.start()
    try:
        frame = encode_frame(Frame(FrameKind.UI, HdlcAddress(0x10), HdlcAddress(1, 5, 2),
                                   info=b"\xe6\xe7\x00" + NOTE))
        time.sleep(0.3)  # the reader opens the port
        with open(pair.b, "wb", buffering=0) as line:
            line.write(b"\x00\x00" + frame + frame)
            assert wait_for(lambda: len(seen.apdus) == 2)
        assert {p for _, p, _ in seen.apdus} == {PushedApdu(5, NOTE)}
        assert seen.apdus[0][0] == f"serial {pair.a}"
    finally:
        listener.stop()
        pair.kill()


def test_random_bytes_from_many_senders_never_stop_the_listener(
        listen: Callable[..., tuple[PushListener, Seen]]) -> None:
    import random

    rng = random.Random(1304)
    for framing in ("wrapper", "hdlc"):
        listener, seen = listen(framing, max_apdu=512)
        for _ in range(40):
            with connect(listener) as sock:
                noise = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 3000)))
                if framing == "hdlc":  # flags and a plausible format byte now and then
                    noise = noise.replace(b"\x00", b"\x7e\xa0", 20)
                try:
                    sock.sendall(noise)
                except OSError:
                    pass  # closed by the listener mid-send: out of step
        good = encode_wrapper(NOTE, 5, 1) if framing == "wrapper" else encode_frame(
            Frame(FrameKind.UI, HdlcAddress(0x10), HdlcAddress(1, 5, 2),
                  info=b"\xe6\xe7\x00" + NOTE))
        with connect(listener) as sock:
            sock.sendall(good)
            assert wait_for(lambda s=seen: any(p.apdu == NOTE and p.source == 5
                                               for _, p, _ in s.apdus))
        assert wait_for(lambda li=listener: li.stats["connections"] == 0)
        assert listener.loop.join(0) is False  # the loop thread is still serving


def test_one_address_cannot_take_every_slot(
        listen: Callable[..., tuple[PushListener, Seen]]) -> None:
    listener, seen = listen(max_per_address=2)
    kept = [connect(listener), connect(listener)]
    assert wait_for(lambda: listener.stats["connections"] == 2)
    extra = connect(listener)
    assert closed_by_peer(extra)
    kept[0].close()  # a slot of that address frees up
    assert wait_for(lambda: listener.stats["connections"] == 1)
    again = connect(listener)
    again.sendall(encode_wrapper(NOTE, 1, 1))
    assert wait_for(lambda: len(seen.apdus) == 1)
    assert listener.stats["refused"] == 1
    for sock in (kept[1], extra, again):
        sock.close()
