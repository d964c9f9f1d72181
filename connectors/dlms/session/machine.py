"""``SessionMachine``: the client session of one meter as a sans-IO state machine (h11 shape).

All of the session's protocol logic lives here, once: the connect sequence (SNRM/UA then
AARQ/AARE; the AARQ alone with the wrapper), read plans with the scaler cache and the
GET-with-list fallback, single GET/SET/ACTION, keep-alive, release (RLRQ) and DISC, retransmission
on silence. It does no I/O and reads no clock: every call takes ``now`` (monotonic seconds) and
time-outs are deadlines the driver asks for with ``next_timeout()``.

One operation runs at a time: ``connect``/``read``/``set``/``action``/``close`` start it, the
driver then moves bytes (``data_to_send()`` out, ``receive_data(data, now)`` in), calls
``check_timeout(now)`` once ``next_timeout()`` has passed and ``connection_lost(exc)`` when the
transport fails, until ``busy`` is false; ``result()`` then returns the operation's value or
raises its error. Each operation is written as a generator that yields while it waits for bytes
or a deadline, so the sequence reads top to bottom and both drivers (the blocking
``BlockingSession``, the engine's selector loop) run exactly the same code.

Every operation has an overall deadline (``operation_timeout``, or ``until`` when the driver set
an earlier one) and a budget of frames and bytes received, counted here where bytes arrive: the
answers' per-exchange deadlines move with every RR, segment and retransmission, these never do.
When either runs out the operation fails with a ``NoAnswer`` or ``RemoteProtocolError``
naming the meter; it gets a short grace to close politely, then it is cut.

Data that arrives while no operation runs is a late answer: it is traced and dropped, which is
what the blocking driver's discard_input did, without a syscall.

This module runs the operations (the driver interface, the output queue, the deadlines); the
operation generators themselves live in ``machine_ops``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

from ..protocol.apdu import MethodDescriptor
from ..protocol.apdu.xdlms import Conformance
from ..protocol.association import Association, Role
from ..protocol.errors import (
    DataAccessError,
    DeadlineExceeded,
    DlmsError,
    LocalProtocolError,
    RemoteProtocolError,
)
from ..protocol.obis import Obis
from .batching import WithListSupport
from .channel import make_channel
from .connect_ops import ConnectOpsMixin
from .express import ExpressOp, ExpressRead
from .machine_ops import Op, SessionState
from .read_plan import DESCRIPTORS, ReadPlan
from .reading import Reading, Ref, ScalerCache
from .settings import SessionSettings
from .trace import FrameTrace

__all__ = ["CLOCK_REF", "SessionMachine", "SessionState"]

CLOCK_REF = Ref(8, Obis(0, 0, 1, 0, 0, 255), 2)  # the cheap GET of a keep-alive
_log = logging.getLogger("tb_dlms.session.blocking")
_INF = float("inf")
Result = Union[Reading, DataAccessError]
_READY = SessionState.READY
# What an operation that ran out may still take in while it closes politely.
_GRACE_FRAMES, _GRACE_BYTES = 16, 16 * 2048


class SessionMachine(ConnectOpsMixin):
    """The protocol side of one meter session (see the module doc)."""

    def __init__(
        self,
        settings: SessionSettings,
        *,
        name: str = "",
        wall_clock: Callable[[], float],
        log: logging.Logger | None = None,
        trace: FrameTrace | None = None,
    ) -> None:
        self.settings = settings
        self.name = name or settings.name or "meter"
        self.log = log or _log
        self._wall = wall_clock  # only for the read_at stamps of readings
        self.trace = trace if trace is not None else FrameTrace(clock=wall_clock)
        self.channel = make_channel(settings)
        self.assoc = Association(Role.CLIENT, settings.association_settings())
        self.scalers = ScalerCache()
        self.with_list = WithListSupport()
        self.state = SessionState.CLOSED
        self.last_error: DlmsError | None = None
        self.conformance = Conformance.NONE
        # Counters (plain ints: read by the health reporting, cheap to bump).
        self.round_trips = 0  # writes that waited for an answer (incl. RR, GET-next, retries)
        self.requests = 0  # xDLMS requests (GET/SET/ACTION, not counting GET-next)
        self.bytes_sent = 0
        self.bytes_received = 0
        self.retransmissions = 0
        self.stale_responses = 0
        self.unexpected_frames = 0
        self.connects = 0
        self.express_cycles = 0  # steady cycles answered on the express path
        self.express_fallbacks = 0  # express cycles finished by the full path
        self.last_write = 0.0  # ``now`` of the last send
        self._now = 0.0
        self._timeout = settings.response_timeout
        self._deadline = _INF
        self._frame_deadline = _INF
        # The whole operation's bounds (see the module doc); ``until``: the driver's own cap.
        self.until = _INF
        self._op_deadline = _INF
        self._op_limit = 0.0  # the duration _op_deadline was set from, for the message
        self._operation_limit = settings.operation_limit  # (computed by settings: read once)
        self._op_frames = 0  # channel.frames when the operation began
        self._op_bytes = 0  # bytes received since
        self._op_max_frames = settings.max_operation_frames
        self._op_max_bytes = settings.max_operation_bytes
        self._overrun: DlmsError | None = None  # the operation ran out: its error
        self._out: list[bytes] = []
        self._mask: tuple[int, int] | None = None  # secret span of the AARQ in flight
        self._wire = False  # the driver's transport is up
        self._op: Op | ExpressOp | None = None  # ExpressOp: a cycle on the express path
        self._value: Any = None
        self._error: BaseException | None = None
        self._descriptors = DESCRIPTORS
        self._last_plan: tuple[Any, Any, ReadPlan] | None = None
        self._last_apdu = b""  # the latest APDU received (express/compile_express learns it)

    # ----------------------------------------------------------------------- driver side
    @property
    def busy(self) -> bool:
        return self._op is not None

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def next_timeout(self) -> float:
        """When ``check_timeout`` must be called (inf when nothing waits)."""
        if self._op is None:
            return _INF
        if self._frame_deadline < self._deadline and (
            self.channel.partial or type(self._op) is ExpressOp  # (its pieces are its own)
        ):
            at = self._frame_deadline  # in the middle of a frame: the rest must follow soon
        else:
            at = self._deadline
        return at if at < self._op_deadline else self._op_deadline

    def receive_data(self, data: bytes, now: float) -> None:
        self._now = now
        size = len(data)
        self.bytes_received += size
        self.trace.record("rx", data)
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("%s: %s", self.name, self.trace.last_line())
        op = self._op
        if op is None:  # a late answer between operations: never attributed
            return
        self._op_bytes += size
        if self._op_bytes > self._op_max_bytes:
            self._over_budget(now)
            return
        if type(op) is ExpressOp and op.waiting:
            outcome = op.try_answer(data, self._wall_ms)
            if outcome is None:  # the beginning of the expected answer: the rest must follow
                self._frame_deadline = now + self.settings.inter_frame_timeout
                return
            if not isinstance(outcome, bytes):  # the readings
                self.express_cycles += 1
                self._finish(outcome, None)
                return
            data = outcome  # not the expected answer: all of it takes the full path
        self.channel.receive_data(data)
        self._frame_deadline = now + self.settings.inter_frame_timeout
        self._resume(False)
        if (
            self._op is not None
            and self.channel.frames - self._op_frames > self._op_max_frames
        ):
            self._over_budget(now)

    def check_timeout(self, now: float) -> None:
        self._now = now
        if self._op is None or now < self.next_timeout():
            return
        if now >= self._op_deadline:
            self.abort(DeadlineExceeded(
                f"{self.name}: operation did not end within {self._op_limit:.3g} s"
                f" ({self._op_received()})"), now)
        else:
            self._resume(True)

    def abort(self, exc: DlmsError, now: float) -> None:
        """Give up on the running operation (its deadline or budget ran out, or the driver's
        watchdog fired): it fails with ``exc`` and may close politely within a short grace;
        the second time it is cut at once."""
        self._now = now
        op = self._op
        if op is None:
            return
        exc = exc.for_meter(self.name)
        if self._overrun is None:
            self._begin(now, min(self.settings.response_timeout, 1.0))
            self._op_max_frames, self._op_max_bytes = _GRACE_FRAMES, _GRACE_BYTES
            self._overrun = exc
            self._throw(op, exc)
            return
        error = self._overrun
        self._abort_op()
        if self.state is _READY or self.state is SessionState.CONNECTING:
            self.state = SessionState.BROKEN
            self.last_error = error
        self._finish(None, error)

    def _over_budget(self, now: float) -> None:
        self.abort(RemoteProtocolError(
            f"{self.name}: the meter kept talking: {self._op_received()} in one operation"
            f" (at most {self._op_max_frames} frames, {self._op_max_bytes} bytes)"), now)

    def _op_received(self) -> str:
        frames = self.channel.frames - self._op_frames
        return f"{frames} frames, {self._op_bytes} bytes received"

    def connection_lost(self, exc: DlmsError) -> None:
        """The transport failed (write error, reset, EOF): the operation fails with ``exc``."""
        self._wire = False
        self._out.clear()  # nothing more goes out on a dead line
        op = self._op
        if op is None:
            if self.state is _READY:
                self.state = SessionState.BROKEN
                self.last_error = exc
            return
        self._throw(op, exc)

    def _throw(self, op: Op | ExpressOp, exc: DlmsError) -> None:
        """End ``op`` with ``exc`` (it may catch it, e.g. to close politely, and return)."""
        try:
            op.throw(exc)
        except StopIteration as stop:
            self._finish(stop.value, None)
        except BaseException as error:  # noqa: BLE001 - handed to the caller by result()
            self._finish(None, error)

    def result(self) -> Any:
        """The finished operation's value; raises its error."""
        if self._op is not None:
            raise LocalProtocolError(f"{self.name}: the operation is still running")
        error, self._error = self._error, None
        if error is not None:
            raise error
        value, self._value = self._value, None
        return value

    # ----------------------------------------------------------------------- operations
    def connect(self, now: float) -> None:
        """Associate over a freshly opened transport."""
        self.connects += 1
        self.state = SessionState.CONNECTING
        self._wire = True
        self._start(self._connect_op(), now)

    def open_failed(self, exc: DlmsError) -> None:
        """The driver could not open its transport: a failed connect, without a byte sent."""
        self.connects += 1
        self._abort_op()
        self._wire = False
        self.state = SessionState.CLOSED
        error = self._record(exc, "connect failed")
        self._finish(None, error if error is not None else exc)

    def read(self, refs: Iterable[Any], now: float) -> None:
        self.require_ready()
        plan = self._plan_for(refs)
        express = plan.express
        if express is not None and self._op is None and self._express(plan, express, now):
            return
        self._start(self._read_op(plan), now)

    def set(self, ref: Any, value: Any, now: float) -> None:
        self.require_ready()
        r = Ref.of(ref)
        desc = self._descriptors(r.class_id, r.obis, r.attribute)
        self._start(self._set_op(r, desc, value), now)

    def action(self, class_id: int, obis: Any, method: int, parameters: Any, now: float) -> None:
        self.require_ready()
        desc = MethodDescriptor(class_id, Obis.parse(obis), method)
        self._start(self._action_op(desc, parameters), now)

    def keepalive_due(self, now: float) -> bool:
        s = self.settings
        if self.state is not _READY or not s.inactivity_timeout:
            return False
        return now - self.last_write >= s.inactivity_timeout - s.keepalive_margin

    def close(self, now: float, wire: bool = True) -> None:
        """Release (RLRQ, best effort) and DISC when the transport is still up (``wire``);
        never fails. The driver closes its transport once ``busy`` is false."""
        self._wire = self._wire and wire
        release = self.state is _READY and self.settings.release_on_close
        self._abort_op()
        # Its own bound, not ``until``: a polite close is short and worth a moment.
        short = min(self.settings.response_timeout, 1.0)
        self._start(self._shutdown_op(release), now, (2.0 if release else 1.0) * short)

    # ------------------------------------------------------------------------ internals
    def _express(self, plan: ReadPlan, express: ExpressRead, now: float) -> bool:
        """Send a steady cycle's request by the express path (see ``express``); False when the
        channel or association is not quiet enough for it (the full path then runs)."""
        request = plan.requests[0]
        assert request is not None  # compile_express only takes GET-with-list plans
        try:
            _iid, apdu = self.assoc.get_with_list(request)
        except LocalProtocolError:
            return False  # the full path raises the same, with its bookkeeping
        head = self.assoc.expected_with_list(express.flags)
        # A ciphered request differs every cycle (its counter): framed, never cached.
        frames = None if head is None else self.channel.express_send(apdu, express.cipher is None)
        if frames is None or head is None:
            self.assoc.abandon()  # nothing went out: the invoke id is simply skipped
            return False
        self._now = now
        self._value = self._error = None
        self._frame_deadline = _INF
        self._begin(now, self._operation_limit, self.until)
        self.requests += 1
        self._write(frames)
        self._op = ExpressOp(
            self.channel, self.assoc, self.with_list, plan, express, head, self.express_fallback
        )
        return True

    def express_fallback(self, plan: ReadPlan, received: bytes) -> Op:
        """The ordinary read operation of ``plan`` for a cycle the express path sent but could
        not finish, fed the ``received`` bytes it held back: the full path, from the same state."""
        self.express_fallbacks += 1
        if received:
            self.channel.receive_data(received)
        return self._read_op(plan, sent=True)

    def _wall_ms(self) -> int:
        return int(self._wall() * 1000)

    def _start(self, op: Op, now: float, limit: float | None = None) -> None:
        if self._op is not None:
            raise LocalProtocolError(f"{self.name}: another operation is running")
        self._now = now
        self.channel.discard()  # a late or partial answer must not meet this request
        self._value = self._error = None
        self._deadline = self._frame_deadline = _INF
        if limit is None:
            self._begin(now, self._operation_limit, self.until)
        else:
            self._begin(now, limit)
        self._op = op
        self._resume(None)

    def _begin(self, now: float, limit: float, until: float = _INF) -> None:
        """The operation's overall deadline and budget start now."""
        deadline = now + limit
        if until < deadline:  # the driver's own cap comes first
            deadline, limit = until, max(0.0, until - now)
        self._op_deadline, self._op_limit = deadline, limit
        self._op_frames = self.channel.frames
        self._op_bytes = 0
        self._op_max_frames = self.settings.max_operation_frames
        self._op_max_bytes = self.settings.max_operation_bytes
        self._overrun = None

    def _resume(self, timed_out: bool | None) -> None:
        op = self._op
        try:
            op.send(timed_out)  # type: ignore[union-attr,arg-type]
        except StopIteration as stop:
            self._finish(stop.value, None)
        except BaseException as error:  # noqa: BLE001 - handed to the caller by result()
            self._finish(None, error)

    def _finish(self, value: Any, error: BaseException | None) -> None:
        self._op = None
        self._value, self._error = value, error
        self._deadline = self._frame_deadline = self._op_deadline = _INF
        self._overrun = None

    def _abort_op(self) -> None:
        op, self._op = self._op, None
        if op is not None:
            op.close()
            self.assoc.abandon()

    def require_ready(self) -> None:
        """Raise LocalProtocolError unless the session is associated (a read, SET or ACTION may
        start); the error says why and what to do."""
        if self.state is not _READY:
            cause = f" by: {self.last_error}" if self.state is SessionState.BROKEN else ""
            raise LocalProtocolError(
                f"{self.name}: session is {self.state.value}{cause}; close() and connect() first"
            )

    def _write(self, data: bytes) -> None:
        if not data:
            return
        mask = self._mask
        spans = self.channel.secret_spans(data, *mask) if mask is not None else ()
        self.trace.record("tx", data, spans)
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("%s: %s", self.name, self.trace.last_line())
        self._out.append(data)
        self.bytes_sent += len(data)
        self.round_trips += 1
        now = self._now
        self.last_write = now
        self._deadline = now + self._timeout


ResultList = Sequence[Result]
