"""The express path of a steady poll cycle: one prepared request out, one expected answer in.

Once a meter has answered a read plan's GET-with-list, its answers to the same plan look the
same every cycle: same frame header (but for the sequence numbers and the invoke id), same item
count, the same A-XDR type for every value. ``ExpressRead`` is compiled from such an answer and
then, every cycle, compares the new answer with what it expects and unpacks all the values with
one ``struct`` call, instead of running framer, frame, link, APDU and A-XDR decoders one object
at a time (the layers cost ~130 us of a ~210 us cycle at 1,000 meters).

The expectations are templates each layer hands out from its own encoder, this module holds no
copy of the protocol: the channel (HDLC link or wrapper) gives what a one-frame answer starts
with (header with N(S), N(R) and HCS, LLC) and checks its trailer (FCS) when taking it; the
association gives the GetResponseWithList head for the invoke id in flight; A-XDR compiles the
fixed-type unpacker with its checks (result choice and type tag of every item, exact length);
``protocol.units.Scaling`` scales. Nothing is checked less than on the full path. Any difference,
including an answer split over two reads, and the bytes go through the full path from the same
state (``ExpressOp`` then becomes the ordinary read operation), so a meter that changes its answer
costs one slower cycle, never a wrong value.

Ciphered sessions (security suite 0) take the same path with a cipher step between the two
levels: the request is the same plain GET-with-list, sealed by the association with the next
invocation counter (taken once per request, never a cached frame) and framed from the channel's
header template; the answer's frame template is that of the ciphered length, and the
association's ``ExpressCipher`` (learned with the plain shape from the answer the full path
opened) checks the ciphered head (tag, length, protection level), that the meter's counter is
above the last accepted, and the GCM tag, then hands the plain APDU to the same head/A-XDR check.
The meter's counter is accepted only when the whole answer is taken; an answer handed to the full
path is judged there, once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol

from ..protocol.apdu.get import GET_DATA_CHOICE, with_list_response_head
from ..protocol.association import Association
from ..protocol.axdr import FixedRun, learn_fixed
from ..protocol.security import ExpressCipher, is_ciphered
from ..protocol.units import Scaling
from .batching import WithListSupport
from .channel import ApduChannel
from .reading import Reading, Ref

__all__ = ["ExpressOp", "ExpressRead", "compile_express", "learn_express"]

_new_tuple = tuple.__new__  # a Reading straight from C: its NamedTuple __new__ is Python code
Op = Generator[None, bool, Any]


class SteadyPlan(Protocol):
    """What ``compile_express`` reads of a ``reads.ReadPlan``."""

    refs: list[Ref]
    post: list[Any]  # per ref: a Scaling, None (scaler not read yet) or a non-register marker
    steady: bool  # one GET-with-list of every ref's value, nothing else
    requests: list[Any]  # per batch: its PreparedGetWithList, or None


class ExpressRead:
    """A read plan's steady answer, compiled: what to expect and how to turn it into readings.
    ``flags``: the priority and service-class bits the meter answers with (the association's
    ``expected_with_list`` completes its head with them). ``cipher``: the cipher step of a
    ciphered answer (None: plain); ``wire_length``: the APDU's octets in the frame."""

    __slots__ = ("_at", "_post", "_run", "apdu_length", "cipher", "count", "flags", "wire_length")

    def __init__(self, refs: Sequence[Ref], post: Sequence[Any], run: FixedRun, head_length: int,
                 flags: int, sample: Sequence[Any], cipher: ExpressCipher | None = None) -> None:
        self.count = len(run.tags)
        self.flags = flags
        self._run = run
        self._at = head_length
        self.apdu_length = head_length + run.size
        self.cipher = cipher
        self.wire_length = self.apdu_length if cipher is None else cipher.length
        # (ref, scale or None, scaler, unit): scale by the kind the meter sends for the item.
        entries: list[tuple[Ref, Callable[[Any], Any] | None, int | None, str | None]] = []
        for ref, scaling, raw in zip(refs, post, sample):
            if type(scaling) is Scaling:
                scale = scaling.floats if type(raw) is float else scaling.ints
                entries.append((ref, scale, scaling.scaler, scaling.unit))
            else:  # not a register: its value is the number itself
                entries.append((ref, None, None, None))
        self._post = entries

    def decode(self, data: bytes, at: int, head: bytes) -> tuple[Any, ...] | None:
        """The raw values when ``data[at:]`` is the expected APDU starting with ``head`` (the
        association's ``expected_with_list``), else None."""
        if not data.startswith(head, at):
            return None
        return self._run.values(data, at + self._at)

    def readings(self, values: Sequence[Any], read_at: int) -> list[Reading]:
        out: list[Reading] = []
        append = out.append
        new, cls = _new_tuple, Reading
        for (ref, scale, scaler, unit), raw in zip(self._post, values):
            value = raw if scale is None else scale(raw)
            append(new(cls, (ref, value, raw, scaler, unit, read_at)))
        return out


