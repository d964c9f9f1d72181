"""The operations of ``SessionMachine``, as generators: what the session says to a meter.

The connect sequence (SNRM/UA then AARQ/AARE), release and DISC, read plans with the scaler
cache and the GET-with-list fallback, single SET/ACTION, and the exchange under all of them (send,
wait with retransmission on silence, drain the link and association events). Each generator
yields while it waits for bytes or a deadline; ``machine.py`` runs them (the driver interface,
the output queue, the deadlines). A mixin, so the hot path calls plain methods of one object.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from ..protocol.apdu import ActionResult, DataAccessResult, MethodDescriptor
from ..protocol.apdu.get import PreparedGetWithList
from ..protocol.apdu.xdlms import Conformance
from ..protocol.association import (
    NEED_DATA,
    ActionCompleted,
    Association,
    GetResult,
    ServiceFailure,
    SetResult,
    StaleResponse,
)
from ..protocol.errors import (
    AssociationError,
    DlmsError,
    LocalProtocolError,
    NoAnswer,
    RemoteProtocolError,
    ServiceError,
)
from ..protocol.hdlc import DataReceived, UnexpectedFrame, UnnumberedDataReceived
from ..protocol.security import SECURITY_FAILURES
from .batching import WithListSupport
from .channel import ApduChannel
from .express import learn_express
from .read_plan import VALUE, Args, DescriptorCache, Item, ReadPlan, store_scaler
from .reading import Ref, ScalerCache
from .settings import SessionSettings
from .trace import FrameTrace

__all__ = ["MachineOpsMixin", "Op", "SessionState", "describe_event"]

Op = Generator[None, bool, Any]  # resumed with True on a time-out, False on new bytes


class SessionState(enum.Enum):
    CLOSED = "closed"
    CONNECTING = "connecting"
    READY = "ready"  # associated: reads allowed
    BROKEN = "broken"  # a timeout or protocol error: close() and connect() again


_READY = SessionState.READY
_DAR = DataAccessResult


class MachineOpsMixin:
    """The operation generators of ``SessionMachine`` (needs its fields and its ``_write``)."""

    settings: SessionSettings
    name: str
    log: logging.Logger
    trace: FrameTrace
    channel: ApduChannel
    assoc: Association
    scalers: ScalerCache
    with_list: WithListSupport
    state: SessionState
    last_error: DlmsError | None
    conformance: Conformance
    requests: int
    retransmissions: int
    stale_responses: int
    unexpected_frames: int
    _wall: Callable[[], float]
    _timeout: float
    _mask: tuple[int, int] | None
    _wire: bool
    _descriptors: DescriptorCache
    _last_plan: tuple[Any, Any, ReadPlan] | None
    _last_apdu: bytes
    _bad_answer: RemoteProtocolError | None = None  # the latest APDU the association refused

    if TYPE_CHECKING:
        def _write(self, data: bytes) -> None: ...

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

    def _read_op(self, plan: ReadPlan, sent: bool = False) -> Op:
        """``sent``: the express path already sent the first batch's request."""
        count = len(plan.refs)
        values: list[Any] = [None] * count
        stamps = [0] * count
        scaler_errors: dict[int, DataAccessResult] = {}
        for (batch, args), request in zip(plan.batches, plan.requests):
            results, read_at = yield from self._get_batch(batch, args, request, sent)
            sent = False
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
        last = self._last_plan
        if last is not None and last[2] is plan and self.settings.express:
            # The plan comes back every cycle: learn its answer for the express path (again
            # after a fallback: the meter may have changed a type; a failed item keeps the old).
            express = learn_express(plan, self._last_apdu, self.assoc, self.channel)
            if express is not None:
                plan.express = express
        return plan.readings(
            values, stamps, scaler_errors, self.scalers, self.settings.deviation_sign
        )

    def _get_batch(
        self, batch: list[Item], args: list[Args], request: PreparedGetWithList | None = None,
        sent: bool = False,
    ) -> Op:
        """Results of one batch and the wall-clock ms they arrived at (``request``: the batch's
        GET-with-list, prepared by the plan; ``sent``: already on its way)."""
        assoc = self.assoc
        if len(args) == 1:
            desc, access = args[0]
            event = yield from self._request(lambda: assoc.get(desc, access), sent)
            if type(event) is ServiceFailure:
                self.log.info("%s: GET %s refused: %s", self.name, desc, event.error)
                return (_DAR.OTHER_REASON,), int(self._wall() * 1000)
            return event.results, int(self._wall() * 1000)
        items = args if request is None else request
        event = yield from self._request(lambda: assoc.get_with_list(items), sent, True)
        if type(event) is GetResult:
            self.with_list.succeeded()
            return event.results, int(self._wall() * 1000)
        if not isinstance(event, SECURITY_FAILURES):
            # A meter quirk; an answer that failed its security checks (tag, counter,
            # protection) says nothing about GET-with-list: single GETs for this cycle only.
            self.with_list.failed()
        self._last_plan = None
        self.log.warning(
            "%s: GET-with-list of %d %s; single GETs %s",
            self.name,
            len(args),
            f"refused ({event.error})" if type(event) is ServiceFailure
            else f"answered malformed ({event})",
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
    def _request(
        self, build: Callable[[], tuple[int, bytes]], sent: bool = False, lenient: bool = False
    ) -> Op:
        """Send one request (unless ``sent`` already) and return its answer: GetResult/SetResult/
        ActionCompleted or ServiceFailure; ``lenient``: also the RemoteProtocolError of an answer
        that came whole over a sound link but is malformed (the caller falls back). Anything
        else breaks the session."""
        if not sent:
            _, apdu = build()  # a LocalProtocolError here (e.g. too long) leaves the session as is
        try:
            if not sent:
                self.channel.discard()
                self.requests += 1
                self._write(self.channel.send(apdu))
            event = yield from self._await(self.settings.retries)
            kind = type(event)
            if kind is GetResult or kind is SetResult or kind is ActionCompleted:
                return event
            if kind is ServiceFailure:
                return event
            raise RemoteProtocolError(f"link lost: {describe_event(event)}")
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.assoc.abandon()
            bad, self._bad_answer = self._bad_answer, None
            if lenient and exc is bad:
                return exc  # nothing is pending now: the link and association go on
            error = self._record(exc, "request failed")
            self.state = SessionState.BROKEN
            if error is None:
                raise
            raise error from exc

    def _await(self, retries: int) -> Op:
        """Wait for the event that answers the exchange; retransmit on silence. A frame the
        meter repeats makes the link repeat ours (or acknowledge again) at once: each counts
        against ``retries`` as a retransmission would, else two peers could echo forever."""
        attempts = 0
        channel = self.channel
        echoes = channel.duplicates
        while True:
            event = self._poll()
            if event is not None:
                return event
            repeated = channel.duplicates - echoes
            if attempts + repeated > retries:
                raise RemoteProtocolError(
                    f"the meter repeated an old frame {repeated} time(s) instead of answering"
                )
            timed_out = yield
            if not timed_out:
                continue
            if attempts + repeated >= retries:
                raise NoAnswer(
                    f"no answer within {self._timeout:g} s"
                    + (f" after {attempts} retransmission(s)" if attempts else "")
                )
            attempts += 1
            self.retransmissions += 1
            channel.discard()
            again = channel.retransmit()
            if not again:
                raise NoAnswer(f"no answer within {self._timeout:g} s")
            self._write(again)

    def _poll(self) -> Any:
        """The next event worth returning, or None when more bytes are needed. Automatic
        traffic (RR, next segments, GET-next) is queued on the way."""
        assoc = self.assoc
        channel = self.channel
        while True:
            try:
                event = assoc.next_event()
            except RemoteProtocolError as exc:  # a whole APDU, malformed: the link is sound
                self._bad_answer = exc
                raise
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
                self._last_apdu = link_event.apdu
                assoc.receive_data(link_event.apdu)
            elif kind is UnexpectedFrame or kind is UnnumberedDataReceived:
                self.unexpected_frames += 1
                self.log.debug("%s: ignored %s", self.name, describe_event(link_event))
            else:
                return link_event  # Connected, Disconnected, FrameRejected

    def _record(self, exc: BaseException, what: str) -> DlmsError | None:
        """Name the meter in the error, remember it, dump the trace when it is a link problem."""
        if not isinstance(exc, DlmsError):
            return None
        error = exc.for_meter(self.name)
        self.last_error = error
        if isinstance(error, AssociationError):
            self.log.warning("%s", error)
        elif not isinstance(error, LocalProtocolError):
            self.trace.dump(self.log, f"{self.name}: {what}: {exc}")
        return error



def describe_event(event: Any) -> str:
    """An event in a few words, for errors and logs."""
    reason = getattr(event, "reason", None)
    return f"{type(event).__name__}: {reason}" if reason else type(event).__name__

