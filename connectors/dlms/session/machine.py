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
``MeterSession``, the engine's selector loop) run exactly the same code.

Data that arrives while no operation runs is a late answer: it is traced and dropped, which is
what the blocking driver's discard_input did, without a syscall.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, Union

from ..engine.batching import WithListSupport
from ..protocol.apdu import ActionResult, DataAccessResult, MethodDescriptor
from ..protocol.apdu.get import PreparedGetWithList
from ..protocol.apdu.xdlms import Conformance
from ..protocol.association import (
    NEED_DATA,
    ActionCompleted,
    Associated,
    Association,
    AssociationState,
    GetResult,
    Role,
    ServiceFailure,
    SetResult,
    StaleResponse,
)
from ..protocol.axdr import encode_length
from ..protocol.errors import (
    AssociationError,
    DataAccessError,
    DecodeError,
    DlmsError,
    LocalProtocolError,
    RemoteProtocolError,
    ServiceError,
    TimeoutError_,
)
from ..protocol.hdlc import Connected, DataReceived, UnexpectedFrame, UnnumberedDataReceived
from ..protocol.obis import Obis
from .channel import make_channel
from .reading import Reading, Ref, ScalerCache
from .reads import VALUE, Args, DescriptorCache, Item, ReadPlan, store_scaler
from .settings import SessionSettings
from .trace import FrameTrace

__all__ = ["CLOCK_REF", "SessionMachine", "SessionState"]

CLOCK_REF = Ref(8, Obis(0, 0, 1, 0, 0, 255), 2)  # the cheap GET of a keep-alive
_log = logging.getLogger("tb_dlms.session.session")
_INF = float("inf")
Result = Union[Reading, DataAccessError]
Op = Generator[None, bool, Any]  # resumed with True on a time-out, False on new bytes


class SessionState(enum.Enum):
    CLOSED = "closed"
    CONNECTING = "connecting"
    READY = "ready"  # associated: reads allowed
    BROKEN = "broken"  # a timeout or protocol error: close() and connect() again


_READY = SessionState.READY
_DAR = DataAccessResult


