"""One channel's worker: the thread that owns one line (a TCP meter, or every meter of one bus).

A channel is one transport. A TCP meter has a channel of its own; the meters of one serial bus
(or behind one serial-to-Ethernet converter) share one, each with its own session (its own HDLC
server address) over the shared line, polled in turn by a ``BusSchedule``. Only this thread
touches the line, so RPCs (``submit``) are queued here and run between cycles.

The loop is ``step()`` (one decision: connect, poll, run an RPC, publish health, or nothing)
and an ``Event`` wait for the time ``step`` returns. ``step`` reads the injected clock and never
sleeps, so tests drive it with a fake clock and a fake session; ``submit``, ``reconnect`` and
``stop`` set the event, so the worker answers them at once instead of after a sleep.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from ..protocol.errors import (
    DeadlineExceeded,
    DlmsError,
    EngineError,
    EngineStopped,
    TransportError,
)
from .events import EngineSink
from .health import MeterState
from .policy import MeterPolicy
from .policy import broken_by as _broken_by
from .poll_state import CONNECT, MeterPollState
from .schedule import BusSchedule
from .spec import MeterSpec, ObjectRef

__all__ = ["ChannelWorker", "SessionFactory", "SessionLike"]

# Longest a worker waits without looking at its clock (bounds the effect of a clock step).
_MAX_WAIT_S = 5.0


class SessionLike(Protocol):
    """What the worker needs of ``tb_dlms.session.BlockingSession``."""

    def connect(self) -> Any: ...

    def read(self, refs: Sequence[ObjectRef]) -> list[Any]: ...

    def keepalive_if_due(self) -> Any: ...

    def close(self) -> Any: ...


SessionFactory = Callable[[MeterSpec, Any], SessionLike]  # (spec, transport) -> session


class SharedLine:
    """One meter's view of a line shared by several meters: the meter's session may open it
    (once) and must not close it when the meter's association ends; the worker owns the close."""

    def __init__(self, line: Any) -> None:
        self._line = line
        self.description = getattr(line, "description", "shared line")
        self.write = line.write
        self.read = line.read
        self.discard_input = line.discard_input

    @property
    def is_open(self) -> bool:
        return bool(self._line.is_open)

    def open(self) -> None:
        if not self._line.is_open:
            self._line.open()

    def close(self) -> None:
        pass


