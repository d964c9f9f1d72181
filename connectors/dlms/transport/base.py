"""The byte-pipe contract every transport fulfils.

A transport moves bytes and nothing else: it knows no HDLC, no wrapper, no APDU (the pymodbus
lesson). The session layer drives exactly one transport from one worker thread, so the contract is
blocking and simple; only ``close()`` may come from another thread (to stop a worker blocked in
``read``).
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Optional, Type, TypeVar

from ..protocol.errors import TransportError

__all__ = ["Transport"]

_T = TypeVar("_T", bound="Transport")


class Transport(abc.ABC):
    """A blocking, bidirectional byte pipe.

    ``read(timeout)`` returns the bytes available now, waiting at most ``timeout`` seconds for the
    first one (``timeout <= 0`` only polls); ``b""`` means nothing arrived in time. A peer that
    closed or a link that broke raises ``TransportError`` instead, so ``b""`` never means EOF.
    """

    def __init__(self) -> None:
        # Plain counters, read by diagnostics; ints are cheap to bump on the hot path.
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Human-readable endpoint for logs and errors, e.g. ``tcp 10.0.0.5:3333``; never secrets."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """True between a successful ``open()`` and ``close()`` (or a detected link failure)."""

    @abc.abstractmethod
    def open(self) -> None:
        """Connect / open the device; raises ``TransportError`` naming the endpoint."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the link. Idempotent and never raises."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send all of ``data`` or raise ``TransportError``."""

    @abc.abstractmethod
    def read(self, timeout: float) -> bytes:
        """Bytes available now, waiting at most ``timeout`` s for the first; ``b""`` on timeout."""

    @abc.abstractmethod
    def discard_input(self) -> int:
        """Drop bytes already received (a late answer must not pass for the next one); return count."""

    def _error(self, what: str, cause: Optional[BaseException] = None) -> TransportError:
        # Every message names the endpoint: with many meters per gateway that is what ops need.
        detail = f": {cause}" if cause is not None else ""
        return TransportError(f"{self.description}: {what}{detail}")

    def __enter__(self: _T) -> _T:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<{type(self).__name__} {self.description} {state}>"
