"""HDLC stream framer: bytes from a serial line or TCP stream in, whole frames out.

pymodbus style: :func:`decode` works on a buffer only and says how many bytes it consumed.

How a frame is found: the hunt for a frame start uses ``bytes.find(0x7E)`` (C speed); a flag
followed by a type-3 format byte is a candidate, and its 11-bit length field says where the closing
flag must be. The end is never searched for. Consecutive frames may share a flag
(``7E frame 7E frame 7E``), so the closing flag is left in the buffer as the next opening one.

Resynchronisation: when a candidate fails (no flag at the end its length announces, bad HCS or FCS)
only its opening flag is dropped and the hunt goes on from the next byte, so a good frame right
behind a bad or truncated one is never lost. An incomplete candidate normally means "wait for more
bytes"; but if a complete, CRC-valid frame already sits behind it in the buffer, the candidate was
truncated on the line and is dropped.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import DecodeError, LocalProtocolError
from .frame import FLAG, MAX_FRAME_LENGTH, Frame, decode_frame

__all__ = ["HdlcFramer", "ScanResult", "decode", "scan"]

_MIN_LENGTH = 7  # format(2) + 1-byte addresses(2) + control(1) + FCS(2)
_FLAG_BYTE = bytes((FLAG,))


class ScanResult(NamedTuple):
    """One step of the framer: drop ``consumed`` bytes; ``frame`` is the frame found, if any.

    ``discarded`` counts the non-flag bytes thrown away (garbage, bad frames); ``error`` describes
    the bad frame dropped in this step, if there was one.
    """

    consumed: int
    frame: Frame | None
    discarded: int
    error: str | None


def _candidate(buffer: bytes | bytearray, pos: int) -> int:
    """Closing-flag index of the candidate frame opened at ``pos``; -1 if it is no frame start,
    -2 if more bytes are needed to tell."""
    if pos + 3 > len(buffer):
        return -2
    hi = buffer[pos + 1]
    if hi & 0xF0 != 0xA0:
        return -1
    length = ((hi & 0x07) << 8) | buffer[pos + 2]
    if length < _MIN_LENGTH:
        return -1
    return pos + 1 + length


def _valid_frame_ahead(buffer: bytes | bytearray, pos: int) -> int:
    """Index of the first complete CRC-valid frame starting after ``pos``, or -1."""
    n = len(buffer)
    q = buffer.find(_FLAG_BYTE, pos + 1)
    while q >= 0:
        end = _candidate(buffer, q)
        if 0 <= end < n and buffer[end] == FLAG:
            try:
                decode_frame(buffer[q : end + 1])
                return q
            except DecodeError:
                pass
        q = buffer.find(_FLAG_BYTE, q + 1)
    return -1


def _garbage(buffer: bytes | bytearray, start: int, stop: int) -> int:
    """Bytes in ``buffer[start:stop]`` that are not idle flags (flags between frames are legal)."""
    if stop <= start:
        return 0
    return (stop - start) - buffer.count(_FLAG_BYTE, start, stop)


def scan(buffer: bytes | bytearray) -> ScanResult:
    """One framing step over ``buffer``: hunt garbage, return at most one frame or one bad frame.

    ``consumed == 0`` with no frame means: nothing more can be done until more bytes arrive.
    """
    n = len(buffer)
    pos = buffer.find(_FLAG_BYTE)
    if pos < 0:
        return ScanResult(n, None, n, None)
    while True:
        end = _candidate(buffer, pos)
        if end == -1:
            # An idle flag, a closing flag or a stray 0x7E in garbage: hunt for the next one.
            nxt = buffer.find(_FLAG_BYTE, pos + 1)
            if nxt < 0:
                # Keep the last byte if it is a flag, else drop everything.
                return ScanResult(n, None, _garbage(buffer, 0, n), None)
            pos = nxt
            continue
        if end == -2 or end >= n:
            ahead = _valid_frame_ahead(buffer, pos) if end >= 0 else -1
            if ahead < 0:
                return ScanResult(pos, None, _garbage(buffer, 0, pos), None)
            return ScanResult(ahead, None, _garbage(buffer, 0, ahead), "truncated HDLC frame")
        if buffer[end] != FLAG:
            error = "no closing flag where the HDLC length field points"
        else:
            try:
                frame = decode_frame(buffer[pos : end + 1])
            except DecodeError as exc:
                error = str(exc)
            else:
                return ScanResult(end, frame, _garbage(buffer, 0, pos), None)
        # Bad candidate: drop just its opening flag, the next frame may start inside it.
        return ScanResult(pos + 1, None, _garbage(buffer, 0, pos) + 1, error)


def decode(buffer: bytes) -> tuple[int, Frame | None]:
    """pymodbus-style framing: ``(consumed, frame or None)``; ``(0, None)`` means need more data.

    A result with ``consumed > 0`` and no frame means garbage was skipped: call again with the
    rest. The closing flag of a frame is not consumed (it may open the next frame).
    """
    result = scan(buffer)
    return result.consumed, result.frame


class HdlcFramer:
    """Buffers a byte stream and hands out frames; never raises on garbage.

    Counters for the session's log: ``discarded_bytes`` (garbage, bad frames, overflow),
    ``bad_frames`` (candidates rejected by length, HCS, FCS or truncation), ``last_error``.
    """

    def __init__(self, max_buffer: int = 8192) -> None:
        if max_buffer < MAX_FRAME_LENGTH + 2:
            raise LocalProtocolError(
                f"HdlcFramer max_buffer={max_buffer} cannot hold one frame of {MAX_FRAME_LENGTH + 2}"
            )
        self.max_buffer = max_buffer
        self._buffer = bytearray()
        self.discarded_bytes = 0
        self.bad_frames = 0
        self.frames = 0
        self.last_error: str | None = None

    def feed(self, data: bytes) -> None:
        self._buffer += data
        overflow = len(self._buffer) - self.max_buffer
        if overflow > 0:
            # Oldest bytes go first: any frame still wanted lies at the end of the stream.
            del self._buffer[:overflow]
            self.discarded_bytes += overflow
            self.last_error = f"receive buffer full: dropped {overflow} oldest bytes"

    def next_frame(self) -> Frame | None:
        buffer = self._buffer
        while buffer:
            consumed, frame, discarded, error = scan(buffer)
            if consumed:
                del buffer[:consumed]
            self.discarded_bytes += discarded
            if error is not None:
                self.bad_frames += 1
                self.last_error = error
            if frame is not None:
                self.frames += 1
                return frame
            if not consumed:
                return None
        return None

    @property
    def buffered(self) -> int:
        """Bytes waiting in the buffer (an incomplete frame, or a flag that may open one)."""
        return len(self._buffer)

    @property
    def idle(self) -> bool:
        """Nothing buffered but flags (the last frame's closing flag stays as a possible opener)."""
        buffer = self._buffer
        return not buffer or not buffer.strip(_FLAG_BYTE)

    def clear(self) -> None:
        """Forget buffered bytes (after a reconnect); the counters are kept."""
        self._buffer.clear()