class ChannelWorker:
    """The meters of one channel and the thread that polls them (a ``ChannelDriver``)."""

    def __init__(
        self,
        key: str,
        meters: Sequence[MeterPollState],
        transport: Any,
        session_factory: SessionFactory,
        sink: EngineSink,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        log: logging.Logger,
        keepalive_check_s: float = 5.0,
    ) -> None:
        if not meters:
            raise EngineError(f"channel {key} has no meter")
        self.key = key
        self.meters = {m.spec.name: m for m in meters}
        self.transport = transport
        self._session_factory = session_factory
        self.policy = MeterPolicy(sink, log, keepalive_check_s)
        self._clock = clock
        self._wall_clock = wall_clock
        self._log = log
        self._keepalive_check_s = keepalive_check_s
        self._bus: BusSchedule[str] = BusSchedule()
        for m in meters:
            self._bus.add(m.spec.name, m.schedule)
        self._blocked: dict[str, MeterPollState] = {}  # off the bus until their connect time
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- called from other threads ------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"dlms {self.key}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def join(self, timeout: float) -> bool:
        """Wait for the thread; True when it has ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def abort_line(self) -> None:
        """Unblock a thread stuck in a read by closing the line under it (transports allow it)."""
        try:
            self.transport.close()
        except Exception:  # noqa: BLE001 - close() never raises by contract; be sure anyway
            self._log.exception("%s: closing the line failed", self.key)

    def submit(self, name: str, fn: Callable[[Any], Any], timeout_s: float) -> Future[Any]:
        future: Future[Any] = Future()
        if self._stopping:
            future.set_exception(EngineStopped(f"{name}: the polling engine is stopped"))
            return future
        self.meters[name].jobs.append((fn, future, self._clock() + timeout_s, timeout_s))
        self._wake.set()
        return future

    def reconnect(self, name: str) -> None:
        self.meters[name].reconnect_requested = True
        self._wake.set()

    # -- the thread -------------------------------------------------------------------------
    def run(self) -> None:
        wake = self._wake
        try:
            while not self._stopping:
                wake.clear()
                try:
                    delay = self.step()
                except Exception:  # noqa: BLE001 - a bug must not end polling of this line
                    self._log.exception("%s: worker step failed", self.key)
                    delay = 1.0
                if delay > 0.0 and not self._stopping:
                    wake.wait(min(_MAX_WAIT_S, delay))
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Close every session (release, disconnect: best effort) and the line."""
        for m in self.meters.values():
            while m.jobs:
                _fn, future, _deadline, _t = m.jobs.pop(0)
                if future.set_running_or_notify_cancel():
                    future.set_exception(
                        EngineStopped(f"{m.spec.name}: the polling engine stopped")
                    )
            self._drop(m, None, MeterState.DISCONNECTED, "polling engine stopped")
        self.abort_line()

    # -- one decision -------------------------------------------------------------------------
    def step(self) -> float:
        """Do what is due now; return the seconds until something is due again."""
        now = self._clock()
        wake_at = now + _MAX_WAIT_S
        for m in self.meters.values():
            if m.reconnect_requested:
                m.reconnect_requested = False
                self._operator_reconnect(m, now)
            if m.jobs:
                due = self._run_jobs(m, now)
                if due is not None and due < wake_at:
                    wake_at = due
                now = self._clock()
            if now >= m.next_health:
                self.policy.publish_health(m, now)
            wake_at = min(wake_at, m.next_health)
            if m.session is not None:
                if m.watchdog.check(now):
                    self._watchdog_expired(m, now)
                elif now >= m.next_keepalive:
                    self._keepalive(m, now)
                if m.session is not None and m.next_keepalive < wake_at:
                    wake_at = m.next_keepalive
        for name, m in list(self._blocked.items()):
            if now >= m.retry_at:
                del self._blocked[name]
                self._bus.add(name, m.schedule)
            elif m.retry_at < wake_at:
                wake_at = m.retry_at
        pick = self._bus.next(now)
        if pick is not None:
            name, deadline = pick
            if deadline > now:
                return min(deadline, wake_at) - now
            m = self.meters[name]
            if m.session is None and not self._connect(m, now):
                return 0.0  # look again: another meter of the bus may be due
            self._cycle(m, self._clock())
            return 0.0
        return max(0.0, wake_at - now)

    # -- connection ---------------------------------------------------------------------------
    def _connect(self, m: MeterPollState, now: float) -> bool:
        """Connect ``m`` if its policy allows it now; False leaves it blocked until it may."""
        policy = m.reconnect_policy
        decision = policy.decide(now)
        if not decision.allowed:
            self.policy.refused(m, decision, now)
            self._block(m, now + decision.wait_s)
            return False
        self.policy.attempting(m, self._line(), now)
        try:
            if not self.transport.is_open:
                self.transport.open()
            session = m.session_obj
            if session is None:
                # One session object per meter for the engine's life: what it learnt (with-list
                # refused, say) survives reconnects. On a shared line it gets a view it cannot
                # close.
                line = self.transport if len(self.meters) == 1 else SharedLine(self.transport)
                session = m.session_obj = self._session_factory(m.spec, line)
            session.connect()
        except Exception as exc:  # noqa: BLE001 - every failure is classified and reported
            self._connect_failed(m, exc, self._clock())
            return False
        m.session = session
        self.policy.associated(m, self._line(), self._clock())
        return True

    def _connect_failed(self, m: MeterPollState, exc: BaseException, now: float) -> None:
        m.session = m.session_obj  # whatever half-open state it is in, close it
        self._close_session(m)
        self._block(m, self.policy.connect_failure(m, exc, now))

    def _block(self, m: MeterPollState, retry_at: float) -> None:
        name = m.spec.name
        m.retry_at = retry_at
        if name in self._bus:
            self._bus.remove(name)
            self._blocked[name] = m

    def _line(self) -> str:
        return str(getattr(self.transport, "description", self.key))

    def _close_session(self, m: MeterPollState) -> None:
        session = m.session
        m.connected = False
        if session is None:
            return
        m.session = None
        try:
            session.close()  # RLRQ / DISC, best effort, bounded by the session's timeouts
        except Exception as exc:  # noqa: BLE001 - a dead line cannot be closed politely
            self._log.debug("%s: close: %s", m.spec.name, exc)
        if len(self.meters) == 1:
            self.abort_line()  # BlockingSession closes its transport itself; other sessions may not

    def _drop(
        self, m: MeterPollState, exc: BaseException | None, state: MeterState, detail: str
    ) -> None:
        """End ``m``'s session; ``exc`` set means it failed (backoff), None a deliberate close."""
        self._close_session(m)
        retry_at = self.policy.session_ended(m, exc, state, detail, self._clock())
        if retry_at is not None:
            self._block(m, retry_at)
        if exc is not None and not self.transport.is_open and len(self.meters) > 1:
            # The shared line itself broke: every session on it is gone.
            for other in self.meters.values():
                if other is not m and other.session is not None:
                    self._drop(other, None, MeterState.BACKOFF, f"line lost: {exc}")

    def _operator_reconnect(self, m: MeterPollState, now: float) -> None:
        self.policy.operator_reset(m)
        if m.session is not None:
            self._drop(m, None, MeterState.DISCONNECTED, "reconnect requested")
        self._block(m, m.reconnect_policy.decide_time(now))

    def _watchdog_expired(self, m: MeterPollState, now: float) -> None:
        detail = self.policy.watchdog_detail(m, now)
        self._drop(m, DeadlineExceeded(detail), MeterState.UNREACHABLE, detail)

    def _keepalive(self, m: MeterPollState, now: float) -> None:
        m.next_keepalive = now + self._keepalive_check_s
        try:
            m.session.keepalive_if_due()
        except Exception as exc:  # noqa: BLE001
            if _broken_by(exc, m):
                self._drop(m, exc, MeterState.BACKOFF, f"keep-alive failed: {exc}")

    # -- polling ------------------------------------------------------------------------------
    def _cycle(self, m: MeterPollState, started: float) -> None:
        wall_ms = int(self._wall_clock() * 1000.0)
        session = m.session
        requests = getattr(session, "requests", None)
        try:
            results = session.read(m.refs) if m.refs else []
            if len(results) != len(m.refs):
                raise EngineError(
                    f"session returned {len(results)} results for {len(m.refs)} points"
                )
        except Exception as exc:  # noqa: BLE001 - classified below, never kills the worker
            end = self._clock()
            booking = self._bus.complete(m.spec.name, started, end)
            sent = 1 if requests is None else session.requests - requests
            if self.policy.cycle_failed(m, exc, started, end, booking, sent):
                self._drop(m, exc, MeterState.BACKOFF, f"session lost: {exc}")
            return
        end = self._clock()
        sent = 1 if requests is None else session.requests - requests
        booking = self._bus.complete(m.spec.name, started, end)
        self.policy.cycle_done(m, results, started, end, sent, wall_ms, booking)

    # -- RPCs ----------------------------------------------------------------------------------
    def _run_jobs(self, m: MeterPollState, now: float) -> float | None:
        """Run the queued RPCs of ``m``; returns when to look again if one must wait."""
        while True:
            job = m.take_job(now)
            if job is None or isinstance(job, float):
                return job
            if job == CONNECT:
                if self._connect(m, now):
                    self._unblock(m)
                else:
                    m.fail_front_job(TransportError(f"{m.spec.name}: not connected: {m.detail}"))
                    now = self._clock()
                continue
            self._run_job(m, *job)
            now = self._clock()

    def _unblock(self, m: MeterPollState) -> None:
        name = m.spec.name
        if self._blocked.pop(name, None) is not None:
            self._bus.add(name, m.schedule)

    def _run_job(self, m: MeterPollState, fn: Callable[[Any], Any], future: Future[Any]) -> None:
        try:
            result = fn(m.session)
        except BaseException as exc:  # noqa: BLE001 - the caller gets it through the future
            future.set_exception(exc)
            if isinstance(exc, DlmsError) and _broken_by(exc, m):
                self._drop(m, exc, MeterState.BACKOFF, f"session lost during a request: {exc}")
            elif not isinstance(exc, DlmsError):
                self._log.warning("%s: request function raised %r", m.spec.name, exc)
            return
        m.timeouts = 0
        future.set_result(result)
