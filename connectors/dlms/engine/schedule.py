"""Poll scheduling without drift, with the clock injected.

A ``PollSchedule`` owns the deadlines of one meter: ``origin + k * period`` with
``origin = start + phase``. Deadlines are computed from the slot index, never by adding the
period to the previous start, so read times (and float rounding) cannot make a meter drift.

A cycle that overruns past later slots does not make the engine bunch them up afterwards: the
passed slots are skipped and counted in ``missed``. One exception keeps a slight overrun from
halving the poll rate: when the latest passed slot is still within the tolerance, it is run at
once (and counts as on time).

``stagger`` spreads the phases of many meters over the period. ``BusSchedule`` composes the
schedules of the meters sharing one serial line: earliest deadline first while the line keeps
up, least recently served first (a fair round robin) among the meters that are already late.

Typical worker loop (the engine adds the I/O and the sleeping)::

    deadline = schedule.next_deadline(clock())
    sleep(max(0.0, deadline - clock()))
    started = clock()
    ...read the meter...
    booking = schedule.complete(started, clock())
    health.record_cycle(booking.on_time, booking.missed)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from typing import Generic, NamedTuple, TypeVar

from ..protocol.errors import ConfigError, EngineError

__all__ = ["BusSchedule", "CycleBooking", "PollSchedule", "stagger"]

# Slack, in slot units, so that a time computed as exactly a deadline is never taken for the
# instant before it because of float rounding (1e-9 of a period: far below any clock resolution).
_SLOT_EPS = 1e-9


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return value


class CycleBooking(NamedTuple):
    """What ``PollSchedule.complete`` made of one cycle (a NamedTuple: one per cycle)."""

    slot: int  # index of the slot this cycle served
    deadline: float  # deadline of that slot
    lateness: float  # started_at - deadline (negative when started early)
    on_time: bool  # |lateness| within the tolerance
    missed: int  # slots skipped because of this cycle (before its start and during its run)
    next_deadline: float  # deadline of the next slot to run


class PollSchedule:
    """Deadlines ``start + phase_s + k * period_s`` for one meter; books cycles against them."""

    __slots__ = ("_next", "cycles", "missed", "on_time", "origin", "period", "tolerance")

    def __init__(
        self,
        period_s: float,
        start: float,
        phase_s: float = 0.0,
        tolerance_s: float | None = None,
    ) -> None:
        period = _finite("period_s", period_s)
        if period <= 0.0:
            raise ConfigError(f"period_s must be positive, got {period!r}")
        phase = _finite("phase_s", phase_s)
        if phase < 0.0:
            raise ConfigError(f"phase_s must not be negative, got {phase!r}")
        tolerance = 0.1 * period if tolerance_s is None else _finite("tolerance_s", tolerance_s)
        # A tolerance of a whole period would make every slot "on time" and two slots run at once.
        if not 0.0 <= tolerance < period:
            raise ConfigError(f"tolerance_s must be in [0, period_s), got {tolerance!r}")
        self.period = period
        self.origin = _finite("start", start) + phase
        self.tolerance = tolerance
        self._next = 0  # index of the pending slot
        self.cycles = 0
        self.on_time = 0
        self.missed = 0

    def deadline(self, slot: int) -> float:
        """Deadline of slot ``slot``: a product, not a running sum, so no drift accumulates."""
        return self.origin + slot * self.period

    @property
    def next_slot(self) -> int:
        """Index of the pending slot: every slot before it was served or counted as missed."""
        return self._next

    def _slot_at(self, t: float) -> int:
        """Index of the latest slot whose deadline is at or before ``t`` (-1 before the origin)."""
        return math.floor((t - self.origin) / self.period + _SLOT_EPS)

    def next_deadline(self, now: float) -> float:
        """Deadline of the next cycle to run; at or before ``now`` means "run at once".

        If several slots passed since the pending one (the worker was busy or disconnected), this
        is the latest of them: one cycle runs now, the older slots will be counted as missed.
        """
        return self.deadline(max(self._next, self._slot_at(now)))

    def following_deadline(self, now: float) -> float:
        """Deadline of the slot after the one ``next_deadline(now)`` gives: where the next cycle
        goes once a cycle started at ``now`` ends in time."""
        return self.deadline(max(self._next, self._slot_at(now)) + 1)

    def wait_time(self, now: float) -> float:
        """Seconds to wait before the next cycle (0.0 when it is due)."""
        return max(0.0, self.next_deadline(now) - now)

    def due(self, now: float) -> bool:
        return self.next_deadline(now) <= now

    def complete(self, started_at: float, now: float) -> CycleBooking:
        """Book a cycle that started at ``started_at`` and ended at ``now``."""
        if now < started_at:
            raise EngineError("a cycle cannot end before it started")
        served = max(self._next, self._slot_at(started_at))
        deadline = self.deadline(served)
        lateness = started_at - deadline
        on_time = abs(lateness) <= self.tolerance
        last_passed = self._slot_at(now)
        if last_passed <= served:
            following = served + 1
        elif now - self.deadline(last_passed) <= self.tolerance:
            following = last_passed  # slight overrun: run the latest slot at once
        else:
            following = last_passed + 1  # skip what passed, do not bunch
        missed = (served - self._next) + (following - served - 1)
        self._next = following
        self.cycles += 1
        self.on_time += on_time
        self.missed += missed
        return CycleBooking(served, deadline, lateness, on_time, missed, self.deadline(following))

    @property
    def on_time_ratio(self) -> float:
        """Share of cycles started within the tolerance of their deadline (1.0 before any)."""
        return self.on_time / self.cycles if self.cycles else 1.0

    def __repr__(self) -> str:
        return (
            f"PollSchedule(period={self.period}, origin={self.origin}, next_slot={self._next}, "
            f"cycles={self.cycles}, on_time={self.on_time}, missed={self.missed})"
        )


def stagger(index: int, count: int, period: float) -> float:
    """Phase of meter ``index`` out of ``count`` so that their polls spread evenly over ``period``.

    1,000 meters at a 1 s period start 1 ms apart instead of all in the same millisecond.
    """
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"stagger index {index} out of range for {count} meters")
    period = _finite("period", period)
    if period <= 0.0:
        raise ConfigError(f"period must be positive, got {period!r}")
    return period * index / count


K = TypeVar("K", bound=Hashable)


class BusSchedule(Generic[K]):
    """The meters of one serial line, polled in turn by one worker.

    ``next(now)`` picks the meter to poll: among meters already due, the least recently served
    (so an overloaded line degrades into a fair round robin and no meter starves); when none is
    due, the one with the earliest deadline (the worker sleeps until then).
    """

    def __init__(self) -> None:
        self._members: dict[K, PollSchedule] = {}
        self._served: dict[K, int] = {}  # turn number of each meter's last cycle (0 = never)
        self._turn = 0

    def add(self, key: K, schedule: PollSchedule) -> None:
        if key in self._members:
            raise EngineError(f"meter {key!r} is already on this bus")
        self._members[key] = schedule
        self._served[key] = 0

    def remove(self, key: K) -> PollSchedule:
        self._served.pop(key, None)
        try:
            return self._members.pop(key)
        except KeyError:
            raise EngineError(f"meter {key!r} is not on this bus") from None

    def schedule(self, key: K) -> PollSchedule:
        return self._members[key]

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __iter__(self) -> Iterator[K]:
        return iter(self._members)

    def next(self, now: float) -> tuple[K, float] | None:
        """``(meter, deadline)`` of the meter to poll next, or None when the bus is empty."""
        best: tuple[K, float] | None = None
        best_rank: tuple[int, float] = (0, 0.0)
        for key, sched in self._members.items():  # a bus holds a few dozen meters at most
            deadline = sched.next_deadline(now)
            # Due meters rank by last service, then deadline; others only by deadline, after all
            # due ones. Insertion order breaks the remaining ties (strict < keeps the first).
            if deadline <= now:
                rank: tuple[int, float] = (self._served[key] - self._turn - 1, deadline)
            else:
                rank = (0, deadline)
            if best is None or rank < best_rank:
                best, best_rank = (key, deadline), rank
        return best

    def complete(self, key: K, started_at: float, now: float) -> CycleBooking:
        """Book the cycle of ``key`` and move it to the back of the round robin."""
        booking = self._members[key].complete(started_at, now)
        self._turn += 1
        self._served[key] = self._turn
        return booking
