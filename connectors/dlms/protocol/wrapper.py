"""IEC 62056-47 TCP/UDP wrapper (Green Book "wrapper"): DLMS over IP without HDLC.

Every APDU travels behind an 8-byte header, all big-endian uint16::

    version (0x0001) | source wPort | destination wPort | length of the APDU

wPorts play the role of HDLC addresses (client SAP 16 = public client, server 1 = management
logical device...). There is no LLC header and no check sequence: TCP carries integrity.

A TCP stream has no frame delimiter to hunt for, so a wrong version (or a length beyond the limit)
means the stream is out of step for good. :class:`WrapperFramer` then stays failed: every later
``next_pdu()`` raises the same DecodeError until ``clear()``; the session must close the TCP
connection and open a new one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import DecodeError, LocalProtocolError

__all__ = [
    "HEADER_SIZE",
    "WRAPPER_VERSION",
    "WrapperFramer",
    "WrapperPdu",
    "encode_wrapper",
    "encode_wrapper_header",
]

WRAPPER_VERSION = 0x0001
HEADER_SIZE = 8
_HEADER = struct.Struct(">HHHH")


@dataclass(frozen=True)
class WrapperPdu:
    source: int
    destination: int
    apdu: bytes

    def encode(self) -> bytes:
        return encode_wrapper(self.apdu, self.source, self.destination)


def encode_wrapper_header(source: int, destination: int, apdu_length: int) -> bytes:
    """The header of a PDU carrying ``apdu_length`` bytes (also the template the session's
    express path expects an answer to start with)."""
    for name, port in (("source", source), ("destination", destination)):
        if not 0 <= port <= 0xFFFF:
            raise LocalProtocolError(f"wrapper {name} wPort {port} out of range 0..65535")
    if apdu_length > 0xFFFF:
        raise LocalProtocolError(f"wrapper APDU of {apdu_length} bytes exceeds 65535")
    return _HEADER.pack(WRAPPER_VERSION, source, destination, apdu_length)


def encode_wrapper(apdu: bytes, source: int, destination: int) -> bytes:
    """Header + APDU, ready to write to the socket."""
    return encode_wrapper_header(source, destination, len(apdu)) + bytes(apdu)


class WrapperFramer:
    """Cuts a TCP byte stream into wrapper PDUs; ``max_length`` bounds the buffered APDU."""

    def __init__(self, max_length: int = 0xFFFF) -> None:
        self.max_length = max_length
        self._buffer = bytearray()
        self._error: DecodeError | None = None

    def feed(self, data: bytes) -> None:
        if self._error is None:  # once out of step, bytes are worthless: keep memory bounded
            self._buffer += data

    def next_pdu(self) -> WrapperPdu | None:
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        if len(buffer) < HEADER_SIZE:
            return None
        version, source, destination, length = _HEADER.unpack_from(buffer)
        if version != WRAPPER_VERSION:
            self._fail(f"wrapper version {version:#06x}, expected 0x0001", 0)
        if length > self.max_length:
            self._fail(f"wrapper length {length} exceeds the limit {self.max_length}", 6)
        end = HEADER_SIZE + length
        if len(buffer) < end:
            return None
        apdu = bytes(buffer[HEADER_SIZE:end])
        del buffer[:end]
        return WrapperPdu(source, destination, apdu)

    def _fail(self, message: str, offset: int) -> None:
        self._error = DecodeError(message + ": stream out of step, reconnect", offset)
        self._buffer.clear()
        raise self._error

    @property
    def failed(self) -> bool:
        return self._error is not None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def clear(self) -> None:
        """Start afresh (on a new TCP connection)."""
        self._buffer.clear()
        self._error = None
