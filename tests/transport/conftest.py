"""Fixtures for the transport tests: loopback servers, a socat pty pair, leak checks.

Everything here talks to 127.0.0.1 / ::1 or to pseudo-terminals only, and every thread or process
a fixture starts is stopped and joined in its teardown (the autouse fixture checks that).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from typing import Callable, Iterator, List, Optional

import pytest
from tb_dlms.testing.pty import PtyPair

Handler = Callable[[socket.socket], None]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running (fixtures must join what they start)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 1.0
    leaked: List[threading.Thread] = []
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            break
        time.sleep(0.01)
    assert not leaked, f"threads leaked: {leaked}"


class LoopbackServer:
    """A listening socket on a loopback address; each accepted connection runs ``handler`` in a thread."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", connections: int = 1) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(4)
        self.listener.settimeout(2.0)
        self.host = host
        self.port: int = self.listener.getsockname()[1]
        self.handler = handler
        self.errors: List[BaseException] = []
        self.conns: List[socket.socket] = []
        self.accepted = threading.Event()
        self._threads: List[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, args=(connections,), daemon=True)
        self._acceptor.start()

    def _accept(self, connections: int) -> None:
        for _ in range(connections):
            try:
                conn, _addr = self.listener.accept()
            except OSError:
                return  # listener closed by stop() or no client came
            conn.settimeout(2.0)
            self.conns.append(conn)
            self.accepted.set()
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except BaseException as exc:  # reported by stop(): an assertion in the fake peer
            self.errors.append(exc)

    def stop(self) -> None:
        self.listener.close()
        self._acceptor.join(3.0)
        for worker in self._threads:
            worker.join(3.0)
        for conn in self.conns:
            conn.close()
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def serve() -> Iterator[Callable[..., LoopbackServer]]:
    """Factory: ``serve(handler, host="127.0.0.1")`` starts a loopback server, stopped at teardown."""
    servers: List[LoopbackServer] = []

    def start(handler: Handler, host: str = "127.0.0.1", connections: int = 1) -> LoopbackServer:
        server = LoopbackServer(handler, host, connections)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def echo_handler(conn: socket.socket) -> None:
    """Echo everything back until the client closes."""
    while True:
        try:
            data = conn.recv(4096)
        except OSError:
            return
        if not data:
            return
        conn.sendall(data)


@pytest.fixture
def full_backlog_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: new SYNs are dropped, so connect() times out.

    A merely closed port answers RST at once (refused); a full backlog is the loopback-only way to
    make a connect hang.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.02)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    """``pty_pair.a`` and ``pty_pair.b``: device paths of two linked raw ptys."""
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed (apt-get install socat): needed for pty pairs")
    pair = PtyPair()
    try:
        yield pair
    finally:
        pair.kill()


class PeerThread:
    """Run a fake peer function in a thread; ``join()`` re-raises what it raised."""

    def __init__(self, target: Callable[[], None]) -> None:
        self.error: Optional[BaseException] = None
        self._target = target
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float = 3.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "fake peer did not finish"
        error, self.error = self.error, None  # raise once even if joined again at teardown
        if error is not None:
            raise error


@pytest.fixture
def run_peer() -> Iterator[Callable[[Callable[[], None]], PeerThread]]:
    """Factory: ``run_peer(fn)`` runs a fake peer in a thread; teardown joins it and re-raises."""
    peers: List[PeerThread] = []

    def start(target: Callable[[], None]) -> PeerThread:
        peer = PeerThread(target)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.join()
