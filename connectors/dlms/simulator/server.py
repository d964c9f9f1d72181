"""N simulated DLMS meters on consecutive TCP ports, in one process, one thread, one event loop.

Meter ``i`` listens on ``base_port + i`` with its own :class:`~.model.MeterModel` (index ``i``):
HDLC (server address logical 1, physical ``physical_base + i``, or the 1-byte address the
original meter used) or the IEC 62056-47 wrapper (server wPort 1). Each TCP connection gets a
:class:`~.connection.ServerSession`. No thread per meter: ``selectors`` over non-blocking
sockets, a timer heap for the latency quirk, one sweep per second for the inactivity timeout.

Use::

    server = SimulatorServer(3, 0)           # port 0: free ports, see server.ports
    server.run_in_thread()                   # tests; or server.serve_forever() (the CLI)
    ...
    server.stop_meter(1); server.start_meter(1)
    server.stop()

``stop_meter``/``start_meter``/``stop`` may be called from any thread: they run inside the loop
and return when done.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .concentrator import ConcentratorSession
from .connection import ServerSession, SimulatedMeter
from .model import DEFAULT_OPTIONS, MeterModel, MeterOptions
from .pusher import Pusher, PushLink

__all__ = ["SimulatorServer"]

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_RECV_SIZE = 65536
_BACKLOG = 64
_MAX_BACKLOG = 1 << 20  # unsent bytes kept for one client
_log = logging.getLogger("tb_dlms.simulator")


class _Client:
    """One accepted TCP connection (kept small: 1,000 of them are normal)."""

    __slots__ = ("last_rx", "out", "session", "sock", "station")

    def __init__(self, sock: socket.socket, station: _Station, session: Any) -> None:
        self.sock = sock
        self.station = station
        self.session = session
        self.out = bytearray()  # bytes the socket did not take yet
        self.last_rx = time.monotonic()


class _Station:
    """A meter's listening socket and its connections."""

    __slots__ = ("clients", "listener", "meter", "meters", "port")

    def __init__(self, meters: list[SimulatedMeter], port: int) -> None:
        self.meter = meters[0]
        self.meters = meters  # more than one: a data concentrator (HDLC addresses tell them apart)
        self.port = port
        self.listener: socket.socket | None = None
        self.clients: set[_Client] = set()