class SessionMachine:
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
        self.last_write = 0.0  # ``now`` of the last send
        self._now = 0.0
        self._timeout = settings.response_timeout
        self._deadline = _INF
        self._frame_deadline = _INF
        self._out: list[bytes] = []
        self._mask: tuple[int, int] | None = None  # secret span of the AARQ in flight
        self._wire = False  # the driver's transport is up
        self._op: Op | None = None
        self._value: Any = None
        self._error: BaseException | None = None
        self._descriptors = DescriptorCache()
        self._last_plan: tuple[Any, Any, ReadPlan] | None = None

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
        if self.channel.partial and self._frame_deadline < self._deadline:
            return self._frame_deadline  # in the middle of a frame: the rest must follow soon
        return self._deadline

    def receive_data(self, data: bytes, now: float) -> None:
        self._now = now
        self.bytes_received += len(data)
        self.trace.record("rx", data)
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("%s: %s", self.name, self.trace.last_line())
        if self._op is None:  # a late answer between operations: never attributed
            return
        self.channel.receive_data(data)
        self._frame_deadline = now + self.settings.inter_frame_timeout
        self._resume(False)

    def check_timeout(self, now: float) -> None:
        self._now = now
        if self._op is not None and now >= self.next_timeout():
            self._resume(True)

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
        self._require_ready()
        self._start(self._read_op(self._plan_for(refs)), now)

    def set(self, ref: Any, value: Any, now: float) -> None:
        self._require_ready()
        r = Ref.of(ref)
        desc = self._descriptors(r.class_id, r.obis, r.attribute)
        self._start(self._set_op(r, desc, value), now)

    def action(self, class_id: int, obis: Any, method: int, parameters: Any, now: float) -> None:
        self._require_ready()
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
        self._start(self._shutdown_op(release), now)

    # ------------------------------------------------------------------------ internals
    def _start(self, op: Op, now: float) -> None:
        if self._op is not None:
            raise LocalProtocolError(f"{self.name}: another operation is running")
        self._now = now
        self.channel.discard()  # a late or partial answer must not meet this request
        self._value = self._error = None
        self._deadline = self._frame_deadline = _INF
        self._op = op
        self._resume(None)

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
        self._deadline = self._frame_deadline = _INF

    def _abort_op(self) -> None:
        op, self._op = self._op, None
        if op is not None:
            op.close()
            self.assoc.abandon()

    def _require_ready(self) -> None:
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

    # -- connect / close -----------------------------------------------------------------
    def _connect_op(self) -> Op:
        s = self.settings
        try:
            self.channel.reset()
            self.assoc.reset()
            self.scalers.invalidate()
            self._last_plan = None
            self._timeout = s.connect_timeout
            self._write(self.channel.connect())
            event = yield from self._await(s.retries)
            if type(event) is not Connected:
                raise RemoteProtocolError(f"link not established: {_describe(event)}")
            aarq = self.assoc.associate()
            self._mask = _secret_span(aarq, s.password) if s.authentication == "lls" else None
            self.requests += 1
            self._write(self.channel.send(aarq))
            event = yield from self._await(s.retries)
            self._mask = None
            if type(event) is not Associated:
                raise RemoteProtocolError(f"association not established: {_describe(event)}")
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._mask = None
            self._timeout = s.response_timeout
            error = self._record(exc, "connect failed")
            yield from self._shutdown_op(False)
            if error is None:
                raise
            raise error from exc
        self._timeout = s.response_timeout
        self.conformance = event.conformance
        self.with_list.associated(
            bool(event.conformance & Conformance.MULTIPLE_REFERENCES), int(event.conformance)
        )
        self.state = _READY
        self.log.debug(
            "%s: associated (%s, server max PDU %d)",
            self.name,
            ", ".join(event.conformance.labels),
            event.server_max_pdu_size,
        )

    def _shutdown_op(self, release: bool) -> Op:
        self._timeout = min(self.settings.response_timeout, 1.0)
        try:
            if self._wire and self.channel.connected:
                if release and self.assoc.state is AssociationState.ASSOCIATED:
                    yield from self._quietly(self.channel.send(self.assoc.release()))
                if self._wire:
                    yield from self._quietly(self.channel.disconnect())
        except Exception as exc:  # noqa: BLE001 - closing must never raise
            self.log.debug("%s: while closing: %s", self.name, exc)
        finally:
            self._timeout = self.settings.response_timeout
            self.assoc.reset()
            self.channel.reset()
            self.state = SessionState.CLOSED
            self._wire = False

    def _quietly(self, data: bytes) -> Op:
        try:
            self.channel.discard()
            self._write(data)
            yield from self._await(0)
        except DlmsError as exc:
            self.log.debug("%s: no clean answer while closing: %s", self.name, exc)

    # -- services ------------------------------------------------------------------------
    def _plan_for(self, refs: Iterable[Any]) -> ReadPlan:
        """The cached plan when the same tuple comes again in the same scaler/with-list state
        (the engine's steady cycle); else a new one."""
        state = (len(self.scalers), self.scalers.associations, self.with_list.usable)
        last = self._last_plan
        if last is not None and last[0] is refs and last[1] == state:
            return last[2]
        plan = ReadPlan(
            [Ref.of(r) for r in refs],
            self.scalers,
            self._descriptors,
            self.with_list.usable,
            self.assoc.server_max_pdu_size,
            self.settings.max_pdu_size,
            self.settings.max_list_items,
        )
        # Only an immutable tuple may be recognised by identity next time.
        self._last_plan = (refs, state, plan) if type(refs) is tuple else None
        return plan

    def _read_op(self, plan: ReadPlan) -> Op:
        count = len(plan.refs)
        values: list[Any] = [None] * count
        stamps = [0] * count
        scaler_errors: dict[int, DataAccessResult] = {}
        for (batch, args), request in zip(plan.batches, plan.requests):
            results, read_at = yield from self._get_batch(batch, args, request)
            for (kind, index, ref), result in zip(batch, results):
                if kind == VALUE:
                    values[index] = result
                    stamps[index] = read_at
                else:
                    problem = store_scaler(self.scalers, ref, result, index, scaler_errors)
                    if problem:
                        self.log.warning("%s: %s", self.name, problem)
        for index, dar in scaler_errors.items():
            self.log.info("%s: %s scaler_unit: %s", self.name, plan.refs[index], dar.label)
        return plan.readings(
            values, stamps, scaler_errors, self.scalers, self.settings.deviation_sign
        )

    def _get_batch(
        self, batch: list[Item], args: list[Args], request: PreparedGetWithList | None = None
    ) -> Op:
        """Results of one batch and the wall-clock ms they arrived at (``request``: the batch's
        GET-with-list, prepared by the plan)."""
        assoc = self.assoc
        if len(args) == 1:
            desc, access = args[0]
            event = yield from self._request(lambda: assoc.get(desc, access))
            if type(event) is ServiceFailure:
                self.log.info("%s: GET %s refused: %s", self.name, desc, event.error)
                return (_DAR.OTHER_REASON,), int(self._wall() * 1000)
            return event.results, int(self._wall() * 1000)
        items = args if request is None else request
        event = yield from self._request(lambda: assoc.get_with_list(items))
        if type(event) is GetResult:
            self.with_list.succeeded()
            return event.results, int(self._wall() * 1000)
        self.with_list.failed()
        self._last_plan = None
        self.log.warning(
            "%s: GET-with-list of %d refused (%s); single GETs %s",
            self.name,
            len(args),
            event.error,
            "for this cycle" if self.with_list.usable else "from now on",
        )
        results: list[Any] = []
        read_at = 0
        for item, arg in zip(batch, args):
            single, read_at = yield from self._get_batch([item], [arg])
            results.extend(single)
        return results, read_at

    def _set_op(self, r: Ref, desc: Any, value: Any) -> Op:
        event = yield from self._request(lambda: self.assoc.set(desc, value, r.access))
        if type(event) is ServiceFailure:
            raise ServiceError(f"{self.name}: SET {r} refused: {event.error}")
        result: DataAccessResult = event.results[0]
        return result

    def _action_op(self, desc: MethodDescriptor, parameters: Any) -> Op:
        event = yield from self._request(lambda: self.assoc.action(desc, parameters))
        if type(event) is ServiceFailure:
            raise ServiceError(f"{self.name}: ACTION {desc} refused: {event.error}")
        answer: tuple[ActionResult, Any] = (event.result, event.return_data)
        return answer

    # -- exchanges -----------------------------------------------------------------------
    def _request(self, build: Callable[[], tuple[int, bytes]]) -> Op:
        """Send one request and return its answer: GetResult/SetResult/ActionCompleted or
        ServiceFailure. Anything else breaks the session."""
        _, apdu = build()  # a LocalProtocolError here (e.g. too long) leaves the session as is
        try:
            self.channel.discard()
            self.requests += 1
            self._write(self.channel.send(apdu))
            event = yield from self._await(self.settings.retries)
            kind = type(event)
            if kind is GetResult or kind is SetResult or kind is ActionCompleted:
                return event
            if kind is ServiceFailure:
                return event
            raise RemoteProtocolError(f"link lost: {_describe(event)}")
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.assoc.abandon()
            error = self._record(exc, "request failed")
            self.state = SessionState.BROKEN
            if error is None:
                raise
            raise error from exc

    def _await(self, retries: int) -> Op:
        """Wait for the event that answers the exchange; retransmit on silence."""
        attempts = 0
        channel = self.channel
        while True:
            event = self._poll()
            if event is not None:
                return event
            timed_out = yield
            if not timed_out:
                continue
            if attempts >= retries:
                raise TimeoutError_(
                    f"no answer within {self._timeout:g} s"
                    + (f" after {attempts} retransmission(s)" if attempts else "")
                )
            attempts += 1
            self.retransmissions += 1
            channel.discard()
            again = channel.retransmit()
            if not again:
                raise TimeoutError_(f"no answer within {self._timeout:g} s")
            self._write(again)

    def _poll(self) -> Any:
        """The next event worth returning, or None when more bytes are needed. Automatic
        traffic (RR, next segments, GET-next) is queued on the way."""
        assoc = self.assoc
        channel = self.channel
        while True:
            event = assoc.next_event()
            if event is not NEED_DATA:
                if type(event) is StaleResponse:
                    self.stale_responses += 1
                    self.log.debug("%s: dropped stale response %d", self.name, event.invoke_id)
                    continue
                return event
            auto = assoc.data_to_send()
            if auto:  # GET-next of a block transfer
                self._write(channel.send(auto))
                continue
            link_event = channel.next_event()
            out = channel.data_to_send()
            if out:
                self._write(out)
            if link_event is NEED_DATA:
                return None
            kind = type(link_event)
            if kind is DataReceived:
                assoc.receive_data(link_event.apdu)
            elif kind is UnexpectedFrame or kind is UnnumberedDataReceived:
                self.unexpected_frames += 1
                self.log.debug("%s: ignored %s", self.name, _describe(link_event))
            else:
                return link_event  # Connected, Disconnected, FrameRejected

    def _record(self, exc: BaseException, what: str) -> DlmsError | None:
        """Name the meter in the error, remember it, dump the trace when it is a link problem."""
        if not isinstance(exc, DlmsError):
            return None
        error = _named(exc, self.name)
        self.last_error = error
        if isinstance(error, AssociationError):
            self.log.warning("%s", error)
        elif not isinstance(error, LocalProtocolError):
            self.trace.dump(self.log, f"{self.name}: {what}: {exc}")
        return error


def _describe(event: Any) -> str:
    reason = getattr(event, "reason", None)
    return f"{type(event).__name__}: {reason}" if reason else type(event).__name__


def _secret_span(aarq: bytes, password: bytes) -> tuple[int, int]:
    """Where the LLS password sits in the AARQ: calling-authentication-value [12] holds
    ``80 <len> <password>``. The whole APDU is masked if it cannot be found."""
    tagged = b"\x80" + encode_length(len(password)) + password
    at = aarq.find(tagged)
    if at < 0:
        return 0, len(aarq)
    start = at + len(tagged) - len(password)
    return start, start + len(password)


def _named(exc: DlmsError, name: str) -> DlmsError:
    """The same error with the meter's name in front (unless it is already there)."""
    text = str(exc)
    if name in text:
        return exc
    message = f"{name}: {text}"
    if isinstance(exc, AssociationError):
        return type(exc)(message, exc.result, exc.diagnostic)
    if isinstance(exc, DataAccessError):
        return exc
    if isinstance(exc, DecodeError):
        error = DecodeError(message)
        error.offset = exc.offset
        return error
    try:
        return type(exc)(message)
    except TypeError:  # pragma: no cover - a subclass with another signature
        return exc


ResultList = Sequence[Result]
