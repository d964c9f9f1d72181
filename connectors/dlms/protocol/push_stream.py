"""The byte stream of a pushing meter cut into APDUs: wrapper PDUs or HDLC UI frames.

Sans-IO: ``feed(bytes)`` returns the APDUs completed by those bytes, each with the sender's
address, and whatever was thrown away on the way (``StreamProblem``). ``PushOpener`` (push.py)
opens the APDUs; the listener (engine/push_listener.py) owns the sockets and serial lines.

- Wrapper (IEC 62056-47): ``source`` is the sender's wPort. A wrong version or an oversized
  length puts the stream out of step for good: ``error`` is set (the APDUs cut before it are
  still returned) and the caller closes the connection (there is no delimiter to hunt for).
- HDLC: UI frames (a push needs no link set up); the LLC header (E6 E7 00 or E6 E6 00) is taken
  off when present; segmented UI frames are joined until the last one. ``source`` is the sender's
  physical address, or its logical address when it has no physical part. Garbage and bad frames
  are skipped by the framer's flag hunt and reported, never fatal: a serial line cannot be
  reconnected.

Memory is bounded: at most ``max_apdu`` octets wait per stream, whatever the sender does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .errors import DecodeError, LocalProtocolError
from .hdlc.frame import MAX_FRAME_LENGTH, FrameKind
from .hdlc.framer import HdlcFramer
from .wrapper import WrapperFramer

__all__ = ["FRAMINGS", "PushStream", "PushedApdu", "StreamEvent", "StreamProblem"]

FRAMINGS = ("wrapper", "hdlc")
_LLC = (b"\xe6\xe7\x00", b"\xe6\xe6\x00")


@dataclass(frozen=True)
class PushedApdu:
    source: int  # wrapper wPort, or HDLC physical (else logical) address of the sender
    apdu: bytes


@dataclass(frozen=True)
class StreamProblem:
    """Bytes dropped: ``octets`` of garbage, a bad frame or an oversized message."""

    message: str
    octets: int


StreamEvent = Union[PushedApdu, StreamProblem]


class PushStream:
    """One connection's (or serial line's) bytes in, APDUs out."""

    def __init__(self, framing: str, max_apdu: int = 0xFFFF) -> None:
        if framing not in FRAMINGS:
            raise LocalProtocolError(f"push framing {framing!r} is not one of {FRAMINGS}")
        if not 16 <= max_apdu <= 0xFFFF:
            raise LocalProtocolError(f"max_apdu {max_apdu} out of range 16..65535")
        self.framing = framing
        self.max_apdu = max_apdu
        self._wrapper = WrapperFramer(max_apdu) if framing == "wrapper" else None
        self._hdlc = HdlcFramer(2 * (MAX_FRAME_LENGTH + 2)) if framing == "hdlc" else None
        self._parts = bytearray()  # segments of an HDLC message not complete yet
        self._parts_from: int | None = None
        self._skipping: int | None = None  # the sender of an oversized message: rest dropped
        self._hdlc_dropped = 0
        self.error: DecodeError | None = None  # a wrapper stream out of step: close it

    @property
    def buffered(self) -> int:
        """Octets received and not yet part of an APDU handed out (a message in progress)."""
        if self._wrapper is not None:
            return self._wrapper.buffered
        assert self._hdlc is not None
        return len(self._parts) + (0 if self._hdlc.idle else self._hdlc.buffered)

    def feed(self, data: bytes) -> list[StreamEvent]:
        if self._wrapper is not None:
            return self._feed_wrapper(data)
        return self._feed_hdlc(data)

    def _feed_wrapper(self, data: bytes) -> list[StreamEvent]:
        framer = self._wrapper
        assert framer is not None
        framer.feed(data)
        out: list[StreamEvent] = []
        while True:
            try:
                pdu = framer.next_pdu()
            except DecodeError as exc:  # out of step for good: the caller closes
                self.error = exc
                return out  # the PDUs cut before the bad header are good
            if pdu is None:
                return out
            out.append(PushedApdu(pdu.source, pdu.apdu))

    def _feed_hdlc(self, data: bytes) -> list[StreamEvent]:
        framer = self._hdlc
        assert framer is not None
        framer.feed(data)
        out: list[StreamEvent] = []
        while True:
            frame = framer.next_frame()
            self._report_dropped(framer, out)
            if frame is None:
                return out
            if frame.kind is not FrameKind.UI:
                out.append(StreamProblem(f"HDLC {frame.kind.name} frame ignored: a push comes in "
                                         "UI frames", len(frame.info)))
                continue
            source = frame.source.physical
            if source is None:
                source = frame.source.logical
            if self._skipping is not None:
                if self._skipping == source:  # the tail of the message dropped already
                    if not frame.segmented:
                        self._skipping = None
                    continue
                self._skipping = None
            if self._parts and self._parts_from != source:
                out.append(StreamProblem(f"segmented message from {self._parts_from} cut short "
                                         f"by a frame from {source}", len(self._parts)))
                self._parts.clear()
            if len(self._parts) + len(frame.info) > self.max_apdu + len(_LLC[0]):
                out.append(StreamProblem(f"message from {source} longer than {self.max_apdu} "
                                         "octets dropped", len(self._parts) + len(frame.info)))
                self._parts.clear()
                self._parts_from = None
                self._skipping = source if frame.segmented else None
                continue
            self._parts += frame.info
            self._parts_from = source
            if frame.segmented:
                continue
            apdu = bytes(self._parts)
            self._parts.clear()
            self._parts_from = None
            if apdu[:3] in _LLC:
                apdu = apdu[3:]
            if apdu:
                out.append(PushedApdu(source, apdu))

    def _report_dropped(self, framer: HdlcFramer, out: list[StreamEvent]) -> None:
        dropped = framer.discarded_bytes - self._hdlc_dropped
        if dropped:
            self._hdlc_dropped = framer.discarded_bytes
            out.append(StreamProblem(framer.last_error or "garbage between frames", dropped))

