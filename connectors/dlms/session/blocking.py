"""``BlockingSession``: one meter over one blocking transport, for months without a human.

A thin driver of ``SessionMachine`` (machine.py), where the protocol logic lives: this class only
opens and closes the transport, writes what the machine produces, reads until the machine's next
deadline and turns the machine's outcome into a return value or an exception. The engine's
selector loop drives the same machine without blocking (engine/loop.py); the serial bus workers
and ``tb-dlms read`` use this one.

Round trips: association = 2 (SNRM/UA, AARQ/AARE; 1 with the wrapper). A read cycle sends its
values (and, the first time in an association, the register scalers) in as few GET-with-list
requests as the negotiated PDU sizes allow: 9 registers are 1 round trip once the scalers are
cached. A meter that refuses GET-with-list is polled with single GETs and that is remembered.

Failures: a ``NoAnswer`` after ``retries`` retransmissions or when the operation outlives
its overall deadline (``operation_timeout``; ``machine.until`` caps it for a whole command), a
``RemoteProtocolError`` when the link drops, the meter sends nonsense, repeats old frames or keeps
talking past the operation's frame/byte budget. Either leaves the session BROKEN (the engine closes and
reconnects) and dumps the frame trace at WARNING. Per-object refusals are ``DataAccessError``
values in the result list, not exceptions; the session stays READY.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Union

from ..protocol.apdu import ActionResult, DataAccessResult
from ..protocol.errors import DataAccessError, DlmsError
from ..transport.base import Transport
from .machine import CLOCK_REF, SessionMachine, SessionState
from .reading import Reading
from .settings import SessionSettings
from .trace import FrameTrace

__all__ = ["CLOCK_REF", "BlockingSession", "SessionState"]

_log = logging.getLogger(__name__)
Result = Union[Reading, DataAccessError]
_COUNTERS = (
    "round_trips", "requests", "bytes_sent", "bytes_received", "retransmissions",
    "stale_responses", "unexpected_frames", "connects", "state", "last_error", "conformance",
    "scalers", "with_list",
)


class BlockingSession:
    """The client session of one meter over a blocking ``Transport`` (see the module doc)."""

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
        self._clock = clock
        self.machine = SessionMachine(
            settings, name=self.name, wall_clock=wall_clock, log=log or _log,
            trace=trace if trace is not None else FrameTrace(clock=wall_clock),
        )
        self.machine.last_write = clock()

    # The machine's state and counters, read as the session's own.
    def __getattr__(self, name: str) -> Any:
        if name in _COUNTERS or name in ("log", "trace"):
            return getattr(self.__dict__["machine"], name)
        raise AttributeError(name)

    @property
    def _assoc(self) -> Any:  # for tests that spy on the requests
        return self.machine.assoc

    @property
    def _channel(self) -> Any:
        return self.machine.channel

    # ------------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        """Open the transport and associate (SNRM/UA then AARQ/AARE). Raises TransportError,
        RemoteProtocolError, AuthenticationError or AssociationError, naming the meter."""
        m = self.machine
        if m.state is not SessionState.CLOSED:
            self.close()
        try:
            self.transport.open()
            self.transport.discard_input()
        except DlmsError as exc:
            m.open_failed(exc)  # the machine counts, names and records it
            self._finish()
            return
        m.connect(self._clock())
        self._finish()

    def close(self) -> None:
        """Release (RLRQ, best effort), disconnect (DISC) and close the transport. Never raises;
        bounded by about two short timeouts."""
        m = self.machine
        if m.state is SessionState.CLOSED and not self.transport.is_open:
            return
        try:
            if self.transport.is_open:
                self.transport.discard_input()
        except DlmsError:
            pass
        m.close(self._clock(), wire=self.transport.is_open)
        try:
            self._finish()
        except Exception as exc:  # noqa: BLE001 - closing never raises
            m.log.debug("%s: while closing: %s", self.name, exc)

    def __enter__(self) -> BlockingSession:  # noqa: PYI034 - final class
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BlockingSession {self.name} {self.machine.state.value}>"

    # ------------------------------------------------------------------------------ services
    def read(self, refs: Iterable[Any]) -> list[Result]:
        """Read attributes; one ``Reading`` or ``DataAccessError`` per ref, in order.

        A ref is a ``Ref``, an object with class_id/obis/attribute[/access] fields, or a
        (class_id, obis, attribute[, SelectiveAccess]) tuple. Register values (class 3/4,
        attribute 2) come scaled; their scaler_unit is read once per association, in the same
        request as the first values. Pass the same tuple every cycle: its plan is reused."""
        self.machine.require_ready()
        lost = self._discard()
        self.machine.read(refs, self._clock())
        if lost is not None:
            self.machine.connection_lost(lost)
        result: list[Result] = self._finish()
        return result

    def get(self, ref: Any) -> Result:
        """One attribute (an RPC): as ``read([ref])[0]``."""
        return self.read((ref,))[0]

    def set(self, ref: Any, value: Any) -> DataAccessResult:
        """SET one attribute; ``value`` as ``axdr.encode_data`` takes it (Typed for exactness)."""
        self.machine.require_ready()
        lost = self._discard()
        self.machine.set(ref, value, self._clock())
        if lost is not None:
            self.machine.connection_lost(lost)
        result: DataAccessResult = self._finish()
        return result

    def action(
        self, class_id: int, obis: Any, method: int, parameters: Any = None
    ) -> tuple[ActionResult, Any]:
        """ACTION one method: (result, return data or None)."""
        self.machine.require_ready()
        lost = self._discard()
        self.machine.action(class_id, obis, method, parameters, self._clock())
        if lost is not None:
            self.machine.connection_lost(lost)
        result: tuple[ActionResult, Any] = self._finish()
        return result

    def keepalive_if_due(self) -> bool:
        """A cheap GET (the clock) when the link has been idle close to the meter's inactivity
        timeout, so the association survives long poll periods. True if one was sent."""
        if not self.machine.keepalive_due(self._clock()):
            return False
        self.read((CLOCK_REF,))  # a DataAccessError is an answer too: the link is alive
        return True

    def idle_for(self) -> float:
        """Seconds since we last sent anything to the meter."""
        return self._clock() - self.machine.last_write

    # ------------------------------------------------------------------------------ driving
    def _discard(self) -> DlmsError | None:
        # Blocking reads leave a late answer in the socket; drop it before the next request
        # (the selector loop reads everything as it comes and needs no syscall for this).
        try:
            self.transport.discard_input()
        except DlmsError as exc:
            return exc  # the request fails with it, as if its write had failed
        return None

    def _finish(self) -> Any:
        """Move bytes until the machine's operation ends; its value, or raise its error."""
        m = self.machine
        transport = self.transport
        clock = self._clock
        while True:
            out = m.data_to_send()
            if out:
                try:
                    transport.write(out)
                except DlmsError as exc:
                    m.connection_lost(exc)
                    continue
            if not m.busy:
                break
            now = clock()
            wait = m.next_timeout() - now
            if wait <= 0:
                m.check_timeout(now)
                continue
            try:
                chunk = transport.read(wait)
            except DlmsError as exc:
                m.connection_lost(exc)
                continue
            if chunk:
                m.receive_data(chunk, clock())
        if m.state is SessionState.CLOSED:
            transport.close()
        return m.result()