class SimulatorServer:
    def __init__(
        self,
        count: int,
        base_port: int,
        host: str = "127.0.0.1",
        options: MeterOptions | Callable[[int], MeterOptions] = DEFAULT_OPTIONS,
        wrapper: bool = False,
        clock: Callable[[], float] = time.time,
        physical_base: int = 16,
        first_index: int = 0,
        meters_per_port: int = 1,
    ) -> None:
        """``options``: the same quirks for every meter, or a function of the meter index (a
        demo can mix a few quirky meters among healthy ones). Meter ``i`` gets model index
        ``first_index + i`` (several processes can share a fleet) and HDLC physical address
        ``physical_base + first_index + i``. ``meters_per_port`` > 1 puts that many consecutive
        meters behind each port, like a data concentrator: ``ports`` then has one port per group
        and ``meters``/``model(i)`` still count meters."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        if meters_per_port < 1:
            raise ValueError(f"meters_per_port must be >= 1, got {meters_per_port}")
        if base_port and not 0 < base_port + count - 1 <= 0xFFFF:
            raise ValueError(f"ports {base_port}..{base_port + count - 1} out of range")
        first_physical = physical_base + first_index
        if first_physical < 0 or first_physical + count - 1 > 0x3FFF:
            raise ValueError(
                f"HDLC physical addresses {first_physical}..{first_physical + count - 1} "
                "out of range 0..16383"
            )
        self.host = host
        self.base_port = base_port
        pick = options if callable(options) else (lambda index: options)
        self.options = pick(first_index)  # meter 0's: what the CLI reports
        self.wrapper = wrapper or self.options.wrapper
        self._stations = []
        for i in range(count):
            index = first_index + i
            model = MeterModel(index, clock=clock, options=pick(index))
            meter = SimulatedMeter(model, physical_base + index)
            port = base_port + i // meters_per_port if base_port else 0
            self._stations.append(_Station([meter], port))
        if meters_per_port > 1:
            if self.wrapper:
                raise ValueError("meters_per_port > 1 needs HDLC (physical addresses)")
            self._stations = [
                _Station([s.meter for s in self._stations[i:i + meters_per_port]], s.port)
                for i, s in list(enumerate(self._stations))[::meters_per_port]
            ]
        self._sel = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._calls: deque[Callable[[], None]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, _READ, None)
        self._loop_thread: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self.accepted = 0  # TCP connections accepted since start
        # Pushes (pusher.py): started with the loop, its sockets served by it.
        self.pusher = Pusher(self.meters, self.wrapper, self._sel, self._schedule,
                             self._call_soon)

    # -- public surface -----------------------------------------------------------------------
    @property
    def count(self) -> int:
        return len(self._stations)

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self._stations]

    @property
    def meters(self) -> list[SimulatedMeter]:
        return [m for s in self._stations for m in s.meters]

    def model(self, i: int) -> MeterModel:
        return self.meters[i].model

    @property
    def connections(self) -> int:
        return sum(len(s.clients) for s in self._stations)

    @property
    def requests(self) -> int:
        """GET / SET / ACTION requests answered by all meters."""
        return sum(m.requests for m in self.meters)

    def start(self) -> SimulatorServer:
        """Bind and listen on every port (port 0 base: free ports chosen by the system)."""
        try:
            for station in self._stations:
                if station.listener is None:
                    self._listen(station)
        except OSError:
            self.close()
            raise
        return self

    def serve_forever(self) -> None:
        """Run the loop in this thread until ``stop()`` (or KeyboardInterrupt)."""
        self.start()
        self._loop_thread = threading.get_ident()
        shortest = min(s.meter.options.inactivity_timeout_s for s in self._stations)
        sweep = min(1.0, max(0.05, shortest / 4))
        self._schedule(sweep, self._sweep, sweep)
        self.pusher.start()
        try:
            self._run()
        finally:
            self._loop_thread = None
            self.close()

    def run_in_thread(self) -> SimulatorServer:
        self.start()
        self._thread = threading.Thread(
            target=self.serve_forever, name="dlms-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and close every socket; returns once done."""
        self._stopping = True
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            self._thread = None
        elif self._loop_thread is None:
            self.close()

    def stop_meter(self, i: int) -> None:
        """Meter ``i`` goes off the network: listener and connections closed (model kept)."""
        self._in_loop(lambda: self._stop_station(self._stations[i]))

    def start_meter(self, i: int) -> None:
        """Meter ``i`` listens again on the same port."""
        self._in_loop(lambda: self._listen(self._stations[i]))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.pusher.close()
        for station in self._stations:
            self._stop_station(station)
        self._timers.clear()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> SimulatorServer:  # noqa: PYI034 - Python 3.9: no typing.Self
        return self.run_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        select = self._sel.select
        timers = self._timers
        calls = self._calls
        monotonic = time.monotonic
        while not self._stopping:
            timeout = None
            if timers:
                timeout = max(0.0, timers[0][0] - monotonic())
            for key, mask in select(timeout):
                target = key.data
                if target is None:
                    self._drain_wake()
                elif type(target) is PushLink:
                    self.pusher.on_event(target, mask)
                elif type(target) is _Client:
                    if mask & _READ:
                        self._on_readable(target)
                    if mask & _WRITE and target.sock.fileno() >= 0:
                        self._flush(target)
                else:
                    self._accept(target)
            if timers:
                now = monotonic()
                while timers and timers[0][0] <= now:
                    _, _, fn, args = heapq.heappop(timers)
                    fn(*args)
            while calls:
                calls.popleft()()

    def _schedule(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn, args))

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # buffer full (already woken) or closed

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the loop thread soon, without waiting (any thread)."""
        self._calls.append(fn)
        self._wake()

    def _in_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the loop thread and wait for it (directly if the loop is not running)."""
        if self._loop_thread is None or self._loop_thread == threading.get_ident():
            fn()
            return
        done = threading.Event()
        failure: list[BaseException] = []

        def call() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)
            finally:
                done.set()

        self._calls.append(call)
        self._wake()
        if not done.wait(5.0):
            raise TimeoutError("simulator loop did not run the call")
        if failure:
            raise failure[0]

    # -- sockets ------------------------------------------------------------------------------
    def _listen(self, station: _Station) -> None:
        if station.listener is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, station.port))
            sock.listen(_BACKLOG)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno,
                f"meter {station.meter.index}: cannot listen on "
                f"{self.host}:{station.port}: {exc.strerror}",
            ) from exc
        station.port = sock.getsockname()[1]
        station.listener = sock
        for meter in station.meters:
            self.pusher.set_online(meter, True)
        self._sel.register(sock, _READ, station)

    def _stop_station(self, station: _Station) -> None:
        for meter in station.meters:
            self.pusher.set_online(meter, False)  # off the network: no pushes either
        for client in list(station.clients):
            self._close_client(client)
        sock = station.listener
        if sock is not None:
            station.listener = None
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()

    def _accept(self, station: _Station) -> None:
        listener = station.listener
        while listener is not None:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # Out of descriptors (EMFILE): pause this listener instead of spinning on it.
                _log.warning("meter %d: accept failed: %s", station.meter.index, exc)
                self._sel.unregister(listener)
                self._schedule(0.5, self._resume, station, listener)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if len(station.meters) > 1:
                session: Any = ConcentratorSession(station.meters)
            else:
                session = ServerSession(station.meter, self.wrapper)
            client = _Client(sock, station, session)
            station.clients.add(client)
            self._sel.register(sock, _READ, client)
            self.accepted += 1

    def _resume(self, station: _Station, listener: socket.socket) -> None:
        if station.listener is listener:  # not stopped meanwhile
            self._sel.register(listener, _READ, station)

    def _on_readable(self, client: _Client) -> None:
        try:
            data = client.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_client(client)
            return
        client.last_rx = time.monotonic()
        session = client.session
        try:
            reply = session.receive(data)
        except Exception:  # noqa: BLE001 - a bug must cost one connection, not 999 meters
            _log.exception("meter %d: session failed; connection closed", session.meter.index)
            self._close_client(client)
            return
        if reply:
            latency = session.meter.options.latency_s
            if latency > 0:
                self._schedule(latency, self._send, client, reply)
            else:
                self._send(client, reply)
        if session.closed:
            self._close_client(client)

    def _send(self, client: _Client, data: bytes) -> None:
        if client.sock.fileno() < 0:
            return  # closed while the reply was delayed
        if client.out:
            client.out += data
            if len(client.out) > _MAX_BACKLOG:
                self._close_client(client)  # the client stopped reading: do not hoard memory
            return
        try:
            sent = client.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close_client(client)
            return
        if sent < len(data):
            client.out += data[sent:]
            self._sel.modify(client.sock, _READ | _WRITE, client)

    def _flush(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close_client(client)
            return
        del client.out[:sent]
        if not client.out:
            self._sel.modify(client.sock, _READ, client)

    def _close_client(self, client: _Client) -> None:
        client.station.clients.discard(client)
        sock = client.sock
        if sock.fileno() >= 0:
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()

    def _sweep(self, period: float) -> None:
        """Close connections idle longer than the inactivity timeout (like a meter's timer)."""
        now = time.monotonic()
        for station in self._stations:
            if station.clients:
                limit = now - station.meter.options.inactivity_timeout_s
                for client in [c for c in station.clients if c.last_rx < limit]:
                    self._close_client(client)
        self._schedule(period, self._sweep, period)
