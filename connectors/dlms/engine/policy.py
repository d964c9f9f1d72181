"""What a driver decides about its meters, whoever drives their I/O.

``MeterPolicy`` holds the decisions and reports shared by the threaded ``ChannelWorker``
(serial buses, blocking sessions) and the selector loop's ``LoopMeterDriver`` (TCP meters,
``SessionMachine``); each driver owns one, given the sink and log it reports to: how a
refused or failed connect is classified and reported, what an association or a lost session does
to the reconnect policy, how a cycle is booked, counted and published, and how the sink is called
(its errors contained). The drivers only decide *when* to call these; no policy is written twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import repeat
from typing import Any

from ..protocol.errors import (
    AuthenticationError,
    DataAccessError,
    DlmsError,
    InvocationCounterRejected,
    NoAnswer,
    ServiceError,
    TransportError,
)
from .events import EngineSink, PointReading
from .health import MeterState
from .poll_state import MeterPollState
from .schedule import CycleBooking

__all__ = ["MAX_READ_TIMEOUTS", "NOT_WAITING", "MeterPolicy", "broken_by"]

# Consecutive read timeouts after which a session counts as dead (one lost reply is not enough:
# reconnecting costs the meter's minimum spacing, often 10 s or more).
MAX_READ_TIMEOUTS = 2
_new_tuple = tuple.__new__
NOT_WAITING = (MeterState.ASSOCIATED, MeterState.CONNECTING, MeterState.DISCONNECTED)


def broken_by(exc: BaseException, meter: MeterPollState) -> bool:
    """Does this failure leave the session unusable?"""
    if isinstance(exc, (DataAccessError, ServiceError)):
        return False  # the meter answered, with a refusal: link and association are fine
    if isinstance(exc, NoAnswer):
        # BlockingSession already retransmitted and marks itself broken; a session without a
        # state gets MAX_READ_TIMEOUTS chances.
        state = getattr(meter.session, "state", None)
        if state is not None:
            return bool(getattr(state, "value", state) != "ready")
        meter.timeouts += 1
        return meter.timeouts >= MAX_READ_TIMEOUTS
    return True


class MeterPolicy:
    """The decisions and reports of one driver, for each ``MeterPollState`` it is handed."""

    __slots__ = ("_keepalive_check_s", "_log", "_sink", "sink_errors")

    def __init__(self, sink: EngineSink, log: logging.Logger, keepalive_check_s: float) -> None:
        self._sink = sink
        self._log = log
        self._keepalive_check_s = keepalive_check_s
        self.sink_errors = 0  # sink calls that raised (contained, logged, counted)

    # -- connection ---------------------------------------------------------------------------
    def refused(self, m: MeterPollState, decision: Any, now: float) -> None:
        """The policy holds the attempt back: keep the last failure's state (unreachable,
        auth-failed) while waiting out its backoff; only a breaker opening or a deliberate close
        says something new."""
        state = MeterState.CIRCUIT_OPEN if decision.reason == "circuit-open" else None
        if state is None and m.health.state in NOT_WAITING:
            state = MeterState.BACKOFF
        if state is not None:
            self.report_state(m, state, f"next attempt in {decision.wait_s:.1f} s", now)

    def attempting(self, m: MeterPollState, line: str, now: float) -> None:
        m.reconnect_policy.attempted(now)
        trial = " (circuit half-open: trial)" if m.reconnect_policy.breaker.state.value == "half-open" else ""
        self.report_state(m, MeterState.CONNECTING, f"connecting over {line}{trial}", now)

    def associated(self, m: MeterPollState, line: str, now: float) -> None:
        m.reconnect_policy.succeeded(now)
        self._breaker_log(m)
        m.timeouts = 0
        m.connected = True
        m.watchdog.feed(now)  # the association is a sign of life: silence counts from here
        m.next_keepalive = now + self._keepalive_check_s
        self.report_state(m, MeterState.ASSOCIATED, f"associated over {line}", now)

    def connect_failure(self, m: MeterPollState, exc: BaseException, now: float) -> float:
        """Book a failed connect (the session is already closed); returns the retry time."""
        if not isinstance(exc, DlmsError):
            self._log.error("%s: unexpected error while connecting", m.spec.name, exc_info=exc)
        policy = m.reconnect_policy
        policy.disconnected(now)
        retry_at = policy.failed(now)
        if isinstance(exc, AuthenticationError):
            # Wrong credentials do not heal by retrying, and some meters lock the client after
            # a few bad passwords: try again only every few minutes.
            retry_at = max(retry_at, now + m.auth_retry_s)
            policy.not_before = max(policy.not_before, retry_at)
            state = (MeterState.COUNTER_REJECTED if isinstance(exc, InvocationCounterRejected)
                     else MeterState.AUTH_FAILED)
        elif policy.breaker.state.value == "open":
            state = MeterState.CIRCUIT_OPEN
        elif isinstance(exc, TransportError):
            state = MeterState.UNREACHABLE
        else:
            state = MeterState.BACKOFF
        self._breaker_log(m)
        detail = f"connect failed: {exc}; next attempt in {retry_at - now:.1f} s"
        self.report_state(m, state, detail, now)
        return retry_at

    def session_ended(
        self, m: MeterPollState, exc: BaseException | None, state: MeterState, detail: str,
        now: float,
    ) -> float | None:
        """Book the end of a session (already closed): ``exc`` set means it failed (backoff;
        returns the retry time), None a deliberate close."""
        m.reconnect_policy.disconnected(now)
        retry_at = None
        if exc is not None:
            retry_at = m.reconnect_policy.failed(now)
            self._breaker_log(m)
            if m.reconnect_policy.breaker.state.value == "open":
                state = MeterState.CIRCUIT_OPEN
            detail = f"{detail}; next attempt in {retry_at - now:.1f} s"
        self.report_state(m, state, detail, now)
        return retry_at

    def operator_reset(self, m: MeterPollState) -> None:
        # An operator asks for a fresh session: forget the backoff, keep the meter's spacing.
        m.reconnect_policy.backoff.reset()
        m.reconnect_policy.not_before = float("-inf")

    def watchdog_detail(self, m: MeterPollState, now: float) -> str:
        detail = f"watchdog: no successful read for {m.watchdog.silent_for(now):.1f} s"
        self._log.warning("%s: %s, reconnecting", m.spec.name, detail)
        return detail

    def _breaker_log(self, m: MeterPollState) -> None:
        for t in m.reconnect_policy.breaker.pop_transitions():
            self._log.info(
                "%s: circuit breaker %s -> %s after %d consecutive failures",
                m.spec.name, t.previous.value, t.state.value, t.consecutive_failures,
            )

    # -- cycles -------------------------------------------------------------------------------
    def cycle_failed(
        self, m: MeterPollState, exc: BaseException, started: float, end: float,
        booking: CycleBooking, sent: int = 1,
    ) -> bool:
        """Book a failed cycle of ``sent`` requests (the last one failed); True when the
        session must be dropped."""
        m.health.record_read(False, end - started, 0, end, sent)
        m.health.record_cycle(booking.on_time, booking.missed)
        if not isinstance(exc, DlmsError):
            self._log.error("%s: unexpected error while reading", m.spec.name, exc_info=exc)
        else:
            self._log.warning("%s: read failed: %s", m.spec.name, exc)
        return broken_by(exc, m)

    def cycle_done(
        self, m: MeterPollState, results: Sequence[Any], started: float, end: float, sent: int,
        wall_ms: int, booking: CycleBooking,
    ) -> None:
        m.timeouts = 0
        errors = 0
        for r in results:
            if isinstance(r, DlmsError):
                errors += 1
        health = m.health
        health.record_read(True, end - started, len(results) - errors, end, sent)
        health.record_cycle(booking.on_time, booking.missed)
        m.watchdog.feed(end)
        m.next_keepalive = end + self._keepalive_check_s
        if results:
            # tuple.__new__ straight from C: PointReading's own __new__ is a Python function.
            readings = list(map(_new_tuple, repeat(PointReading), zip(m.points, results)))
            try:
                self._sink.on_readings(m.spec, readings, wall_ms)
                health.record_published()
            except Exception:  # noqa: BLE001 - a sink bug must not stop polling
                self.sink_errors += 1
                self._log.exception("%s: sink.on_readings failed", m.spec.name)

    # -- reporting ------------------------------------------------------------------------------
    def report_state(
        self, m: MeterPollState, state: MeterState, detail: str, now: float
    ) -> None:
        changed = m.health.record_state(state, now)
        m.detail = detail
        if not changed:
            self._log.debug("%s: still %s: %s", m.spec.name, state.value, detail)
            return
        level = logging.INFO if state in NOT_WAITING else logging.WARNING
        self._log.log(level, "%s: %s: %s", m.spec.name, state.value, detail)
        try:
            self._sink.on_state(m.spec, state, detail)
        except Exception:  # noqa: BLE001
            self.sink_errors += 1
            self._log.exception("%s: sink.on_state failed", m.spec.name)

    def publish_health(self, m: MeterPollState, now: float) -> None:
        period = m.spec.health_period_s
        while m.next_health <= now:  # a missed publication is skipped, not bunched
            m.next_health += period
        try:
            self._sink.on_health(m.spec, m.health.snapshot())
        except Exception:  # noqa: BLE001
            self.sink_errors += 1
            self._log.exception("%s: sink.on_health failed", m.spec.name)
