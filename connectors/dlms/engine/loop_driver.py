"""``LoopMeterDriver``: drives one TCP meter on the shared ``SelectorLoop``, as a non-blocking
state machine.

The second driver of ``SessionMachine`` (the blocking one is ``BlockingSession``): a non-blocking
socket with a non-blocking connect, the machine's deadlines as loop timers, and the engine's
decisions from its ``MeterPolicy`` (the same as the threaded bus worker's). At most one thing
runs per meter (``op``): opening, associating, a read cycle, a keep-alive, an RPC, a close; the
tick that decides what comes next runs when it ends or when the meter's timer fires.

RPCs (the thread per ``fn``, ``LoopSession``) are run by its ``LoopRpcRunner`` (``loop_rpc``); the
connection (name lookup, non-blocking connect, recv/send, the turn of the meters that share one
host:port) is a ``LoopLine`` of ``loop_socket``. This module decides.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..protocol.errors import (
    DeadlineExceeded,
    DlmsError,
    EngineError,
    EngineStopped,
    NoAnswer,
)
from ..session.machine import CLOCK_REF, SessionMachine, SessionState
from .events import EngineSink
from .health import MeterState
from .loop import SelectorLoop
from .loop_ops import LoopOp
from .loop_rpc import LoopRpcRunner, LoopSession
from .loop_socket import LoopLine, resolve
from .policy import MeterPolicy, broken_by
from .poll_state import MeterPollState
from .spec import TcpSpec

__all__ = ["LoopMeterDriver", "LoopSession", "resolve"]

_INF = float("inf")
_CONNECT_LEAD_S = 1.0  # at most this much ahead of its first poll a meter connects
_READY = SessionState.READY
# The poll's op under a module name, as _READY: a member looked up on its Enum class goes through
# the metaclass (~700 instructions in CPython 3.11), three times a poll cycle.
_READ = LoopOp.READ
_KEEPALIVE_REFS = (CLOCK_REF,)
# The ops that leave the line to the others (see LoopOp.on_wire; a tuple: the setter's hot test).
_OFF_LINE = (None, LoopOp.RPC, LoopOp.WAIT)


class LoopMeterDriver:
    """One TCP meter driven by the selector loop, over its ``LoopLine`` (its own, or one shared
    with the other meters behind the same host:port)."""

    def __init__(
        self, m: MeterPollState, loop: SelectorLoop, machine: SessionMachine, sink: EngineSink, *,
        wall_clock: Callable[[], float], log: logging.Logger, keepalive_check_s: float,
        line: LoopLine | None = None,
    ) -> None:
        spec = m.spec.transport
        assert isinstance(spec, TcpSpec)
        self.poll_state = m
        self.key = spec.channel_key
        self.meters = {m.spec.name: m}
        self.loop = loop
        self.machine = machine
        self._spec = spec
        self.line = line = line if line is not None else LoopLine(spec, loop)
        line.users.append(self)
        self.description = line.description
        self.policy = MeterPolicy(sink, log, keepalive_check_s)
        self._log = log
        self._wall = wall_clock
        self._clock = loop.clock
        self._keepalive_check_s = keepalive_check_s
        self._lead = min(0.5 * m.spec.poll_period_s, _CONNECT_LEAD_S)
        m.session_obj = machine
        self._op: LoopOp | None = None  # what runs now (see LoopOp; on the wire: holds the line)
        self._wake_at = _INF  # the earliest live timer of this meter
        self._read_at = _INF  # a timer at this time starts the poll without a tick
        self._open_deadline = _INF
        self._started = 0.0
        self._wall_ms = 0
        self._requests = 0
        self._after_close: Callable[[float], Any] | None = None
        self.stopping = False
        self.closed = False  # stopped and nothing left open
        self.on_closed: Callable[[], Any] | None = None  # told once, when closed turns True
        self.rpc = LoopRpcRunner(
            self, m, loop, line, machine, key=self.key, description=self.description, log=log)

    @property
    def op(self) -> LoopOp | None:
        return self._op

    @op.setter
    def op(self, kind: LoopOp | None) -> None:
        self._op = kind
        line = self.line
        if kind in _OFF_LINE:
            if line.holder is self:
                line.release(self)
        else:
            line.take(self)

    @property
    def sock(self) -> socket.socket | None:
        return self.line.sock

    def _busy_line(self) -> bool:
        """True (and a turn booked: ``tick`` runs then) when another meter holds the line."""
        holder = self.line.holder
        if holder is None or holder is self:
            return False
        self.line.wait(self._take_turn)
        return True

    def _take_turn(self) -> None:
        self.tick(self._clock())

    def _close_socket(self) -> None:
        self.line.leave(self)

    def opened(self, exc: DlmsError | None) -> None:
        """The TCP connect ended (or the shared line was open already): associate, or book the
        failure."""
        now = self._clock()
        if exc is None:
            self.op = LoopOp.CONNECT
            self.machine.connect(now)
            self.after_io()
            return
        self._close_socket()
        self.op = None
        self.machine.open_failed(exc)
        self._connect_done(exc, now)

    # -- from other threads -----------------------------------------------------------------
    def submit(self, name: str, fn: Callable[[Any], Any], timeout_s: float) -> Future[Any]:
        return self.rpc.submit(fn, timeout_s)

    def reconnect(self, name: str) -> None:
        self.poll_state.reconnect_requested = True
        self.loop.call_soon_threadsafe(self.kick)

    # -- timers -------------------------------------------------------------------------------
    def kick(self) -> None:
        self._arm(self._clock())

    def _arm(self, at: float) -> None:
        # Only an earlier wake needs a new timer: every handler below is right to run early (it
        # finds nothing due and arms again), so one heap push per meter per cycle is the norm.
        if at < self._wake_at:
            self._wake_at = at
            self.loop.call_at(at, self._on_timer)

    def _on_timer(self, when: float) -> None:
        if when != self._wake_at:
            return  # superseded by an earlier arm
        self._wake_at = _INF
        now = self._clock()
        op = self._op
        if op is None:
            if self.line.holder is not None and self._busy_line():
                return
            m = self.poll_state
            if (
                when == self._read_at
                and not m.jobs
                and not m.reconnect_requested
                and not self.stopping
            ):
                # The tick that armed this timer found the poll the first thing due and nothing
                # has come up since (RPCs, reconnects and stops all kick): poll, no second tick.
                self._start(_READ, now)
            else:
                self.tick(now)
        elif op is LoopOp.OPEN:
            if now >= self._open_deadline:
                after = self._spec.connect_timeout_s
                self.line.abandon_open()
                self.opened(NoAnswer(
                    f"{self.description}: connect timed out after {after:g} s"))
            else:
                self._arm(self._open_deadline)
        elif op is not LoopOp.RPC and op is not LoopOp.WAIT:
            m = self.poll_state
            if m.session is not None and m.watchdog.check(now):
                # Checked while an operation runs too: the operation ends now, as a failure.
                self.machine.abort(DeadlineExceeded(self.policy.watchdog_detail(m, now)), now)
            else:
                self.machine.check_timeout(now)
            self.after_io()

    # -- decisions ------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Do what is due (one thing that takes time at most); arm the timer for the next."""
        if self._op is not None or self.closed:
            return
        if self.line.holder is not None and self._busy_line():
            return
        m = self.poll_state
        self._read_at = _INF
        if self.stopping:
            self._shutdown(now)
            return
        if m.reconnect_requested:
            m.reconnect_requested = False
            self.policy.operator_reset(m)
            if m.session is not None:
                self.drop(None, MeterState.DISCONNECTED, "reconnect requested", now)
                return
            m.retry_at = m.reconnect_policy.decide_time(now)
        wake = _INF
        if m.jobs:
            due = self.rpc.start_next(now)
            if self.op is not None:
                return
            if due is not None:
                wake = due
        if now >= m.next_health:
            self.policy.publish_health(m, now)
        wake = min(wake, m.next_health)
        if m.session is not None:
            if m.watchdog.check(now):
                detail = self.policy.watchdog_detail(m, now)
                self.drop(DeadlineExceeded(detail), MeterState.UNREACHABLE, detail, now)
                return
            if now >= m.next_keepalive:
                m.next_keepalive = now + self._keepalive_check_s
                if self.machine.keepalive_due(now):
                    self._start(LoopOp.KEEPALIVE, now)
                    return
            wake = min(wake, m.next_keepalive, m.watchdog.fires_at)
        deadline = m.schedule.next_deadline(now)
        if m.session is None:
            # Associate a little ahead of the poll, so the cycle itself starts on time.
            deadline = max(deadline - self._lead, m.retry_at)
            if deadline <= now:
                self.connect(now)
                return
        elif deadline <= now:
            self._start(_READ, now)
            return
        elif deadline < wake:
            self._read_at = deadline
            self._arm(deadline)
            return
        self._arm(min(wake, deadline))

    # -- connection -----------------------------------------------------------------------------
    def connect(self, now: float) -> None:
        m = self.poll_state
        decision = m.reconnect_policy.decide(now)
        if not decision.allowed:
            self.policy.refused(m, decision, now)
            m.retry_at = now + decision.wait_s
            self.rpc.job_connect = None
            self._arm(m.retry_at)
            return
        self.policy.attempting(m, self.description, now)
        self.op = LoopOp.OPEN
        self._open_deadline = now + self._spec.connect_timeout_s
        if self.line.sock is None:
            self._arm(self._open_deadline)
        self.line.open(self)

    def _connect_done(self, exc: BaseException | None, now: float) -> None:
        m = self.poll_state
        if exc is None:
            m.session = self.machine
            self.policy.associated(m, self.description, now)
        else:
            self._close_socket()
            m.session = None
            m.retry_at = self.policy.connect_failure(m, exc, now)
        self.rpc.connect_ended(exc)
        self.tick(self._clock())

    def drop(
        self, exc: BaseException | None, state: MeterState, detail: str, now: float
    ) -> None:
        """Close the session politely (RLRQ, DISC: bounded), then book its end."""
        m = self.poll_state
        m.session = None
        m.connected = False

        def done(end: float) -> None:
            retry_at = self.policy.session_ended(m, exc, state, detail, end)
            if retry_at is not None:
                m.retry_at = retry_at
            elif detail == "reconnect requested":
                m.retry_at = m.reconnect_policy.decide_time(end)

        self._close(now, done)

    def _close(self, now: float, then: Callable[[float], Any]) -> None:
        self._after_close = then
        if self.line.holder is not None and self.line.holder is not self:
            # Another meter of the line is mid-operation (an RPC failed between our turns).
            self._op = LoopOp.WAIT
            self.line.wait(lambda: self._close(self._clock(), then))
            return
        self.op = LoopOp.CLOSE
        self.machine.close(now, wire=self.sock is not None)
        self.after_io()

    def _shutdown(self, now: float) -> None:
        """Stopping: fail queued RPCs, close the session, report DISCONNECTED, end."""
        m = self.poll_state
        while m.jobs:
            _fn, future, _deadline, _t = m.jobs.pop(0)
            if future.set_running_or_notify_cancel():
                future.set_exception(
                    EngineStopped(f"{m.spec.name}: the polling engine stopped"))

        def done(end: float) -> None:
            self.policy.session_ended(
                m, None, MeterState.DISCONNECTED, "polling engine stopped", end)
            self._close_socket()
            self._now_closed()

        m.session = None
        m.connected = False
        self._close(now, done)

    def stop(self) -> None:
        """On the loop: begin stopping (an operation in flight is abandoned)."""
        self.stopping = True
        op = self.op
        if op is LoopOp.OPEN:
            self.line.abandon_open()
            self.op = None
        elif op is LoopOp.RPC_OP:
            self.rpc.finish_op()
        elif op in (LoopOp.CONNECT, LoopOp.READ, LoopOp.KEEPALIVE):
            self.op = None  # machine.close() abandons it
        if self.op is None:
            self.tick(self._clock())

    def cut(self) -> None:
        """Stop time is up: close the socket whatever the state."""
        self.line.close()
        self._now_closed()

    def _now_closed(self) -> None:
        if not self.closed:
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()

    # -- operations -------------------------------------------------------------------------------
    def _start(self, kind: LoopOp, now: float) -> None:
        m = self.poll_state
        self.op = kind
        try:
            if kind is _READ:
                self._started = now
                self._wall_ms = int(self._wall() * 1000.0)
                self._requests = self.machine.requests
                if not m.refs:
                    self.op = None
                    self._read_done(None, [], now)
                    return
                # The timer for the next poll, armed now: the response deadline (later) then
                # needs none, and the tick that ends this cycle finds it already armed.
                self._arm(m.schedule.following_deadline(now))
                self.machine.read(m.refs, now)
            else:
                self.machine.read(_KEEPALIVE_REFS, now)
        except Exception as exc:  # noqa: BLE001 - e.g. a session broken by a cut line
            self.op = None
            if kind is _READ:
                self._read_done(exc, None, now)
            else:
                self._keepalive_done(exc)
            return
        self.after_io()

    def after_io(self) -> None:
        """Send what the machine produced; when its operation ended, act on it; else wait."""
        machine = self.machine
        out = machine.data_to_send()
        if out:
            self.line.send(out)
        if machine.busy:
            at = machine.next_timeout()
            fires = self.poll_state.watchdog.fires_at  # checked while the operation runs too
            self._arm(fires if fires < at and self.poll_state.session is not None else at)
            return
        op, self.op = self._op, None
        now = self._clock()
        if op is _READ:
            try:
                results = machine.result()
            except Exception as exc:  # noqa: BLE001
                self._read_done(exc, None, now)
            else:
                self._read_done(None, results, now)
        elif op is LoopOp.CONNECT:
            try:
                machine.result()
            except Exception as exc:  # noqa: BLE001
                self._connect_done(exc, now)
            else:
                self._connect_done(None, now)
        elif op is LoopOp.CLOSE:
            machine.result()
            self._close_socket()
            then, self._after_close = self._after_close, None
            if then is not None:
                then(now)
            self.tick(self._clock())
        elif op is LoopOp.KEEPALIVE:
            try:
                machine.result()
            except Exception as exc:  # noqa: BLE001
                self._keepalive_done(exc)
            else:
                self.tick(now)
        elif op is LoopOp.RPC_OP:
            self.op = LoopOp.RPC
            self.rpc.finish_op()
        else:
            self.op = op

    def _read_done(self, exc: BaseException | None, results: Any, end: float) -> None:
        m = self.poll_state
        booking = m.schedule.complete(self._started, end)
        if exc is None and len(results) != len(m.refs):
            exc = EngineError(
                f"session returned {len(results)} results for {len(m.refs)} points")
        if exc is not None:
            sent = self.machine.requests - self._requests
            if self.policy.cycle_failed(m, exc, self._started, end, booking, sent):
                self.drop(exc, MeterState.BACKOFF, f"session lost: {exc}", end)
                return
        else:
            sent = self.machine.requests - self._requests
            self.policy.cycle_done(m, results, self._started, end, sent, self._wall_ms, booking)
        self.tick(end)

    def _keepalive_done(self, exc: BaseException) -> None:
        now = self._clock()
        if broken_by(exc, self.poll_state):
            self.drop(exc, MeterState.BACKOFF, f"keep-alive failed: {exc}", now)
        else:
            self.tick(now)

    on_line_io = after_io  # LineUser: bytes came for the operation, or the line broke