def learn_express(plan: SteadyPlan, apdu: bytes, assoc: Association,
                  channel: ApduChannel) -> ExpressRead | None:
    """An ``ExpressRead`` for ``plan`` from ``apdu``, the APDU that just answered it (ciphered or
    not), when it qualifies and the request and answer each fit one frame; else None."""
    cipher = None
    if is_ciphered(apdu):
        learned = assoc.express_cipher(apdu)
        if learned is None:
            return None
        apdu, cipher = learned
    express = compile_express(plan, apdu, cipher)
    request = plan.requests[0] if plan.requests else None
    if express is None or request is None:
        return None
    request_length = assoc.express_request_length(len(request.encode(0)))
    if not channel.express_fits(request_length, express.wire_length):
        return None
    return express


def compile_express(plan: SteadyPlan, apdu: bytes,
                    cipher: ExpressCipher | None = None) -> ExpressRead | None:
    """An ``ExpressRead`` for ``plan`` from ``apdu``, the (plain) GET-with-list response that just
    answered it, with ``cipher`` when it came ciphered; None when the plan or the answer does not
    qualify (several requests, scalers still to read, an item that failed or is not a fixed-size
    number)."""
    if not plan.steady or any(scaling is None for scaling in plan.post) or len(apdu) < 3:
        return None
    count = len(plan.refs)
    head = with_list_response_head(apdu[2], count)
    if not apdu.startswith(head):
        return None
    run = learn_fixed(apdu, len(head), count, GET_DATA_CHOICE)
    if run is None:
        return None
    sample = run.values(apdu, len(head))
    if sample is None:  # (learn_fixed just read these tags: cannot happen)
        return None
    return ExpressRead(plan.refs, plan.post, run, len(head), apdu[2] & 0xF0, sample, cipher)


class ExpressOp:
    """The operation of a cycle sent by the express path. ``try_answer`` takes the expected
    answer, whole or in pieces (a serial line delivers it a few bytes at a time); anything else
    (other bytes, a time-out, a lost line) turns it into the ordinary read operation that
    ``fallback(plan, received)`` returns, which continues from the request already sent
    (generator protocol: send, throw, close)."""

    __slots__ = ("_assoc", "_buf", "_channel", "_fallback", "_full", "_head", "_with_list",
                 "express", "plan", "waiting")

    def __init__(
        self, channel: ApduChannel, assoc: Association, with_list: WithListSupport,
        plan: Any, express: ExpressRead, head: bytes, fallback: Callable[[Any, bytes], Op],
    ) -> None:
        self._channel = channel
        self._assoc = assoc
        self._with_list = with_list
        self.plan = plan
        self.express = express
        self._head = head
        self._fallback = fallback
        self.waiting = True  # the answer may still come the express way
        self._buf = b""  # its beginning, while it comes in pieces
        self._full: Op | None = None

    def try_answer(
        self, data: bytes, read_at_ms: Callable[[], int]
    ) -> list[Reading] | bytes | None:
        """The readings when the bytes so far are exactly the expected answer (the channel and
        association then move on); None while they are its beginning; else every byte received
        so far, for the full path (and this operation stops waiting)."""
        buf = self._buf + data if self._buf else data
        express = self.express
        channel = self._channel
        # Frame level: the channel's template, for the APDU's length on the wire.
        prefix = channel.expected_answer(express.wire_length)
        if prefix is not None:
            at = len(prefix)
            size = at + express.wire_length + channel.express_trailer
            n = len(buf)
            if n < size:
                if prefix.startswith(buf) if n < at else buf.startswith(prefix):
                    self._buf = buf
                    return None
            elif n == size and buf.startswith(prefix):
                cipher = express.cipher
                opened = None
                if cipher is None:
                    values = express.decode(buf, at, self._head)  # association + A-XDR
                else:  # the cipher step (ciphered head, fresh counter, GCM tag), then the same
                    opened = cipher.open(buf, at)
                    values = None if opened is None else express.decode(opened[0], 0, self._head)
                if values is not None and channel.accept_answer(buf):
                    if cipher is not None and opened is not None:
                        cipher.accept(opened[1])  # only now: this answer is taken
                    self.waiting = False
                    self._buf = b""
                    self._assoc.express_answered()
                    self._with_list.succeeded()
                    return express.readings(values, read_at_ms())
        self.waiting = False
        self._buf = b""
        return buf

    def _ordinary(self) -> Op:
        full = self._full
        if full is None:
            self.waiting = False
            received, self._buf = self._buf, b""  # the beginning of an answer never whole
            full = self._full = self._fallback(self.plan, received)
            next(full)  # runs up to its first wait, reading whatever the channel holds
        return full

    def send(self, timed_out: Any) -> None:
        if self._full is None:
            full = self._ordinary()
            if not timed_out:
                return  # the bytes just fed were read while starting
            full.send(timed_out)
            return
        self._full.send(timed_out)

    def throw(self, exc: BaseException) -> None:
        self._ordinary().throw(exc)

    def close(self) -> None:
        if self._full is not None:
            self._full.close()
