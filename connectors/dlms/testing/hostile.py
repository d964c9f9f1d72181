"""A hostile meter on loopback TCP: associates like a good one, then misbehaves on purpose.

For the hostile-meter suite (tests/hostile) and its benchmark: every read against it must end
within its deadline with bounded memory. The connect phase (SNRM/UA, AARQ/AARE, public client 16
or LLS) is the simulator's own (``simulator.connection.ServerSession``); after the association,
``mode`` decides what the meter does:

* ``segments``: answers every frame we send (GET, RR, DISC) with one more I-frame segment whose
  "more segments" bit is set, in perfect sequence: the APDU never ends;
* ``repeat``: answers every frame we send with its last I-frame (the AARE) again: a duplicate
  that makes our link repeat its frame, forever;
* ``bytes``: after the first request, streams random bytes as fast as the socket takes them;
* ``huge``: answers GETs with a value claiming 2**31 - 1 array elements (a few bytes follow);
* ``nesting``: answers GETs with a value nested ``NESTING_DEPTH`` arrays deep;
* ``drip``: as ``segments``, one byte every ``drip_s`` seconds (a frame is never late).

One thread per connection; counters: ``connections``, ``frames_sent``, ``bytes_sent``.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import Any

from ..engine.events import RecordingSink
from ..engine.health import MeterState
from ..engine.spec import MeterSpec
from ..protocol.association import AssociationState
from ..protocol.hdlc import (
    LLC_RESPONSE,
    Frame,
    FrameKind,
    HdlcFramer,
    encode_frame,
)
from ..simulator.connection import ServerSession as SimulatedConnection
from ..simulator.connection import SimulatedMeter
from ..simulator.model import MeterModel

__all__ = ["MODES", "NESTING_DEPTH", "HostileMeter", "SegmentTalker", "TimedSink", "wait_for"]

MODES = ("segments", "repeat", "bytes", "huge", "nesting", "drip")
NESTING_DEPTH = 5000
# A GET response beginning a long octet-string, then filler: every segment is plausible.
_FIRST_SEGMENT = LLC_RESPONSE + b"\xc4\x01\xc1\x00\x09\x82\xff\xff" + b"\x55" * 100
_FILLER = b"\x55" * 111
_NOISE = random.Random(8).randbytes(65536)
_VALUES = {
    "huge": b"\x01\x84\x7f\xff\xff\xff" + b"\x00" * 64,  # array of 2**31-1 null-data
    "nesting": b"\x01\x01" * NESTING_DEPTH + b"\x00",
}


class SegmentTalker:
    """The ``segments`` behaviour, sans-IO: every frame of ours in, one more segment out."""

    def __init__(self, vs: int, vr: int) -> None:
        self.vs, self.vr = vs, vr  # the meter's V(S) and V(R) once associated
        self.first = vs
        self.framer = HdlcFramer()

    def answer(self, data: bytes) -> list[bytes]:
        """The segments (encoded frames) answering the client's frames in ``data``."""
        self.framer.feed(data)
        out = []
        while (frame := self.framer.next_frame()) is not None:
            if frame.kind is FrameKind.I:
                self.vr = (self.vr + 1) & 7
            info = _FIRST_SEGMENT if self.vs == self.first else _FILLER
            segment = Frame(
                FrameKind.I, frame.source, frame.destination, True, self.vs, self.vr, True, info
            )
            self.vs = (self.vs + 1) & 7
            out.append(encode_frame(segment))
        return out

    @classmethod
    def after(cls, connection: SimulatedConnection) -> SegmentTalker:
        """Taking over from the simulator's connection once it has associated."""
        link = connection.link
        assert link is not None
        return cls(link._vs, link._vr)  # noqa: SLF001 - a test peer reads the link's counters


class _Connection(SimulatedConnection):
    """The simulator's connection, with the last value of every GET answer replaced."""

    __slots__ = ("value",)

    def __init__(self, meter: SimulatedMeter, value: bytes) -> None:
        super().__init__(meter)
        self.value = value

    def _get(self, assoc: Any, event: Any) -> bytes:
        raw: bytes = assoc.respond_get(event.invoke_id, [None] * len(event.items))
        return raw[:-1] + self.value  # the last item's null-data (00) becomes the hostile value


class HostileMeter:
    """``with HostileMeter("segments") as meter:`` listens on 127.0.0.1:``meter.port``."""

    def __init__(self, mode: str, *, drip_s: float = 0.002, host: str = "127.0.0.1") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.drip_s = drip_s
        self.connections = 0
        self.frames_sent = 0
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    def start(self) -> HostileMeter:
        self._spawn(self._accept, "hostile accept")
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)
        self._listener.close()

    def __enter__(self) -> HostileMeter:  # noqa: PYI034 - Python 3.9: no typing.Self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------
    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            self._spawn(self._serve, f"hostile {self.mode}", sock)

    def _send(self, sock: socket.socket, data: bytes, frames: int = 0) -> None:
        if self.mode == "drip" and frames:
            for k in range(len(data)):
                if self._stop.wait(self.drip_s):
                    raise OSError("stopped")
                sock.sendall(data[k : k + 1])
        else:
            sock.sendall(data)
        self.frames_sent += frames
        self.bytes_sent += len(data)

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        conn = _Connection(SimulatedMeter(MeterModel(0), 0x10), _VALUES.get(self.mode, b"\x00"))
        framer = HdlcFramer()
        talker: SegmentTalker | None = None
        last_reply = b""
        try:
            while not self._stop.is_set():
                try:
                    data = sock.recv(4096)
                except socket.timeout:
                    continue
                if not data:
                    break
                if talker is None:
                    out = conn.receive(data)
                    if out:
                        last_reply = out
                        self._send(sock, out)
                    assoc = conn.assoc
                    if (
                        self.mode not in _VALUES
                        and assoc is not None
                        and assoc.state is AssociationState.ASSOCIATED
                    ):
                        talker = SegmentTalker.after(conn)  # hostile from the next frame on
                    continue
                if self.mode in ("segments", "drip"):
                    for segment in talker.answer(data):
                        self._send(sock, segment, 1)
                    continue
                framer.feed(data)
                while framer.next_frame() is not None:
                    if self.mode == "bytes":
                        self._stream(sock)
                        return
                    self._send(sock, last_reply, 1)  # repeat
        except OSError:
            pass  # the client hung up (or we stop): that is the end of it
        finally:
            sock.close()

    def _stream(self, sock: socket.socket) -> None:
        sock.settimeout(5.0)
        while not self._stop.is_set():
            self._send(sock, _NOISE)


class TimedSink(RecordingSink):
    """A ``RecordingSink`` that also notes when (monotonic) each state came."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[tuple[str, MeterState, float]] = []

    def on_state(self, spec: MeterSpec, state: MeterState, detail: str) -> None:
        self.stamps.append((spec.name, state, time.monotonic()))
        super().on_state(spec, state, detail)

    def failed_read_spans(self, name: str) -> list[float]:
        """Seconds from each association of ``name`` to the BACKOFF that ended it: the first
        poll, the failed read and the close."""
        spans, since = [], None
        for n, state, t in list(self.stamps):
            if n != name:
                continue
            if state is MeterState.ASSOCIATED:
                since = t
            elif state is MeterState.BACKOFF and since is not None:
                spans.append(t - since)
                since = None
        return spans


def wait_for(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    """Poll ``predicate`` until true or ``timeout`` (for tests)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
