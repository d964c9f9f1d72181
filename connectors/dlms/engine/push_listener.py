"""``PushListener``: where pushing meters connect. TCP on one ``SelectorLoop``, serial lines too.

Meters that push connect out to us (IEC 62056-47 wrapper or HDLC over TCP) or write on a serial
customer port. Every byte stream gets a ``PushStream`` (protocol/push_stream.py) and every APDU
it completes goes to ``on_apdu(peer, pushed, received_at)``, always on the loop thread: the
caller's opener and counters need no lock.

One thread serves every TCP connection (5,000 meters are 5,000 sockets, not 5,000 threads); a
serial line gets a reader thread that hands its bytes to the loop. Nothing a sender does holds
memory or a thread:

- at most ``max_apdu`` octets wait per connection (the stream's bound), 64 KiB read per event;
- a connection quiet for ``idle_timeout_s`` is closed; so is one whose message has not
  completed within ``message_timeout_s`` of its first octet (a sender trickling one octet a
  minute), and one whose wrapper stream went out of step;
- beyond ``max_connections`` (or ``max_per_address`` from one IP address) a new connection is
  closed at once (counted).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..protocol.errors import DlmsError
from ..protocol.push_stream import PushedApdu, PushStream, StreamProblem
from ..transport.fd_limits import keep_high
from .loop import SelectorLoop

__all__ = ["PushEndpoint", "PushLimits", "PushListener"]

_READ = 1  # selectors.EVENT_READ
_RECV_SIZE = 65536
_ACCEPTS_PER_EVENT = 64
_SWEEP_S = 1.0
_SERIAL_READ_S = 0.2
_SERIAL_REOPEN_S = 5.0

OnApdu = Callable[[str, PushedApdu, float], Any]
OnProblem = Callable[[str, str], Any]


@dataclass(frozen=True)
class PushEndpoint:
    """Where pushes arrive: ``kind`` "tcp" (``host``, ``port``) or "serial" (``port`` is the
    device or pyserial URL in ``device``, with ``baudrate``)."""

    kind: str
    framing: str
    host: str = "0.0.0.0"
    port: int = 4059
    device: str = ""
    baudrate: int = 9600

    @property
    def label(self) -> str:
        if self.kind == "serial":
            return f"serial {self.device}"
        return f"{self.framing} {self.host}:{self.port}"


@dataclass(frozen=True)
class PushLimits:
    max_connections: int = 20_000
    idle_timeout_s: float = 300.0
    message_timeout_s: float = 30.0
    max_apdu: int = 16_384  # with max_connections, the memory senders can hold
    max_per_address: int = 0  # connections from one IP address at once (0: no limit)


class _Connection:
    __slots__ = ("address", "begun_at", "last_rx", "peer", "sock", "stream")

    def __init__(self, sock: socket.socket, address: str, peer: str, stream: PushStream,
                 now: float) -> None:
        self.sock = sock
        self.address = address
        self.peer = peer
        self.stream = stream
        self.last_rx = now
        self.begun_at = 0.0  # when the message in progress began (0: none)


class PushListener:
    """Accepts pushing meters on ``endpoints``; see the module doc."""

    def __init__(self, endpoints: list[PushEndpoint], on_apdu: OnApdu, on_problem: OnProblem, *,
                 limits: PushLimits = PushLimits(), log: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.endpoints = list(endpoints)
        self.limits = limits
        self._on_apdu = on_apdu
        self._on_problem = on_problem
        self._log = log or logging.getLogger("tb_dlms.push")
        self._clock = clock
        self._wall = wall_clock
        self.loop = SelectorLoop(clock, name="dlms push", log=self._log)
        self._servers: list[tuple[socket.socket, PushEndpoint]] = []
        self._connections: dict[socket.socket, _Connection] = {}
        self._per_address: dict[str, int] = {}
        self._serial_threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.addresses: list[tuple[str, int]] = []  # bound TCP addresses (port 0: the real one)
        self.stats = dict.fromkeys((
            "connections", "accepted", "refused", "closed_idle", "closed_slow",
            "closed_out_of_step", "octets", "apdus", "problems"), 0)

    # -- life cycle (any thread) --------------------------------------------------------------
    def start(self) -> None:
        """Bind every TCP endpoint (an OSError names the endpoint) and start serving."""
        try:
            for endpoint in self.endpoints:
                if endpoint.kind == "tcp":
                    self._bind(endpoint)
        except OSError:
            for server, _ in self._servers:
                server.close()
            raise
        for server, endpoint in self._servers:
            self.loop.register(server, _READ, self._acceptor(server, endpoint))
        # Sweep often enough that a time-out is at most a quarter late.
        self._sweep_s = min(_SWEEP_S, self.limits.idle_timeout_s / 4,
                            self.limits.message_timeout_s / 4)
        self.loop.call_at(self._clock() + self._sweep_s, self._sweep)
        self.loop.start()
        for endpoint in self.endpoints:
            if endpoint.kind == "serial":
                thread = threading.Thread(target=self._serial_reader, args=(endpoint,),
                                          name=f"dlms push {endpoint.device}", daemon=True)
                self._serial_threads.append(thread)
                thread.start()

    def _bind(self, endpoint: PushEndpoint) -> None:
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        server = socket.socket(family, socket.SOCK_STREAM)
        try:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((endpoint.host, endpoint.port))
            server.listen(1024)
            server.setblocking(False)
        except OSError as exc:
            server.close()
            raise OSError(exc.errno, f"push listener {endpoint.label}: {exc.strerror}") from exc
        self._servers.append((server, endpoint))
        self.addresses.append(server.getsockname()[:2])

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stopping.set()
        self.loop.call_soon_threadsafe(self._close_all)
        self.loop.join(timeout_s)
        for thread in self._serial_threads:
            thread.join(timeout_s)

    def _close_all(self) -> None:
        for sock in list(self._connections):
            self._close(sock)
        for server, _ in self._servers:
            self.loop.unregister(server)
            server.close()
        self.loop.finish()

    # -- TCP, on the loop thread --------------------------------------------------------------
    def _acceptor(self, server: socket.socket, endpoint: PushEndpoint) -> Callable[[int], None]:
        def accept(_mask: int) -> None:
            for _ in range(_ACCEPTS_PER_EVENT):
                try:
                    sock, address = server.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:  # out of descriptors: say so, keep serving the others
                    self._log.warning("push listener %s: accept failed: %s", endpoint.label, exc)
                    return
                self._admit(sock, address, endpoint)
        return accept

    def _admit(self, sock: socket.socket, address: Any, endpoint: PushEndpoint) -> None:
        host = str(address[0])
        per_host = self._per_address.get(host, 0)
        limit = self.limits.max_per_address
        if len(self._connections) >= self.limits.max_connections or (limit and per_host >= limit):
            self.stats["refused"] += 1
            sock.close()
            return
        self._per_address[host] = per_host + 1
        sock = keep_high(sock)  # paho's select() cannot see descriptors above 1023
        sock.setblocking(False)
        peer = f"{host}:{address[1]}"
        conn = _Connection(sock, host, peer, PushStream(endpoint.framing, self.limits.max_apdu),
                           self._clock())
        self._connections[sock] = conn
        self.stats["accepted"] += 1
        self.stats["connections"] = len(self._connections)
        self.loop.register(sock, _READ, lambda _mask: self._readable(conn))

    def _readable(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn.sock)
            return
        now = self._clock()
        conn.last_rx = now
        self.stats["octets"] += len(data)
        events = conn.stream.feed(data)
        self._deliver(conn.peer, events)
        if conn.stream.error is not None:
            self.stats["closed_out_of_step"] += 1
            self._problem(conn.peer, f"{conn.stream.error}; connection closed")
            self._close(conn.sock)
            return
        if conn.stream.buffered:
            if not conn.begun_at:
                conn.begun_at = now
        else:
            conn.begun_at = 0.0

    def _deliver(self, peer: str, events: list[Any]) -> None:
        wall = self._wall()
        for event in events:
            if isinstance(event, StreamProblem):
                self._problem(peer, f"{event.message} ({event.octets} octets)")
                continue
            self.stats["apdus"] += 1
            try:
                self._on_apdu(peer, event, wall)
            except Exception:  # noqa: BLE001 - one sender's notification must not stop the rest
                self._log.exception("push from %s: handler failed", peer)

    def _problem(self, peer: str, message: str) -> None:
        self.stats["problems"] += 1
        try:
            self._on_problem(peer, message)
        except Exception:  # noqa: BLE001
            self._log.exception("push from %s: problem handler failed", peer)

    def _close(self, sock: socket.socket) -> None:
        conn = self._connections.pop(sock, None)
        if conn is None:
            return
        left = self._per_address.pop(conn.address, 1) - 1
        if left > 0:
            self._per_address[conn.address] = left
        self.loop.unregister(sock)
        try:
            sock.close()
        except OSError:
            pass
        self.stats["connections"] = len(self._connections)

    def _sweep(self, _when: float) -> None:
        now = self._clock()
        idle, slow = self.limits.idle_timeout_s, self.limits.message_timeout_s
        for conn in list(self._connections.values()):
            if now - conn.last_rx > idle:
                self.stats["closed_idle"] += 1
                self._close(conn.sock)
            elif conn.begun_at and now - conn.begun_at > slow:
                self.stats["closed_slow"] += 1
                self._problem(conn.peer, f"message not complete after {slow:g} s "
                                         f"({conn.stream.buffered} octets); connection closed")
                self._close(conn.sock)
        if not self._stopping.is_set():
            self.loop.call_at(now + self._sweep_s, self._sweep)

    # -- serial lines, one reader thread each -------------------------------------------------
    def _serial_reader(self, endpoint: PushEndpoint) -> None:
        from ..transport.serial_port import SerialTransport

        stream = PushStream(endpoint.framing, self.limits.max_apdu)
        port = SerialTransport(endpoint.device, endpoint.baudrate, exclusive=False)
        label = endpoint.label
        while not self._stopping.is_set():
            try:
                if not port.is_open:
                    port.open()
                    self._log.info("push listener: reading %s", port.description)
                data = port.read(_SERIAL_READ_S)
            except DlmsError as exc:
                self._log.warning("push listener %s: %s; retrying in %g s", label, exc,
                                  _SERIAL_REOPEN_S)
                port.close()
                self._stopping.wait(_SERIAL_REOPEN_S)
                continue
            if not data:
                continue
            events = stream.feed(data)
            self.loop.call_soon_threadsafe(partial(self._serial_events, label, events, len(data)))
            if stream.error is not None:  # wrapper on a serial line out of step: start afresh
                self.loop.call_soon_threadsafe(partial(self._problem, label, str(stream.error)))
                stream = PushStream(endpoint.framing, self.limits.max_apdu)
        port.close()

    def _serial_events(self, label: str, events: list[Any], octets: int) -> None:
        self.stats["octets"] += octets
        self._deliver(label, events)
