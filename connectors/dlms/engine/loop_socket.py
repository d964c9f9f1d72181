"""The TCP socket of a ``LoopMeter``: name lookup, non-blocking connect, and the bytes in and out.

A pipe that knows nothing of DLMS or of polling: it opens the socket (the name looked up once, off
the loop), registers it with the ``SelectorLoop``, hands what arrives to the ``SessionMachine``,
sends what the machine produced (keeping what the kernel did not take until the socket is writable
again) and reports the end of the connect (``_opened``) and a lost line (``_lost``). What happens
next is decided in ``loop_meter``. A mixin, so the hot path calls plain methods of one object.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tb_dlms.engine.spec import TcpSpec
from tb_dlms.protocol.errors import DlmsError, TransportError
from tb_dlms.session.machine import SessionMachine
from tb_dlms.transport.tcp import tune_socket

if TYPE_CHECKING:
    from tb_dlms.engine.loop import SelectorLoop

__all__ = ["LoopSocketMixin", "resolve"]

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_RECV = 65536


def resolve(spec: TcpSpec) -> tuple[int, Any] | None:
    """(family, sockaddr) of the meter, looked up once (off the loop); None if it fails."""
    host = spec.host.strip().strip("[]")
    try:
        info = socket.getaddrinfo(host, spec.port, 0, socket.SOCK_STREAM)
    except OSError:
        return None
    return (info[0][0], info[0][4]) if info else None


class LoopSocketMixin:
    """Socket handling of ``LoopMeter`` (needs its fields and its ``_arm``/``_opened``/
    ``_after_io``)."""

    key: str
    loop: SelectorLoop
    machine: SessionMachine
    description: str
    sock: socket.socket | None
    op: str | None
    _spec: TcpSpec
    _address: tuple[int, Any] | None
    _pending: bytes
    _open_deadline: float
    _clock: Callable[[], float]

    if TYPE_CHECKING:
        def _arm(self, at: float) -> None: ...
        def _opened(self, exc: DlmsError | None) -> None: ...
        def _after_io(self) -> None: ...

    # -- connect ---------------------------------------------------------------------------------
    def _resolve(self) -> None:  # on a helper thread: name lookups may block for seconds
        address = resolve(self._spec)

        def back() -> None:
            if self.op != "open" or self.sock is not None:
                return
            if address is None:
                self._opened(TransportError(f"{self.description}: connect failed: name lookup"))
                return
            self._address = address
            self._open_socket()

        self.loop.call_soon_threadsafe(back)

    def _open_socket(self) -> None:
        family, sockaddr = self._address  # type: ignore[misc]
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            self._opened(TransportError(f"{self.description}: connect failed: {exc}"))
            return
        sock.setblocking(False)
        try:
            tune_socket(sock)
            err = sock.connect_ex(sockaddr)
        except OSError as exc:
            sock.close()
            self._opened(TransportError(f"{self.description}: connect failed: {exc}"))
            return
        self.sock = sock
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self._opened(TransportError(
                f"{self.description}: connect failed: {OSError(err, os.strerror(err))}"))
            return
        self.loop.register(sock, _WRITE, self._on_io)
        self._arm(self._open_deadline)

    def _close_socket(self) -> None:
        sock, self.sock = self.sock, None
        self._pending = b""
        if sock is not None:
            self.loop.unregister(sock)
            try:
                sock.close()
            except OSError:
                pass

    # -- socket -------------------------------------------------------------------------------
    def _on_io(self, mask: int) -> None:
        sock = self.sock
        if sock is None:
            return
        if self.op == "open":
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            self._opened(None if err == 0 else TransportError(
                f"{self.description}: connect failed: {OSError(err, os.strerror(err))}"))
            return
        if mask & _READ:
            machine = self.machine
            while True:
                try:
                    data = sock.recv(_RECV)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    self._lost(TransportError(f"{self.description}: read failed: {exc}"))
                    return
                if not data:
                    self._lost(TransportError(f"{self.description}: connection closed by peer"))
                    return
                machine.receive_data(data, self._clock())
                if len(data) < _RECV:
                    break
        if mask & _WRITE and self._pending:
            self._send(b"")
        if self.op is not None and self.op != "rpc":
            self._after_io()

    def _send(self, data: bytes) -> None:
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
            self._lost(TransportError(f"{self.description}: write failed: {exc}"))
            return
        self._pending = data[sent:]
        if self._pending and not had:
            self.loop.modify(sock, _READ | _WRITE, self._on_io)
        elif had and not self._pending:
            self.loop.modify(sock, _READ, self._on_io)

    def _lost(self, exc: TransportError) -> None:
        self._close_socket()
        self.machine.connection_lost(exc)
        if self.op is not None and self.op != "rpc":
            self._after_io()
