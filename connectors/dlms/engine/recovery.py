"""Reconnect policy: backoff with jitter, minimum spacing, circuit breaker, silence watchdog.

Each piece is a small pure object; time comes in as ``now`` (monotonic seconds) and randomness
from an injected source with a ``random()`` method (``JitterSource`` per meter: a
``random.Random`` holds 2.5 KB of state, 25 MB for 10,000 meters, to draw one number a
failure). ``ReconnectPolicy`` combines them and is the one place that answers "may I try to
connect now, and if not, when?"

- ``Backoff``: the delay after each failed attempt grows geometrically up to a cap, with
  proportional jitter (+/- ``jitter``) so 1,000 meters behind one dead router do not retry in step.
- ``ConnectGate``: a minimum spacing between connection attempts (the Microstar meter of the
  original system refuses a new connection sooner than 10-15 s after the previous one).
- ``CircuitBreaker``: closed -> open after N consecutive failures; open -> half-open after
  ``open_s``; half-open -> closed on success, back to open on failure. Transitions are queued as
  ``BreakerTransition`` events for the connector to publish.
- ``Watchdog``: no successful read for ``silence_s`` means the session is dead even when the
  socket looks alive.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ..protocol.errors import ConfigError

__all__ = [
    "Backoff",
    "JitterSource",
    "RandomSource",
    "BreakerState",
    "BreakerTransition",
    "CircuitBreaker",
    "ConnectDecision",
    "ConnectGate",
    "ReconnectPolicy",
    "Watchdog",
]

_INF = float("inf")


def _check(name: str, value: float, low: float, low_ok: bool = True) -> float:
    value = float(value)
    if not math.isfinite(value) or value < low or (value == low and not low_ok):
        raise ConfigError(f"{name} must be {'>=' if low_ok else '>'} {low}, got {value!r}")
    return value


_MASK64 = (1 << 64) - 1


class RandomSource(Protocol):
    def random(self) -> float: ...


class JitterSource:
    """A small random stream (splitmix64): uniform floats in [0, 1) for back-off jitter."""

    __slots__ = ("_state",)

    def __init__(self, seed: int | None = None) -> None:
        self._state = (random.getrandbits(64) if seed is None else seed) & _MASK64

    def random(self) -> float:
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))


class Backoff:
    """Geometric backoff: initial, initial*m, initial*m^2, ... capped at ``maximum_s``, jittered.

    Every delay lies in ``[base*(1-jitter), base*(1+jitter)]`` where ``base`` never exceeds
    ``maximum_s``; without jitter the delays are non-decreasing.
    """

    __slots__ = ("_base", "_rng", "attempts", "initial", "jitter", "maximum", "multiplier")

    def __init__(
        self,
        initial_s: float = 1.0,
        maximum_s: float = 300.0,
        multiplier: float = 2.0,
        jitter: float = 0.2,
        rng: RandomSource | None = None,
    ) -> None:
        self.initial = _check("initial_s", initial_s, 0.0, low_ok=False)
        self.maximum = _check("maximum_s", maximum_s, self.initial)
        self.multiplier = _check("multiplier", multiplier, 1.0)
        self.jitter = _check("jitter", jitter, 0.0)
        if self.jitter >= 1.0:  # a jitter of 100 % could yield a zero delay: a retry storm
            raise ConfigError(f"jitter must be below 1.0, got {self.jitter!r}")
        self._rng = rng if rng is not None else JitterSource()
        self._base = self.initial
        self.attempts = 0  # delays handed out since the last reset

    def next_delay(self) -> float:
        """Delay before the next attempt; each call advances the sequence."""
        base = self._base
        # The base is kept capped, so it never overflows however long a meter stays down.
        self._base = min(self.maximum, base * self.multiplier)
        self.attempts += 1
        if not self.jitter:
            return base
        return base * (1.0 + self.jitter * (2.0 * self._rng.random() - 1.0))

    def reset(self) -> None:
        """Back to the initial delay (after a successful connection)."""
        self._base = self.initial
        self.attempts = 0


class ConnectGate:
    """Minimum spacing between connection attempts (and after a connection closes)."""

    __slots__ = ("_last", "min_spacing")

    def __init__(self, min_spacing_s: float) -> None:
        self.min_spacing = _check("min_spacing_s", min_spacing_s, 0.0)
        self._last: float | None = None

    @property
    def last(self) -> float | None:
        return self._last

    def earliest(self) -> float:
        """Earliest time the next attempt may start (-inf before the first attempt)."""
        return -math.inf if self._last is None else self._last + self.min_spacing

    def ready(self, now: float) -> bool:
        return now >= self.earliest()

    def wait_time(self, now: float) -> float:
        return max(0.0, self.earliest() - now)

    def attempted(self, now: float) -> None:
        """A connection attempt starts at ``now``."""
        self._last = now

    def closed(self, now: float) -> None:
        """A connection ended at ``now``: some meters also need the spacing after a close."""
        if self._last is None or now > self._last:
            self._last = now


class BreakerState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class BreakerTransition:
    """The breaker moved from ``previous`` to ``state`` at ``at``."""

    previous: BreakerState
    state: BreakerState
    at: float
    consecutive_failures: int


class CircuitBreaker:
    """Stops hammering a meter that keeps failing; lets one trial through every ``open_s``.

    One worker owns each meter, so there is no concurrent caller: in half-open ``allow`` keeps
    answering True until the trial is recorded with ``record_success`` or ``record_failure``.
    Transitions queue up (the newest ``max_events``) until ``pop_transitions`` drains them.
    """

    def __init__(self, failure_threshold: int = 5, open_s: float = 60.0, max_events: int = 32):
        if failure_threshold < 1:
            raise ConfigError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        self.failure_threshold = int(failure_threshold)
        self.open_s = _check("open_s", open_s, 0.0)
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self._events: list[BreakerTransition] = []  # the newest max_events
        self._max_events = max_events

    def _move(self, state: BreakerState, now: float) -> None:
        self._events.append(BreakerTransition(self.state, state, now, self.consecutive_failures))
        if len(self._events) > self._max_events:
            del self._events[0]
        self.state = state
        self.opened_at = now if state is BreakerState.OPEN else None

    def retry_at(self) -> float | None:
        """When an open breaker lets the next trial through (None unless open)."""
        return None if self.opened_at is None else self.opened_at + self.open_s

    def allow(self, now: float) -> bool:
        """May the caller try now? Moves open -> half-open once ``open_s`` has passed."""
        if self.state is BreakerState.OPEN:
            if self.opened_at is not None and now < self.opened_at + self.open_s:
                return False
            self._move(BreakerState.HALF_OPEN, now)
        return True

    def record_success(self, now: float) -> None:
        self.consecutive_failures = 0
        if self.state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED, now)

    def record_failure(self, now: float) -> None:
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED
            and self.consecutive_failures >= self.failure_threshold
        ):
            self._move(BreakerState.OPEN, now)

    def pop_transitions(self) -> list[BreakerTransition]:
        """The transitions since the last call, oldest first."""
        events = list(self._events)
        self._events.clear()
        return events


class Watchdog:
    """Expires when no successful read was fed for ``silence_s``.

    It is armed by ``start`` or by the first ``feed``; unarmed it never expires (the engine
    arms it when the worker starts, so a meter that never answers does expire).
    """

    __slots__ = ("fires_at", "last_fed", "silence")

    def __init__(self, silence_s: float, start: float | None = None) -> None:
        self.silence = _check("silence_s", silence_s, 0.0, low_ok=False)
        self.last_fed = start
        # When ``check`` will next return True (inf: unarmed, or fired since the last feed). A
        # plain value, not computed: the loop reads it on every cycle and every wait of an
        # operation, and the timer it arms and ``check`` compare the very same number.
        self.fires_at = _INF if start is None else start + self.silence

    def feed(self, now: float) -> None:
        """A successful read at ``now``."""
        self.last_fed = now
        self.fires_at = now + self.silence

    def silent_for(self, now: float) -> float:
        return 0.0 if self.last_fed is None else max(0.0, now - self.last_fed)

    def expired(self, now: float) -> bool:
        return self.last_fed is not None and now >= self.last_fed + self.silence  # as fires_at

    def check(self, now: float) -> bool:
        """True exactly once per silence: when it first expires after the last feed (alarms)."""
        if now < self.fires_at:
            return False
        self.fires_at = _INF
        return True


@dataclass(frozen=True)
class ConnectDecision:
    """Answer of ``ReconnectPolicy.decide``."""

    allowed: bool
    wait_s: float  # 0.0 when allowed
    reason: str  # "ready", "spacing", "backoff" or "circuit-open": what holds the attempt back

    @property
    def state(self) -> str:
        """The meter state to report while waiting (see ``health.MeterState``)."""
        return {"ready": "connecting", "spacing": "backoff"}.get(self.reason, self.reason)


class ReconnectPolicy:
    """One place for the connect decision: minimum spacing, backoff and circuit breaker.

    Engine protocol::

        d = policy.decide(now)         # not allowed: wait d.wait_s, report d.state
        policy.attempted(now)          # just before connecting
        policy.succeeded(now)          # association established
        policy.failed(now)             # connect / association failed, or the session died
        policy.disconnected(now)       # connection closed (spacing counts from here too)
    """

    def __init__(
        self,
        gate: ConnectGate | None = None,
        backoff: Backoff | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.gate = gate if gate is not None else ConnectGate(0.0)
        self.backoff = backoff if backoff is not None else Backoff()
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self.not_before = -math.inf  # end of the current backoff delay

    def decide(self, now: float) -> ConnectDecision:
        # Ties favour the more serious reason: a breaker opening also starts a backoff.
        wait, reason = 0.0, "ready"
        spacing = self.gate.wait_time(now)
        if spacing > wait:
            wait, reason = spacing, "spacing"
        backoff = self.not_before - now
        if backoff > 0.0 and backoff >= wait:
            wait, reason = backoff, "backoff"
        if not self.breaker.allow(now):
            retry_at = self.breaker.retry_at()  # never None while the breaker refuses
            if retry_at is not None and retry_at - now >= wait:
                wait, reason = retry_at - now, "circuit-open"
        return ConnectDecision(reason == "ready", wait, reason)

    def attempted(self, now: float) -> None:
        self.gate.attempted(now)

    def succeeded(self, now: float) -> None:
        self.backoff.reset()
        self.not_before = -math.inf
        self.breaker.record_success(now)

    def failed(self, now: float) -> float:
        """Book a failure; returns the earliest time of the next attempt."""
        self.breaker.record_failure(now)
        self.not_before = now + self.backoff.next_delay()
        return self.decide_time(now)

    def disconnected(self, now: float) -> None:
        self.gate.closed(now)

    def decide_time(self, now: float) -> float:
        """Earliest time an attempt may start, as seen from ``now``."""
        return now + self.decide(now).wait_s
