"""A ring buffer of the last frames on the wire, dumped at WARNING when something goes wrong.

pymodbus's lesson: when a meter in the field misbehaves once a week, the frames around the failure
are what the engineer needs, and DEBUG logging is never on at that moment. Recording is cheap (a
deque append of the bytes as they were written or read); hex is made only when the trace is shown.

An entry is one transport write or read: normally one frame, but a read may hold several frames,
part of one, or garbage, exactly as it came. Masked bytes (the LLS password in the AARQ) are
replaced before anything is stored, so the secret never reaches a log line.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from ..protocol.axdr import encode_length

__all__ = ["MASK_BYTE", "FrameTrace", "TraceEntry", "secret_span"]

MASK_BYTE = "**"  # how a masked byte shows in the hex
# An entry keeps at most this much of one read or write: a frame is at most 2,050 bytes, and a
# meter that streams bytes must not make the ring hold 32 reads of 64 KiB, nor a dump of them
# megabytes of hex (the --trace sink still sees every byte as it comes).
ENTRY_BYTES = 2048


class TraceEntry(NamedTuple):
    direction: str  # "tx" or "rx"
    time: float  # wall clock, seconds since the epoch
    data: bytes
    masked: tuple[tuple[int, int], ...] = ()  # byte ranges hidden from every rendering
    cut: int = 0  # bytes of the read/write not kept (beyond ENTRY_BYTES)

    @property
    def hex(self) -> str:
        return render_hex(self.data, self.masked)

    def line(self) -> str:
        stamp = datetime.fromtimestamp(self.time, timezone.utc).strftime("%H:%M:%S.%f")[:-3] + "Z"
        more = f" ... (+{self.cut} bytes)" if self.cut else ""
        return f"{stamp} {self.direction} {self.hex}{more}"


def secret_span(aarq: bytes, password: bytes) -> tuple[int, int]:
    """Where the LLS password sits in the AARQ, as a byte range of the APDU: the
    calling-authentication-value [12] holds ``80 <len> <password>``. The channel turns this
    range into ranges of the frames that carry it (``secret_spans``). The whole APDU is masked
    if the password cannot be found."""
    tagged = b"\x80" + encode_length(len(password)) + password
    at = aarq.find(tagged)
    if at < 0:
        return 0, len(aarq)
    start = at + len(tagged) - len(password)
    return start, start + len(password)


def render_hex(data: bytes, masked: Sequence[tuple[int, int]] = ()) -> str:
    if not masked:
        return data.hex(" ")
    parts = data.hex(" ").split(" ")
    for start, end in masked:
        for i in range(max(0, start), min(len(parts), end)):
            parts[i] = MASK_BYTE
    return " ".join(parts)


class FrameTrace:
    """The last ``size`` transport writes/reads; ``sink`` (e.g. the CLI's --trace) sees each
    entry's line as it is recorded.

    Stored as plain ``(time, direction, data, masked)`` tuples (two per poll cycle per meter);
    ``TraceEntry`` objects and hex are made only when the trace is read or shown."""

    def __init__(
        self,
        size: int = 32,
        clock: Callable[[], float] = time.time,
        sink: Callable[[str], None] | None = None,
    ) -> None:
        self._entries: deque[tuple[float, str, bytes, tuple[tuple[int, int], ...], int]] = (
            deque(maxlen=size)
        )
        self._clock = clock
        self.sink = sink

    def record(
        self, direction: str, data: bytes, masked: Sequence[tuple[int, int]] = ()
    ) -> None:
        if masked:
            # Store the masked bytes as zeros too: the raw secret must not linger in memory dumps.
            buf = bytearray(data)
            for start, end in masked:
                buf[start:end] = bytes(max(0, min(end, len(buf)) - start))
            data = bytes(buf)
            masked = tuple(masked)
        t = self._clock()
        cut = len(data) - ENTRY_BYTES
        if cut > 0:
            self._entries.append((t, direction, data[:ENTRY_BYTES], masked, cut))  # type: ignore[arg-type]
        else:
            self._entries.append((t, direction, data, masked, 0))  # type: ignore[arg-type]
        if self.sink is not None:
            self.sink(TraceEntry(direction, t, data, masked).line())  # type: ignore[arg-type]

    def last_line(self) -> str:
        """The line of the latest entry (for a DEBUG log of the frame just recorded)."""
        t, direction, data, masked, cut = self._entries[-1]
        return TraceEntry(direction, t, data, masked, cut).line()

    def entries(self) -> list[TraceEntry]:
        return [TraceEntry(d, t, data, m, cut) for t, d, data, m, cut in self._entries]

    def lines(self) -> list[str]:
        return [e.line() for e in self.entries()]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def dump(self, log: logging.Logger, reason: str, level: int = logging.WARNING) -> None:
        """Log the buffered frames in one record (one record keeps them together in the log)."""
        if not self._entries:
            log.log(level, "%s (no frames recorded)", reason)
            return
        body = "\n  ".join(self.lines())
        log.log(level, "%s; last %d frames:\n  %s", reason, len(self._entries), body)
