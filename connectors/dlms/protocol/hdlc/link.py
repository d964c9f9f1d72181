"""HDLC link state machine (IEC 62056-46, normal response mode), client and server roles.

h11 shape: no I/O. Feed received bytes with ``receive_data`` (``b""`` = EOF), pull events with
``next_event`` until ``NEED_DATA``, and after every batch of events write ``data_to_send()``: the
frames the link produced by itself (RR during a segmented transfer, next segments, the server's
UA/DM). Calls that produce frames on request (``connect``, ``send_data``...) return them.

Sequence numbers are modulo 8. V(S) is the N(S) of our next I frame; V(R) is the N(S) we expect
next, and every I or RR frame we send carries N(R) = V(R). An APDU longer than the negotiated
max_info_tx is sent in segments (S bit on all but the last), at most ``window_tx`` frames before the
poll/final bit; the peer's RR (or next I frame) acknowledges them. A client whose poll is answered
by an RR with N(R) below V(S) sends the frames from N(R) again (go-back-N checkpoint, at most
MAX_GO_BACK times in a row without progress); a peer that starts its next APDU has taken all of
ours, whatever its N(R) says (DLMS is request/response).

What the peer can make happen (documented choice):
* corrupt bytes: dropped by the framer and counted (``link.framer.bad_frames``,
  ``.discarded_bytes``, ``.last_error``);
* frames for another address (multidrop bus): ignored and counted (``ignored_frames``);
* well-formed frames that do not fit the state: an ``UnexpectedFrame`` event, nothing changes;
* a complete APDU without the right LLC header, one larger than ``max_apdu``, or an SNRM with
  unreadable parameters: ``next_event`` raises RemoteProtocolError; the link stays usable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from ..errors import DecodeError, LocalProtocolError, RemoteProtocolError
from ..express_cache import remember
from .address import HdlcAddress
from .events import (
    NEED_DATA,
    Connected,
    ConnectRequested,
    DataReceived,
    Disconnected,
    FrameRejected,
    LinkEvent,
    LinkState,
    NeedData,
    Role,
    UnexpectedFrame,
    UnnumberedDataReceived,
)
from .frame import Frame, FrameKind, close_frame, encode_frame, encode_header, frame_check
from .framer import HdlcFramer
from .params import LinkParameters, decode_parameters, encode_parameters, negotiate

__all__ = ["LLC_REQUEST", "LLC_RESPONSE", "HdlcConnection"]


# LLC header of DLMS over HDLC: destination LSAP, source LSAP, quality (Green Book 8.4.3).
LLC_REQUEST = b"\xe6\xe6\x00"  # client -> server
LLC_RESPONSE = b"\xe6\xe7\x00"  # server -> client

_I, _RR, _RNR = FrameKind.I, FrameKind.RR, FrameKind.RNR
# Checkpoint retransmissions in a row that the peer acknowledges nothing of, before giving up.
MAX_GO_BACK = 8
S = LinkState
# The express path's state test, twice a poll cycle, under a module name: an Enum member looked
# up on its class goes through the metaclass (~700 instructions in CPython 3.11).
_CONNECTED = S.CONNECTED


class HdlcConnection:
    """One HDLC link between a client and a server, seen from ``role``."""

    def __init__(
        self,
        role: Role,
        client: HdlcAddress,
        server: HdlcAddress,
        parameters: LinkParameters = LinkParameters(),  # noqa: B008 - frozen, safe to share
        *,
        max_buffer: int = 8192,
        max_apdu: int = 0x10000,
    ) -> None:
        if client.size != 1:
            raise LocalProtocolError(f"HDLC client address must be 1 byte, not {client.size}")
        self.role = role
        self.client = client
        self.server = server
        self.local_parameters = parameters  # client: the proposal; server: its limits
        self.parameters = LinkParameters()  # in force, from our point of view
        self.max_apdu = max_apdu
        self.framer = HdlcFramer(max_buffer)
        is_client = role is Role.CLIENT
        self._dst, self._src = (server, client) if is_client else (client, server)
        self._llc_tx = LLC_REQUEST if is_client else LLC_RESPONSE
        self._llc_rx = LLC_RESPONSE if is_client else LLC_REQUEST
        self._state = S.DISCONNECTED
        self._vs = 0
        self._vr = 0
        self._unacked: list[Frame] = []  # our I frames not yet acknowledged, oldest first
        # Lists, not deques (700 bytes each when empty, per meter): a few items at most.
        self._tx_queue: list[bytes] = []  # segments of the current APDU not yet sent
        self._rx_parts: list[bytes] = []
        self._rx_size = 0
        self._rx_overflow = False
        self._peer_busy = False
        self._events: list[LinkEvent] = []
        self._out: list[bytes] = []
        self._last_command = b""  # SNRM / DISC, for retransmit()
        self._go_backs = 0  # checkpoint retransmissions in a row without progress
        self._eof = False
        self.ignored_frames = 0
        self.duplicate_frames = 0
        self.retransmissions = 0
        self._handlers = self._CLIENT_HANDLERS if is_client else self._SERVER_HANDLERS
        # Express frames (see express_request): (V(S), V(R), APDU) -> (frame, information) sent;
        # (control, APDU length) -> what the answer starts with.
        self._express_tx: dict[tuple[int, int, bytes], tuple[bytes, bytes]] = {}
        self._express_rx: dict[tuple[int, int], bytes] = {}
        self._express_heads: dict[tuple[int, int], bytes] = {}  # (control, info length) -> header

    @property
    def state(self) -> LinkState:
        return self._state

    # -------------------------------------------------------------------------- calls (ours)

    def connect(self) -> bytes:
        """Client: the SNRM proposing ``local_parameters`` (no information field if all default,
        like the field-proven SNRM of the seed captures)."""
        self._require_role(Role.CLIENT, "connect")
        if self._state is not S.DISCONNECTED:
            raise LocalProtocolError(f"HDLC connect() in state {self._state.name}")
        p = self.local_parameters
        info = b"" if p == LinkParameters() else encode_parameters(p)
        self._last_command = self._frame(FrameKind.SNRM, info=info)
        self._state = S.CONNECTING
        return self._last_command

    def disconnect(self) -> bytes:
        """Client: DISC; the answer (UA or DM) gives ``Disconnected``."""
        self._require_role(Role.CLIENT, "disconnect")
        if self._state not in (S.CONNECTED, S.CONNECTING, S.DISCONNECTING):
            raise LocalProtocolError(f"HDLC disconnect() in state {self._state.name}")
        self._last_command = self._frame(FrameKind.DISC)
        self._state = S.DISCONNECTING
        return self._last_command

    def send_data(self, apdu: bytes) -> bytes:
        """Send one APDU (client: a request; server: a response): the first window of segments.

        The rest follows through ``data_to_send()`` as the peer's RRs arrive.
        """
        if self._state is not S.CONNECTED:
            raise LocalProtocolError(f"HDLC send_data() in state {self._state.name}")
        if self._tx_queue or self._unacked:
            raise LocalProtocolError("HDLC send_data(): the previous APDU is not acknowledged yet")
        if self._rx_parts:
            raise LocalProtocolError("HDLC send_data() while the peer is sending a segmented APDU")
        payload = self._llc_tx + bytes(apdu)
        self._go_backs = 0
        size = self.parameters.max_info_tx
        self._tx_queue.extend(payload[i : i + size] for i in range(0, len(payload), size))
        return self._burst(resend=False)

    def retransmit(self) -> bytes:
        """For the session's timeout: repeat the unanswered SNRM/DISC or unacknowledged I frames
        (same N(S)); with nothing outstanding, a client polls with RR."""
        state = self._state
        if state in (S.CONNECTING, S.DISCONNECTING):
            self.retransmissions += 1
            return self._last_command
        if state is not S.CONNECTED:
            return b""
        if self._unacked:
            self.retransmissions += 1
            return self._burst(resend=True)
        if self.role is Role.CLIENT:
            return self._frame(_RR, nr=self._vr)
        return b""

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            raise LocalProtocolError("HDLC receive_data() after EOF")
        if data:
            self.framer.feed(data)
        else:
            self._eof = True

    def next_event(self) -> LinkEvent | NeedData:
        events = self._events
        while not events:
            frame = self.framer.next_frame()
            if frame is None:
                if self._eof and self._state is not S.CLOSED:
                    self._reset_sequence()
                    self._state = S.CLOSED
                    return Disconnected("connection closed by peer (EOF)")
                return NEED_DATA
            self._handle(frame)
        return events.pop(0)

    def data_to_send(self) -> bytes:
        out, self._out = self._out, []
        return b"".join(out)

    # ----------------------------------------------------------- express exchange (steady polls)
    # A poll cycle that fits one frame each way can skip the frame objects and the framer: the
    # session's express path (``session/express.py``) sends ``express_request``'s frame, compares
    # the answer with ``expected_answer`` and hands it back to ``accept_answer``. The frames come
    # from this link's own encoder and the sequence state moves here, as ``send_data`` and
    # ``_on_i`` move it; anything else takes the path above, from exactly the state left here.

    def _quiet(self) -> bool:
        """Nothing but one single-frame exchange in play: connected, no segments queued or half
        received, peer not busy, no events, answers or received bytes (but idle flags) waiting."""
        return (
            self._state is _CONNECTED
            and not self._tx_queue
            and not self._rx_parts
            and not self._events
            and not self._out
            and not self._peer_busy
            and self.framer.idle
        )

    def express_request(self, apdu: bytes, cache: bool = True) -> bytes | None:
        """The frame ``send_data(apdu)`` would send, when the link is quiet, nothing awaits
        acknowledgement and one frame carries it; it then awaits acknowledgement (and may be
        retransmitted) as usual. None otherwise, and nothing changes. ``cache`` False: an APDU
        that never comes again (ciphered: its counter differs every time) is framed from the
        cached header, and the frame is not kept."""
        if self._unacked or not self._quiet():
            return None
        vs, vr = self._vs, self._vr
        if not cache:
            info = self._llc_tx + apdu
            if len(info) > self.parameters.max_info_tx:
                return None
            control = (vr << 5) | 0x10 | (vs << 1)  # the control byte encode_frame gives
            head = self._express_heads.get((control, len(info)))
            if head is None:
                head = remember(self._express_heads, (control, len(info)),
                                encode_header(self._dst, self._src, control, len(info)))
            self._unacked.append(Frame(_I, self._dst, self._src, True, vs, vr, False, info))
            self._vs = (vs + 1) & 7
            return close_frame(head, info)
        key = (vs, vr, apdu)
        hit = self._express_tx.get(key)
        if hit is None:
            info = self._llc_tx + apdu
            if len(info) > self.parameters.max_info_tx:
                return None
            frame = Frame(_I, self._dst, self._src, True, vs, vr, False, info)
            hit = remember(self._express_tx, key, (encode_frame(frame), info))
        # A new Frame each time, for a retransmission (16 cached ones would cost 8 KB a link).
        self._unacked.append(Frame(_I, self._dst, self._src, True, vs, vr, False, hit[1]))
        self._vs = (vs + 1) & 7
        return hit[0]

    def expected_answer(self, apdu_length: int) -> bytes | None:
        """What the peer's answer to the one frame in flight starts with when it is one frame of
        ``apdu_length`` bytes of APDU: the header ``encode_frame`` gives it (N(S) = V(R),
        N(R) = V(S), poll/final set, HCS) and the LLC. None when the link is not in that state."""
        if len(self._unacked) != 1 or not self._quiet():
            return None
        control = (self._vs << 5) | 0x10 | (self._vr << 1)
        key = (control, apdu_length)
        prefix = self._express_rx.get(key)
        if prefix is None:
            info = len(self._llc_rx) + apdu_length
            if info > self.parameters.max_info_rx:
                return None
            try:
                head = encode_header(self._src, self._dst, control, info)
            except LocalProtocolError:  # longer than a frame can be
                return None
            prefix = remember(self._express_rx, key, head + self._llc_rx)
        return prefix

    def accept_answer(self, frame: bytes) -> bool:
        """Take ``frame``, which starts with ``expected_answer``'s prefix and is whole, as the
        peer's answer when its FCS and closing flag are right: everything we sent is acknowledged
        and V(R) moves on, as when the frame is decoded. False (nothing changes) otherwise."""
        if not frame_check(frame):
            return False
        self._unacked.clear()
        self._vr = (self._vr + 1) & 7
        return True

    # ------------------------------------------------------------------------------- helpers

    def _require_role(self, role: Role, call: str) -> None:
        if self.role is not role:
            raise LocalProtocolError(f"HDLC {call}() is for the {role.value} role only")

    def _frame(self, kind: FrameKind, info: bytes = b"", nr: int = 0) -> bytes:
        return encode_frame(Frame(kind, self._dst, self._src, True, 0, nr, False, info))

    def _reply(self, kind: FrameKind, info: bytes = b"") -> None:
        self._out.append(self._frame(kind, info, self._vr))

    def _answer_poll(self, frames: bytes) -> None:
        """Answer a poll with ``frames``, or with an RR carrying V(R) when there is nothing."""
        if frames:
            self._out.append(frames)
        else:
            self._reply(_RR)

    def _unexpected(self, frame: Frame, reason: str) -> None:
        self._events.append(UnexpectedFrame(frame, reason))

    def _reset_sequence(self) -> None:
        self._vs = self._vr = 0
        self._unacked.clear()
        self._tx_queue.clear()
        self._rx_parts.clear()
        self._rx_size = 0
        self._rx_overflow = False
        self._peer_busy = False

    def _burst(self, resend: bool) -> bytes:
        """Encode (again, if ``resend``) the unacknowledged frames, then new segments up to the
        window; poll/final bit on the last frame only. N(R) is always the current V(R)."""
        unacked, queue = self._unacked, self._tx_queue
        old = unacked if resend else []
        room = self.parameters.window_tx - len(unacked)
        new = 0 if self._peer_busy or room <= 0 else min(room, len(queue))
        last = len(old) + new - 1
        if last < 0:
            return b""
        dst, src, vr = self._dst, self._src, self._vr
        # Frames are built directly (not dataclasses.replace): this is the per-request hot path.
        frames = [
            Frame(_I, dst, src, k == last, f.ns, vr, f.segmented, f.info) for k, f in enumerate(old)
        ]
        for k in range(len(old), last + 1):
            chunk = queue.pop(0)
            frames.append(Frame(_I, dst, src, k == last, self._vs, vr, bool(queue), chunk))
            self._vs = (self._vs + 1) & 7
        if resend:
            unacked[:] = frames
        else:
            unacked.extend(frames)
        return b"".join([encode_frame(f) for f in frames])

    def _go_back(self, progressed: bool) -> bytes:
        """The peer answered our poll taking only part of the burst (N(R) below V(S)): the
        frames from N(R) on were lost, so send them again and fill the window (go-back-N
        checkpoint, ISO/IEC 13239); a peer that takes nothing MAX_GO_BACK times is an error."""
        self._go_backs = 0 if progressed else self._go_backs + 1
        if self._go_backs > MAX_GO_BACK:
            raise RemoteProtocolError(
                f"HDLC: peer took none of {len(self._unacked)} frame(s) sent {MAX_GO_BACK} times"
            )
        self.retransmissions += 1
        return self._burst(resend=True)

    def _acknowledge(self, nr: int) -> bool:
        """Apply a received N(R); False if it acknowledges a frame we never sent."""
        unacked = self._unacked
        oldest = (self._vs - len(unacked)) & 7
        count = (nr - oldest) & 7
        if count <= len(unacked):
            del unacked[:count]
            return True
        # A repeated frame may carry an older N(R): it acknowledges nothing new.
        return (oldest - nr) & 7 <= self.parameters.window_tx

    def _addressed_to_us(self, frame: Frame) -> bool:
        if self.role is Role.SERVER:
            ours = frame.destination.matches(self.server) or (
                frame.kind is FrameKind.UI and frame.destination.is_all_station
            )
            return ours and frame.source.matches(self.client)
        return frame.source.matches(self.server) and frame.destination.matches(self.client)

    def _handle(self, frame: Frame) -> None:
        if not self._addressed_to_us(frame):
            self.ignored_frames += 1
            return
        self._handlers[frame.kind](self, frame)

    # --------------------------------------------------------------------- frame handlers

    def _on_snrm(self, frame: Frame) -> None:  # server
        try:
            proposal = decode_parameters(frame.info)
        except DecodeError as exc:
            self._reply(FrameKind.DM)
            raise RemoteProtocolError(f"HDLC SNRM with unreadable parameters: {exc}") from exc
        agreed = negotiate(proposal, self.local_parameters)
        self._reset_sequence()
        self.parameters = agreed
        self._state = S.CONNECTED
        self._reply(FrameKind.UA, encode_parameters(agreed))
        self._events.append(ConnectRequested(agreed))

    def _on_disc(self, frame: Frame) -> None:  # server
        if self._state is S.CONNECTED:
            self._reply(FrameKind.UA)
            self._reset_sequence()
            self._state = S.DISCONNECTED
            self._events.append(Disconnected("peer sent DISC"))
        else:
            self._reply(FrameKind.DM)

    def _on_ua(self, frame: Frame) -> None:  # client
        if self._state is S.CONNECTING:
            try:
                offered = decode_parameters(frame.info).swapped()
            except DecodeError as exc:
                self._unexpected(frame, f"UA with unreadable parameters: {exc}")
                return
            mine = self.local_parameters
            # Never more than we proposed, whatever the server answers.
            self.parameters = LinkParameters(
                min(offered.max_info_tx, mine.max_info_tx),
                min(offered.max_info_rx, mine.max_info_rx),
                min(offered.window_tx, mine.window_tx),
                min(offered.window_rx, mine.window_rx),
            )
            self._reset_sequence()
            self._state = S.CONNECTED
            self._events.append(Connected(self.parameters))
        elif self._state is S.DISCONNECTING:
            self._closed_by_answer("disconnected")
        else:
            self._unexpected(frame, f"UA in state {self._state.name}")

    def _on_dm(self, frame: Frame) -> None:  # client
        reasons = {
            S.CONNECTING: "connection refused (DM)",
            S.DISCONNECTING: "disconnected (peer answered DM)",
            S.CONNECTED: "peer is in disconnected mode (DM)",
        }
        if self._state in reasons:
            self._closed_by_answer(reasons[self._state])
        else:
            self._unexpected(frame, f"DM in state {self._state.name}")

    def _closed_by_answer(self, reason: str) -> None:
        self._reset_sequence()
        self._state = S.DISCONNECTED
        self._events.append(Disconnected(reason))

    def _on_frmr(self, frame: Frame) -> None:
        self._events.append(FrameRejected(frame))

    def _on_ui(self, frame: Frame) -> None:
        info = frame.info
        if info[:2] == self._llc_rx[:2]:
            info = info[3:]
        self._events.append(UnnumberedDataReceived(info))

    def _wrong_direction(self, frame: Frame) -> None:  # a command to a client, or vice versa
        self._unexpected(frame, f"{frame.kind.name} sent to a {self.role.value}")

    def _connected(self, frame: Frame) -> bool:
        """I/RR/RNR need NRM; a server in NDM answers polls with DM."""
        if self._state is S.CONNECTED or (
            self._state is S.DISCONNECTING and self.role is Role.CLIENT
        ):
            return True
        if self.role is Role.SERVER and frame.poll_final:
            self._reply(FrameKind.DM)
        self._unexpected(frame, f"{frame.kind.name} in state {self._state.name}")
        return False

    def _on_rr(self, frame: Frame) -> None:
        if not self._connected(frame):
            return
        pending = len(self._unacked)
        if not self._acknowledge(frame.nr):
            self._unexpected(frame, f"N(R)={frame.nr} acknowledges frames never sent")
            return
        self._peer_busy = frame.kind is _RNR
        if self.role is Role.SERVER and frame.poll_final:
            # A secondary must answer every poll: repeat what the client has not got (go-back-N),
            # else the next segments, else a plain RR.
            self._answer_poll(self._burst(resend=bool(self._unacked)))
        elif frame.poll_final and self._unacked and not self._peer_busy:
            self._out.append(self._go_back(len(self._unacked) < pending))
        elif self._tx_queue:
            self._out.append(self._burst(resend=False))

    def _on_i(self, frame: Frame) -> None:
        if not self._connected(frame):
            return
        if not self._acknowledge(frame.nr):
            self._unexpected(frame, f"N(R)={frame.nr} acknowledges frames never sent")
            return
        self._peer_busy = False
        if frame.ns != self._vr:
            if 1 <= (self._vr - frame.ns) & 7 <= self.parameters.window_rx:
                # Our acknowledgement was lost and the peer repeats: acknowledge again (repeating
                # our own unacknowledged answer if there is one), never deliver twice.
                self.duplicate_frames += 1
                if frame.poll_final:
                    self._answer_poll(self._burst(resend=True))
                return
            self._unexpected(frame, f"N(S)={frame.ns}, expected {self._vr}")
            if frame.poll_final:
                self._reply(_RR)  # asks for everything from V(R) again
            return
        self._vr = (self._vr + 1) & 7
        if self._unacked and not self._rx_parts and not self._tx_queue:
            # The peer starts a new APDU with an N(R) below ours: DLMS is request/response, so it
            # has taken all of ours (some peers count only one frame of a burst): done with them.
            self._unacked.clear()
        if not self._rx_overflow:
            self._rx_parts.append(frame.info)
            self._rx_size += len(frame.info)
            if self._rx_size > self.max_apdu + len(self._llc_rx):
                self._rx_overflow = True
                self._rx_parts.clear()
        if frame.segmented:
            if frame.poll_final:
                self._reply(_RR)
            return
        self._deliver()

    def _deliver(self) -> None:
        payload = b"".join(self._rx_parts)
        self._rx_parts.clear()
        self._rx_size = 0
        if self._rx_overflow:
            self._rx_overflow = False
            raise RemoteProtocolError(f"HDLC: reassembled APDU larger than {self.max_apdu} bytes")
        llc = self._llc_rx
        if payload[:2] != llc[:2] or len(payload) < 3:
            raise RemoteProtocolError(
                f"HDLC information field without LLC header {llc.hex(' ')}: {payload[:3].hex(' ')}"
            )
        self._events.append(DataReceived(payload[3:]))

    # Dispatch tables: which handler a received frame kind goes to, per role.
    _CLIENT_HANDLERS: ClassVar[dict[FrameKind, Callable[[HdlcConnection, Frame], None]]] = {
        FrameKind.I: _on_i,
        FrameKind.RR: _on_rr,
        FrameKind.RNR: _on_rr,
        FrameKind.UA: _on_ua,
        FrameKind.DM: _on_dm,
        FrameKind.FRMR: _on_frmr,
        FrameKind.UI: _on_ui,
        FrameKind.SNRM: _wrong_direction,
        FrameKind.DISC: _wrong_direction,
    }
    _SERVER_HANDLERS: ClassVar[dict[FrameKind, Callable[[HdlcConnection, Frame], None]]] = {
        FrameKind.I: _on_i,
        FrameKind.RR: _on_rr,
        FrameKind.RNR: _on_rr,
        FrameKind.SNRM: _on_snrm,
        FrameKind.DISC: _on_disc,
        FrameKind.FRMR: _on_frmr,
        FrameKind.UI: _on_ui,
        FrameKind.UA: _wrong_direction,
        FrameKind.DM: _wrong_direction,
    }
