"""An APDU channel: HDLC or the IEC 62056-47 wrapper behind one sans-IO interface.

The session drives whichever the settings ask for without ``if wrapper`` branches. Shape (h11):
calls that produce bytes return them (``connect``, ``send``, ``retransmit``, ``disconnect``);
received bytes go in with ``receive_data``; ``next_event`` returns the HDLC link's event types
(``Connected``, ``DataReceived``, ``Disconnected``, ``FrameRejected``, ``UnexpectedFrame``,
``UnnumberedDataReceived``) or ``NEED_DATA``; ``data_to_send`` returns what the channel answers by
itself (HDLC RR polls and next segments).

The wrapper has no link establishment: ``connect`` returns b"" and queues ``Connected`` at once,
so the session's code path is the same and no round trip is spent.
"""

from __future__ import annotations

from typing import Any, Union

from ..protocol.errors import DlmsError
from ..protocol.express_cache import remember
from ..protocol.hdlc import (
    NEED_DATA,
    Connected,
    DataReceived,
    Disconnected,
    HdlcConnection,
    LinkParameters,
    LinkState,
    Role,
)
from ..protocol.hdlc.frame import FrameKind, decode_frame
from ..protocol.hdlc.link import LLC_REQUEST
from ..protocol.wrapper import HEADER_SIZE, WrapperFramer, encode_wrapper, encode_wrapper_header
from .settings import SessionSettings

__all__ = ["ApduChannel", "HdlcChannel", "WrapperChannel", "make_channel"]

Span = tuple[int, int]


class HdlcChannel:
    """APDUs over an HDLC link (client role)."""

    kind = "hdlc"

    def __init__(self, settings: SessionSettings) -> None:
        self._settings = settings
        self._client = settings.client_address
        self._server = settings.server_address
        self._parameters = settings.link_parameters
        self._frames_before = 0  # frames of the links before this one (``frames`` never drops)
        p = self._parameters
        # Room for a full receive window of the longest frames, twice (a late answer and a new).
        self._max_buffer = max(8192, 2 * p.window_rx * (p.max_info_rx + 16))
        self.reset()

    def reset(self) -> None:
        """A fresh link for a new transport connection."""
        if hasattr(self, "link"):  # not the first: keep the count of the old link
            self._frames_before = self.frames
        self.link = HdlcConnection(
            Role.CLIENT, self._client, self._server, self._parameters, max_buffer=self._max_buffer
        )
        self._secret_top = -1  # highest segment of the AARQ seen so far by secret_spans

    @property
    def connected(self) -> bool:
        return self.link.state is LinkState.CONNECTED

    @property
    def parameters(self) -> LinkParameters:
        return self.link.parameters

    @property
    def partial(self) -> bool:
        """Bytes of an unfinished frame are buffered."""
        return self.link.framer.buffered > 0

    @property
    def retransmissions(self) -> int:
        return self.link.retransmissions

    @property
    def duplicates(self) -> int:
        """Frames the meter repeated (each one makes the link repeat or acknowledge again)."""
        return self.link.duplicate_frames

    @property
    def frames(self) -> int:
        """Frames received so far, good or bad, over every link of this channel."""
        framer = self.link.framer
        return self._frames_before + framer.frames + framer.bad_frames

    def connect(self) -> bytes:
        return self.link.connect()

    def disconnect(self) -> bytes:
        return self.link.disconnect() if self.link.state is not LinkState.DISCONNECTED else b""

    def send(self, apdu: bytes) -> bytes:
        return self.link.send_data(apdu)

    def retransmit(self) -> bytes:
        return self.link.retransmit()

    def receive_data(self, data: bytes) -> None:
        self.link.receive_data(data)

    def next_event(self) -> Any:
        return self.link.next_event()

    def data_to_send(self) -> bytes:
        return self.link.data_to_send()

    def discard(self) -> None:
        """Drop buffered input (a late or partial answer must not meet the next request)."""
        self.link.framer.clear()

    # -- express exchange (session/express.py): one frame each way, from the link's templates ---
    # The frame level only: ``expected_answer`` is what a matching answer starts with, its APDU
    # follows, then ``express_trailer`` bytes; the APDU is the caller's to check (and, once
    # ciphered, to decipher) before ``accept_answer`` moves the link on.
    express_trailer = 3  # FCS and closing flag after the APDU

    def express_fits(self, request_length: int, answer_length: int) -> bool:
        """Whether a request and its answer of these APDU lengths each fit one frame."""
        p = self.link.parameters
        llc = len(LLC_REQUEST)
        return request_length + llc <= p.max_info_tx and answer_length + llc <= p.max_info_rx

    def express_send(self, apdu: bytes, cache: bool = True) -> bytes | None:
        """The frame ``send(apdu)`` would produce when the link is quiet and one frame carries
        it (the link then awaits its acknowledgement as usual); else None. ``cache`` False: a
        ciphered APDU, never sent twice: framed from the link's header template, not kept."""
        return self.link.express_request(apdu, cache)

    def expected_answer(self, apdu_length: int) -> bytes | None:
        """What the answer to the frame in flight starts with when it is one frame carrying
        ``apdu_length`` bytes of APDU (header and LLC); None when the link is not in that state."""
        return self.link.expected_answer(apdu_length)

    def accept_answer(self, frame: bytes) -> bool:
        """Take ``frame`` (``expected_answer``, the APDU, the trailer) as the answer when its FCS
        is right: the link moves on as if it had decoded it. False: nothing changed."""
        return self.link.accept_answer(frame)

    def secret_spans(self, data: bytes, start: int, end: int) -> list[Span]:
        """Byte ranges of ``data`` (frames we sent) that carry bytes ``start:end`` of the first
        APDU sent after ``connect`` (the AARQ): for masking its password in traces.

        Called for every write while the AARQ is in flight, in order. Each I frame is placed by
        its segment number in the reassembled APDU, segment k carrying payload bytes from
        k * max_info_tx (the LLC header, 3 bytes, comes first). N(S) is k modulo 8, so k is found
        from the highest segment seen: a new segment is the next one, a retransmission is at
        most a window (<= 7) behind, and those 8 candidates differ modulo 8."""
        spans: list[Span] = []
        size = self.link.parameters.max_info_tx
        lo, hi = start + 3, end + 3
        pos = 0
        while pos + 3 <= len(data):
            length = int.from_bytes(data[pos + 1 : pos + 3], "big") & 0x7FF
            stop = pos + length + 2
            try:
                frame = decode_frame(data[pos:stop])
            except DlmsError:  # our own frames; anything odd is masked whole
                return [(0, len(data))]
            if frame.kind is FrameKind.I and frame.info:
                top = self._secret_top
                k = top + 1 - ((top + 1 - frame.ns) % 8)
                self._secret_top = max(top, k)
                first = k * size
                info_at = stop - 3 - len(frame.info)  # info is followed by FCS (2) and flag
                a, b = max(lo, first), min(hi, first + len(frame.info))
                if a < b:
                    spans.append((info_at + a - first, info_at + b - first))
            pos = stop
        return spans


