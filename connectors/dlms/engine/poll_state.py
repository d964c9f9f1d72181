"""``MeterPollState``: the polling state of one meter, whichever driver polls it: its reconnect
policy, schedule, watchdog, health, session and queued RPCs.

Built by the engine from a ``MeterSpec``; touched only by the thread that drives its channel (the
``ChannelWorker`` or the selector loop; ``jobs`` and ``reconnect_requested`` are the two fields
other threads write, both safe: a list append and a bool store).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..protocol.errors import RequestNotStarted, TransportError
from ..session.reading import Ref
from .health import MeterHealth
from .recovery import (
    Backoff,
    CircuitBreaker,
    ConnectGate,
    RandomSource,
    ReconnectPolicy,
    Watchdog,
)
from .schedule import PollSchedule
from .spec import MeterSpec

__all__ = ["CONNECT", "MeterPollState"]

# take_job()'s answer when the front request needs an association first: the caller connects and
# asks again; the request stays queued meanwhile.
CONNECT = "connect"


# Meters polling the same points (shared by the config loader) share one tuple of refs.
_REFS: dict[tuple[Any, ...], tuple[Ref, ...]] = {}


def _refs_of(points: Sequence[Any]) -> tuple[Ref, ...]:
    key = tuple(p.ref for p in points)
    try:
        refs = _REFS.get(key)
    except TypeError:  # an unhashable selective access: this meter's own tuple
        return tuple(Ref(r.class_id, r.obis, r.attribute, r.access) for r in key)
    if refs is None:
        if len(_REFS) >= 4096:
            _REFS.clear()
        refs = _REFS[key] = tuple(
            Ref(r.class_id, r.obis, r.attribute, r.access) for r in key)
    return refs


class MeterPollState:
    """The polling state of one meter of a channel."""

    __slots__ = (
        "auth_retry_s",
        "connected",
        "detail",
        "health",
        "jobs",
        "next_health",
        "next_keepalive",
        "points",
        "reconnect_policy",
        "reconnect_requested",
        "refs",
        "retry_at",
        "schedule",
        "session",
        "session_obj",
        "spec",
        "timeouts",
        "watchdog",
    )

    def __init__(
        self,
        spec: MeterSpec,
        start: float,
        phase_s: float,
        *,
        wall_clock: Callable[[], float] | None = None,
        rng: RandomSource | None = None,
    ) -> None:
        r = spec.recovery
        self.spec = spec
        self.points = spec.points
        # Built once in the session's own reference type: every cycle hands the same tuple over
        # (BlockingSession caches its request plan per tuple of refs).
        self.refs = _refs_of(spec.points)
        self.reconnect_policy = ReconnectPolicy(
            ConnectGate(r.min_connect_spacing_s),
            Backoff(r.backoff_initial_s, r.backoff_max_s, rng=rng),
            CircuitBreaker(r.breaker_threshold, r.breaker_open_s),
        )
        self.schedule = PollSchedule(spec.poll_period_s, start, phase_s)
        # A meter that never answers expires too: the watchdog is armed from the start.
        # By default three poll periods, but never under 30 s: a short watchdog turns a busy
        # moment of the gateway into a storm of reconnects that makes it busier still.
        silence = r.watchdog_s if r.watchdog_s > 0 else max(30.0, 3.0 * spec.poll_period_s)
        self.watchdog = Watchdog(silence, start=start)
        self.health = MeterHealth(wall_clock=wall_clock)
        self.auth_retry_s = max(r.breaker_open_s, r.backoff_max_s)
        self.session: Any = None  # the associated session, None while not associated
        self.session_obj: Any = None  # the meter's one session object, built on first connect
        self.connected = False
        self.timeouts = 0  # consecutive read timeouts on the current session
        self.retry_at = start  # when a blocked meter may try to connect again
        # Health is spread over its own period (phase_s spreads the polls over the poll period),
        # so 1,000 meters do not all publish their health in the same second.
        spread = phase_s / spec.poll_period_s if spec.poll_period_s > 0 else 0.0
        self.next_health = start + spec.health_period_s * (1.0 + spread)
        self.next_keepalive = float("inf")
        self.jobs: list[Any] = []  # (fn, future, deadline, timeout_s); a list: mostly empty
        self.reconnect_requested = False
        self.detail = "not started"

    def postpone(self, delta: float) -> None:
        """Start ``delta`` s later than built (a meter held until its device is registered):
        the first poll keeps its phase, the watchdog and the health period count from then."""
        self.schedule.origin += delta
        if self.watchdog.last_fed is not None:
            self.watchdog.feed(self.watchdog.last_fed + delta)
        self.next_health += delta
        self.retry_at += delta

    def state_dict(self) -> dict[str, Any]:
        """What ``PollingEngine.states()`` shows for this meter (read from another thread)."""
        return {
            "state": self.health.state.value,
            "detail": self.detail,
            "connected": self.connected,
            "consecutive_failures": self.reconnect_policy.breaker.consecutive_failures,
            "breaker": self.reconnect_policy.breaker.state.value,
            "pending_requests": len(self.jobs),
        }

    def take_job(self, now: float) -> Any:
        """Triage the front of the RPC queue, the same way for every kind of worker.

        Cancelled requests are dropped and expired ones failed. Returns ``(fn, future)`` with the
        future set running (the caller runs ``fn`` on the session), ``CONNECT`` when the front
        request needs an association first, a time (float) when it must wait for the reconnect
        policy, or None when the queue is empty."""
        jobs = self.jobs
        name = self.spec.name
        while jobs:
            fn, future, deadline, timeout_s = jobs[0]
            if future.cancelled():
                jobs.pop(0)
                continue
            if now > deadline:
                jobs.pop(0)
                if future.set_running_or_notify_cancel():
                    future.set_exception(
                        RequestNotStarted(f"{name}: request not started within {timeout_s} s"))
                continue
            if self.session is None:
                decision = self.reconnect_policy.decide(now)
                if decision.allowed:
                    return CONNECT
                if now + decision.wait_s <= deadline:
                    return now + decision.wait_s  # connect when allowed, then run it
                jobs.pop(0)
                if future.set_running_or_notify_cancel():
                    future.set_exception(TransportError(
                        f"{name}: not connected ({self.health.state.value}: {self.detail});"
                        f" next connection attempt in {decision.wait_s:.1f} s, after the"
                        f" request's {timeout_s} s timeout"))
                continue
            jobs.pop(0)
            if future.set_running_or_notify_cancel():
                return fn, future
        return None

    def fail_front_job(self, exc: BaseException) -> None:
        """The front request cannot run (its connection attempt failed): fail it."""
        if self.jobs:
            _fn, future, _deadline, _timeout = self.jobs.pop(0)
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
