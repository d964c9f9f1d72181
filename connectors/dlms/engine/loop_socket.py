"""``LoopLine``: one TCP connection on the ``SelectorLoop``, shared by the meters behind it.

A channel of the loop: one host:port is one connection, whether one meter answers there or several
behind a data concentrator (or a serial-to-Ethernet converter on an RS-485 bus), each meter with
its own HDLC address and its own ``SessionMachine``. The meters take turns: the one that starts an
operation on the wire (``holder``) has the line until it ends; the others wait in ``waiters`` and
are called in order when it is free again, as the serial bus worker polls its meters in turn.

A pipe that knows nothing of DLMS or of polling: it opens the socket (the name looked up once, off
the loop; the non-blocking connect of ``transport.tcp``), hands what arrives to the holder's
machine, sends what the machines produce (keeping what the kernel did not take until the socket
is writable again) and reports the end of the connect (``opened``) and a lost line to every
meter on it. What happens next is decided in ``loop_driver``; a meter is a ``LineUser`` here.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..protocol.errors import DlmsError, TransportError
from ..transport.tcp import connect_error, describe, start_connect
from ..transport.tcp import resolve as resolve_address
from .spec import TcpSpec

if TYPE_CHECKING:
    from .loop import SelectorLoop

__all__ = ["LineUser", "LoopLine", "resolve"]

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_RECV = 65536


def resolve(spec: TcpSpec) -> tuple[int, Any] | None:
    """(family, sockaddr) of the meter, looked up once (off the loop); None if it fails."""
    return resolve_address(spec.host, spec.port)


class LineUser(Protocol):
    """What the line needs of a meter on it (``loop_driver.LoopMeterDriver``)."""

    poll_state: Any  # its MeterPollState (``session`` set while associated)
    machine: Any  # its SessionMachine
    meters: dict[str, Any]

    def opened(self, exc: DlmsError | None) -> None:
        """The connect this meter asked for ended (None: the line is open)."""

    def on_line_io(self) -> None:
        """Bytes came for this meter's operation, or the line broke under it."""


class LoopLine:
    """The connection to one TCP host:port and the turn of the meters that use it."""

    __slots__ = ("_handing", "_last", "_pending", "_waiters", "address", "description", "holder",
                 "key", "loop", "opening", "sock", "spec", "users")

    def __init__(self, spec: TcpSpec, loop: SelectorLoop) -> None:
        self.spec = spec
        self.key = spec.channel_key
        self.loop = loop
        self.description = describe(spec.host, spec.port)
        self.address: tuple[int, Any] | None = None
        self.sock: socket.socket | None = None
        self.opening = False  # a connect is under way (the holder asked for it)
        self.users: list[LineUser] = []
        self.holder: LineUser | None = None  # the meter with an operation on the wire
        self._last: LineUser | None = None  # who gets bytes while nobody holds the line
        self._waiters: list[Callable[[], Any]] = []  # rarely more than one
        self._pending = b""  # what the socket did not take yet
        self._handing = False

    @property
    def meters(self) -> dict[str, Any]:
        return {name: m for user in self.users for name, m in user.meters.items()}

    # -- turns ------------------------------------------------------------------------------------
    def take(self, meter: LineUser) -> None:
        self.holder = self._last = meter

    def release(self, meter: LineUser) -> None:
        if self.holder is meter:
            self.holder = None
            if self._waiters and not self._handing:
                self._handing = True
                # Not from inside the holder's own code: it finishes first, then the next turn.
                self.loop.call_soon_threadsafe(self._hand_over)

    def wait(self, fn: Callable[[], Any]) -> None:
        """Call ``fn`` (on the loop) when the line is free; a meter waits once."""
        if fn not in self._waiters:
            self._waiters.append(fn)

    def _hand_over(self) -> None:
        self._handing = False
        waiters = self._waiters
        while self.holder is None and waiters:
            waiters.pop(0)()

    # -- connect ---------------------------------------------------------------------------------
    def open(self, meter: LineUser) -> None:
        """``meter`` (holding the line) needs it open: ``meter.opened`` is called when it is."""
        if self.sock is not None:
            meter.opened(None)
            return
        self.opening = True
        if self.address is None:
            threading.Thread(target=self._resolve, name=f"resolve {self.key}", daemon=True).start()
            return
        self._open_socket()

    def _resolve(self) -> None:  # on a helper thread: name lookups may block for seconds
        address = resolve(self.spec)

        def back() -> None:
            if not self.opening or self.sock is not None:
                return
            if address is None:
                self._open_failed(TransportError(f"{self.description}: connect failed: name lookup"))
                return
            self.address = address
            self._open_socket()

        self.loop.call_soon_threadsafe(back)

    def _open_socket(self) -> None:
        assert self.address is not None
        try:
            sock = start_connect(self.address, self.description)
        except TransportError as exc:
            self._open_failed(exc)
            return
        self.sock = sock
        self.loop.register(sock, _WRITE, self._on_io)

    def _open_failed(self, exc: DlmsError) -> None:
        self.opening = False
        self.close()
        if self.holder is not None:
            self.holder.opened(exc)

    def abandon_open(self) -> None:
        """The connect is given up (timed out, stopping)."""
        self.opening = False
        self.close()

    def leave(self, meter: LineUser) -> None:
        """``meter`` no longer needs the connection: close it unless another meter has a session
        on it (a concentrator keeps the meters behind it associated over one connection)."""
        for user in self.users:
            if user is not meter and user.poll_state.session is not None:
                return
        self.close()

    def close(self) -> None:
        sock, self.sock = self.sock, None
        self._pending = b""
        if sock is not None:
            self.loop.unregister(sock)
            try:
                sock.close()
            except OSError:
                pass

    # -- bytes ------------------------------------------------------------------------------------
    def _on_io(self, mask: int) -> None:
        sock = self.sock
        if sock is None:
            return
        if self.opening:
            self.opening = False
            exc = connect_error(sock, self.description)
            if exc is not None:
                self._open_failed(exc)
                return
            self.loop.modify(sock, _READ, self._on_io)
            if self.holder is not None:
                self.holder.opened(None)
            return
        meter = self.holder if self.holder is not None else self._last
        if mask & _READ:
            machine = meter.machine if meter is not None else None
            while True:
                try:
                    data = sock.recv(_RECV)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    self.lost(TransportError(f"{self.description}: read failed: {exc}"))
                    return
                if not data:
                    self.lost(TransportError(f"{self.description}: connection closed by peer"))
                    return
                if machine is not None:
                    machine.receive_data(data, self.loop.clock())
                if len(data) < _RECV:
                    break
        if mask & _WRITE and self._pending:
            self.send(b"")
        if meter is not None and meter is self.holder:
            meter.on_line_io()

    def send(self, data: bytes) -> None:
        sock = self.sock
        if sock is None:
            return
        had = self._pending
        if had:
            data = had + data
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.lost(TransportError(f"{self.description}: write failed: {exc}"))
            return
        self._pending = data[sent:]
        if self._pending and not had:
            self.loop.modify(sock, _READ | _WRITE, self._on_io)
        elif had and not self._pending:
            self.loop.modify(sock, _READ, self._on_io)

    def lost(self, exc: TransportError) -> None:
        """The connection broke: every session on it is gone; the holder's operation fails."""
        self.close()
        for user in self.users:
            user.machine.connection_lost(exc)
        holder = self.holder
        if holder is not None:
            holder.on_line_io()
