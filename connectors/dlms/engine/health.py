"""Per-meter health statistics, published to ThingsBoard as telemetry.

The original system kept a ``meter_metrics`` table (avg_read_time, total_reads,
successful_reads, success_rate, messages_sent) that was mostly never written and that nobody
outside its database could see. ``MeterHealth`` keeps the same figures, and a few more, in O(1)
memory per meter (counters and exponentially weighted averages, no per-read history), and
``snapshot()`` returns them under stable keys for dashboards and alarm rules.

Telemetry keys of ``snapshot()`` (stable: dashboards and alarm rules depend on them)

=========================  =====  ==============================================================
key                        type   meaning
=========================  =====  ==============================================================
``total_reads``            int    read requests: successful_reads + failed_reads (a GET or a
                                  GET-with-list counts 1, its GET-next blocks do not)
``successful_reads``       int    read requests answered (data or a per-object refusal)
``failed_reads``           int    read requests that failed (timeout, error, session lost); a
                                  poll cycle stops at its first, so one per failed cycle
``success_rate``           float  successful_reads / total_reads in percent (0.0 before any
                                  read): per request, not per cycle (see below)
``registers_read``         int    register values read successfully
``avg_read_time_ms``       float  EWMA of the duration of successful poll cycles (all the read
                                  requests of one cycle), in milliseconds
``last_read_time_ms``      float  duration of the last successful poll cycle, in milliseconds
``avg_register_time_ms``   float  EWMA of cycle duration / registers in that cycle (the
                                  original took 300-800 ms per register)
``requests_sent``          int    read requests sent: total_reads, less the failed cycles
                                  that failed before sending anything
``messages_sent``          int    telemetry messages handed to the gateway for this meter
``total_cycles``           int    poll cycles run
``cycles_on_time``         int    cycles started within the tolerance of their deadline
``cycles_missed``          int    poll slots skipped because the previous cycle overran
``on_time_rate``           float  cycles_on_time / total_cycles in percent (100.0 before any)
``last_success_ts``        int    wall-clock time of the last successful read, epoch ms (0 never
                                  or no wall clock injected)
``consecutive_failures``   int    failed poll cycles since the last successful cycle
``reconnects``             int    associations established after the first one
``availability``           float  percent of the observed time spent associated
``connection_state``       str    one of ``MeterState``: "disconnected", "connecting",
                                  "associated", "backoff", "circuit-open", "unreachable",
                                  "auth-failed", "counter-rejected"
=========================  =====  ==============================================================

A meter that answers GET-with-list reads its points in one request a cycle, so the read and
cycle figures almost coincide. One without it (or with ``maxListItems: 1``) sends one GET per
point (plus scaler reads the first time): 9 points at 64 cycles are 576 read requests, and
total_reads says 576. Its success_rate is then per request: a cycle that fails at its 5th GET adds
4 successful reads and 1 failed one. avg_read_time_ms stays the time of a whole cycle: divide by
the requests of a cycle (or read avg_register_time_ms) for the time of one.

Keys are prefixed or specific enough not to collide with meter readings (``state`` is
``connection_state`` for that reason). Suggested alarm rules: ``success_rate < 90``,
``consecutive_failures >= 5``, ``connection_state == "auth-failed"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum

from ..protocol.errors import ConfigError, EngineError

__all__ = ["SNAPSHOT_KEYS", "MeterHealth", "MeterState"]


class MeterState(str, Enum):
    DISCONNECTED = "disconnected"  # not started yet, or the session was closed
    CONNECTING = "connecting"  # transport connect or association in progress
    ASSOCIATED = "associated"  # reading
    BACKOFF = "backoff"  # waiting before the next attempt (backoff or minimum spacing)
    CIRCUIT_OPEN = "circuit-open"  # too many failures: attempts paused
    UNREACHABLE = "unreachable"  # silence watchdog expired or the network is unreachable
    AUTH_FAILED = "auth-failed"  # the meter refused our credentials: needs a config change
    COUNTER_REJECTED = "counter-rejected"  # our invocation counter refused even after a resync


_STATES = {s.value: s for s in MeterState}

SNAPSHOT_KEYS = (
    "total_reads",
    "successful_reads",
    "failed_reads",
    "success_rate",
    "registers_read",
    "avg_read_time_ms",
    "last_read_time_ms",
    "avg_register_time_ms",
    "requests_sent",
    "messages_sent",
    "total_cycles",
    "cycles_on_time",
    "cycles_missed",
    "on_time_rate",
    "last_success_ts",
    "consecutive_failures",
    "reconnects",
    "availability",
    "connection_state",
)


class MeterHealth:
    """Counters and averages of one meter; every ``record_*`` call is O(1)."""

    __slots__ = (
        "_assoc_since",
        "_associated_s",
        "_associations",
        "_first",
        "_latest",
        "_wall_clock",
        "alpha",
        "avg_read_s",
        "avg_register_s",
        "consecutive_failures",
        "cycles",
        "cycles_missed",
        "cycles_on_time",
        "failed_reads",
        "last_read_s",
        "last_success",
        "last_success_wall",
        "messages_sent",
        "registers_read",
        "requests_sent",
        "state",
        "state_since",
        "successful_reads",
    )

    def __init__(
        self, ewma_alpha: float = 0.2, wall_clock: Callable[[], float] | None = None
    ) -> None:
        if not (math.isfinite(ewma_alpha) and 0.0 < ewma_alpha <= 1.0):
            raise ConfigError(f"ewma_alpha must be in (0, 1], got {ewma_alpha!r}")
        self.alpha = float(ewma_alpha)
        self._wall_clock = wall_clock  # epoch seconds (time.time), for last_success_ts only
        self.successful_reads = 0
        self.failed_reads = 0
        self.registers_read = 0
        self.avg_read_s = 0.0
        self.avg_register_s = 0.0
        self.last_read_s = 0.0
        self.requests_sent = 0
        self.messages_sent = 0
        self.cycles = 0
        self.cycles_on_time = 0
        self.cycles_missed = 0
        self.consecutive_failures = 0
        self.last_success: float | None = None  # monotonic
        self.last_success_wall = 0.0  # epoch seconds, 0.0 = never / unknown
        self.state = MeterState.DISCONNECTED
        self.state_since: float | None = None
        self._associations = 0
        self._assoc_since: float | None = None  # start of the current associated period
        self._associated_s = 0.0  # closed associated periods
        self._first: float | None = None  # first and latest time seen, for availability
        self._latest: float | None = None

    def _seen(self, now: float) -> None:
        if self._first is None:
            self._first = now
        if self._latest is None or now > self._latest:
            self._latest = now

    def _ewma(self, average: float, sample: float, first: bool) -> float:
        # The first sample seeds the average so it does not climb up slowly from zero.
        return sample if first else average + self.alpha * (sample - average)

    def record_read(
        self, ok: bool, duration_s: float, registers: int, now: float, requests: int = 1
    ) -> None:
        """One poll cycle of ``requests`` read requests ended at ``now`` after ``duration_s``.

        ``ok``: every request was answered, ``registers`` is how many values came back (items
        refused with a data-access error are not counted). Not ``ok``: the cycle stopped at its
        last request, which failed; the ones before it were answered (their values are not
        published, the cycle is dropped whole). ``requests`` counts GET and GET-with-list
        requests, not GET-next blocks.
        """
        # Once per cycle per meter: plain arithmetic inline, no helper calls.
        if self._first is None:
            self._first = now
        if self._latest is None or now > self._latest:
            self._latest = now
        self.requests_sent += requests
        if not ok:
            self.failed_reads += 1
            if requests > 1:
                self.successful_reads += requests - 1
            self.consecutive_failures += 1
            return
        alpha = self.alpha
        if self.last_success is None:  # the first sample seeds the average
            self.avg_read_s = duration_s
        else:
            self.avg_read_s += alpha * (duration_s - self.avg_read_s)
        self.successful_reads += requests
        self.consecutive_failures = 0
        self.registers_read += registers
        self.last_read_s = duration_s
        if registers > 0:
            per_register = duration_s / registers
            if self.avg_register_s == 0.0:  # no per-register sample yet
                self.avg_register_s = per_register
            else:
                self.avg_register_s += alpha * (per_register - self.avg_register_s)
        self.last_success = now
        if self._wall_clock is not None:
            self.last_success_wall = self._wall_clock()

    def record_cycle(self, on_time: bool, missed: int = 0) -> None:
        """A poll cycle ran (see ``schedule.CycleBooking``)."""
        self.cycles += 1
        self.cycles_on_time += bool(on_time)
        self.cycles_missed += missed

    def record_published(self, messages: int = 1) -> None:
        """Telemetry messages handed to the gateway for this meter."""
        self.messages_sent += messages

    def record_state(self, state: MeterState | str, now: float) -> bool:
        """The connection state became ``state`` at ``now``; returns True if it changed."""
        new = state if isinstance(state, MeterState) else _STATES.get(state)
        if new is None:
            raise EngineError(f"unknown meter state {state!r}")
        self._seen(now)
        if new is self.state:
            return False
        if self.state is MeterState.ASSOCIATED and self._assoc_since is not None:
            self._associated_s += max(0.0, now - self._assoc_since)
            self._assoc_since = None
        if new is MeterState.ASSOCIATED:
            self._associations += 1
            self._assoc_since = now
        self.state = new
        self.state_since = now
        return True

    @property
    def total_reads(self) -> int:
        return self.successful_reads + self.failed_reads

    @property
    def success_rate(self) -> float:
        total = self.total_reads
        return 100.0 * self.successful_reads / total if total else 0.0

    @property
    def reconnects(self) -> int:
        return max(0, self._associations - 1)

    @property
    def availability(self) -> float:
        """Percent of the time between the first and the latest event spent associated."""
        if self._first is None or self._latest is None or self._latest <= self._first:
            return 100.0 if self.state is MeterState.ASSOCIATED else 0.0
        associated = self._associated_s
        if self._assoc_since is not None:
            associated += max(0.0, self._latest - self._assoc_since)
        return 100.0 * associated / (self._latest - self._first)

    def snapshot(self) -> dict[str, int | float | str]:
        """All keys of ``SNAPSHOT_KEYS``, ready to publish as telemetry."""
        return {
            "total_reads": self.total_reads,
            "successful_reads": self.successful_reads,
            "failed_reads": self.failed_reads,
            "success_rate": round(self.success_rate, 2),
            "registers_read": self.registers_read,
            "avg_read_time_ms": round(self.avg_read_s * 1000.0, 3),
            "last_read_time_ms": round(self.last_read_s * 1000.0, 3),
            "avg_register_time_ms": round(self.avg_register_s * 1000.0, 3),
            "requests_sent": self.requests_sent,
            "messages_sent": self.messages_sent,
            "total_cycles": self.cycles,
            "cycles_on_time": self.cycles_on_time,
            "cycles_missed": self.cycles_missed,
            "on_time_rate": round(100.0 * self.cycles_on_time / self.cycles, 2)
            if self.cycles
            else 100.0,
            "last_success_ts": int(self.last_success_wall * 1000.0),
            "consecutive_failures": self.consecutive_failures,
            "reconnects": self.reconnects,
            "availability": round(self.availability, 2),
            "connection_state": self.state.value,
        }
