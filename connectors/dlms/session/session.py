"""``MeterSession``: one meter, driven over one transport, for months without a human.

It owns the I/O the protocol core refuses to do: it writes what the sans-IO machines produce, reads
with deadlines, retransmits on silence, and turns the events into ``Reading`` values. One request
is outstanding at a time; before each new request the transport input is discarded and invoke ids
are checked by the association, so a late answer is never taken for a newer request's.

Round trips: association = 2 (SNRM/UA, AARQ/AARE; 1 with the wrapper). A read cycle sends its
values (and, the first time in an association, the register scalers) in as few GET-with-list
requests as the negotiated PDU sizes allow: 9 registers are 1 round trip once the scalers are
cached. A meter that refuses GET-with-list is polled with single GETs and that is remembered.

Failures: a ``TimeoutError_`` after ``retries`` retransmissions, a ``RemoteProtocolError`` when
the link drops or the meter sends nonsense. Either leaves the session BROKEN (the engine closes and
reconnects) and dumps the frame trace at WARNING. Per-object refusals are ``DataAccessError``
values in the result list, not exceptions; the session stays READY.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

from ..engine.batching import WithListSupport
from ..protocol.apdu import (
    ActionResult,
    DataAccessResult,
    MethodDescriptor,
)
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
from ..protocol.hdlc import (
    Connected,
    DataReceived,
    UnexpectedFrame,
    UnnumberedDataReceived,
)
from ..protocol.obis import Obis
from ..transport.base import Transport
from .channel import make_channel
from .reading import Reading, Ref, ScalerCache
from .reads import VALUE, Args, DescriptorCache, Item, ReadPlan, store_scaler
from .settings import SessionSettings
from .trace import FrameTrace

__all__ = ["CLOCK_REF", "MeterSession", "SessionState"]

CLOCK_REF = Ref(8, Obis(0, 0, 1, 0, 0, 255), 2)  # the cheap GET of a keep-alive

_log = logging.getLogger(__name__)
_DAR = DataAccessResult
Result = Union[Reading, DataAccessError]


class SessionState(enum.Enum):
    CLOSED = "closed"
    CONNECTING = "connecting"
    READY = "ready"  # associated: reads allowed
    BROKEN = "broken"  # a timeout or protocol error: close() and connect() again


class MeterSession:
    """The client session of one meter (see the module doc)."""

    def __init__(
        self,
        transport: Transport,
        settings: SessionSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        log: logging.Logger | None = None,
        trace: FrameTrace | None = None,
    ) -> None:
        self.transport = transport
        self.settings = settings
        self.name = settings.name or transport.description
        self.log = log or _log
        self.trace = trace if trace is not None else FrameTrace(clock=wall_clock)
        self._clock = clock
        self._wall = wall_clock
        self._channel = make_channel(settings)
        self._assoc = Association(Role.CLIENT, settings.association_settings())
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
        self._timeout = settings.response_timeout
        self._deadline = 0.0
        self._frame_deadline = 0.0
        self._last_write = clock()
        self._mask: tuple[int, int] | None = None  # secret span of the AARQ in flight
        self._descriptors = DescriptorCache()
        self._last_plan: tuple[Any, Any, ReadPlan] | None = None

    # ------------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        """Open the transport and associate (SNRM/UA then AARQ/AARE). Raises TransportError,
        RemoteProtocolError, AuthenticationError or AssociationError, naming the meter."""
        if self.state is not SessionState.CLOSED:
            self.close()
        self.state = SessionState.CONNECTING
        self.connects += 1
        s = self.settings
        try:
            self.transport.open()
            self.transport.discard_input()
            self._channel.reset()
            self._assoc.reset()
            self.scalers.invalidate()
            self._last_plan = None
            self._timeout = s.connect_timeout
            self._write(self._channel.connect())
            event = self._await()
            if type(event) is not Connected:
                raise RemoteProtocolError(f"link not established: {_describe(event)}")
            aarq = self._assoc.associate()
            self._mask = _secret_span(aarq, s.password) if s.authentication == "lls" else None
            self.requests += 1
            self._write(self._channel.send(aarq))
            event = self._await()
            self._mask = None
            if type(event) is not Associated:
                raise RemoteProtocolError(f"association not established: {_describe(event)}")
        except BaseException as exc:
            self._mask = None
            self._timeout = s.response_timeout
            error = self._record(exc, "connect failed")
            self._shutdown(release=False)
            self.state = SessionState.CLOSED
            if error is None:
                raise
            raise error from exc
        self._timeout = s.response_timeout
        self.conformance = event.conformance
        self.with_list.associated(
            bool(event.conformance & Conformance.MULTIPLE_REFERENCES), int(event.conformance)
        )
        self.state = SessionState.READY
        self.log.debug(
            "%s: associated (%s, server max PDU %d)",
            self.name,
            ", ".join(event.conformance.labels),
            event.server_max_pdu_size,
        )

    def close(self) -> None:
        """Release (RLRQ, best effort), disconnect (DISC) and close the transport. Never raises;
        bounded by about two short timeouts."""
        if self.state is SessionState.CLOSED and not self.transport.is_open:
            return
        self._shutdown(release=self.state is SessionState.READY and self.settings.release_on_close)
        self.state = SessionState.CLOSED

    def _shutdown(self, release: bool) -> None:
        self._timeout = min(self.settings.response_timeout, 1.0)
        try:
            if self.transport.is_open and self._channel.connected:
                if release and self._assoc.state is AssociationState.ASSOCIATED:
                    self._exchange_quietly(self._channel.send(self._assoc.release()))
                self._exchange_quietly(self._channel.disconnect())
        except Exception as exc:  # noqa: BLE001 - closing must never raise
            self.log.debug("%s: while closing: %s", self.name, exc)
        finally:
            self._timeout = self.settings.response_timeout
            self.transport.close()
            self._assoc.reset()
            self._channel.reset()

    def _exchange_quietly(self, data: bytes) -> None:
        try:
            self.transport.discard_input()
            self._write(data)
            self._await(retries=0)
        except DlmsError as exc:
            self.log.debug("%s: no clean answer while closing: %s", self.name, exc)

    def __enter__(self) -> MeterSession:  # noqa: PYI034 - final class
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MeterSession {self.name} {self.state.value}>"

    # ------------------------------------------------------------------------------ reads
    def read(self, refs: Iterable[Any]) -> list[Result]:
        """Read attributes; one ``Reading`` or ``DataAccessError`` per ref, in order.

        A ref is a ``Ref``, an object with class_id/obis/attribute[/access] fields, or a
        (class_id, obis, attribute[, SelectiveAccess]) tuple. Register values (class 3/4,
        attribute 2) come scaled; their scaler_unit is read once per association, in the same
        request as the first values. Pass the same tuple every cycle: its plan is reused."""
        self._require_ready()
        plan = self._plan_for(refs)
        count = len(plan.refs)
        values: list[Any] = [None] * count
        stamps = [0] * count
        scaler_errors: dict[int, DataAccessResult] = {}
        for batch, args in plan.batches:
            results, read_at = self._get_batch(batch, args)
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

    def get(self, ref: Any) -> Result:
        """One attribute (an RPC): as ``read([ref])[0]``."""
        return self.read((ref,))[0]

    def set(self, ref: Any, value: Any) -> DataAccessResult:
        """SET one attribute; ``value`` as ``axdr.encode_data`` takes it (Typed for exactness)."""
        self._require_ready()
        r = Ref.of(ref)
        desc = self._descriptors(r.class_id, r.obis, r.attribute)
        event = self._request(lambda: self._assoc.set(desc, value, r.access))
        if type(event) is ServiceFailure:
            raise ServiceError(f"{self.name}: SET {r} refused: {event.error}")
        result: DataAccessResult = event.results[0]
        return result

    def action(
        self, class_id: int, obis: Any, method: int, parameters: Any = None
    ) -> tuple[ActionResult, Any]:
        """ACTION one method: (result, return data or None)."""
        self._require_ready()
        desc = MethodDescriptor(class_id, Obis.parse(obis), method)
        event = self._request(lambda: self._assoc.action(desc, parameters))
        if type(event) is ServiceFailure:
            raise ServiceError(f"{self.name}: ACTION {desc} refused: {event.error}")
        return event.result, event.return_data

    def keepalive_if_due(self) -> bool:
        """A cheap GET (the clock) when the link has been idle close to the meter's inactivity
        timeout, so the association survives long poll periods. True if one was sent."""
        s = self.settings
        if self.state is not SessionState.READY or not s.inactivity_timeout:
            return False
        if self.idle_for() < s.inactivity_timeout - s.keepalive_margin:
            return False
        self.read((CLOCK_REF,))  # a DataAccessError is an answer too: the link is alive
        return True

    def idle_for(self) -> float:
        """Seconds since we last sent anything to the meter."""
        return self._clock() - self._last_write

    # ----------------------------------------------------------------------- read helpers
    def _require_ready(self) -> None:
        if self.state is not SessionState.READY:
            cause = f" by: {self.last_error}" if self.state is SessionState.BROKEN else ""
            raise LocalProtocolError(
                f"{self.name}: session is {self.state.value}{cause}; close() and connect() first"
            )

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
            self._assoc.server_max_pdu_size,
            self.settings.max_pdu_size,
            self.settings.max_list_items,
        )
        # Only an immutable tuple may be recognised by identity next time.
        self._last_plan = (refs, state, plan) if type(refs) is tuple else None
        return plan

    def _get_batch(self, batch: list[Item], args: list[Args]) -> tuple[Sequence[Any], int]:
        """Results of one batch and the wall-clock ms they arrived at."""
        assoc = self._assoc
        if len(args) == 1:
            desc, access = args[0]
            event = self._request(lambda: assoc.get(desc, access))
            if type(event) is ServiceFailure:
                self.log.info("%s: GET %s refused: %s", self.name, desc, event.error)
                return (DataAccessResult.OTHER_REASON,), int(self._wall() * 1000)
            return event.results, int(self._wall() * 1000)
        event = self._request(lambda: assoc.get_with_list(args))
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
            single, read_at = self._get_batch([item], [arg])
            results.extend(single)
        return results, read_at

    # ------------------------------------------------------------------------ exchanges
    def _request(self, build: Callable[[], tuple[int, bytes]]) -> Any:
        """Send one request and return its answer: GetResult/SetResult/ActionCompleted or
        ServiceFailure. Anything else breaks the session."""
        _, apdu = build()  # a LocalProtocolError here (e.g. too long) leaves the session as is
        try:
            self.transport.discard_input()
            self._channel.discard()
            self.requests += 1
            self._write(self._channel.send(apdu))
            event = self._await()
            kind = type(event)
            if kind is GetResult or kind is SetResult or kind is ActionCompleted:
                return event
            if kind is ServiceFailure:
                return event
            raise RemoteProtocolError(f"link lost: {_describe(event)}")
        except BaseException as exc:
            self._assoc.abandon()
            error = self._record(exc, "request failed")
            self.state = SessionState.BROKEN
            if error is None:
                raise
            raise error from exc

    def _write(self, data: bytes) -> None:
        if not data:
            return
        mask = self._mask
        spans = self._channel.secret_spans(data, *mask) if mask is not None else ()
        entry = self.trace.record("tx", data, spans)
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("%s: %s", self.name, entry.line())
        self.transport.write(data)
        self.bytes_sent += len(data)
        self.round_trips += 1
        now = self._clock()
        self._last_write = now
        self._deadline = now + self._timeout

    def _await(self, retries: int | None = None) -> Any:
        """Pump bytes until an event answers the exchange; retransmit on silence."""
        if retries is None:
            retries = self.settings.retries
        attempts = 0
        channel = self._channel
        transport = self.transport
        clock = self._clock
        inter_frame = self.settings.inter_frame_timeout
        while True:
            event = self._poll()
            if event is not None:
                return event
            now = clock()
            wait = self._deadline - now
            if channel.partial:  # in the middle of a frame: the rest must follow soon
                wait = min(wait, self._frame_deadline - now)
            if wait <= 0:
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
                continue
            chunk = transport.read(wait)
            if chunk:
                entry = self.trace.record("rx", chunk)
                if self.log.isEnabledFor(logging.DEBUG):
                    self.log.debug("%s: %s", self.name, entry.line())
                self.bytes_received += len(chunk)
                channel.receive_data(chunk)
                self._frame_deadline = clock() + inter_frame

    def _poll(self) -> Any:
        """The next event worth returning, or None when more bytes are needed. Automatic
        traffic (RR, next segments, GET-next) is written on the way."""
        assoc = self._assoc
        channel = self._channel
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

    # ---------------------------------------------------------------------------- errors
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