class WrapperChannel:
    """APDUs over the IEC 62056-47 wrapper (TCP)."""

    kind = "wrapper"

    def __init__(self, settings: SessionSettings) -> None:
        self._source = settings.client_wport
        self._destination = settings.server_wport
        self._framer = WrapperFramer()
        self._events: list[Any] = []  # a list: one item at most, and per meter
        self._last = b""
        self._connected = False
        self.retransmissions = 0
        self.duplicates = 0  # the wrapper has no sequence numbers: nothing is seen repeated
        self.frames = 0  # PDUs received
        self.ignored_pdus = 0
        self._express_tx: dict[bytes, bytes] = {}
        self._express_rx: dict[int, bytes] = {}
        self._express_head: dict[int, bytes] = {}  # our header by APDU length (ciphered requests)

    def reset(self) -> None:
        self._framer.clear()
        self._events.clear()
        self._last = b""
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def parameters(self) -> LinkParameters:
        return LinkParameters()

    @property
    def partial(self) -> bool:
        return self._framer.buffered > 0

    def connect(self) -> bytes:
        self._connected = True
        self._events.append(Connected(LinkParameters()))
        return b""

    def disconnect(self) -> bytes:
        self._connected = False
        self._events.append(Disconnected("disconnected"))
        return b""

    def send(self, apdu: bytes) -> bytes:
        self._last = encode_wrapper(apdu, self._source, self._destination)
        return self._last

    def retransmit(self) -> bytes:
        """The last request again (same invoke id): a second answer comes out stale."""
        if self._last:
            self.retransmissions += 1
        return self._last

    def receive_data(self, data: bytes) -> None:
        self._framer.feed(data)

    def next_event(self) -> Any:
        if self._events:
            return self._events.pop(0)
        while True:
            pdu = self._framer.next_pdu()  # DecodeError once out of step: the session reconnects
            if pdu is None:
                return NEED_DATA
            self.frames += 1
            if pdu.source == self._destination and pdu.destination == self._source:
                return DataReceived(pdu.apdu)
            self.ignored_pdus += 1  # another association's answer on a shared gateway

    def data_to_send(self) -> bytes:
        return b""

    def discard(self) -> None:
        if not self._framer.failed:
            self._framer.clear()

    # -- express exchange (session/express.py), as HdlcChannel's -------------------------------
    express_trailer = 0

    def _quiet(self) -> bool:
        return not (self._events or self._framer.buffered or self._framer.failed)

    @staticmethod
    def express_fits(request_length: int, answer_length: int) -> bool:
        return True  # the wrapper's length field holds any APDU the association allows

    def express_send(self, apdu: bytes, cache: bool = True) -> bytes | None:
        """What ``send(apdu)`` produces, from a cache (unless ``cache`` is False: a ciphered
        APDU, framed behind the cached header), when nothing is buffered or queued."""
        if not self._quiet():
            return None
        if not cache:
            size = len(apdu)
            header = self._express_head.get(size)
            if header is None:
                header = remember(self._express_head, size, encode_wrapper_header(
                    self._source, self._destination, size))
            self._last = header + apdu
            return self._last
        cached = self._express_tx.get(apdu)
        if cached is None:
            cached = remember(self._express_tx, apdu,
                              encode_wrapper(apdu, self._source, self._destination))
        self._last = cached
        return cached

    def expected_answer(self, apdu_length: int) -> bytes | None:
        """The wrapper header of our association's answer carrying ``apdu_length`` bytes."""
        if not self._quiet():
            return None
        header = self._express_rx.get(apdu_length)
        if header is None:
            header = remember(self._express_rx, apdu_length, encode_wrapper_header(
                self._destination, self._source, apdu_length))
        return header

    @staticmethod
    def accept_answer(frame: bytes) -> bool:
        return True  # the wrapper has no checksum (TCP's is all there is) and no sequence state

    def secret_spans(self, data: bytes, start: int, end: int) -> list[Span]:
        return [(HEADER_SIZE + start, min(len(data), HEADER_SIZE + end))]


ApduChannel = Union[HdlcChannel, WrapperChannel]


def make_channel(settings: SessionSettings) -> ApduChannel:
    return WrapperChannel(settings) if settings.wrapper else HdlcChannel(settings)
