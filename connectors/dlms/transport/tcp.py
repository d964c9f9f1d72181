"""TCP transport: one client socket to a meter, a modem or a serial-to-Ethernet converter."""

from __future__ import annotations

import errno
import logging
import os
import socket
from typing import Any, Optional

from ..protocol.errors import NoAnswer, TransportError
from .base import Transport
from .fd_limits import keep_high

__all__ = ["TcpTransport", "connect_error", "describe", "resolve", "start_connect", "tune_socket"]

log = logging.getLogger(__name__)

_RECV_SIZE = 65536
# Keepalive probes find a dead GPRS/NB-IoT link during long idle polls (~60 s instead of ~2 h).
_KEEPALIVE = (
    ("TCP_KEEPIDLE", 30),
    ("TCP_KEEPINTVL", 10),
    ("TCP_KEEPCNT", 3),
)


def tune_socket(sock: socket.socket) -> None:
    """Options every meter connection gets (blocking transport and the engine's loop alike)."""
    # DLMS is request/response with small frames: Nagle would only add latency.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # A meter that vanishes without a FIN is noticed by keepalive, not only by the next request.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in _KEEPALIVE:
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def describe(host: str, port: int) -> str:
    """``tcp host:port`` (IPv6 literals in brackets): how errors and logs name the connection."""
    host = host.strip().strip("[]")
    return f"tcp [{host}]:{port}" if ":" in host else f"tcp {host}:{port}"


def resolve(host: str, port: int) -> Optional[tuple[int, Any]]:
    """(family, sockaddr) of ``host:port``, or None when the lookup fails. May block (DNS): the
    non-blocking user calls it off its loop."""
    try:
        info = socket.getaddrinfo(host.strip().strip("[]"), port, 0, socket.SOCK_STREAM)
    except OSError:
        return None
    return (info[0][0], info[0][4]) if info else None


def start_connect(address: tuple[int, Any], description: str) -> socket.socket:
    """A non-blocking, tuned socket whose connect to ``address`` has begun (the non-blocking
    mode of this transport, for a selector loop): wait until it is writable, then ask
    ``connect_error``. Raises ``TransportError`` when the connect fails at once."""
    family, sockaddr = address
    try:
        # Above 1,023 where there is room: the low numbers stay for select() users (fd_limits).
        sock = keep_high(socket.socket(family, socket.SOCK_STREAM))
    except OSError as exc:
        raise TransportError(f"{description}: connect failed: {exc}") from exc
    try:
        sock.setblocking(False)
        tune_socket(sock)
        err = sock.connect_ex(sockaddr)
    except OSError as exc:
        sock.close()
        raise TransportError(f"{description}: connect failed: {exc}") from exc
    if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
        sock.close()
        raise TransportError(f"{description}: connect failed: {OSError(err, os.strerror(err))}")
    return sock


def connect_error(sock: socket.socket, description: str) -> Optional[TransportError]:
    """How the connect begun by ``start_connect`` ended, once the socket is writable."""
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err == 0:
        return None
    return TransportError(f"{description}: connect failed: {OSError(err, os.strerror(err))}")


class TcpTransport(Transport):
    """A TCP client. ``host`` may be a name, an IPv4 literal or an IPv6 literal (with or without [])."""

    def __init__(
        self,
        host: str,
        port: int,
        connect_timeout: float = 5.0,
        *,
        write_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        host = host.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host:
            raise TransportError("tcp: empty host")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise TransportError(f"tcp {host}: port {port!r} is not in 1..65535")
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self._sock: Optional[socket.socket] = None
        self._timeout: Optional[float] = None  # last value given to settimeout (saves a call)
        self._description = describe(host, port)

    @property
    def description(self) -> str:
        return self._description

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        if self._sock is not None:
            return
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except socket.timeout as exc:
            raise NoAnswer(
                f"{self._description}: connect timed out after {self.connect_timeout:g} s"
            ) from exc
        except OSError as exc:
            raise self._error("connect failed", exc) from exc
        try:
            sock = keep_high(sock)  # the low numbers stay for the gateway's select() users
            sock.settimeout(self.connect_timeout)
            tune_socket(sock)
        except OSError as exc:
            sock.close()
            raise self._error("socket setup failed", exc) from exc
        self._timeout = self.connect_timeout
        self._sock = sock
        log.debug("%s: connected", self._description)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            # shutdown() first: it also wakes a worker blocked in recv() on another thread.
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
        log.debug("%s: closed", self._description)

    def _live(self) -> socket.socket:
        sock = self._sock
        if sock is None:
            raise self._error("not open")
        return sock

    def _set_timeout(self, sock: socket.socket, timeout: float) -> None:
        if timeout != self._timeout:
            sock.settimeout(timeout)
            self._timeout = timeout

    def _broken(self, what: str, cause: Optional[BaseException] = None) -> TransportError:
        closed_here = self._sock is None
        self.close()
        return self._error("closed" if closed_here else what, cause)

    def write(self, data: bytes) -> None:
        sock = self._live()
        try:
            self._set_timeout(sock, self.write_timeout)
            sock.sendall(data)
        except socket.timeout as exc:
            raise self._broken(f"write timed out after {self.write_timeout:g} s") from exc
        except OSError as exc:
            raise self._broken("write failed", exc) from exc
        self.bytes_sent += len(data)

    def read(self, timeout: float) -> bytes:
        sock = self._live()
        try:
            self._set_timeout(sock, timeout if timeout > 0 else 0.0)
            data = sock.recv(_RECV_SIZE)
        except (socket.timeout, BlockingIOError):
            return b""
        except OSError as exc:
            raise self._broken("read failed", exc) from exc
        if not data:
            raise self._broken("connection closed by peer")
        self.bytes_received += len(data)
        return data

    def discard_input(self) -> int:
        sock = self._live()
        dropped = 0
        try:
            self._set_timeout(sock, 0.0)
            while True:
                chunk = sock.recv(_RECV_SIZE)
                if not chunk:
                    raise self._broken("connection closed by peer")
                dropped += len(chunk)
        except (socket.timeout, BlockingIOError):
            pass
        except OSError as exc:
            raise self._broken("read failed", exc) from exc
        self.bytes_received += dropped
        return dropped
